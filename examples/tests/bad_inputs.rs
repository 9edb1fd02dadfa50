//! One table of bad inputs against the provider binary, across every outside interface: the
//! admin and sealer JSON-RPC API, the embedded devnet's Lotus API, `/piece`, `/ipfs`,
//! `/resource`, and the libp2p market and retrieval protocols. Each gets the clear error the
//! table names (status or code, and words of the message), the provider stays up, and the
//! answers are printed as a table (`--nocapture`).

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;
use market_core::cid::PieceCidExt;
use market_core::host::{Host, HostConfig};

mod common;

/// Generous bound on anything that should happen at once: only a hang trips it.
const HANG: Duration = Duration::from_secs(30);

/// Which token a call carries.
#[derive(Clone, Copy)]
enum Tok {
    Admin,
    Read,
    None,
    Raw(&'static str),
}

/// Where a case goes.
enum Via {
    /// A JSON-RPC body to the market's `/rpc/v0` or `/rpc/v1`.
    Market(&'static str, Tok, String),
    /// A JSON-RPC body to the devnet's `/rpc/v1`.
    Chain(Tok, String),
    /// `GET` of a path on the market's HTTP listener with an `Accept` header.
    Get(String, &'static str),
    /// Any method and body on a path of the market's HTTP listener.
    Http(&'static str, String, Tok, Vec<u8>),
    /// Raw bytes on a fresh libp2p stream of a protocol.
    P2p(&'static str, Vec<u8>),
    /// A raw HTTP request head (the body is never sent) to the market's listener: the
    /// answer must come from the head alone.
    Raw(String),
}

/// What a case must get.
#[derive(Debug, PartialEq)]
enum Want {
    /// A JSON-RPC error with this code (HTTP 200).
    Code(i64),
    /// This HTTP status.
    Status(u16),
    /// An answer on the stream (a protocol refusal).
    Answer,
    /// The stream closed without an answer (never a reset).
    Closed,
}

struct Case {
    what: &'static str,
    via: Via,
    want: Want,
    /// Words the message contains (case-insensitive); empty for none.
    says: &'static str,
}

fn rpc(method: &str, params: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

struct World {
    http: reqwest::Client,
    base: url::Url,
    chain: String,
    admin: String,
    read: String,
    chain_admin: String,
    p2p: Host,
    peer: storage_market::network::PeerAddr,
}

impl World {
    fn token(&self, t: Tok, chain: bool) -> Option<String> {
        match t {
            Tok::Admin if chain => Some(self.chain_admin.clone()),
            Tok::Admin => Some(self.admin.clone()),
            Tok::Read => Some(self.read.clone()),
            Tok::None => None,
            Tok::Raw(s) => Some(s.to_string()),
        }
    }

    async fn post(&self, url: String, token: Option<String>, body: String) -> (Want, String) {
        let mut req = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status != 200 {
            return (Want::Status(status), text);
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let e = if v.is_array() {
            &v[0]["error"]
        } else {
            &v["error"]
        };
        match e["code"].as_i64() {
            Some(code) => (Want::Code(code), e["message"].as_str().unwrap().to_string()),
            None => (Want::Status(200), text),
        }
    }

    async fn run(&self, via: &Via) -> (Want, String) {
        match via {
            Via::Market(v, t, body) => {
                let url = self.base.join(&format!("rpc/{v}")).unwrap().to_string();
                self.post(url, self.token(*t, false), body.clone()).await
            }
            Via::Chain(t, body) => {
                self.post(self.chain.clone(), self.token(*t, true), body.clone())
                    .await
            }
            Via::Get(path, accept) => {
                let resp = self
                    .http
                    .get(format!("{}{path}", self.base))
                    .header("Accept", *accept)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (Want::Status(status), resp.text().await.unwrap())
            }
            Via::Http(method, path, t, body) => {
                let mut url = self.base.join(path).unwrap();
                if let Some(t) = self.token(*t, false) {
                    url.query_pairs_mut().append_pair("token", &t);
                }
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let resp = self
                    .http
                    .request(m, url)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (Want::Status(status), resp.text().await.unwrap())
            }
            Via::Raw(head) => {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let addr = format!(
                    "{}:{}",
                    self.base.host_str().unwrap(),
                    self.base.port().unwrap()
                );
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let head = head.replace("ADMIN", &self.admin);
                s.write_all(head.as_bytes()).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                (Want::Status(status), text)
            }
            Via::P2p(protocol, bytes) => {
                let s = self
                    .p2p
                    .open(&self.peer, StreamProtocol::new(protocol))
                    .await
                    .unwrap();
                // Write and read at once: the provider refuses an oversized item from its
                // header and answers while the rest is still being sent.
                let (mut rx, mut tx) = s.split();
                let write = async {
                    let _ = tx.write_all(bytes).await;
                    let _ = tx.flush().await;
                };
                let mut answer = Vec::new();
                let read = rx.read_to_end(&mut answer);
                futures::pin_mut!(write, read);
                // The answer and the end of the stream are what count; a write the
                // provider stopped reading never finishes.
                let read = match futures::future::select(write, read).await {
                    futures::future::Either::Left((_, read)) => read.await,
                    futures::future::Either::Right((read, _)) => read,
                };
                read.expect("the stream ends cleanly, it is not reset");
                if answer.is_empty() {
                    (Want::Closed, String::new())
                } else {
                    (Want::Answer, String::from_utf8_lossy(&answer).into_owned())
                }
            }
        }
    }
}

fn cases(piece: &str, root: &str, miner: market_core::types::Address) -> Vec<Case> {
    use Via::*;
    use Want::*;
    let long = "q".repeat(10_000);
    let batch: Vec<_> = (0..101)
        .map(|i| serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "Market.Info"}))
        .collect();
    let mut nested = vec![0x81u8; 64];
    nested.push(0x01);
    let mut too_big = vec![0x5a, 0x00, 0x10, 0x00, 0x00];
    too_big.resize(too_big.len() + (1 << 20), 0);
    // Quote requests: one on terms the default `[quotes]` bid on, and the same request
    // signed by a key other than its client's.
    let (quote_ok, quote_forged) = {
        use market_broker::quote::{QuoteRequest, SignedQuoteRequest};
        use market_core::types::ChainEpoch;
        use market_core::wallet::{KeyType, PrivateKey};
        let client = PrivateKey::generate(KeyType::Secp256k1);
        let req = QuoteRequest::new(
            miner,
            client.address(),
            2048,
            180 * ChainEpoch::PER_DAY,
            false,
            ChainEpoch::new(0),
            ChainEpoch::new(1 << 40),
            1,
        );
        let sign = |k: &PrivateKey| {
            market_core::cbor::to_vec(&SignedQuoteRequest {
                signature: k.sign(&req.to_cbor()),
                request: req.clone(),
            })
        };
        (
            sign(&client),
            sign(&PrivateKey::generate(KeyType::Secp256k1)),
        )
    };
    let case = |what, via, want, says| Case {
        what,
        via,
        want,
        says,
    };
    vec![
        // --- the JSON-RPC envelope (admin API) ---
        case(
            "not JSON",
            Market("v0", Tok::Admin, "{".into()),
            Code(-32700),
            "parse error",
        ),
        case(
            "empty batch",
            Market("v0", Tok::Admin, "[]".into()),
            Code(-32600),
            "empty batch",
        ),
        case(
            "a number",
            Market("v0", Tok::Admin, "42".into()),
            Code(-32600),
            "json object",
        ),
        case(
            "no method",
            Market("v0", Tok::Admin, r#"{"id":1}"#.into()),
            Code(-32600),
            "method is missing",
        ),
        case(
            "empty method",
            Market("v0", Tok::Admin, r#"{"id":1,"method":""}"#.into()),
            Code(-32600),
            "method is empty",
        ),
        case(
            "method not a string",
            Market("v0", Tok::Admin, r#"{"id":1,"method":7}"#.into()),
            Code(-32600),
            "must be a string",
        ),
        case(
            "object id",
            Market(
                "v0",
                Tok::Admin,
                r#"{"id":{},"method":"Market.Info"}"#.into(),
            ),
            Code(-32600),
            "id must be",
        ),
        case(
            "jsonrpc 1.0",
            Market(
                "v0",
                Tok::Admin,
                r#"{"jsonrpc":"1.0","id":1,"method":"Market.Info"}"#.into(),
            ),
            Code(-32600),
            "2.0",
        ),
        case(
            "named params",
            Market(
                "v0",
                Tok::Admin,
                r#"{"id":1,"method":"Market.Info","params":{"a":1}}"#.into(),
            ),
            Code(-32602),
            "positional",
        ),
        case(
            "unknown method",
            Market("v0", Tok::Admin, rpc("Market.Nope", serde_json::json!([]))),
            Code(-32601),
            "not found",
        ),
        case(
            "10 KB method name",
            Market("v0", Tok::Admin, rpc(&long, serde_json::json!([]))),
            Code(-32601),
            "10000 bytes",
        ),
        case(
            "batch of 101",
            Market(
                "v0",
                Tok::Admin,
                serde_json::Value::Array(batch).to_string(),
            ),
            Code(-32600),
            "at most 100",
        ),
        case(
            "3 MB body declared",
            Raw(format!(
                "POST /rpc/v0 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer ADMIN\r\nContent-Length: {}\r\n\r\n",
                3 << 20
            )),
            Status(413),
            "",
        ),
        // --- tokens ---
        case(
            "no token",
            Market("v0", Tok::None, rpc("Market.Info", serde_json::json!([]))),
            Status(401),
            "no token",
        ),
        case(
            "garbage token",
            Market(
                "v0",
                Tok::Raw("a.b.c"),
                rpc("Market.Info", serde_json::json!([])),
            ),
            Status(401),
            "malformed token",
        ),
        case(
            "read token, admin method",
            Market("v0", Tok::Read, rpc("Market.SetAsk", serde_json::json!([]))),
            Code(1),
            "need 'admin'",
        ),
        // --- admin methods ---
        case(
            "GetAsk of a bad address",
            Market(
                "v0",
                Tok::Admin,
                rpc("Market.GetAsk", serde_json::json!(["f0bogus"])),
            ),
            Code(1),
            "f0bogus",
        ),
        case(
            "GetAsk of an unserved miner",
            Market(
                "v0",
                Tok::Admin,
                rpc("Market.GetAsk", serde_json::json!(["f04242"])),
            ),
            Code(1),
            "not served",
        ),
        case(
            "SetAsk of an unserved miner",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!(["f04242", "1", "0", 256, 2048]),
                ),
            ),
            Code(1),
            "not served",
        ),
        case(
            "SetAsk with a bad price",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!([null, "lots", "0", 256, 2048]),
                ),
            ),
            Code(1),
            "",
        ),
        case(
            "SetAsk of 2^62 bytes",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!([null, "1", "0", 256, 1u64 << 62]),
                ),
            ),
            Code(1),
            "sector size",
        ),
        case(
            "SetAsk min above max",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!([null, "1", "0", 2048, 256]),
                ),
            ),
            Code(1),
            "above max",
        ),
        case(
            "SetAsk of 1000 bytes",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!([null, "1", "0", 256, 1000]),
                ),
            ),
            Code(1),
            "power of two",
        ),
        case(
            "SetAsk size as text",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.SetAsk",
                    serde_json::json!([null, "1", "0", "256", 2048]),
                ),
            ),
            Code(1),
            "must be a number",
        ),
        case(
            "ImportData of a bad deal id",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.ImportData",
                    serde_json::json!(["not-a-deal", "/tmp/x"]),
                ),
            ),
            Code(1),
            "not-a-deal",
        ),
        case(
            "ImportData of an unknown deal",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.ImportData",
                    serde_json::json!(["8d1f5a4b-2f5c-4b7e-9a31-1c0f3e6d2b10", "/tmp/x"]),
                ),
            ),
            Code(1),
            "not found",
        ),
        case(
            "ImportData without a path",
            Market(
                "v0",
                Tok::Admin,
                rpc(
                    "Market.ImportData",
                    serde_json::json!(["8d1f5a4b-2f5c-4b7e-9a31-1c0f3e6d2b10"]),
                ),
            ),
            Code(1),
            "parameter 1",
        ),
        // --- sealer methods ---
        case(
            "sealer call without params",
            Market(
                "v1",
                Tok::Admin,
                rpc("VENUS_MARKET.GetDealInfo", serde_json::json!([])),
            ),
            Code(-32602),
            "param count",
        ),
        case(
            "sealer call with a bad miner",
            Market(
                "v1",
                Tok::Admin,
                rpc(
                    "VENUS_MARKET.ActorSectorSize",
                    serde_json::json!(["f0bogus"]),
                ),
            ),
            Code(-32602),
            "param 0",
        ),
        case(
            "sealer call for an unserved miner",
            Market(
                "v1",
                Tok::Admin,
                rpc(
                    "VENUS_MARKET.ActorSectorSize",
                    serde_json::json!(["f04242"]),
                ),
            ),
            Code(1),
            "not served",
        ),
        case(
            "channel method over HTTP",
            Market(
                "v1",
                Tok::Admin,
                rpc(
                    "VENUS_MARKET.ListenMarketEvent",
                    serde_json::json!([{"Miner": "f01000"}]),
                ),
            ),
            Code(-32602),
            "websocket",
        ),
        case(
            "v1-only method on v0",
            Market(
                "v0",
                Tok::Admin,
                rpc("VENUS_MARKET.ReleaseDeals", serde_json::json!([])),
            ),
            Code(-32601),
            "not found",
        ),
        case(
            "unknown sealer method",
            Market(
                "v1",
                Tok::Admin,
                rpc("VENUS_MARKET.Nope", serde_json::json!([])),
            ),
            Code(-32601),
            "not found",
        ),
        // --- the devnet's Lotus API ---
        case(
            "Lotus call without params",
            Chain(
                Tok::Admin,
                rpc("Filecoin.StateMinerInfo", serde_json::json!([])),
            ),
            Code(-32602),
            "wrong param count",
        ),
        case(
            "Lotus call with a bad address",
            Chain(
                Tok::Admin,
                rpc(
                    "Filecoin.StateMinerInfo",
                    serde_json::json!(["f0xyz", null]),
                ),
            ),
            Code(-32602),
            "unmarshaling params",
        ),
        case(
            "Lotus channel over HTTP",
            Chain(
                Tok::Admin,
                rpc("Filecoin.ChainNotify", serde_json::json!([])),
            ),
            Code(-32601),
            "not supported",
        ),
        case(
            "Lotus push of garbage",
            Chain(
                Tok::Admin,
                rpc("Filecoin.MpoolPush", serde_json::json!([{"Message": 5}])),
            ),
            Code(-32602),
            "",
        ),
        case(
            "AuthVerify of garbage",
            Chain(
                Tok::Admin,
                rpc("Filecoin.AuthVerify", serde_json::json!(["garbage"])),
            ),
            Code(1),
            "jwt verification failed",
        ),
        case(
            "Lotus write method without a token",
            Chain(Tok::None, rpc("Filecoin.MpoolPush", serde_json::json!([]))),
            Code(1),
            "missing permission",
        ),
        case(
            "Lotus unknown method",
            Chain(Tok::Admin, rpc("Filecoin.Nope", serde_json::json!([]))),
            Code(-32601),
            "not found",
        ),
        case(
            "Lotus bad bearer",
            Chain(
                Tok::Raw("a.b.c"),
                rpc("Filecoin.Version", serde_json::json!([])),
            ),
            Status(401),
            "invalid token",
        ),
        // --- /piece ---
        case(
            "piece: not a CID",
            Get("piece/not-a-cid".into(), "*/*"),
            Status(400),
            "invalid piece cid",
        ),
        case(
            "piece: a payload CID",
            Get(format!("piece/{root}"), "*/*"),
            Status(400),
            "not a piece cid",
        ),
        case(
            "piece: unknown",
            Get(format!("piece/{piece}"), "*/*"),
            Status(404),
            "not found",
        ),
        case(
            "piece: 10 KB CID",
            Get(format!("piece/baga{long}"), "*/*"),
            Status(400),
            "bytes)",
        ),
        case(
            "piece: traversal",
            Get("piece/..%2F..%2Fconfig.toml".into(), "*/*"),
            Status(400),
            "",
        ),
        // --- /ipfs ---
        case(
            "ipfs: not a CID",
            Get("ipfs/zzz".into(), "application/vnd.ipld.car"),
            Status(400),
            "invalid cid",
        ),
        case(
            "ipfs: bad dag-scope",
            Get(
                format!("ipfs/{root}?dag-scope=most"),
                "application/vnd.ipld.car",
            ),
            Status(400),
            "dag-scope",
        ),
        case(
            "ipfs: bad entity-bytes",
            Get(
                format!("ipfs/{root}?entity-bytes=x"),
                "application/vnd.ipld.car",
            ),
            Status(400),
            "entity-bytes",
        ),
        case(
            "ipfs: HTML asked",
            Get(format!("ipfs/{root}"), "text/html"),
            Status(406),
            "",
        ),
        case(
            "ipfs: unknown root",
            Get(format!("ipfs/{root}"), "application/vnd.ipld.car"),
            Status(404),
            "not found",
        ),
        case(
            "ipfs: 10 KB CID",
            Get(format!("ipfs/bafy{long}"), "application/vnd.ipld.car"),
            Status(400),
            "bytes)",
        ),
        // --- /resource ---
        case(
            "resource: no token",
            Http(
                "GET",
                format!("resource?resource-id={piece}"),
                Tok::None,
                vec![],
            ),
            Status(401),
            "",
        ),
        case(
            "resource: no id",
            Http("GET", "resource".into(), Tok::Admin, vec![]),
            Status(400),
            "",
        ),
        case(
            "resource: traversal",
            Http(
                "GET",
                "resource?resource-id=..%2F..%2Fconfig.toml".into(),
                Tok::Admin,
                vec![],
            ),
            Status(404),
            "not found",
        ),
        case(
            "resource: unknown piece",
            Http(
                "GET",
                format!("resource?resource-id={piece}"),
                Tok::Admin,
                vec![],
            ),
            Status(404),
            "",
        ),
        case(
            "resource: PUT with a read token",
            Http(
                "PUT",
                format!("resource?resource-id={piece}"),
                Tok::Read,
                b"x".to_vec(),
            ),
            Status(401),
            "",
        ),
        case(
            "resource: DELETE",
            Http(
                "DELETE",
                format!("resource?resource-id={piece}"),
                Tok::Admin,
                vec![],
            ),
            Status(405),
            "not supported",
        ),
        // --- libp2p ---
        case(
            "deal 1.2.1: not CBOR",
            P2p("/fil/storage/mk/1.2.1", vec![0xff, 0xff]),
            Answer,
            "malformed deal proposal",
        ),
        case(
            "deal 1.2.1: wrong shape",
            P2p("/fil/storage/mk/1.2.1", vec![0x01]),
            Answer,
            "malformed deal proposal",
        ),
        case(
            "deal 1.2.1: nesting bomb",
            P2p("/fil/storage/mk/1.2.1", nested.clone()),
            Answer,
            "nesting",
        ),
        case(
            "deal 1.2.1: 1 MiB item",
            P2p("/fil/storage/mk/1.2.1", too_big.clone()),
            Answer,
            "malformed deal proposal",
        ),
        case(
            "quote: wrong shape",
            P2p("/fil-market/quote/1.0.0", vec![0x01]),
            Answer,
            "malformed quote request",
        ),
        case(
            "quote: 1 MiB item",
            P2p("/fil-market/quote/1.0.0", too_big.clone()),
            Answer,
            "malformed quote request",
        ),
        case(
            "quote: signed by another key",
            P2p("/fil-market/quote/1.0.0", quote_forged),
            Answer,
            "bad signature",
        ),
        case(
            "quote: a valid request is quoted",
            P2p("/fil-market/quote/1.0.0", quote_ok),
            Answer,
            "PricePerEpoch",
        ),
        case(
            "status 1.2.0: wrong shape",
            P2p("/fil/storage/status/1.2.0", vec![0x01]),
            Answer,
            "malformed status request",
        ),
        case(
            "ask 1.1.0: wrong shape",
            P2p("/fil/storage/ask/1.1.0", vec![0x01]),
            Closed,
            "",
        ),
        case(
            "deal 1.1.1: wrong shape",
            P2p("/fil/storage/mk/1.1.1", vec![0x01]),
            Closed,
            "",
        ),
        case(
            "retrieval query: wrong shape",
            P2p("/fil/retrieval/qry/1.0.0", vec![0x01]),
            Answer,
            "malformed query",
        ),
        case(
            "retrieval query: nesting bomb",
            P2p("/fil/retrieval/qry/1.0.0", nested),
            Answer,
            "nesting",
        ),
        case(
            "retrieval query: 1 MiB item",
            P2p("/fil/retrieval/qry/1.0.0", too_big),
            Answer,
            "malformed query",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_clear_errors() {
    let provider = common::PullProvider::start();
    let (repo, ports) = (&provider.repo, &provider.ports);
    let (base, admin) = (provider.http.clone(), provider.admin.clone());
    let read = common::read_token(&repo.join("token.read"));
    let chain_admin = common::read_token(&repo.join("devnet/token"));
    let (peer, miner) = common::provider_peer(&base, &admin).await;
    let world = World {
        http: reqwest::Client::new(),
        chain: format!("http://127.0.0.1:{}/rpc/v1", ports.chain),
        base,
        admin,
        read,
        chain_admin,
        p2p: Host::dialer(
            libp2p::identity::Keypair::generate_ed25519(),
            HostConfig::default(),
        )
        .unwrap(),
        peer,
    };
    let piece = commp::commp(&[7u8; 1000]).unwrap().piece_cid().to_string();
    let root = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let cases = cases(&piece, root, miner);
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut wrong = Vec::new();
    println!("| input | answer | message |\n|---|---|---|");
    for c in &cases {
        let (got, text) = tokio::time::timeout(HANG, world.run(&c.via))
            .await
            .unwrap_or_else(|_| panic!("{}: no answer", c.what));
        let short: String = text.trim().chars().take(90).collect();
        println!("| {} | {got:?} | {} |", c.what, short.replace('\n', " "));
        let says = text.to_lowercase().contains(&c.says.to_lowercase());
        if got != c.want || !says {
            wrong.push(format!(
                "{}: got {got:?} {short:?}, want {:?} saying {:?}",
                c.what, c.want, c.says
            ));
        }
    }
    // Still up and answering after all of it.
    let (after, _) = world
        .run(&Via::Market(
            "v0",
            Tok::Admin,
            rpc("Market.Info", serde_json::json!([])),
        ))
        .await;
    assert_eq!(after, Want::Status(200));
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
