//! UnixFS import against root CIDs Kubo printed, and export's verification.

use std::io::Write;

use market_core::Cid;
use piecestore::CarIndexer;
use piecestore::dagpb::{DAG_PB, RAW};
use piecestore::unixfs::{
    DagHash, IDENTITY, ImportProfile, UnixFsError, dag_root, export_car, import_file,
};

/// xorshift32 from 0x12345678, low byte of each state: the generator behind the Kubo vectors
/// below (so no two chunks repeat).
fn pattern(n: usize) -> Vec<u8> {
    let mut s: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8
        })
        .collect()
}

fn file_of(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn root(bytes: &[u8], profile: ImportProfile) -> String {
    dag_root(file_of(bytes).path(), profile)
        .unwrap()
        .to_string()
}

/// `ipfs add -Q --cid-version=1 --raw-leaves --chunker=size-N` (Kubo 0.41).
#[test]
fn roots_equal_kubo_at_the_default_chunk_size() {
    for (size, cid) in [
        (
            0,
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ),
        (
            1,
            "bafkreidjelut4obhmqwojoedy5llggv7qabwmsotmff7l7ftvxnehohkgi",
        ),
        (
            262_144,
            "bafkreifwidxy2bxbc5r2pmjmjp6gd6t35h3m2ee5rhfx2g4rjehr3mdbgm",
        ),
        (
            262_145,
            "bafybeibehmsugjvfzrrnrs3katfdixzvvyelnptwbacjw7typ4kht3dmoa",
        ),
        (
            1_048_576,
            "bafybeihekfxcwcsuwj3drmrk7qz75d4cxfjgf656kkx4ut244wxj4wukoi",
        ),
    ] {
        assert_eq!(
            root(&pattern(size), ImportProfile::KUBO),
            cid,
            "{size} bytes"
        );
    }
}

#[test]
fn roots_equal_kubo_across_link_boundaries() {
    let profile = ImportProfile {
        chunk_size: 1024,
        ..ImportProfile::KUBO
    };
    for (size, cid) in [
        (
            2048,
            "bafybeidtwpjv3zp6cf5o4gx4b3uudjyjleatu6xdad2sp3jmygfd6bfrli",
        ),
        (
            178_176,
            "bafybeibmyupfn2lrok54te5jjpiyktli7n3cfwhjuceukpmxlr6jpc643u",
        ),
        (
            179_200,
            "bafybeigdrouqor7w6g7ejjelcupocitq46usreuwmdo6ez2eap6grlvpom",
        ),
        (
            179_300,
            "bafybeic6gcjkrjcfgbvw35dcxeanv55gkv2l6hwvyvnfei6z7cbyx4a6ge",
        ),
        (
            31_003_648,
            "bafybeia34nvpqbib2whh4qdgdnccamhyvxw2etpshi4fjpp74ct3wwzfzu",
        ),
    ] {
        assert_eq!(root(&pattern(size), profile), cid, "{size} bytes");
    }
}

#[test]
fn lotus_profile_uses_blake2b_and_inlines_small_blocks() {
    let tiny = Cid::try_from(root(b"hello", ImportProfile::LOTUS).as_str()).unwrap();
    assert_eq!(tiny.hash().code(), IDENTITY);
    assert_eq!(tiny.hash().digest(), b"hello");
    // One chunk: a raw blake2b leaf, `bafk2bza…` as in the miner guide.
    let one = root(&pattern(200_000), ImportProfile::LOTUS);
    assert!(one.starts_with("bafk2bza"), "{one}");
    // Several chunks: a DAG-PB root, and a short last chunk inlined.
    let bytes = pattern((3 << 20) + 5);
    let f = file_of(&bytes);
    let mut car = Vec::new();
    let report = import_file(f.path(), ImportProfile::LOTUS, &mut car, &mut |_| {}).unwrap();
    assert!(report.root.to_string().starts_with("bafykbza"));
    assert_eq!(report.root.codec(), DAG_PB);
    assert_eq!(
        report.blocks, 5,
        "root + 3 full chunks + the inline 5-byte chunk, which go-car writes too"
    );
    let mut out = Vec::new();
    let car_file = file_of(&car);
    export_car(car_file.path(), None, &mut out).unwrap();
    assert_eq!(out, bytes);
}

fn import(bytes: &[u8], profile: ImportProfile) -> (Vec<u8>, piecestore::unixfs::ImportReport) {
    let f = file_of(bytes);
    let mut car = Vec::new();
    let mut last = 0;
    let report = import_file(f.path(), profile, &mut car, &mut |n| last = n).unwrap();
    assert_eq!(last, 2 * bytes.len() as u64, "progress covers both passes");
    assert_eq!(report.car_size, car.len() as u64);
    (car, report)
}

#[test]
fn car_is_deterministic_root_first_and_round_trips() {
    let profile = ImportProfile {
        chunk_size: 1024,
        ..ImportProfile::KUBO
    };
    let bytes = pattern(179_300);
    let (car, report) = import(&bytes, profile);
    assert_eq!(
        report.root.to_string(),
        "bafybeic6gcjkrjcfgbvw35dcxeanv55gkv2l6hwvyvnfei6z7cbyx4a6ge"
    );
    assert_eq!(import(&bytes, profile).0, car, "same bytes every time");
    let mut entries = Vec::new();
    let mut ix = CarIndexer::new();
    ix.update(&car, &mut |e| entries.push(e)).unwrap();
    assert_eq!(ix.finish().unwrap().len(), 1);
    assert_eq!(
        entries[0].cid.to_string(),
        report.root.to_string(),
        "root first"
    );
    // 176 leaves, two level-1 nodes and the root.
    assert_eq!(entries.len(), 176 + 2 + 1);
    assert_eq!(
        entries[1].cid.codec(),
        DAG_PB,
        "depth first: the first child next"
    );
    assert_eq!(entries[2].cid.codec(), RAW);

    let car_file = file_of(&car);
    let mut out = Vec::new();
    let exported = export_car(car_file.path(), None, &mut out).unwrap();
    assert_eq!(out, bytes);
    assert_eq!(exported.file_size, bytes.len() as u64);
}

#[test]
fn repeated_chunks_are_written_once() {
    let profile = ImportProfile {
        chunk_size: 1024,
        hash: DagHash::Blake2b256,
        ..ImportProfile::KUBO
    };
    let bytes = vec![7u8; 1024 * 10];
    let (car, report) = import(&bytes, profile);
    assert_eq!(report.blocks, 2, "one root and one distinct leaf");
    let mut out = Vec::new();
    export_car(file_of(&car).path(), None, &mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn export_refuses_corrupt_and_incomplete_cars() {
    let profile = ImportProfile {
        chunk_size: 1024,
        ..ImportProfile::KUBO
    };
    let bytes = pattern(4096);
    let (car, _) = import(&bytes, profile);

    // Flip a byte in the last leaf.
    let mut bad = car.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    let err = export_car(file_of(&bad).path(), None, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, UnixFsError::HashMismatch(_)), "{err}");

    // Drop the last section (a 1024-byte leaf plus its CID and length).
    let mut entries = Vec::new();
    let mut ix = CarIndexer::new();
    ix.update(&car, &mut |e| entries.push(e)).unwrap();
    let last = entries.last().unwrap();
    let section_start = (last.offset - 36 - 2) as usize;
    let short = &car[..section_start];
    let err = export_car(file_of(short).path(), None, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, UnixFsError::MissingBlock(_)), "{err}");

    // Cut mid-block.
    let err = export_car(file_of(&car[..car.len() - 3]).path(), None, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, UnixFsError::Car(_)), "{err}");
}

#[test]
fn bad_profiles_are_refused() {
    let f = file_of(b"x");
    for p in [
        ImportProfile {
            chunk_size: 0,
            ..ImportProfile::KUBO
        },
        ImportProfile {
            max_links: 1,
            ..ImportProfile::KUBO
        },
        ImportProfile {
            inline_limit: 1000,
            ..ImportProfile::KUBO
        },
    ] {
        assert!(matches!(
            dag_root(f.path(), p),
            Err(UnixFsError::Profile(_))
        ));
    }
}

/// CARs byte for byte as Lotus makes them for online deals: `tests/data/lotus_cars.json` was
/// printed by `tests/lotus-car` (go-unixfs's balanced layout with Lotus's import settings,
/// then go-car's SelectiveCar, which writes identity blocks too). Sizes cover the empty
/// file, inline single chunks, and the inline DAG-PB roots of files in (1 MiB, 2 MiB].
#[test]
fn lotus_profile_cars_equal_go_car_byte_for_byte() {
    use sha2::Digest;
    let text = include_str!("data/lotus_cars.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    assert_eq!(vectors.len(), 9);
    for v in vectors {
        let size = v["size"].as_u64().unwrap() as usize;
        let (car, report) = import(&pattern(size), ImportProfile::LOTUS);
        assert_eq!(
            report.root.to_string(),
            v["root"].as_str().unwrap(),
            "{size} B root"
        );
        assert_eq!(
            car.len() as u64,
            v["car_len"].as_u64().unwrap(),
            "{size} B CAR length"
        );
        let head = hex::encode(&car[..car.len().min(200)]);
        assert_eq!(head, v["car_head"].as_str().unwrap(), "{size} B CAR head");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&car)),
            v["car_sha256"].as_str().unwrap(),
            "{size} B CAR bytes"
        );
        // Root first, whether or not it is inline, and the CAR exports back to the file.
        let car_file = file_of(&car);
        let mut out = Vec::new();
        export_car(car_file.path(), None, &mut out).unwrap();
        assert_eq!(out, pattern(size), "{size} B export");
    }
}
