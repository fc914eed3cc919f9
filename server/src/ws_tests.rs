#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked, with the given first byte (FIN, RSV, opcode).
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

fn pair() -> (WsConn<DuplexStream>, DuplexStream) {
    let (server, client) = duplex(1 << 20);
    (WsConn::new(server), client)
}

#[tokio::test]
async fn a_masked_cell_arrives_unmasked_even_byte_by_byte() {
    let (mut ws, mut peer) = pair();
    let cell: Vec<u8> = (0..sotto_proto::limits::CELL_SIZE).map(|i| (i * 7) as u8).collect();
    let frame = client_frame(0x82, &cell);
    let writer = tokio::spawn(async move {
        for b in frame {
            peer.write_all(&[b]).await.unwrap();
        }
        peer
    });
    assert_eq!(ws.next().await.unwrap(), Incoming::Binary(cell));
    drop(writer.await.unwrap());
    assert_eq!(ws.next().await, Err(WsError::Io));
}

#[tokio::test]
async fn control_frames_and_text() {
    let (mut ws, mut peer) = pair();
    peer.write_all(&client_frame(0x89, b"are you there")).await.unwrap();
    peer.write_all(&client_frame(0x8A, b"")).await.unwrap();
    peer.write_all(&client_frame(0x81, "文字".as_bytes())).await.unwrap();
    peer.write_all(&client_frame(0x82, b"")).await.unwrap();
    peer.write_all(&client_frame(0x88, &[0x03, 0xE8])).await.unwrap();
    assert_eq!(ws.next().await.unwrap(), Incoming::Ping(b"are you there".to_vec()));
    assert_eq!(ws.next().await.unwrap(), Incoming::Pong);
    assert_eq!(ws.next().await.unwrap(), Incoming::Text);
    assert_eq!(ws.next().await.unwrap(), Incoming::Binary(Vec::new()));
    assert_eq!(ws.next().await.unwrap(), Incoming::Close);
}

#[tokio::test]
async fn frames_a_client_must_not_send_are_refused() {
    let cases: [(Vec<u8>, WsError); 8] = [
        (client_frame(0x82, b"x")[..2].iter().map(|&b| b & 0x7F).chain([b'x']).collect(), WsError::Unmasked),
        (client_frame(0xC2, b"x"), WsError::Reserved),
        (client_frame(0x02, b"x"), WsError::Fragmented),
        (client_frame(0x80, b"x"), WsError::Fragmented),
        (client_frame(0x09, b"x"), WsError::Fragmented),
        (client_frame(0x83, b"x"), WsError::Opcode(3)),
        (client_frame(0x8B, b"x"), WsError::Opcode(0xB)),
        (client_frame(0x89, &[0; 126]), WsError::TooLong(126)),
    ];
    for (frame, want) in cases {
        let (mut ws, mut peer) = pair();
        peer.write_all(&frame).await.unwrap();
        assert_eq!(ws.next().await, Err(want));
    }
}

#[tokio::test]
async fn a_huge_frame_is_refused_from_its_header_alone() {
    let (mut ws, mut peer) = pair();
    // Announces 2^40 bytes and sends only the header: refused without waiting for more.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&MASK);
    peer.write_all(&header).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    assert_eq!(got, Err(WsError::TooLong(1 << 40)));
    // Just over two cells is too long too; two cells exactly is read (and then answered
    // by the relay with a typed error).
    let (mut ws, mut peer) = pair();
    peer.write_all(&client_frame(0x82, &vec![1; MAX_PAYLOAD + 1])[..14]).await.unwrap();
    assert_eq!(ws.next().await, Err(WsError::TooLong(MAX_PAYLOAD as u64 + 1)));
    let (mut ws, mut peer) = pair();
    peer.write_all(&client_frame(0x82, &vec![1; MAX_PAYLOAD])).await.unwrap();
    assert_eq!(ws.next().await.unwrap(), Incoming::Binary(vec![1; MAX_PAYLOAD]));
}

#[tokio::test]
async fn reading_is_cancellation_safe() {
    let (mut ws, mut peer) = pair();
    let frame = client_frame(0x82, &[9; 300]);
    // Half a frame, then a read that is cancelled, then the rest: nothing is lost.
    peer.write_all(&frame[..150]).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(50), ws.next()).await.is_err());
    peer.write_all(&frame[150..]).await.unwrap();
    peer.write_all(&client_frame(0x82, &[8; 3])).await.unwrap();
    assert_eq!(ws.next().await.unwrap(), Incoming::Binary(vec![9; 300]));
    assert_eq!(ws.next().await.unwrap(), Incoming::Binary(vec![8; 3]));
}

#[tokio::test]
async fn server_frames_are_unmasked_final_and_golden() {
    let (mut ws, mut peer) = pair();
    let cell = vec![0xAB; sotto_proto::limits::CELL_SIZE];
    ws.send_binary(&cell).await.unwrap();
    ws.send_pong(b"hi").await.unwrap();
    ws.close().await.unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).await.unwrap();
    // 16,376 = 0x3FF8: a 16-bit extended length.
    assert_eq!(got[..4], [0x82, 0x7E, 0x3F, 0xF8]);
    assert_eq!(got[4..4 + cell.len()], cell[..]);
    assert_eq!(got[4 + cell.len()..], [0x8A, 0x02, b'h', b'i', 0x88, 0x00]);
}

#[test]
fn encode_frame_length_forms() {
    assert_eq!(encode_frame(OP_BINARY, &[1, 2]), [0x82, 2, 1, 2]);
    assert_eq!(encode_frame(OP_BINARY, &[0; 126])[..4], [0x82, 126, 0, 126]);
    assert_eq!(encode_frame(OP_BINARY, &[0; 0x10000])[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn unmask_matches_the_definition_at_every_length() {
    let mask = [0x12, 0x34, 0x56, 0x78];
    for len in 0..40 {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(fast, slow, "length {len}");
    }
}
