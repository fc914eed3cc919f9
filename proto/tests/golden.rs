//! Golden vectors: the exact bytes of every frame, and bytes that must be rejected with a
//! given error. A change to any of these is a change to the wire format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sotto_proto::limits::{CELL_SIZE, ENVELOPE_SIZE};
use sotto_proto::{
    BlobReadId, BlobWriteId, Chunk, ClientFrame, DecodeError, Envelope, ErrorCode, Nonce, PublicKey, Push, RecvId,
    Request, Response, SendId, ServerFrame, Signature,
};

fn rep(byte: &str, n: usize) -> String {
    byte.repeat(n)
}

fn envelope() -> Envelope {
    let bytes: Vec<u8> = (0..ENVELOPE_SIZE).map(|i| (i % 251) as u8).collect();
    Envelope::from_slice(&bytes).unwrap()
}

fn env_hex() -> String {
    hex::encode(envelope().as_bytes())
}

const RECV: RecvId = RecvId([0x11; 24]);
const SEND: SendId = SendId([0x22; 24]);
const KEY: PublicKey = PublicKey([0x33; 32]);
const SIG: Signature = Signature([0x44; 64]);
const WRITE: BlobWriteId = BlobWriteId([0x66; 24]);
const READ: BlobReadId = BlobReadId([0x77; 24]);

fn client_vectors() -> Vec<(Request, String)> {
    vec![
        (Request::Ping, "01".into()),
        (Request::CreateMailbox { owner_key: KEY, signature: SIG }, format!("02{}{}", rep("33", 32), rep("44", 64))),
        (
            Request::Secure { recv_id: RECV, sender_key: KEY, signature: SIG },
            format!("03{}{}{}", rep("11", 24), rep("33", 32), rep("44", 64)),
        ),
        (
            Request::Send { send_id: SEND, envelope: envelope(), signature: None },
            format!("04{}{}00", rep("22", 24), env_hex()),
        ),
        (
            Request::Send { send_id: SEND, envelope: envelope(), signature: Some(SIG) },
            format!("04{}{}01{}", rep("22", 24), env_hex(), rep("44", 64)),
        ),
        (Request::Subscribe { recv_id: RECV, signature: SIG }, format!("05{}{}", rep("11", 24), rep("44", 64))),
        (
            Request::Ack { recv_id: RECV, seq: 0x0102030405060708, signature: SIG },
            format!("06{}0102030405060708{}", rep("11", 24), rep("44", 64)),
        ),
        (Request::DeleteMailbox { recv_id: RECV, signature: SIG }, format!("07{}{}", rep("11", 24), rep("44", 64))),
        (Request::BlobCreate { size: 1 << 20 }, "080000000000100000".into()),
        (
            Request::BlobPut {
                write_id: WRITE,
                offset: 16256,
                answer: false,
                data: Chunk::new(b"abc".to_vec()).unwrap(),
            },
            format!("09{}0000000000003f80000003616263", rep("66", 24)),
        ),
        (
            Request::BlobPut { write_id: WRITE, offset: 0, answer: true, data: Chunk::new(Vec::new()).unwrap() },
            format!("09{}0000000000000000010000", rep("66", 24)),
        ),
        (Request::BlobStatus { write_id: WRITE }, format!("0a{}", rep("66", 24))),
        (Request::BlobGet { read_id: READ, offset: 7, count: 64 }, format!("0b{}00000000000000070040", rep("77", 24))),
    ]
}

fn server_vectors() -> Vec<(ServerFrame, String)> {
    let resp = |response| ServerFrame::Response { corr: 0x2a, response };
    vec![
        (ServerFrame::Hello { nonce: Nonce([0x55; 32]) }, format!("80{}", rep("55", 32))),
        (resp(Response::Ok), "810000002a".into()),
        (resp(Response::Pong), "820000002a".into()),
        (resp(Response::Error(ErrorCode::QueueFull)), "830000002a0006".into()),
        (resp(Response::Error(ErrorCode::Unknown(999))), "830000002a03e7".into()),
        (
            resp(Response::MailboxCreated { recv_id: RECV, send_id: SEND }),
            format!("840000002a{}{}", rep("11", 24), rep("22", 24)),
        ),
        (
            resp(Response::BlobCreated { write_id: WRITE, read_id: READ }),
            format!("850000002a{}{}", rep("66", 24), rep("77", 24)),
        ),
        (resp(Response::BlobStatus { received: 5, size: 9 }), "860000002a00000000000000050000000000000009".into()),
        (
            resp(Response::BlobData { offset: 0, size: 2, data: Chunk::new(vec![0xfe, 0xff]).unwrap() }),
            "870000002a000000000000000000000000000000020002feff".into(),
        ),
        (
            ServerFrame::Push(Push::Deliver { recv_id: RECV, seq: 3, envelope: envelope() }),
            format!("c0{}0000000000000003{}", rep("11", 24), env_hex()),
        ),
        (ServerFrame::Push(Push::Unsubscribed { recv_id: RECV }), format!("c1{}", rep("11", 24))),
    ]
}

#[test]
fn client_frames_match_their_golden_bytes() {
    for (request, body_hex) in client_vectors() {
        let frame = ClientFrame { corr: 0x2a, request };
        let want = format!("0000002a{body_hex}");
        assert_eq!(hex::encode(frame.encode_body()), want, "{frame:?}");
        let cell = frame.to_cell();
        assert_eq!(cell.len(), CELL_SIZE);
        assert_eq!(ClientFrame::from_cell(&cell).unwrap(), frame);
    }
}

#[test]
fn server_frames_match_their_golden_bytes() {
    for (frame, want) in server_vectors() {
        assert_eq!(hex::encode(frame.encode_body()), want, "{frame:?}");
        let cell = frame.to_cell();
        assert_eq!(cell.len(), CELL_SIZE);
        assert_eq!(ServerFrame::from_cell(&cell).unwrap(), frame);
    }
}

#[test]
fn cells_have_golden_header_and_zero_padding() {
    let cell = ClientFrame { corr: 1, request: Request::Ping }.to_cell();
    assert_eq!(hex::encode(&cell[..8]), "0200050000000101");
    assert!(cell[8..].iter().all(|&b| b == 0));
}

#[test]
fn rejected_client_bodies() {
    let cases: Vec<(String, DecodeError)> = vec![
        ("".into(), DecodeError::Truncated),
        ("0000002a".into(), DecodeError::Truncated),
        ("0000002a7f".into(), DecodeError::UnknownTag(0x7f)),
        ("0000002a81".into(), DecodeError::UnknownTag(0x81)),
        ("0000002a0100".into(), DecodeError::TrailingBytes { count: 1 }),
        (format!("0000002a02{}", rep("33", 32)), DecodeError::Truncated),
        (format!("0000002a04{}{}02", rep("22", 24), env_hex()), DecodeError::BadFlag(2)),
        (format!("0000002a04{}{}", rep("22", 24), rep("00", 100)), DecodeError::Truncated),
        ("0000002a08ffffffffffffffff".into(), DecodeError::BlobTooLarge(u64::MAX)),
        (format!("0000002a09{}0000000000000000003f81", rep("66", 24)), DecodeError::Truncated),
        (
            format!("0000002a09{}0000000000000000003f81{}", rep("66", 24), rep("00", 16257)),
            DecodeError::ChunkTooLong(16257),
        ),
        (format!("0000002a09{}0000000000000000020000", rep("66", 24)), DecodeError::BadFlag(2)),
        (format!("0000002a0b{}0000000000000007000100", rep("77", 24)), DecodeError::TrailingBytes { count: 1 }),
        (format!("0000002a0b{}00000000000000070000", rep("77", 24)), DecodeError::ChunkCount(0)),
        (format!("0000002a0b{}00000000000000070041", rep("77", 24)), DecodeError::ChunkCount(65)),
        (format!("0000002a0b{}000000000000000700", rep("77", 24)), DecodeError::Truncated),
    ];
    for (body, want) in cases {
        let bytes = hex::decode(&body).unwrap();
        assert_eq!(ClientFrame::decode_body(&bytes), Err(want), "{}", &body[..body.len().min(40)]);
    }
}

#[test]
fn rejected_server_bodies() {
    let cases: Vec<(String, DecodeError)> = vec![
        ("".into(), DecodeError::Truncated),
        ("01".into(), DecodeError::Truncated),
        ("010000002a".into(), DecodeError::UnknownTag(0x01)),
        ("810000002a00".into(), DecodeError::TrailingBytes { count: 1 }),
        ("830000002a00".into(), DecodeError::Truncated),
        (format!("80{}", rep("55", 31)), DecodeError::Truncated),
        (format!("c1{}ff", rep("11", 24)), DecodeError::TrailingBytes { count: 1 }),
    ];
    for (body, want) in cases {
        let bytes = hex::decode(&body).unwrap();
        assert_eq!(ServerFrame::decode_body(&bytes), Err(want), "{body}");
    }
}

#[test]
fn rejected_cells() {
    let good = ClientFrame { corr: 1, request: Request::Ping }.to_cell();
    assert_eq!(
        ClientFrame::from_cell(&good[..CELL_SIZE - 1]),
        Err(DecodeError::CellSize { expected: CELL_SIZE, got: CELL_SIZE - 1 })
    );
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(ClientFrame::from_cell(&longer), Err(DecodeError::CellSize { expected: CELL_SIZE, got: CELL_SIZE + 1 }));
    let mut v = good.clone();
    v[0] = 1;
    assert_eq!(ClientFrame::from_cell(&v), Err(DecodeError::Version(1)));
    let mut v = good.clone();
    v[2] = 4; // body length 4 leaves the tag in the padding
    assert_eq!(ClientFrame::from_cell(&v), Err(DecodeError::NonZeroPadding));
    let mut v = good.clone();
    v[2] = 6; // body length 6 takes a padding byte into the frame
    assert_eq!(ClientFrame::from_cell(&v), Err(DecodeError::TrailingBytes { count: 1 }));
    let mut v = good;
    v[100] = 0x80;
    assert_eq!(ClientFrame::from_cell(&v), Err(DecodeError::NonZeroPadding));
}
