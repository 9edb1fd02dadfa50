//! `doctor`: checks a provider from outside, as a client, a retrieval checker and an indexer
//! see it, and prints a checklist with a fix for each failure.
//!
//! [`gather`] does the I/O (the chain, a libp2p dial, the ask and transports protocols, HTTP
//! `/piece` and `/ipfs`, the provider's IPNI ads, the indexer, the local disk); [`checklist`]
//! turns the gathered facts into checks and is pure, so each verdict and its fix can be
//! tested without a network.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId, identity};
use storage_market::message::AskRequest;
use storage_market::network::{MarketNetwork, NetworkLimits, PeerAddr};
use storage_market::types::Address;
use url::Url;

use market_core::chain::ChainNode;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// As it should be.
    Pass,
    /// Works, but something is off.
    Warn,
    /// Broken: clients or checkers fail here.
    Fail,
    /// Not checked (a fact it needs is missing; the reason says which).
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Self::Pass => "ok  ",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do about a failure or warning.
    pub fix: Option<String>,
}

/// What to check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DoctorConfig {
    /// The miner.
    pub miner: Address,
    /// An IPNI indexer to look a sampled multihash up at (`https://cid.contact`).
    pub indexer: Option<Url>,
    /// A piece to sample; by default one from the provider's newest IPNI ad.
    pub piece: Option<cid::Cid>,
    /// A payload root to fetch through `/ipfs`; by default a block from that ad's entries.
    pub root: Option<cid::Cid>,
    /// The provider's repo, for local checks (disk space), when run on its machine.
    pub repo: Option<PathBuf>,
    /// How long each remote step may take.
    pub timeout: Duration,
}

impl DoctorConfig {
    /// Checks of `miner` with defaults: no indexer, samples from IPNI, no local checks.
    pub fn new(miner: Address) -> Self {
        Self {
            miner,
            indexer: None,
            piece: None,
            root: None,
            repo: None,
            timeout: Duration::from_secs(20),
        }
    }
}

/// The miner as the chain describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerFacts {
    /// The worker's key address.
    pub worker_key: Address,
    /// `MinerInfo.PeerId`, if set.
    pub peer_id: Option<String>,
    /// `MinerInfo.Multiaddrs`, decoded (an undecodable one is an error).
    pub multiaddrs: Result<Vec<Multiaddr>, String>,
}

/// A piece and a block to fetch, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The piece.
    pub piece: Option<cid::Cid>,
    /// A CID to fetch through the gateway.
    pub block: Option<cid::Cid>,
    /// One advertised multihash, for the indexer lookup.
    pub multihash: Option<Vec<u8>>,
    /// Where they came from (`--piece`, `IPNI ad bafy…`).
    pub source: String,
}

/// The provider's IPNI chain as its HTTP publisher serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpniFacts {
    /// Who signed the head.
    pub head_signer: String,
    /// The newest ad's provider.
    pub ad_provider: String,
}

/// A step's result, or what went wrong, in words.
pub type Outcome<T> = Result<T, String>;

/// The ask as served: its price, and whether the worker's signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskFacts {
    /// attoFIL per GiB per epoch.
    pub price: String,
    /// The signature check.
    pub signed: Outcome<()>,
}

/// An advertised transport: its name and addresses.
pub type Transport = (String, Vec<String>);

/// A local directory's space: free and total bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The directory.
    pub path: PathBuf,
    /// Free and total bytes, or why unknown.
    pub space: Outcome<(u64, u64)>,
}

/// Everything [`checklist`] judges.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The miner.
    pub miner: Address,
    /// The chain: network name and head epoch.
    pub chain: Result<(String, i64), String>,
    /// Seconds our clock is ahead of the chain head's timestamp (`None`: no timestamp).
    pub chain_clock_skew: Option<i64>,
    /// The miner on chain.
    pub info: Result<MinerFacts, String>,
    /// Dialling the on-chain peer id at the on-chain addresses.
    pub dial: Option<Result<(), String>>,
    /// The ask: price and whether the worker signed it.
    pub ask: Option<Outcome<AskFacts>>,
    /// Transports the provider advertises: (protocol, addresses).
    pub transports: Option<Outcome<Vec<Transport>>>,
    /// Its HTTP base, from the transports.
    pub http: Option<Url>,
    /// Seconds our clock is ahead of the provider's (its HTTP `Date`).
    pub http_clock_skew: Option<i64>,
    /// What to fetch.
    pub sample: Option<Result<Sample, String>>,
    /// `/piece` of the sampled piece (a ranged GET).
    pub piece_fetch: Option<Result<u16, String>>,
    /// `/ipfs` of the sampled block.
    pub block_fetch: Option<Result<u16, String>>,
    /// The IPNI chain.
    pub ipni: Option<Result<IpniFacts, String>>,
    /// The indexer's answer for the sampled multihash: the providers it names.
    pub indexer: Option<Result<Vec<String>, String>>,
    /// Local directories: (path, free bytes, total bytes) or why unknown.
    pub disks: Vec<Disk>,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

fn skip(name: &'static str, why: &str) -> Check {
    check(name, Status::Skip, why, None)
}

/// Judges the facts: one check per line of the checklist, in order.
pub fn checklist(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let m = f.miner;
    match &f.chain {
        Ok((name, head)) => out.push(check(
            "chain",
            Status::Pass,
            format!("{name}, head at epoch {head}"),
            None,
        )),
        Err(e) => out.push(check(
            "chain",
            Status::Fail,
            e.clone(),
            Some("give a reachable Lotus or Venus API with --chain-api TOKEN:MULTIADDR".into()),
        )),
    }
    out.push(match f.chain_clock_skew {
        None => skip(
            "clock vs chain",
            "the chain node's head carries no timestamp",
        ),
        Some(s) if s.abs() <= 30 => check(
            "clock vs chain",
            Status::Pass,
            format!("{s:+} s from the head's timestamp"),
            None,
        ),
        Some(s) => check(
            "clock vs chain",
            Status::Warn,
            format!("{s:+} s from the head's timestamp (an epoch is 30 s)"),
            Some(
                "sync this machine's clock (chrony/NTP), or check that the chain node is in sync"
                    .into(),
            ),
        ),
    });
    let info = match &f.info {
        Ok(i) => {
            out.push(check(
                "miner on chain",
                Status::Pass,
                format!("{m}, worker {}", i.worker_key),
                None,
            ));
            Some(i)
        }
        Err(e) => {
            out.push(check(
                "miner on chain",
                Status::Fail,
                e.clone(),
                Some(format!(
                    "check the miner address {m} and that the chain node is synced"
                )),
            ));
            None
        }
    };
    let set_info = "run `provider actor set-peer-info` on the market node (or `lotus-miner actor set-peer-id <peer id>` and `set-addrs <multiaddrs>`)";
    match info.map(|i| &i.peer_id) {
        None => out.push(skip("peer id on chain", "the miner could not be read")),
        Some(None) => out.push(check(
            "peer id on chain",
            Status::Fail,
            "MinerInfo.PeerId is unset: clients, retrieval checkers and IPNI cannot find the market node",
            Some(set_info.into()),
        )),
        Some(Some(p)) => out.push(check("peer id on chain", Status::Pass, p.clone(), None)),
    }
    match info.map(|i| &i.multiaddrs) {
        None => out.push(skip("multiaddrs on chain", "the miner could not be read")),
        Some(Err(e)) => out.push(check(
            "multiaddrs on chain",
            Status::Fail,
            format!("unreadable: {e}"),
            Some(set_info.into()),
        )),
        Some(Ok(a)) if a.is_empty() => out.push(check(
            "multiaddrs on chain",
            Status::Fail,
            "MinerInfo.Multiaddrs is empty: clients cannot dial the market node",
            Some(set_info.into()),
        )),
        Some(Ok(a)) => out.push(check(
            "multiaddrs on chain",
            Status::Pass,
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            None,
        )),
    }
    out.push(match &f.dial {
        None => skip("dialable", "no peer id and multiaddrs on chain to dial"),
        Some(Ok(())) => check("dialable", Status::Pass, "the node at the on-chain addresses has the on-chain peer id", None),
        Some(Err(e)) => check(
            "dialable",
            Status::Fail,
            e.clone(),
            Some("make the libp2p listen address reachable from outside (firewall, NAT, [libp2p] listen) and publish it with `provider actor set-peer-info`; a peer id mismatch means another node's identity is on chain".into()),
        ),
    });
    out.push(match &f.ask {
        None => skip("ask signed by the worker", "the node was not reachable"),
        Some(Err(e)) => check(
            "ask signed by the worker",
            Status::Fail,
            e.clone(),
            Some(format!("set an ask for {m} (`provider set-ask`); the node must serve this miner")),
        ),
        Some(Ok(AskFacts {
            price,
            signed: Ok(()),
        })) => check("ask signed by the worker", Status::Pass, format!("price {price} attoFIL/GiB/epoch"), None),
        Some(Ok(AskFacts {
            signed: Err(e), ..
        })) => check(
            "ask signed by the worker",
            Status::Fail,
            e.clone(),
            Some("the node signs with a key that is not the miner's worker: check [[miners]] worker in config.toml against MinerInfo.Worker".into()),
        ),
    });
    match &f.transports {
        None => out.push(skip("transports", "the node was not reachable")),
        Some(Err(e)) => out.push(check(
            "transports",
            Status::Fail,
            e.clone(),
            Some("the node must answer /fil/retrieval/transports/1.0.0 (a fil-market, Boost or Curio node does)".into()),
        )),
        Some(Ok(t)) => {
            let text = t
                .iter()
                .map(|(p, a)| format!("{p} {}", a.join(",")))
                .collect::<Vec<_>>()
                .join("; ");
            if t.iter().any(|(p, _)| p == "http") {
                out.push(check("transports", Status::Pass, text, None));
            } else {
                out.push(check(
                    "transports",
                    Status::Fail,
                    format!("no HTTP transport advertised ({text}): lassie, Spark and Singularity retrieve over HTTP"),
                    Some("set [http] public_url to the URL clients reach the node at".into()),
                ));
            }
        }
    }
    out.push(match f.http_clock_skew {
        None => skip("clock vs provider", "no HTTP answer with a Date header"),
        Some(s) if s.abs() <= 30 => check("clock vs provider", Status::Pass, format!("{s:+} s from the provider's Date header"), None),
        Some(s) => check(
            "clock vs provider",
            Status::Warn,
            format!("{s:+} s from the provider's Date header"),
            Some("sync the provider's clock (chrony/NTP): deal start epochs and ask expiry are judged by it".into()),
        ),
    });
    match &f.sample {
        None => out.push(skip("sample", "no HTTP transport to sample from")),
        Some(Err(e)) => out.push(check(
            "sample",
            Status::Warn,
            e.clone(),
            Some("give --piece (and --root) of a stored deal to check retrieval".into()),
        )),
        Some(Ok(s)) => out.push(check(
            "sample",
            Status::Pass,
            format!(
                "piece {} / block {} (from {})",
                s.piece.map_or("-".into(), |c| c.to_string()),
                s.block.map_or("-".into(), |c| c.to_string()),
                s.source
            ),
            None,
        )),
    }
    let fetch_check =
        |name: &'static str, r: &Option<Result<u16, String>>, what: &str, fix: &str| match r {
            None => skip(name, &format!("no {what} to fetch")),
            Some(Ok(s)) if (200..300).contains(s) => {
                check(name, Status::Pass, format!("HTTP {s}"), None)
            }
            Some(Ok(s)) => check(name, Status::Fail, format!("HTTP {s}"), Some(fix.into())),
            Some(Err(e)) => check(name, Status::Fail, e.clone(), Some(fix.into())),
        };
    out.push(fetch_check(
        "/piece answers",
        &f.piece_fetch,
        "piece",
        "serve pieces over HTTP ([http] serve_pieces = true) and keep an unsealed copy, or connect an unsealer",
    ));
    out.push(fetch_check(
        "/ipfs answers",
        &f.block_fetch,
        "block",
        "serve the trustless gateway ([http] serve_cars = true); the piece's CAR must be indexed",
    ));
    let peer = info.and_then(|i| i.peer_id.clone());
    out.push(match (&f.ipni, &peer) {
        (None, _) => skip("IPNI provider is the peer id", "no HTTP transport to read ads from"),
        (Some(Err(e)), _) => check(
            "IPNI provider is the peer id",
            Status::Warn,
            e.clone(),
            Some("enable [ipni] so stored pieces are advertised; retrieval checkers need the ads".into()),
        ),
        (Some(Ok(_)), None) => skip("IPNI provider is the peer id", "no peer id on chain to compare"),
        (Some(Ok(i)), Some(p)) if &i.ad_provider == p && &i.head_signer == p => {
            check("IPNI provider is the peer id", Status::Pass, p.clone(), None)
        }
        (Some(Ok(i)), Some(p)) => check(
            "IPNI provider is the peer id",
            Status::Fail,
            format!("ads are by {} (head signed by {}), the chain says {p}", i.ad_provider, i.head_signer),
            Some("advertise under the miner's on-chain peer id: [ipni.miner_keys] with that identity's key, or set the chain's peer id to the node's".into()),
        ),
    });
    out.push(match (&f.indexer, &peer) {
        (None, _) => skip("found at the indexer", "no --indexer, or no advertised multihash to look up"),
        (Some(Err(e)), _) => check(
            "found at the indexer",
            Status::Fail,
            e.clone(),
            Some("check the indexer URL; the node's announce state is in `provider pieces list` (ipni column)".into()),
        ),
        (Some(Ok(_)), None) => skip("found at the indexer", "no peer id on chain to look for"),
        (Some(Ok(found)), Some(p)) if found.contains(p) => {
            check("found at the indexer", Status::Pass, format!("the indexer names {p}"), None)
        }
        (Some(Ok(found)), Some(_)) => check(
            "found at the indexer",
            Status::Fail,
            if found.is_empty() {
                "the indexer does not know the sampled multihash".to_string()
            } else {
                format!("the indexer names only {}", found.join(", "))
            },
            Some("add the indexer to [ipni] announce_urls, and make <http>/ipni/v1/ad/ reachable from it; a piece stays unindexed while the indexer cannot fetch the ads".into()),
        ),
    });
    if f.disks.is_empty() {
        out.push(skip(
            "disk space",
            "no --repo given (run on the provider's machine)",
        ));
    }
    for Disk { path, space } in &f.disks {
        out.push(match space {
            Err(e) => check("disk space", Status::Warn, format!("{}: {e}", path.display()), None),
            Ok((free, total)) => {
                let pct = if *total == 0 { 0.0 } else { *free as f64 * 100.0 / *total as f64 };
                let detail = format!("{}: {} GiB free of {} GiB ({pct:.0}%)", path.display(), free >> 30, total >> 30);
                if pct < 10.0 {
                    check("disk space", Status::Warn, detail, Some("free space or add a piece store: transfers wait, and deals fail, when staging fills up".into()))
                } else {
                    check("disk space", Status::Pass, detail, None)
                }
            }
        });
    }
    out
}

/// The checklist as text, one line per check and its fix under it.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(out, "[{}] {:<30} {}", c.status.mark(), c.name, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "       fix: {fix}");
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    let _ = writeln!(
        out,
        "{} checks: {failed} failed, {warned} warnings",
        checks.len()
    );
    out
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(t, f)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {t:?}")))
}

/// Gathers the facts about the miner through `chain`.
pub async fn gather(chain: &lotus_api::LotusChain, cfg: &DoctorConfig) -> Facts {
    let t = cfg.timeout;
    let m = cfg.miner;
    let chain_facts = timed(t, async {
        let name = chain
            .network_name()
            .await
            .map_err(|e| market_core::report(&e))?;
        let head = chain
            .chain_head()
            .await
            .map_err(|e| market_core::report(&e))?;
        Ok((name, head))
    })
    .await;
    let chain_clock_skew = chain_facts.as_ref().ok().and_then(|(_, head)| {
        let ts = head.blocks.first()?.get("Timestamp")?.as_i64()?;
        Some(now_secs() - ts)
    });
    let info = timed(t, async {
        let i = chain
            .state_miner_info(&m)
            .await
            .map_err(|e| market_core::report(&e))?;
        let worker_key = chain
            .account_key(&i.worker)
            .await
            .map_err(|e| market_core::report(&e))?;
        use base64::Engine as _;
        let multiaddrs = i
            .multiaddrs
            .iter()
            .map(|b| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("{b}: {e}"))?;
                Multiaddr::try_from(bytes).map_err(|e| format!("{b}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>();
        Ok(MinerFacts {
            worker_key,
            peer_id: i.peer_id.filter(|p| !p.is_empty()),
            multiaddrs,
        })
    })
    .await;
    let mut facts = Facts {
        miner: m,
        chain: chain_facts.map(|(n, h)| (n, h.height)),
        chain_clock_skew,
        info: info.clone(),
        dial: None,
        ask: None,
        transports: None,
        http: None,
        http_clock_skew: None,
        sample: None,
        piece_fetch: None,
        block_fetch: None,
        ipni: None,
        indexer: None,
        disks: local_disks(cfg.repo.as_ref()),
    };
    let peer = match &info {
        Ok(MinerFacts {
            peer_id: Some(p),
            multiaddrs: Ok(addrs),
            ..
        }) if !addrs.is_empty() => match PeerId::from_str(p) {
            Ok(peer_id) => Some(PeerAddr {
                peer_id,
                addrs: addrs.clone(),
            }),
            Err(e) => {
                facts.dial = Some(Err(format!("peer id {p}: {e}")));
                None
            }
        },
        _ => None,
    };
    let Some(peer) = peer else {
        return facts;
    };
    let network = match MarketNetwork::start(
        identity::Keypair::generate_ed25519(),
        NetworkLimits::default(),
    ) {
        Ok(n) => n,
        Err(e) => {
            facts.dial = Some(Err(format!("starting libp2p: {}", market_core::report(&e))));
            return facts;
        }
    };
    let host = network.host().clone();
    facts.dial = Some(
        timed(t, async {
            host.connect(&peer)
                .await
                .map_err(|e| market_core::report(&e))
        })
        .await,
    );
    if !matches!(facts.dial, Some(Ok(()))) {
        return facts;
    }
    let worker_key = info.as_ref().map(|i| i.worker_key).ok();
    facts.ask = Some(
        timed(t, async {
            let res = network
                .ask(&peer, AskRequest { miner: m })
                .await
                .map_err(|e| market_core::report(&e))?;
            let signed = res.ask.ok_or(format!("the node does not serve {m}"))?;
            let (Some(ask), Some(sig)) = (signed.ask, signed.signature) else {
                return Err("the ask or its signature is missing".to_string());
            };
            let verdict = match worker_key {
                Some(w) => storage_market::wallet::verify(&sig, &w, &ask.to_cbor())
                    .map_err(|e| format!("not signed by the worker {w}: {e}")),
                None => Err("the worker key is unknown".into()),
            };
            Ok(AskFacts {
                price: ask.price.atto().to_string(),
                signed: verdict,
            })
        })
        .await,
    );
    let retrieval = match retrieval_market::client::RetrievalClient::new(Some(host.clone())) {
        Ok(r) => r,
        Err(e) => {
            facts.transports = Some(Err(market_core::report(&e)));
            return facts;
        }
    };
    facts.transports = Some(
        timed(t, async {
            let r = retrieval
                .transports(&peer)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(r.protocols
                .iter()
                .map(|p| {
                    let addrs = p
                        .addresses
                        .iter()
                        .map(|a| {
                            Multiaddr::try_from(a.to_vec())
                                .map_or_else(|_| hex::encode(a), |m| m.to_string())
                        })
                        .collect();
                    (p.name.clone(), addrs)
                })
                .collect())
        })
        .await,
    );
    facts.http = timed(t, async {
        retrieval
            .http_url(&peer)
            .await
            .map_err(|e| market_core::report(&e))
    })
    .await
    .ok();
    host.stop();
    let Some(http) = facts.http.clone() else {
        return facts;
    };
    let client = match reqwest::Client::builder().timeout(t).build() {
        Ok(c) => c,
        Err(e) => {
            facts.sample = Some(Err(market_core::report(&e)));
            return facts;
        }
    };
    let ads = read_ipni(&client, &http).await;
    facts.ipni = Some(ads.as_ref().map(|(i, _)| i.clone()).map_err(Clone::clone));
    let from_ad = ads.ok().map(|(_, s)| s);
    let sample = match (cfg.piece, cfg.root, from_ad) {
        (None, None, Some(s)) => Ok(s),
        (None, None, None) => {
            Err("no --piece given and no IPNI ad to take a piece from".to_string())
        }
        (piece, root, ad) => Ok(Sample {
            piece: piece.or(ad.as_ref().and_then(|s| s.piece)),
            block: root.or(ad.as_ref().and_then(|s| s.block)),
            multihash: root
                .map(|r| r.hash().to_bytes())
                .or(ad.as_ref().and_then(|s| s.multihash.clone())),
            source: "--piece/--root".into(),
        }),
    };
    if let Ok(s) = &sample {
        if let Some(piece) = s.piece {
            let url = http
                .join(&format!("piece/{piece}"))
                .map_err(|e| e.to_string());
            facts.piece_fetch = Some(match url {
                Ok(u) => client
                    .get(u)
                    .header("Range", "bytes=0-127")
                    .send()
                    .await
                    .map(|r| {
                        facts.http_clock_skew = date_skew(r.headers());
                        r.status().as_u16()
                    })
                    .map_err(|e| market_core::report(&e)),
                Err(e) => Err(e),
            });
        }
        if let Some(block) = s.block {
            let url = http
                .join(&format!("ipfs/{block}?format=car&dag-scope=block"))
                .map_err(|e| e.to_string());
            facts.block_fetch = Some(match url {
                Ok(u) => client
                    .get(u)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| market_core::report(&e)),
                Err(e) => Err(e),
            });
        }
        if let (Some(indexer), Some(mh)) = (&cfg.indexer, &s.multihash) {
            facts.indexer = Some(find_at_indexer(&client, indexer, mh).await);
        }
    }
    facts.sample = Some(sample);
    facts
}

/// Seconds our clock is ahead of an HTTP `Date` header.
fn date_skew(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let d = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let t = httpdate::parse_http_date(d).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(now_secs() - secs)
}

/// The newest ad with entries from the provider's publisher: who signs, and a sample.
async fn read_ipni(client: &reqwest::Client, http: &Url) -> Result<(IpniFacts, Sample), String> {
    let get = |path: String| async move {
        let url = http.join(&path).map_err(|e| e.to_string())?;
        let r = client
            .get(url)
            .send()
            .await
            .map_err(|e| market_core::report(&e))?;
        if !r.status().is_success() {
            return Err(format!("{path}: HTTP {}", r.status()));
        }
        let body = r.bytes().await.map_err(|e| market_core::report(&e))?;
        if body.len() > market_ipni::schema::MAX_BLOCK_LEN {
            return Err(format!(
                "{path}: over {} bytes",
                market_ipni::schema::MAX_BLOCK_LEN
            ));
        }
        Ok(body)
    };
    let head = get("ipni/v1/ad/head".into()).await?;
    let (head, signer) = market_ipni::sign::SignedHead::decode_verified(&head)
        .map_err(|e| format!("ad head: {}", market_core::report(&e)))?;
    let mut next = Some(head.head);
    let mut provider = None;
    // The newest ad that still advertises something; a few removals may come first.
    for _ in 0..64 {
        let Some(cid) = next else { break };
        let body = get(format!("ipni/v1/ad/{cid}")).await?;
        let ad = market_ipni::schema::decode_ad(&body, Some(&cid))
            .map_err(|e| format!("ad {cid}: {}", market_core::report(&e)))?;
        provider.get_or_insert_with(|| ad.provider.clone());
        if !ad.is_rm && ad.entries != market_ipni::schema::no_entries() {
            let piece = market_ipni::context::parse_piece_context_id(&ad.context_id)
                .ok()
                .map(|(_, c)| c);
            let chunk = get(format!("ipni/v1/ad/{}", ad.entries)).await?;
            let chunk = market_ipni::schema::decode_chunk(&chunk, Some(&ad.entries))
                .map_err(|e| format!("entries {}: {}", ad.entries, market_core::report(&e)))?;
            // A payload block, not the piece's own multihashes (commP v1 and v2) the ad
            // also carries.
            let block = chunk
                .entries
                .iter()
                .filter_map(|b| multihash::Multihash::<64>::from_bytes(b).ok())
                .find(|h| !matches!(h.code(), 0x1011 | 0x1012));
            let mh = block.map(|h| h.to_bytes());
            let block = block.map(|h| cid::Cid::new_v1(0x55, h));
            return Ok((
                IpniFacts {
                    head_signer: signer.to_string(),
                    ad_provider: ad.provider,
                },
                Sample {
                    piece,
                    block,
                    multihash: mh,
                    source: format!("IPNI ad {cid}"),
                },
            ));
        }
        next = ad.previous_id;
    }
    Err(match provider {
        Some(_) => "no ad with entries among the newest 64".into(),
        None => "the ad chain is empty".into(),
    })
}

/// The providers an indexer names for `mh`.
async fn find_at_indexer(
    client: &reqwest::Client,
    indexer: &Url,
    mh: &[u8],
) -> Result<Vec<String>, String> {
    let records = market_ipni::find::find(client, indexer, mh)
        .await
        .map_err(|e| market_core::report(&e))?;
    Ok(records.into_iter().map(|r| r.provider).collect())
}

/// Free and total bytes of the repo's piece and staging directories.
fn local_disks(repo: Option<&PathBuf>) -> Vec<Disk> {
    let Some(repo) = repo else {
        return Vec::new();
    };
    let cfg = match crate::config::NodeConfig::load(&repo.join("config.toml")) {
        Ok(c) => c,
        Err(e) => {
            return vec![Disk {
                path: repo.clone(),
                space: Err(market_core::report(&e)),
            }];
        }
    };
    let under = |p: &std::path::Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            repo.join(p)
        }
    };
    let mut dirs: Vec<PathBuf> = if cfg.storage.stores.is_empty() {
        vec![under(&cfg.storage.pieces)]
    } else {
        cfg.storage
            .stores
            .iter()
            .filter_map(|s| match s {
                crate::config::PieceStoreSection::Fs(f) if !f.read_only => Some(under(&f.path)),
                _ => None,
            })
            .collect()
    };
    dirs.push(under(&cfg.storage.staging));
    dirs.dedup();
    dirs.into_iter()
        .map(|d| {
            let r = rustix::fs::statvfs(&d)
                .map(|s| (s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize))
                .map_err(|e| e.to_string());
            Disk { path: d, space: r }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts {
        let peer = PeerId::random().to_string();
        Facts {
            miner: Address::new_id(1000),
            chain: Ok(("calibrationnet".into(), 100)),
            chain_clock_skew: Some(3),
            info: Ok(MinerFacts {
                worker_key: Address::new_id(1001),
                peer_id: Some(peer.clone()),
                multiaddrs: Ok(vec!["/ip4/1.2.3.4/tcp/24001".parse().unwrap()]),
            }),
            dial: Some(Ok(())),
            ask: Some(Ok(AskFacts {
                price: "1000".into(),
                signed: Ok(()),
            })),
            transports: Some(Ok(vec![(
                "http".into(),
                vec!["/dns/sp/tcp/443/https".into()],
            )])),
            http: Some(Url::parse("https://sp/").unwrap()),
            http_clock_skew: Some(-1),
            sample: Some(Ok(Sample {
                piece: None,
                block: None,
                multihash: None,
                source: "test".into(),
            })),
            piece_fetch: Some(Ok(206)),
            block_fetch: Some(Ok(200)),
            ipni: Some(Ok(IpniFacts {
                head_signer: peer.clone(),
                ad_provider: peer.clone(),
            })),
            indexer: Some(Ok(vec![peer])),
            disks: vec![Disk {
                path: PathBuf::from("/srv"),
                space: Ok((500 << 30, 1000 << 30)),
            }],
        }
    }

    fn status(c: &[Check], name: &str) -> Status {
        c.iter().find(|c| c.name == name).unwrap().status
    }

    #[test]
    fn a_healthy_provider_passes_every_check() {
        let c = checklist(&healthy());
        assert!(c.iter().all(|c| c.status == Status::Pass), "{}", render(&c));
    }

    #[test]
    fn each_failure_comes_with_a_fix() {
        let mut f = healthy();
        if let Ok(i) = &mut f.info {
            i.peer_id = None;
        }
        f.transports = Some(Ok(vec![("libp2p".into(), vec![])]));
        f.piece_fetch = Some(Ok(404));
        f.indexer = Some(Ok(vec![]));
        f.chain_clock_skew = Some(95);
        f.disks = vec![Disk {
            path: PathBuf::from("/srv"),
            space: Ok((1 << 30, 100 << 30)),
        }];
        let c = checklist(&f);
        assert_eq!(status(&c, "peer id on chain"), Status::Fail);
        assert_eq!(status(&c, "transports"), Status::Fail);
        assert_eq!(status(&c, "/piece answers"), Status::Fail);
        assert_eq!(status(&c, "clock vs chain"), Status::Warn);
        assert_eq!(status(&c, "disk space"), Status::Warn);
        // Without a peer id on chain there is nothing to compare the ads or the indexer with.
        assert_eq!(status(&c, "IPNI provider is the peer id"), Status::Skip);
        for c in c
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        {
            assert!(c.fix.is_some(), "{} has no fix", c.name);
        }
        assert!(render(&c).contains("set-peer-info"));
    }

    #[test]
    fn ads_under_another_identity_fail() {
        let mut f = healthy();
        f.ipni = Some(Ok(IpniFacts {
            head_signer: "12D3other".into(),
            ad_provider: "12D3other".into(),
        }));
        let c = checklist(&f);
        assert_eq!(status(&c, "IPNI provider is the peer id"), Status::Fail);
    }
}
