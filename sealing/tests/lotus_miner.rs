//! The push model against a JSON-RPC server that behaves as lotus-miner does: it takes
//! `SectorAddPieceToAny` with an HTTP ReaderStream, GETs the URL, reads exactly the unpadded
//! piece size, and (here) checks that the bytes hash to the deal's piece CID. The first call
//! answers "too many sectors sealing", as a full pipeline does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use commp::{CommP, PaddedPieceSize};
use lotus_api::rpc::{RpcClient, RpcConfig};
use market_core::Cid;
use market_core::deal::DealProposal;
use market_core::types::{Address, ChainEpoch, DealId, DealLabel, SectorNumber, TokenAmount};
use piecestore::{ExpectedPiece, FsPieceStore, PieceStore};
use sealing::lotus_miner::{LotusMinerConfig, LotusMinerSealer};
use serde_json::{Value, json};
use storage_market::sealer::{
    Handoff, PieceHandle, PieceLocation, Sealer, SealerError, SealingDeal,
};

#[derive(Default)]
struct Miner {
    /// Calls of `SectorAddPieceToAny` seen, and what each read.
    calls: Vec<(u64, String, usize, Option<Cid>)>,
    /// Answer "too many sectors sealing" this many more times.
    full_for: usize,
    token_seen: Vec<String>,
}

type Shared = Arc<Mutex<Miner>>;

async fn rpc(State(m): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    m.lock().unwrap().token_seen.push(auth);
    let req: Value = serde_json::from_str(&body).unwrap();
    let id = req["id"].clone();
    let p = &req["params"];
    let ok =
        |r: Value| axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": r})).into_response();
    let err = |msg: &str| {
        axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": 1, "message": msg}}))
            .into_response()
    };
    match req["method"].as_str().unwrap() {
        "Filecoin.SectorsListInStates" => ok(Value::Null),
        "Filecoin.SectorsStatus" => ok(json!({
            "SectorID": p[0], "State": "PreCommit1", "Deals": [7], "LastErr": "", "Pieces": null
        })),
        "Filecoin.SectorAddPieceToAny" => {
            let size = p[0].as_u64().unwrap();
            assert_eq!(p[1]["Type"], "http");
            let url = p[1]["Info"].as_str().unwrap().to_string();
            let full = {
                let mut g = m.lock().unwrap();
                let full = g.full_for > 0;
                g.full_for = g.full_for.saturating_sub(1);
                full
            };
            if full {
                return err("adding piece: too many sectors sealing");
            }
            // lotus-miner reads the stream to the end; it must hold exactly `size` bytes.
            let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
            let padded = PaddedPieceSize::new(p[2]["DealProposal"]["PieceSize"].as_u64().unwrap()).unwrap();
            let mut h = CommP::new();
            h.update(&bytes);
            let got = h
                .finish_padded_to(padded)
                .ok()
                .map(|i| market_core::cid::widen(&i.cid_v1()));
            m.lock().unwrap().calls.push((size, url, bytes.len(), got));
            if bytes.len() as u64 != size {
                return err("short read");
            }
            ok(json!({"Sector": 9, "Offset": 2048}))
        }
        other => (StatusCode::OK, axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("method '{other}' not found")}}))).into_response(),
    }
}

async fn serve(router: axum::Router) -> url::Url {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    url
}

async fn piece(dir: &std::path::Path) -> (PieceHandle, DealProposal) {
    let store: Arc<dyn PieceStore> = Arc::new(FsPieceStore::open(dir).unwrap());
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let info = commp::commp(&payload).unwrap();
    let cid = market_core::cid::widen(&info.cid_v1());
    let meta = store
        .put(
            Box::pin(std::io::Cursor::new(payload)),
            Some(ExpectedPiece {
                piece_cid: cid,
                padded_size: info.padded_size,
            }),
        )
        .await
        .unwrap();
    let proposal = DealProposal {
        piece_cid: cid,
        piece_size: info.padded_size.get(),
        verified_deal: false,
        client: Address::new_id(2000),
        provider: Address::new_id(1000),
        label: DealLabel::default(),
        start_epoch: ChainEpoch::new(500),
        end_epoch: ChainEpoch::new(5000),
        storage_price_per_epoch: TokenAmount::ZERO,
        provider_collateral: TokenAmount::ZERO,
        client_collateral: TokenAmount::ZERO,
    };
    (PieceHandle::new(meta, store), proposal)
}

fn deal(proposal: DealProposal) -> SealingDeal {
    SealingDeal {
        miner: Address::new_id(1000),
        deal_id: DealId(7),
        publish_cid: Cid::default(),
        proposal,
        keep_unsealed: true,
    }
}

/// A push sealer talking to the fake miner, its piece URLs served on a port of its own.
async fn sealer(full_for: usize, retry_for: Duration) -> (LotusMinerSealer, Shared) {
    let miner: Shared = Arc::new(Mutex::new(Miner {
        full_for,
        ..Miner::default()
    }));
    let miner_url = serve(
        axum::Router::new()
            .route("/rpc/v0", axum::routing::post(rpc))
            .with_state(miner.clone()),
    )
    .await;
    let rpc = RpcClient::new(
        miner_url.join("rpc/v0").unwrap(),
        Some("admin-token".into()),
        "Filecoin",
        RpcConfig::default(),
    );
    // The node's HTTP server, where lotus-miner fetches pieces.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
    let sealer = LotusMinerSealer::new(
        rpc,
        base,
        LotusMinerConfig::default()
            .with_retry_interval(Duration::from_millis(50))
            .with_retry_for(retry_for),
    );
    let router = sealer.router();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    (sealer, miner)
}

#[tokio::test(flavor = "multi_thread")]
async fn pieces_reach_lotus_miner_as_an_http_reader_stream_after_a_full_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, proposal) = piece(dir.path()).await;
    let (sealer, miner) = sealer(2, Duration::from_secs(10)).await;
    let placed = sealer
        .add_piece(&deal(proposal.clone()), &handle)
        .await
        .unwrap();
    assert_eq!(
        placed,
        Handoff::Placed(PieceLocation {
            sector: SectorNumber(9),
            offset: 2048
        })
    );
    let (calls, tokens) = {
        let m = miner.lock().unwrap();
        (m.calls.clone(), m.token_seen.clone())
    };
    assert_eq!(calls.len(), 1, "two refusals, then one read");
    let (size, url, read, got) = &calls[0];
    let unpadded = PaddedPieceSize::new(proposal.piece_size)
        .unwrap()
        .unpadded()
        .get();
    assert_eq!(
        (*size, *read as u64),
        (unpadded, unpadded),
        "payload and zeros to the unpadded size"
    );
    assert_eq!(
        got.as_ref(),
        Some(&proposal.piece_cid),
        "the bytes hash to the deal's piece"
    );
    assert!(tokens.iter().all(|t| t == "Bearer admin-token"));
    // The ticket URL dies with the call.
    let gone = reqwest::get(url.as_str()).await.unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(
        sealer
            .sector_state(&Address::new_id(1000), SectorNumber(9))
            .await
            .as_deref(),
        Some("PreCommit1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_full_for_too_long_fails_the_deal_and_a_dead_miner_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, proposal) = piece(dir.path()).await;
    let (sealer, miner) = sealer(1000, Duration::from_millis(200)).await;
    match sealer.add_piece(&deal(proposal.clone()), &handle).await {
        Err(SealerError::Rejected(why)) => {
            assert!(why.contains("too many sectors sealing"), "{why}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(miner.lock().unwrap().calls.is_empty());

    let nobody = LotusMinerSealer::new(
        RpcClient::new(
            url::Url::parse("http://127.0.0.1:9/rpc/v0").unwrap(),
            None,
            "Filecoin",
            RpcConfig::default().with_retries(1, Duration::from_millis(1)),
        ),
        url::Url::parse("http://127.0.0.1:1/").unwrap(),
        LotusMinerConfig::default(),
    );
    match nobody.add_piece(&deal(proposal), &handle).await {
        Err(SealerError::Unavailable(_)) => {}
        other => panic!("an unreachable miner is retried later, got {other:?}"),
    }
}

/// lotus-miner's unseal path: `SectorsUnsealPiece`, then the unsealed sector file (fr32
/// padded) over `/remote/unsealed/<sector>` with `Range`.
#[derive(Default)]
struct Storage {
    sector_file: Vec<u8>,
    unseal_calls: Vec<Value>,
    ranges: Vec<String>,
}

async fn storage_rpc(State(m): State<Arc<Mutex<Storage>>>, body: String) -> Response {
    let req: Value = serde_json::from_str(&body).unwrap();
    let id = req["id"].clone();
    let result = match req["method"].as_str().unwrap() {
        "Filecoin.SectorsStatus" => json!({"SectorID": 9, "State": "Proving", "SealProof": 5,
            "Ticket": {"Value": "AQID", "Epoch": 10}}),
        "Filecoin.SectorsUnsealPiece" => {
            m.lock().unwrap().unseal_calls.push(req["params"].clone());
            Value::Null
        }
        _ => Value::Null,
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

async fn remote(
    State(m): State<Arc<Mutex<Storage>>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    assert_eq!(name, "s-t01000-9");
    assert_eq!(headers["authorization"], "Bearer admin-token");
    let range = headers["range"].to_str().unwrap().to_string();
    let (a, b) = range
        .strip_prefix("bytes=")
        .unwrap()
        .split_once('-')
        .unwrap();
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
    let mut g = m.lock().unwrap();
    g.ranges.push(range);
    let body = g.sector_file[a..=b].to_vec();
    (StatusCode::PARTIAL_CONTENT, body).into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn unsealing_asks_lotus_miner_and_unpads_the_sector_range() {
    use retrieval_market::Unsealer;
    // A 16 KiB sector holding a 4 KiB piece at padded offset 8192.
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 256) as u8).collect();
    let mut unpadded = payload.clone();
    unpadded.resize(4064, 0);
    let mut padded = vec![0u8; 4096];
    commp::fr32::pad(&unpadded, &mut padded).unwrap();
    let mut sector = vec![0u8; 16384];
    sector[8192..12288].copy_from_slice(&padded);
    let storage = Arc::new(Mutex::new(Storage {
        sector_file: sector,
        ..Storage::default()
    }));
    let url = serve(
        axum::Router::new()
            .route("/rpc/v0", axum::routing::post(storage_rpc))
            .route("/remote/unsealed/{name}", axum::routing::get(remote))
            .with_state(storage.clone()),
    )
    .await;
    let unsealer = sealing::unseal::LotusMinerUnsealer::new(
        RpcClient::new(
            url.join("rpc/v0").unwrap(),
            Some("admin-token".into()),
            "Filecoin",
            RpcConfig::default(),
        ),
        Some("admin-token".into()),
    );
    let deal = piecestore::DealRecord {
        miner: "f01000".into(),
        deal_id: 7,
        sector: 9,
        offset: 8192,
        length: 4096,
    };
    let piece = Cid::default();
    for (a, b) in [
        (0u64, 3000u64),
        (100, 2900),
        (127, 254),
        (2999, 3000),
        (0, 4064),
    ] {
        let mut r = unsealer
            .unsealed(&piece, &deal, piecestore::ByteRange::new(a, b))
            .await
            .unwrap()
            .expect("the miner has the sector");
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got)
            .await
            .unwrap();
        assert_eq!(got, unpadded[a as usize..b as usize], "range {a}..{b}");
    }
    let g = storage.lock().unwrap();
    // Unpadded offset 8192/128*127 and size 4064, the sector's proof type and ticket.
    assert_eq!(
        g.unseal_calls[0],
        json!([{"ID": {"Miner": 1000, "Number": 9}, "ProofType": 5}, 8128, 4064, "AQID", null])
    );
    // Only the 128-byte chunks covering the range were fetched.
    assert_eq!(g.ranges[1], "bytes=8192-11135");
    assert_eq!(
        g.ranges[2], "bytes=8320-8447",
        "127..254 is exactly the second chunk"
    );
}
