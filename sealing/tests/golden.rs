//! droplet's sealer API as recorded in `tests/data/droplet-sealer-api.json` (from
//! venus-shared v1.19.0, what droplet v2.15.1 serves): every method has droplet's
//! permission, and our types read droplet's examples and write them back with the same
//! field names, order and JSON kinds.

use sealing::ApiVersion;
use sealing::api::permission;
use sealing::json::{DealInfo, DealInfoIncludePath, DealInfoV2, GetDealSpec, PieceInfoJson};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("data/droplet-sealer-api.json")).unwrap()
}

/// Same keys in the same order, and the same JSON kind for each value, recursively.
fn same_shape(ours: &Value, theirs: &Value, at: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            assert_eq!(ka, kb, "keys at {at}");
            for (k, v) in a {
                same_shape(v, &b[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b) {
                same_shape(x, y, &format!("{at}[]"));
            }
        }
        (a, b) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "kind at {at}: {a} vs {b}"
        ),
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(example: &Value, at: &str) {
    let ours: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
    same_shape(&serde_json::to_value(&ours).unwrap(), example, at);
}

#[test]
fn permissions_are_droplets() {
    let f = fixture();
    for (version, v) in [("v0", ApiVersion::V0), ("v1", ApiVersion::V1)] {
        for (name, m) in f["methods"][version].as_object().unwrap() {
            assert_eq!(permission(name, v), m["perm"].as_str(), "{version} {name}");
        }
    }
    assert_eq!(permission("ReleaseDeals", ApiVersion::V0), None, "v1 only");
    assert_eq!(permission("AssignDeals", ApiVersion::V0), None, "v1 only");
}

#[test]
fn types_read_and_write_droplets_examples() {
    let f = fixture();
    let v1 = &f["methods"]["v1"];
    round_trip::<DealInfoIncludePath>(
        &v1["AssignUnPackedDeals"]["result"]["example"][0],
        "DealInfoIncludePath",
    );
    round_trip::<DealInfoIncludePath>(
        &v1["GetUnPackedDeals"]["result"]["example"][0],
        "GetUnPackedDeals",
    );
    round_trip::<DealInfoV2>(&v1["AssignDeals"]["result"]["example"][0], "DealInfoV2");
    round_trip::<DealInfo>(&v1["GetDeals"]["result"]["example"][0], "DealInfo");
    round_trip::<GetDealSpec>(
        &v1["AssignUnPackedDeals"]["params"][2]["example"],
        "GetDealSpec",
    );
    // PiecesGetPieceInfo is outside the fixture's subset; venus-shared's example:
    let piece = serde_json::json!({
        "PieceCID": {"/": "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4"},
        "Deals": [{"DealID": 5432, "SectorID": 9, "Offset": 1032, "Length": 1032}]
    });
    round_trip::<PieceInfoJson>(&piece, "PieceInfo");
}

#[test]
fn piece_status_names_are_droplets() {
    let f = fixture();
    for name in f["types"]["market.PieceStatus"]["values"]
        .as_array()
        .unwrap()
    {
        let s: storage_market::placement::PieceStatus = name.as_str().unwrap().parse().unwrap();
        assert_eq!(s.as_str(), name);
    }
    for (code, name) in f["types"]["storagemarket.StorageDealStatus"]["values"]
        .as_object()
        .unwrap()
    {
        let s = storage_market::state::StorageDealStatus::from_code(code.parse().unwrap()).unwrap();
        assert_eq!(s.name(), name);
    }
}
