//! Any bytes decode to a client frame or an error; a decoded frame re-encodes to a cell
//! that decodes to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::ClientFrame;
use sotto_proto::limits::CELL_SIZE;

fuzz_target!(|data: &[u8]| {
    // Bodies directly, and the same bytes padded into a cell.
    if let Ok(frame) = ClientFrame::decode_body(data) {
        assert_eq!(ClientFrame::from_cell(&frame.to_cell()).as_ref(), Ok(&frame));
    }
    let mut cell = data.to_vec();
    cell.resize(CELL_SIZE, 0);
    if let Ok(frame) = ClientFrame::from_cell(&cell) {
        assert_eq!(frame.to_cell(), cell);
    }
});
