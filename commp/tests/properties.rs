//! Property tests: fr32 round trips, chunking invariance, backend agreement, and parsers
//! that never panic on arbitrary input.

use commp::{Backend, CommP, PieceCid, ShortPayload, fr32};
use proptest::prelude::*;

fn hash_chunked(data: &[u8], cuts: &[usize], backend: Backend) -> commp::PieceInfo {
    let mut h = CommP::new()
        .with_short_payload(ShortPayload::ZeroPad)
        .with_backend(backend)
        .unwrap();
    let mut rest = data;
    for &c in cuts {
        let c = c.min(rest.len());
        h.update(&rest[..c]);
        rest = &rest[c..];
    }
    h.update(rest);
    h.finish().unwrap()
}

fn supported() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_supported())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fr32_round_trip(blocks in 0usize..20, seed in any::<u64>()) {
        let mut data = vec![0u8; blocks * 127];
        let mut x = seed | 1;
        for b in &mut data { x ^= x << 13; x ^= x >> 7; x ^= x << 17; *b = x as u8; }
        let mut padded = vec![0u8; blocks * 128];
        fr32::pad(&data, &mut padded).unwrap();
        for word in padded.chunks(32) {
            prop_assert_eq!(word[31] & 0xC0, 0);
        }
        let mut back = vec![0u8; data.len()];
        fr32::unpad(&padded, &mut back).unwrap();
        prop_assert_eq!(&back, &data);
        let mut buf = data.clone();
        buf.resize(padded.len(), 0);
        fr32::pad_in_place(&mut buf, data.len()).unwrap();
        prop_assert_eq!(&buf, &padded);
    }

    #[test]
    fn any_chunking_gives_the_same_commp(
        data in proptest::collection::vec(any::<u8>(), 0..40_000),
        cuts in proptest::collection::vec(0usize..3000, 0..30),
    ) {
        let whole = hash_chunked(&data, &[], Backend::detect());
        let chunked = hash_chunked(&data, &cuts, Backend::detect());
        prop_assert_eq!(whole, chunked);
        let mut byte_by_byte = CommP::new().with_short_payload(ShortPayload::ZeroPad);
        for b in data.iter().take(3000) {
            byte_by_byte.update(std::slice::from_ref(b));
        }
        byte_by_byte.update(&data[data.len().min(3000)..]);
        prop_assert_eq!(byte_by_byte.finish().unwrap(), whole);
    }

    #[test]
    fn backends_agree(len in 0usize..3_000_000, seed in any::<u64>()) {
        // Lengths up to ~3 MB cross several 256 KiB batches and odd partial levels.
        let mut data = vec![0u8; len];
        let mut x = seed | 1;
        for chunk in data.chunks_mut(8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let reference = hash_chunked(&data, &[], Backend::Portable);
        for backend in supported() {
            prop_assert_eq!(hash_chunked(&data, &[], backend), reference, "{:?}", backend);
        }
    }

    #[test]
    fn larger_piece_equals_zero_padded_payload(len in 65usize..5000, extra in 1u32..4) {
        let data = vec![0x5Au8; len];
        let mut h = CommP::new();
        h.update(&data);
        let min = commp::PaddedPieceSize::for_payload(len as u64).unwrap();
        let bigger = commp::PaddedPieceSize::new(min.get() << extra).unwrap();
        let grown = h.finish_padded_to(bigger).unwrap();
        let mut padded_payload = data.clone();
        padded_payload.resize(bigger.unpadded().get() as usize, 0);
        let mut direct = CommP::new();
        direct.update(&padded_payload);
        prop_assert_eq!(grown.commitment, direct.finish().unwrap().commitment);
        prop_assert_eq!(grown.padded_size, bigger);
        prop_assert_eq!(grown.payload_size, len as u64);
    }

    #[test]
    fn commd_equals_commp_of_the_aligned_layout(
        pieces in proptest::collection::vec((0u32..5, 65usize..600, any::<u8>()), 1..8),
    ) {
        // Lay the pieces out for real (payload zero-padded to its piece, zero filler before
        // each piece up to a multiple of its size) and hash the whole thing.
        let mut layout = Vec::new();
        let mut list = Vec::new();
        for (shift, len, byte) in pieces {
            let mut payload = vec![byte; len];
            let size = commp::PaddedPieceSize::for_payload(len as u64).unwrap().get() << shift;
            let size = commp::PaddedPieceSize::new(size).unwrap();
            let mut h = CommP::new();
            h.update(&payload);
            let info = h.finish_padded_to(size).unwrap();
            let unpadded = size.unpadded().get() as usize;
            layout.resize(layout.len().div_ceil(unpadded) * unpadded, 0);
            payload.resize(unpadded, 0);
            layout.extend_from_slice(&payload);
            list.push(commp::commd::Piece { commitment: info.commitment, size });
        }
        let (root, size) = commp::commd::aggregate(&list).unwrap();
        let mut h = CommP::new();
        h.update(&layout);
        let direct = h.finish_padded_to(size).unwrap();
        prop_assert_eq!(root, direct.commitment);
        prop_assert_eq!(size, commp::PaddedPieceSize::for_payload(layout.len() as u64).unwrap());
    }

    #[test]
    fn cid_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), text in ".{0,100}") {
        if let Ok(cid) = commp::Cid::try_from(bytes.as_slice()) {
            let _ = PieceCid::from_cid(&cid);
        }
        let _ = text.parse::<PieceCid>();
    }
}

#[test]
fn too_small_requested_piece_is_an_error() {
    let mut h = CommP::new();
    h.update(&[1u8; 1000]);
    let err = h
        .finish_padded_to(commp::PaddedPieceSize::new(512).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, commp::CommPError::PieceTooSmall { payload: 1000, .. }),
        "{err}"
    );
}

#[test]
fn io_write_and_reader_match_update() {
    use std::io::Write;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut w = CommP::new();
    w.write_all(&data).unwrap();
    let expected = commp::commp(&data).unwrap();
    assert_eq!(w.finish().unwrap(), expected);
    assert_eq!(commp::commp_reader(&data[..]).unwrap(), expected);
}

#[tokio::test]
async fn async_reader_and_stream_match_update() {
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected = commp::commp(&data).unwrap();
    assert_eq!(commp::commp_async_read(&data[..]).await.unwrap(), expected);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(65_537)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    assert_eq!(
        commp::commp_stream(futures::stream::iter(chunks))
            .await
            .unwrap(),
        expected
    );
    let failing = futures::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"abc")),
        Err(std::io::Error::other("peer went away")),
    ]);
    assert!(matches!(
        commp::commp_stream(failing).await,
        Err(commp::CommPError::Io(_))
    ));
}
