//! Every vector of `data/commp_vectors.json` (copied from the spec): piece commitments with
//! regenerated inputs, zero commitments, commD layouts and v1 ↔ v2 CID conversions.

mod support;

use std::str::FromStr;

use commp::commd::{self, Piece};
use commp::{
    Backend, Cid, CommP, CommPError, Commitment, MIN_PAYLOAD, PaddedPieceSize, PieceCid,
    PieceCidV2, ShortPayload,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{ByteSource, go_math_rand, hex, sha512_chain, splitmix64, unhex};

fn vectors() -> Value {
    let text = include_str!("data/commp_vectors.json");
    serde_json::from_str(text).expect("vector file parses")
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// In-memory input of a small vector, or None for streamed generators.
fn small_input(input: &Value) -> Option<Vec<u8>> {
    let len = u(input, "len") as usize;
    Some(match s(input, "gen") {
        "fill" => vec![u(input, "byte") as u8; len],
        "mod256" => (0..len).map(|i| i as u8).collect(),
        "segments" => {
            let mut out = Vec::new();
            for seg in input["segments"].as_array().unwrap() {
                match seg.get("ascii") {
                    Some(a) => out.extend_from_slice(a.as_str().unwrap().as_bytes()),
                    None => out.extend(std::iter::repeat_n(
                        u(seg, "byte") as u8,
                        u(seg, "len") as usize,
                    )),
                }
            }
            assert_eq!(out.len(), len);
            out
        }
        "sha512_chain" => sha512_chain(len),
        "splitmix64" if len <= 64 << 20 => {
            let mut out = vec![0u8; len];
            splitmix64(u(input, "seed")).fill(&mut out);
            out
        }
        _ => return None,
    })
}

fn hasher_for(len: u64) -> CommP {
    let h = CommP::new();
    if len < MIN_PAYLOAD {
        h.with_short_payload(ShortPayload::ZeroPad)
    } else {
        h
    }
}

/// Checks a finished hash against a piece vector: root, sizes and both CIDs both ways.
fn check_piece(v: &Value, hasher: CommP) {
    let id = s(v, "id");
    let info = hasher.finish().unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(info.commitment.to_hex(), s(v, "commp_hex"), "{id}: commP");
    assert_eq!(info.payload_size, u(v, "payload_len"), "{id}: payload");
    assert_eq!(
        info.padded_size.get(),
        u(v, "padded_size"),
        "{id}: padded size"
    );
    assert_eq!(
        info.padded_size.unpadded().get(),
        u(v, "unpadded_size"),
        "{id}"
    );
    assert_eq!(
        info.padded_size.tree_height(),
        u(v, "height") as u32,
        "{id}: height"
    );
    assert_eq!(info.cid_v1().to_string(), s(v, "piece_cid_v1"), "{id}: v1");
    let v2 = info.cid_v2();
    assert_eq!(v2.to_string(), s(v, "piece_cid_v2"), "{id}: v2");
    assert_eq!(v2.padding(), u(v, "padding"), "{id}: padding");
    let parsed = PieceCidV2::from_str(s(v, "piece_cid_v2")).unwrap();
    assert_eq!(parsed, v2, "{id}: v2 parse");
    assert_eq!(parsed.payload_size(), info.payload_size, "{id}");
    assert_eq!(
        parsed.to_v1().to_string(),
        s(v, "piece_cid_v1"),
        "{id}: v2 -> v1"
    );
    let from_v1 = PieceCidV2::from_v1(
        &Cid::from_str(s(v, "piece_cid_v1")).unwrap(),
        info.payload_size,
    );
    assert_eq!(from_v1.unwrap(), v2, "{id}: v1 -> v2");
}

#[test]
fn small_piece_vectors() {
    let all = vectors();
    let mut checked = 0;
    for v in all["piece_vectors"].as_array().unwrap() {
        let Some(input) = small_input(&v["input"]) else {
            continue;
        };
        if let Some(sha) = v.get("input_sha256") {
            assert_eq!(
                hex(&Sha256::digest(&input)),
                sha.as_str().unwrap(),
                "{} input",
                v["id"]
            );
        }
        for backend in [Backend::Portable, Backend::ShaNi] {
            if !backend.is_supported() {
                continue;
            }
            let mut h = hasher_for(input.len() as u64)
                .with_backend(backend)
                .unwrap();
            h.update(&input);
            check_piece(v, h);
        }
        checked += 1;
    }
    assert_eq!(
        checked, 153,
        "every fill/mod256/segments/sha512_chain/small splitmix64 vector"
    );
}

#[test]
fn short_payloads_are_refused_by_default() {
    for v in vectors()["piece_vectors"].as_array().unwrap() {
        let len = u(v, "payload_len");
        if len >= MIN_PAYLOAD {
            continue;
        }
        let mut h = CommP::new();
        h.update(&small_input(&v["input"]).unwrap());
        assert!(
            matches!(h.finish(), Err(CommPError::PayloadTooSmall { len: l, min: 65 }) if l == len)
        );
    }
}

/// Hashes one generator stream once and finishes a clone of the hasher at every vector's
/// length: each vector's input is a prefix of the same stream.
fn check_prefix_vectors(
    generator: &str,
    source: &mut dyn ByteSource,
    filter: impl Fn(&Value) -> bool,
) -> usize {
    let all = vectors();
    let mut vs: Vec<&Value> = all["piece_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| s(&v["input"], "gen") == generator && filter(v))
        .collect();
    vs.sort_by_key(|v| u(v, "payload_len"));
    let mut hasher = CommP::new().with_short_payload(ShortPayload::ZeroPad);
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    for v in &vs {
        let len = u(v, "payload_len");
        while pos < len {
            let n = ((len - pos) as usize).min(buf.len());
            source.fill(&mut buf[..n]);
            hasher.update(&buf[..n]);
            sha.update(&buf[..n]);
            pos += n as u64;
        }
        if let Some(expected) = v.get("input_sha256") {
            assert_eq!(
                hex(&sha.clone().finalize()),
                expected.as_str().unwrap(),
                "{} input",
                v["id"]
            );
        }
        check_piece(v, hasher.clone());
    }
    vs.len()
}

#[test]
fn go_math_rand_vectors() {
    let n = check_prefix_vectors("go_math_rand", &mut go_math_rand(1337), |v| {
        u(&v["input"], "seed") == 1337
    });
    assert_eq!(n, 118);
}

#[test]
fn large_splitmix64_vector() {
    let n = check_prefix_vectors("splitmix64", &mut splitmix64(0), |v| {
        u(&v["input"], "seed") == 0 && u(v, "payload_len") > 64 << 20
    });
    assert_eq!(n, 1);
}

#[test]
fn zero_commitments() {
    let all = vectors();
    let table: Vec<_> = commp::zero_commitments().collect();
    assert_eq!(table.len(), 57);
    for z in all["zero_commitments"].as_array().unwrap() {
        let size = PaddedPieceSize::new(u(z, "padded_size")).unwrap();
        let c = commp::zero_commitment(size);
        assert_eq!(c.to_hex(), s(z, "commp_hex"), "zero {size}");
        assert_eq!(c.to_cid_v1().to_string(), s(z, "piece_cid_v1"));
        assert_eq!(table[(size.tree_height() - 2) as usize], (size, c));
        // An all-zero payload filling the piece gives the same root (small sizes only).
        if size.get() <= 1 << 20 {
            let mut h = CommP::new();
            h.update(&vec![0u8; size.unpadded().get() as usize]);
            assert_eq!(h.finish().unwrap().commitment, c);
        }
    }
}

#[test]
fn commd_vectors() {
    let all = vectors();
    for v in all["commd_vectors"].as_array().unwrap() {
        let id = s(v, "id");
        let pieces: Vec<Piece> = v["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Piece {
                commitment: Commitment::from_cid_v1(&Cid::from_str(s(p, "piece_cid_v1")).unwrap())
                    .unwrap(),
                size: PaddedPieceSize::new(u(p, "padded_size")).unwrap(),
            })
            .collect();
        let sector = PaddedPieceSize::new(u(v, "sector_size")).unwrap();
        let expected = s(v, "expected_commd_hex");
        let filled = commd::unsealed_sector_commitment(sector, &pieces).unwrap();
        if v["fill_sector"].as_bool().unwrap() {
            assert_eq!(filled.to_hex(), expected, "{id}");
        } else {
            let (root, size) = commd::aggregate(&pieces).unwrap();
            assert_eq!(root.to_hex(), expected, "{id}");
            assert_eq!(size.get(), u(v, "expected_padded_size"), "{id}");
            if size == sector {
                assert_eq!(
                    filled, root,
                    "{id}: a covering tree of the sector size is commD"
                );
            }
        }
        assert_eq!(
            Commitment::from_bytes(unhex(expected).try_into().unwrap())
                .to_cid_v1()
                .to_string(),
            s(v, "expected_cid_v1")
        );
    }
}

#[test]
fn cid_conversions() {
    for v in vectors()["cid_conversions"].as_array().unwrap() {
        let id = s(v, "id");
        let v1 = Cid::from_str(s(v, "piece_cid_v1")).unwrap();
        let v2 = PieceCidV2::from_v1(&v1, u(v, "payload_len")).unwrap();
        assert_eq!(v2.to_string(), s(v, "piece_cid_v2"), "{id}");
        assert_eq!(v2.padding(), u(v, "v2_padding"), "{id}");
        assert_eq!(u64::from(v2.height()), u(v, "v2_height"), "{id}");
        let parsed: PieceCid = s(v, "piece_cid_v2").parse().unwrap();
        let PieceCid::V2(p) = parsed else {
            panic!("{id}: not v2")
        };
        assert_eq!(p, v2);
        assert_eq!(p.to_v1(), v1, "{id}");
        assert_eq!(p.payload_size(), u(v, "payload_len"));
        assert!(matches!(
            s(v, "piece_cid_v1").parse::<PieceCid>().unwrap(),
            PieceCid::V1(_)
        ));
    }
}
