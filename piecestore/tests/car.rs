//! The streaming CAR block finder: any chunking, truncation, hostile lengths, never a panic.

mod support;

use piecestore::{BlockEntry, CarError, CarIndexer, Cid, MAX_CAR_HEADER, MAX_SECTION};
use support::{car, raw_cid, varint};

fn index(bytes: &[u8], chunk: usize) -> (Result<Vec<Cid>, CarError>, Vec<BlockEntry>) {
    let mut ix = CarIndexer::new();
    let mut got = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        if ix.update(c, &mut |e| got.push(e)).is_err() {
            break;
        }
    }
    (ix.finish(), got)
}

const PAYLOADS: [&[u8]; 4] = [b"hello", &[7u8; 300], &[], &[1u8; 5000]];

fn sample() -> (Vec<u8>, Vec<BlockEntry>) {
    car(&PAYLOADS.map(<[u8]>::to_vec))
}

#[test]
fn finds_every_block_at_any_chunking() {
    let (bytes, want) = sample();
    for chunk in [1, 2, 3, 7, 64, 1000, bytes.len()] {
        let (roots, got) = index(&bytes, chunk);
        assert_eq!(roots.unwrap(), vec![raw_cid(b"root")], "chunk {chunk}");
        assert_eq!(got, want, "chunk {chunk}");
    }
    for (e, p) in want.iter().zip(PAYLOADS) {
        assert_eq!(&bytes[e.offset as usize..(e.offset + e.size) as usize], p);
    }
}

#[test]
fn zero_length_section_ends_the_car() {
    let (mut bytes, want) = sample();
    bytes.extend_from_slice(&[0u8; 100]);
    let (roots, got) = index(&bytes, 13);
    assert!(roots.is_ok());
    assert_eq!(got, want);
}

#[test]
fn truncation_is_reported_with_its_offset() {
    let (bytes, _) = sample();
    let cut = bytes.len() - 10;
    let (roots, _) = index(&bytes[..cut], 100);
    assert_eq!(roots, Err(CarError::Truncated(cut as u64)));
}

#[test]
fn hostile_lengths_are_refused() {
    let mut huge = Vec::new();
    varint(MAX_CAR_HEADER + 1, &mut huge);
    assert!(matches!(index(&huge, 4).0, Err(CarError::HeaderSize(_))));
    let (mut bytes, _) = car(&[]);
    varint(MAX_SECTION + 1, &mut bytes);
    assert!(matches!(
        index(&bytes, 4).0,
        Err(CarError::SectionSize { .. })
    ));
    assert!(matches!(index(&[0xff; 20], 4).0, Err(CarError::Varint(_))));
    let (mut bytes, _) = car(&[]);
    bytes.extend_from_slice(&[3, 0xff, 0xff, 0xff]);
    assert!(matches!(index(&bytes, 4).0, Err(CarError::Cid { .. })));
}

#[test]
fn a_carv2_or_plain_bytes_is_not_indexed() {
    #[derive(serde::Serialize)]
    struct V2 {
        version: u64,
    }
    let hdr = serde_ipld_dagcbor::to_vec(&V2 { version: 2 }).unwrap();
    let mut bytes = vec![hdr.len() as u8];
    bytes.extend_from_slice(&hdr);
    assert!(matches!(index(&bytes, 4).0, Err(CarError::Header(_))));
    assert!(index(b"just some text that is not a car", 5).0.is_err());
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), chunk in 1usize..64) {
        let _ = index(&bytes, chunk);
    }

    #[test]
    fn mutated_cars_never_panic(i in 0usize..5600, b in proptest::num::u8::ANY, chunk in 1usize..300) {
        let (mut bytes, _) = sample();
        let i = i % bytes.len();
        bytes[i] = b;
        let _ = index(&bytes, chunk);
    }
}
