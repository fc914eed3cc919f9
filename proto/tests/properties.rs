//! Properties: every frame round-trips, and decoding any bytes never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sotto_proto::limits::{
    BLOB_CHUNK_SIZE, BLOB_GET_MAX_CHUNKS, CELL_HEADER_LEN, CELL_SIZE, ENVELOPE_SIZE, MAX_BLOB_SIZE,
};
use sotto_proto::{
    BlobReadId, BlobWriteId, Chunk, ClientFrame, Envelope, ErrorCode, PublicKey, Push, RecvId, Request, Response,
    SendId, ServerFrame, Signature,
};

fn id() -> impl Strategy<Value = [u8; 24]> {
    any::<[u8; 24]>()
}

fn sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    any::<u8>().prop_map(|b| Envelope::from_slice(&vec![b; ENVELOPE_SIZE]).unwrap())
}

fn chunk() -> impl Strategy<Value = Chunk> {
    prop::collection::vec(any::<u8>(), 0..=BLOB_CHUNK_SIZE).prop_map(|v| Chunk::new(v).unwrap())
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        (any::<[u8; 32]>(), sig()).prop_map(|(k, s)| Request::CreateMailbox { owner_key: PublicKey(k), signature: s }),
        (id(), any::<[u8; 32]>(), sig()).prop_map(|(r, k, s)| Request::Secure {
            recv_id: RecvId(r),
            sender_key: PublicKey(k),
            signature: s
        }),
        (id(), envelope(), prop::option::of(sig())).prop_map(|(i, e, s)| Request::Send {
            send_id: SendId(i),
            envelope: e,
            signature: s
        }),
        (id(), sig()).prop_map(|(r, s)| Request::Subscribe { recv_id: RecvId(r), signature: s }),
        (id(), any::<u64>(), sig()).prop_map(|(r, q, s)| Request::Ack { recv_id: RecvId(r), seq: q, signature: s }),
        (id(), sig()).prop_map(|(r, s)| Request::DeleteMailbox { recv_id: RecvId(r), signature: s }),
        (0..=MAX_BLOB_SIZE).prop_map(|size| Request::BlobCreate { size }),
        (id(), any::<u64>(), any::<bool>(), chunk()).prop_map(|(w, o, a, d)| Request::BlobPut {
            write_id: BlobWriteId(w),
            offset: o,
            answer: a,
            data: d
        }),
        id().prop_map(|w| Request::BlobStatus { write_id: BlobWriteId(w) }),
        (id(), any::<u64>(), 1..=BLOB_GET_MAX_CHUNKS).prop_map(|(r, o, c)| Request::BlobGet {
            read_id: BlobReadId(r),
            offset: o,
            count: c
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Ok),
        Just(Response::Pong),
        any::<u16>().prop_map(|c| Response::Error(ErrorCode::from_u16(c))),
        (id(), id()).prop_map(|(r, s)| Response::MailboxCreated { recv_id: RecvId(r), send_id: SendId(s) }),
        (id(), id()).prop_map(|(w, r)| Response::BlobCreated { write_id: BlobWriteId(w), read_id: BlobReadId(r) }),
        (any::<u64>(), any::<u64>()).prop_map(|(received, size)| Response::BlobStatus { received, size }),
        (any::<u64>(), any::<u64>(), chunk()).prop_map(|(offset, size, data)| Response::BlobData {
            offset,
            size,
            data
        }),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|n| ServerFrame::Hello { nonce: sotto_proto::Nonce(n) }),
        (any::<u32>(), response()).prop_map(|(corr, response)| ServerFrame::Response { corr, response }),
        (id(), any::<u64>(), envelope()).prop_map(|(r, seq, envelope)| ServerFrame::Push(Push::Deliver {
            recv_id: RecvId(r),
            seq,
            envelope
        })),
        id().prop_map(|r| ServerFrame::Push(Push::Unsubscribed { recv_id: RecvId(r) })),
    ]
}

proptest! {
    #[test]
    fn client_frames_round_trip(corr in any::<u32>(), request in request()) {
        let frame = ClientFrame { corr, request };
        let cell = frame.to_cell();
        prop_assert_eq!(cell.len(), CELL_SIZE);
        prop_assert_eq!(ClientFrame::from_cell(&cell).unwrap(), frame);
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let cell = frame.to_cell();
        prop_assert_eq!(cell.len(), CELL_SIZE);
        prop_assert_eq!(ServerFrame::from_cell(&cell).unwrap(), frame);
    }

    #[test]
    fn any_body_decodes_or_errs(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = ClientFrame::decode_body(&bytes);
        let _ = ServerFrame::decode_body(&bytes);
    }

    #[test]
    fn any_cell_decodes_or_errs(len in 0usize..(2 * CELL_SIZE), fill in any::<u8>(), head in any::<[u8; 8]>()) {
        let mut cell = vec![fill; len];
        let n = head.len().min(len);
        cell[..n].copy_from_slice(&head[..n]);
        let _ = ClientFrame::from_cell(&cell);
        let _ = ServerFrame::from_cell(&cell);
    }

    #[test]
    fn truncating_a_frame_is_an_error(request in request(), cut in 1usize..64) {
        let body = ClientFrame { corr: 1, request }.encode_body();
        let cut = cut.min(body.len());
        prop_assert!(ClientFrame::decode_body(&body[..body.len() - cut]).is_err());
        let mut cell = vec![0u8; CELL_SIZE];
        cell[0] = 1;
        let short = body.len() - cut;
        cell[1..3].copy_from_slice(&(short as u16).to_be_bytes());
        cell[CELL_HEADER_LEN..CELL_HEADER_LEN + short].copy_from_slice(&body[..short]);
        prop_assert!(ClientFrame::from_cell(&cell).is_err());
    }
}
