//! Every method of every API the provider binary serves (the admin `Market.*` methods,
//! droplet's `VENUS_MARKET.*` sealer methods on `/rpc/v0` and `/rpc/v1`, the embedded
//! devnet's Lotus API) called with every kind of token: none, read, write, sign, admin, and
//! tokens that must never pass (expired, another algorithm, another secret, `alg: none`,
//! garbage). Each call is allowed or denied exactly as the permission tables say. Then path
//! traversal against every endpoint that serves files.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use market_core::jwt;
use serde_json::{Value, json};

mod common;

/// The token kinds of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    None,
    Read,
    Write,
    Sign,
    Admin,
    Expired,
    Hs512,
    OtherSecret,
    AlgNone,
    Garbage,
}

const KINDS: [Kind; 10] = [
    Kind::None,
    Kind::Read,
    Kind::Write,
    Kind::Sign,
    Kind::Admin,
    Kind::Expired,
    Kind::Hs512,
    Kind::OtherSecret,
    Kind::AlgNone,
    Kind::Garbage,
];

impl Kind {
    /// What a valid token of this kind holds, as `lotus auth create-token --perm` lists it.
    fn perms(self) -> Option<Vec<String>> {
        let held: &[&str] = match self {
            Kind::Read => &[jwt::READ],
            Kind::Write => &[jwt::READ, jwt::WRITE],
            Kind::Sign => &[jwt::READ, jwt::WRITE, jwt::SIGN],
            Kind::Admin => jwt::ALL,
            _ => return None,
        };
        Some(held.iter().map(|p| p.to_string()).collect())
    }
}

/// A token signed by hand (HMAC over header.payload), not by the code under test.
fn hand_made(secret: &[u8], alg: &str, payload: &Value) -> String {
    let head = format!(
        "{}.{}",
        B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)),
        B64.encode(payload.to_string())
    );
    let sig = match alg {
        "HS512" => {
            let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(head.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "none" => Vec::new(),
        _ => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(head.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{head}.{}", B64.encode(sig))
}

fn token(secret: &[u8], kind: Kind) -> Option<String> {
    let all = json!({"Allow": jwt::ALL});
    Some(match kind {
        Kind::None => return None,
        Kind::Expired => hand_made(secret, "HS256", &json!({"Allow": jwt::ALL, "exp": 1})),
        Kind::Hs512 => hand_made(secret, "HS512", &all),
        Kind::OtherSecret => hand_made(b"not the node's secret, 32 bytes!", "HS256", &all),
        Kind::AlgNone => hand_made(secret, "none", &all),
        Kind::Garbage => "a.b.c".into(),
        k => hand_made(secret, "HS256", &json!({"Allow": k.perms().unwrap()})),
    })
}

fn secret(path: &Path) -> Vec<u8> {
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

/// What the server did with a call.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// HTTP 401: the token was refused.
    Unauthenticated,
    /// A JSON-RPC error saying the permission is missing.
    Forbidden,
    /// The method ran (its answer may still be an error about the params).
    Allowed,
}

async fn call(http: &reqwest::Client, url: &str, token: Option<&str>, method: &str) -> Outcome {
    let mut req = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Outcome::Unauthenticated;
    }
    assert!(
        resp.status().is_success(),
        "{method}: HTTP {}",
        resp.status()
    );
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default();
    if message.contains("missing permission") {
        Outcome::Forbidden
    } else {
        Outcome::Allowed
    }
}

/// What the table says: `anonymous_read` is the Lotus API's rule that a call without a
/// token may use read methods; the market's own API wants a token for everything.
fn expected(kind: Kind, need: &str, anonymous_read: bool) -> Outcome {
    match kind.perms() {
        Some(held) if jwt::allows(&held, need) => Outcome::Allowed,
        Some(_) => Outcome::Forbidden,
        None if kind == Kind::None && anonymous_read => {
            if need == jwt::READ {
                Outcome::Allowed
            } else {
                Outcome::Forbidden
            }
        }
        None => Outcome::Unauthenticated,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_against_every_token() {
    let provider = common::PullProvider::start();
    let (repo, ports, base) = (&provider.repo, &provider.ports, &provider.http);
    let market_secret = secret(&repo.join("jwt.secret"));
    let chain_secret = secret(&repo.join("devnet/jwt.secret"));
    let market_v0 = base.join("rpc/v0").unwrap().to_string();
    let market_v1 = base.join("rpc/v1").unwrap().to_string();
    let chain_v1 = format!("http://127.0.0.1:{}/rpc/v1", ports.chain);

    // The sealer and Lotus tables are pinned to droplet's and Lotus's own elsewhere
    // (`sealing/tests/golden.rs`, `devnet/tests/lotus_api.rs`); the market's is pinned here.
    assert_eq!(
        market_node::admin::METHODS,
        &[
            ("Market.Info", "read"),
            ("Market.GetAsk", "read"),
            ("Market.ListDeals", "read"),
            ("Market.ListPieces", "read"),
            ("Market.PieceIpni", "read"),
            ("Market.DealEvents", "read"),
            ("Market.CancelDeal", "admin"),
            ("Market.RetryDeal", "admin"),
            ("Market.ActorSetPeerInfo", "admin"),
            ("Market.ListTransfers", "read"),
            ("Market.ListSectors", "read"),
            ("Market.SetAsk", "admin"),
            ("Market.ImportData", "admin"),
        ]
    );
    // (endpoint, secret, method, permission needed, anonymous reads allowed)
    let mut table: Vec<(&str, &[u8], String, &str, bool)> = Vec::new();
    for (m, need) in market_node::admin::METHODS {
        table.push((&market_v0, &market_secret, m.to_string(), need, false));
    }
    for (m, need) in sealing::api::METHODS {
        let name = format!("{}.{m}", sealing::api::NAMESPACE);
        table.push((&market_v1, &market_secret, name.clone(), need, false));
        if sealing::api::permission(m, sealing::ApiVersion::V0).is_some() {
            table.push((&market_v0, &market_secret, name, need, false));
        }
    }
    for (m, need) in devnet::api::METHODS {
        table.push((&chain_v1, &chain_secret, m.to_string(), need, true));
    }
    assert!(table.len() >= 70, "{} methods", table.len());

    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (url, secret, method, need, anonymous_read) in &table {
        for kind in KINDS {
            let t = token(secret, kind);
            let got = call(&http, url, t.as_deref(), method).await;
            let want = expected(kind, need, *anonymous_read);
            calls += 1;
            if got != want {
                wrong.push(format!(
                    "{url} {method} ({need}) with {kind:?}: {got:?}, want {want:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // `/resource` (sealers download pieces and upload unsealed ones): read to GET, write to
    // PUT, a valid token either way.
    let piece = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq";
    let resource = |t: Option<String>| {
        let mut u = base.join("resource").unwrap();
        u.query_pairs_mut().append_pair("resource-id", piece);
        if let Some(t) = t {
            u.query_pairs_mut().append_pair("token", &t);
        }
        u
    };
    for kind in KINDS {
        let t = token(&market_secret, kind);
        let get = http.get(resource(t.clone())).send().await.unwrap().status();
        let put = http
            .put(resource(t))
            .body("x")
            .send()
            .await
            .unwrap()
            .status();
        let may_read = kind.perms().is_some();
        let may_write = kind.perms().is_some_and(|p| jwt::allows(&p, jwt::WRITE));
        assert_eq!(
            get == reqwest::StatusCode::UNAUTHORIZED,
            !may_read,
            "GET {kind:?}: {get}"
        );
        assert_eq!(
            put == reqwest::StatusCode::UNAUTHORIZED,
            !may_write,
            "PUT {kind:?}: {put}"
        );
    }

    // Path traversal on everything that serves files: never a 2xx, never a file's bytes.
    let admin = token(&market_secret, Kind::Admin).unwrap();
    let hostile = [
        "piece/..%2F..%2F..%2Fetc%2Fpasswd".to_string(),
        "piece/%2e%2e%2fconfig.toml".to_string(),
        "piece/..".to_string(),
        "ipfs/..%2F..%2Fetc%2Fpasswd".to_string(),
        "ipfs/bafkqaaa/..%2F..%2F..%2Fetc%2Fpasswd".to_string(),
        format!("resource?resource-id=..%2F..%2Fconfig.toml&token={admin}"),
        format!("resource?resource-id=%2Fetc%2Fpasswd&token={admin}"),
        format!("resource?resource-id=..%2Fjwt.secret&token={admin}"),
    ];
    let secret_text = std::fs::read_to_string(repo.join("jwt.secret")).unwrap();
    for path in hostile {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(!status.is_success(), "{path}: {status}");
        assert!(
            !body.contains("root:") && !body.contains("[http]"),
            "{path}: {body}"
        );
        assert!(
            !body.contains(secret_text.trim()),
            "{path} leaked the secret"
        );
    }
}
