//! Several threads and zero runs give the commitment of one thread over the same bytes; huge
//! pieces (up to 2^63 bytes) close with the zero-subtree table.

use commp::commd::{Piece, aggregate};
use commp::{CommP, PaddedPieceSize, ShortPayload, zero_commitment};

/// Payload bytes of one worker subtree (2 MiB of leaves).
const SUBTREE: usize = 16384 * 127;

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

fn hash(data: &[u8], threads: usize, write: usize) -> commp::PieceInfo {
    let mut h = CommP::new()
        .with_short_payload(ShortPayload::ZeroPad)
        .with_threads(threads);
    for chunk in data.chunks(write.max(1)) {
        h.update(chunk);
    }
    h.finish().unwrap()
}

#[test]
fn threads_agree_with_one_thread_around_subtree_boundaries() {
    let big = bytes(8 * SUBTREE + 4097, 7);
    for len in [
        0,
        100,
        SUBTREE - 1,
        SUBTREE,
        SUBTREE + 1,
        3 * SUBTREE + 12_345,
        8 * SUBTREE,
        8 * SUBTREE + 4097,
    ] {
        let data = &big[..len];
        let one = hash(data, 1, 1 << 20);
        for threads in [2, 3, 4] {
            for write in [1000, 1 << 20, 5 * SUBTREE] {
                assert_eq!(
                    hash(data, threads, write),
                    one,
                    "{len} bytes, {threads} threads, writes of {write}"
                );
            }
        }
    }
}

#[test]
fn padded_to_a_larger_piece_with_threads() {
    let data = bytes(5 * SUBTREE + 77, 3);
    let size = PaddedPieceSize::new(64 << 20).unwrap();
    let mut one = CommP::new().with_threads(1);
    one.update(&data);
    let mut four = CommP::new().with_threads(4);
    four.update(&data);
    assert_eq!(
        four.finish_padded_to(size).unwrap(),
        one.finish_padded_to(size).unwrap()
    );
}

#[test]
fn zero_runs_equal_hashed_zeros() {
    let head = bytes(300_001, 1);
    let tail = bytes(SUBTREE + 5, 2);
    for zeros in [
        0u64,
        1,
        127,
        260_096,
        3 * SUBTREE as u64 + 999,
        9 * SUBTREE as u64,
    ] {
        let mut expected = head.clone();
        expected.resize(head.len() + zeros as usize, 0);
        expected.extend_from_slice(&tail);
        let want = hash(&expected, 1, 1 << 20);
        for threads in [1, 2, 3] {
            let mut h = CommP::new().with_threads(threads);
            h.update(&head);
            h.update_zeros(zeros).unwrap();
            h.update(&tail);
            assert_eq!(h.payload_len(), expected.len() as u64);
            assert_eq!(
                h.finish().unwrap(),
                want,
                "{zeros} zeros, {threads} threads"
            );
        }
    }
}

/// Data, then zeros up to a piece of `size`: the root folds the data's own piece with the
/// zero subtrees on its right, computed here without `update_zeros`.
fn data_then_zeros(size: PaddedPieceSize, threads: usize) {
    let data = bytes(3000, 9);
    let small = commp::commp(&data).unwrap();
    assert_eq!(small.padded_size.get(), 4096);
    let mut h = CommP::new().with_threads(threads);
    h.update(&data);
    h.update_zeros(size.unpadded().get() - data.len() as u64)
        .unwrap();
    let got = h.finish().unwrap();
    assert_eq!(got.padded_size, size);
    // The same tree as a sector layout: the data's piece, then zero pieces of 4 KiB, 8 KiB,
    // ... up to half of `size`, each aligned to its size.
    let mut pieces = vec![Piece {
        commitment: small.commitment,
        size: small.padded_size,
    }];
    let mut level = small.padded_size;
    while level < size {
        pieces.push(Piece {
            commitment: zero_commitment(level),
            size: level,
        });
        level = PaddedPieceSize::new(level.get() * 2).unwrap();
    }
    let (root, tree) = aggregate(&pieces).unwrap();
    assert_eq!(tree, size);
    assert_eq!(got.commitment, root);
}

#[test]
fn the_largest_piece_closes_with_the_zero_table() {
    for threads in [1, 2] {
        data_then_zeros(PaddedPieceSize::MAX, threads);
        data_then_zeros(PaddedPieceSize::new(64 << 30).unwrap(), threads);
        data_then_zeros(PaddedPieceSize::new(1 << 50).unwrap(), threads);
    }
}

#[test]
fn zeros_past_the_largest_piece_are_refused_and_change_nothing() {
    let mut h = CommP::new();
    h.update(&[1u8; 1000]);
    let max = PaddedPieceSize::MAX.unpadded().get();
    assert!(h.update_zeros(max).is_err());
    assert_eq!(h.payload_len(), 1000);
    h.update_zeros(max - 1000).unwrap();
    assert!(h.update_zeros(1).is_err());
    assert_eq!(h.finish().unwrap().padded_size, PaddedPieceSize::MAX);
}

#[test]
fn a_clone_taken_mid_stream_continues_on_its_own() {
    let data = bytes(6 * SUBTREE + 999, 5);
    let (head, tail) = data.split_at(3 * SUBTREE + 500);
    let mut h = CommP::new().with_threads(3);
    h.update(head);
    let copy = h.clone();
    h.update(tail);
    assert_eq!(h.finish().unwrap(), hash(&data, 1, 1 << 20));
    assert_eq!(copy.finish().unwrap(), hash(head, 1, 1 << 20));
}
