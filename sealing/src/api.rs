//! The market's API for sealers that pull deals: droplet's `VENUS_MARKET` sealer methods,
//! with droplet's JSON shapes, method names and permissions, so damocles and venus-sealer
//! work against this market unchanged.
//!
//! | method | perm | params | result |
//! |---|---|---|---|
//! | `AssignUnPackedDeals` | write | `SectorID`, sector size, `GetDealSpec` or null | `[DealInfoIncludePath]` or null |
//! | `AssignDeals` (v1) | write | same | `[DealInfoV2]` or null |
//! | `GetUnPackedDeals` | read | miner, `GetDealSpec` or null | `[DealInfoIncludePath]` or null |
//! | `MarkDealsAsPacking` | write | miner, `[dealID]` | null |
//! | `UpdateDealOnPacking` | write | miner, dealID, sector, padded offset | null |
//! | `UpdateDealStatus` | write | miner, dealID, piece status (, deal status on v1) | null |
//! | `ReleaseDeals` (v1) | write | miner, `[dealID]` | null |
//! | `ReleaseDirectDeals` (v1) | write | miner, `[allocationID]` | null (no DDO deals here) |
//! | `GetDeals` | read | miner, page index, page size | `[DealInfo]` |
//! | `GetDealInfo` | read | miner, dealID | `DealInfo` (this market's addition: a lookup by id) |
//! | `PiecesGetPieceInfo` | read | piece CID | `{PieceCID, Deals}` |
//! | `ActorSectorSize` | read | miner | bytes |
//! | `ActorList` / `ActorExist` | read | – / miner | miners / bool |
//! | `Version` | read | – | `{Version, APIVersion}` |
//! | `ListenMarketEvent` | read | `{Miner}` | a channel of market events (WebSocket only; see [`events`](crate::events)) |
//! | `ResponseMarketEvent` | read | `{Id, Payload, Error}` | null |
//!
//! Differences from droplet, on purpose: deal state is driven by the chain, so
//! `UpdateDealStatus` sets the piece status and accepts only the deal's current state (or
//! `AwaitingPreCommit`, what v0 sends); `GetUnPackedDeals` returns up to `MaxPiece` deals
//! (droplet returns one fewer); deals are packed most urgent first (see [`assign`]); tokens
//! are the node's JWTs, without droplet's per-user miner ownership.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lotus_api::json::{AddressJson, CidJson, DealProposalJson};
use market_core::Cid;
use market_core::chain::{ChainError, ChainNode};
use market_core::jsonrpc::{self, Fault};
use market_core::jwt;
use market_core::types::{Address, DealId, SectorNumber};
use piecestore::{PieceIndex, PieceStore, PieceStoreError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use storage_market::placement::{PieceStatus, PlacementChange};
use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStore, ProviderDeal, StoreError};

use crate::assign::{self, Candidate, Slot};
use crate::json::*;

/// The JSON-RPC namespace of droplet's market API.
pub const NAMESPACE: &str = "VENUS_MARKET";

/// The API generation: `/rpc/v0` wraps v1 with older signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiVersion {
    /// `/rpc/v0`.
    V0,
    /// `/rpc/v1`.
    V1,
}

/// The permission a method needs, `None` if the version has no such method.
pub fn permission(method: &str, version: ApiVersion) -> Option<&'static str> {
    let v1_only = matches!(
        method,
        "ReleaseDeals" | "AssignDeals" | "ReleaseDirectDeals"
    );
    if v1_only && version == ApiVersion::V0 {
        return None;
    }
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// Every sealer method (without the `VENUS_MARKET.` namespace) and the permission it needs;
/// `ReleaseDeals`, `AssignDeals` and `ReleaseDirectDeals` are on `/rpc/v1` only.
pub const METHODS: &[(&str, &str)] = &[
    ("AssignUnPackedDeals", jwt::WRITE),
    ("AssignDeals", jwt::WRITE),
    ("MarkDealsAsPacking", jwt::WRITE),
    ("UpdateDealOnPacking", jwt::WRITE),
    ("UpdateDealStatus", jwt::WRITE),
    ("ReleaseDeals", jwt::WRITE),
    ("ReleaseDirectDeals", jwt::WRITE),
    ("GetUnPackedDeals", jwt::READ),
    ("GetDeals", jwt::READ),
    ("GetDealInfo", jwt::READ),
    ("PiecesGetPieceInfo", jwt::READ),
    ("ActorSectorSize", jwt::READ),
    ("ActorList", jwt::READ),
    ("ActorExist", jwt::READ),
    ("Version", jwt::READ),
    ("ListenMarketEvent", jwt::READ),
    ("ResponseMarketEvent", jwt::READ),
];

/// Why a sealer API call failed; the text is what the sealer sees.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The parameters do not match the method.
    #[error("{0}")]
    Params(String),
    /// The miner is not served by this market.
    #[error("miner {0} is not served by this market")]
    UnknownMiner(Address),
    /// No deal with this id for the miner.
    #[error("deal {deal} of miner {miner} not found")]
    UnknownDeal {
        /// The miner.
        miner: Address,
        /// The deal id.
        deal: DealId,
    },
    /// The deal is not in a state that allows the call.
    #[error("{0}")]
    State(String),
    /// The deal store failed (a conflict means another sealer changed the deal first).
    #[error("deal store: {0}")]
    Store(#[from] StoreError),
    /// The chain node failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The piece index failed.
    #[error("piece index: {0}")]
    Index(#[from] PieceStoreError),
}

impl ApiError {
    /// The JSON-RPC error code: −32602 for bad params (go-jsonrpc), 1 for the rest.
    pub fn code(&self) -> i64 {
        match self {
            ApiError::Params(_) => jsonrpc::INVALID_PARAMS,
            _ => jsonrpc::SERVER_ERROR,
        }
    }
}

/// What the sealer API works on: the provider's stores, the chain and the miners served.
#[derive(Clone)]
pub struct SealerApi {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn DealStore>,
    chain: Arc<dyn ChainNode>,
    pieces: Arc<dyn PieceStore>,
    index: Arc<dyn PieceIndex>,
    miners: Vec<Address>,
    /// One assignment at a time per process; the store's compare-and-set guards the rest.
    assigning: tokio::sync::Mutex<()>,
    events: crate::events::MarketEvents,
}

/// Positional JSON-RPC params.
struct Params<'a>(&'a [Value]);

impl Params<'_> {
    fn count(&self, method: &str, n: usize) -> Result<(), ApiError> {
        if self.0.len() == n {
            Ok(())
        } else {
            Err(ApiError::Params(format!(
                "wrong param count (method '{NAMESPACE}.{method}'): {} != {n}",
                self.0.len()
            )))
        }
    }

    fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, ApiError> {
        let v = self.0.get(i).cloned().unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| ApiError::Params(format!("param {i}: {e}")))
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `null` for an empty list, as Go writes a nil slice.
fn list_or_null<T: serde::Serialize>(v: Vec<T>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        to_json(&v)
    }
}

impl SealerApi {
    /// The API over a provider's `store`, `pieces` and `index`, for `miners`.
    pub fn new(
        store: Arc<dyn DealStore>,
        chain: Arc<dyn ChainNode>,
        pieces: Arc<dyn PieceStore>,
        index: Arc<dyn PieceIndex>,
        miners: Vec<Address>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                chain,
                pieces,
                index,
                miners,
                assigning: tokio::sync::Mutex::new(()),
                events: crate::events::MarketEvents::default(),
            }),
        }
    }

    /// The market events hub: listening sealers and requests waiting for their answers.
    pub fn events(&self) -> &crate::events::MarketEvents {
        &self.inner.events
    }

    /// The piece store `/resource` serves from.
    pub fn pieces(&self) -> &Arc<dyn PieceStore> {
        &self.inner.pieces
    }

    fn served(&self, miner: Address) -> Result<Address, ApiError> {
        if self.inner.miners.contains(&miner) {
            Ok(miner)
        } else {
            Err(ApiError::UnknownMiner(miner))
        }
    }

    /// Runs `method` (without the namespace) with positional `params`. The caller checked
    /// the permission ([`permission`]).
    pub async fn call(
        &self,
        method: &str,
        params: &[Value],
        version: ApiVersion,
    ) -> Result<Value, ApiError> {
        let p = Params(params);
        match method {
            "AssignUnPackedDeals" | "AssignDeals" => {
                p.count(method, 3)?;
                let sid: SectorId = p.get(0)?;
                let size: u64 = p.get(1)?;
                let spec: Option<GetDealSpec> = p.get(2)?;
                let deals = self.assign(sid, size, spec.as_ref()).await?;
                Ok(if method == "AssignDeals" {
                    list_or_null(deals.iter().map(DealInfoV2::from).collect())
                } else {
                    list_or_null(deals)
                })
            }
            "GetUnPackedDeals" => {
                p.count(method, 2)?;
                let AddressJson(miner) = p.get(0)?;
                let spec: Option<GetDealSpec> = p.get(1)?;
                Ok(list_or_null(self.unpacked(miner, spec.as_ref()).await?))
            }
            "MarkDealsAsPacking" => {
                p.count(method, 2)?;
                let AddressJson(miner) = p.get(0)?;
                let ids: Vec<u64> = p.get::<Option<_>>(1)?.unwrap_or_default();
                self.set_status(miner, &ids, PieceStatus::Assigned, None)
                    .await?;
                Ok(Value::Null)
            }
            "UpdateDealOnPacking" => {
                p.count(method, 4)?;
                let AddressJson(miner) = p.get(0)?;
                let id: u64 = p.get(1)?;
                let sector: u64 = p.get(2)?;
                let offset: u64 = p.get(3)?;
                self.set_status(
                    miner,
                    &[id],
                    PieceStatus::Assigned,
                    Some((SectorNumber(sector), offset)),
                )
                .await?;
                Ok(Value::Null)
            }
            "UpdateDealStatus" => {
                let n = if version == ApiVersion::V0 { 3 } else { 4 };
                p.count(method, n)?;
                let AddressJson(miner) = p.get(0)?;
                let id: u64 = p.get(1)?;
                let status: String = p.get(2)?;
                let status =
                    PieceStatus::from_str(&status).map_err(|e| ApiError::Params(e.to_string()))?;
                let state = if n == 4 {
                    p.get::<u64>(3)?
                } else {
                    StorageDealStatus::AwaitingPreCommit.code()
                };
                self.update_status(miner, DealId(id), status, state).await?;
                Ok(Value::Null)
            }
            "ReleaseDeals" => {
                p.count(method, 2)?;
                let AddressJson(miner) = p.get(0)?;
                let ids: Vec<u64> = p.get::<Option<_>>(1)?.unwrap_or_default();
                self.release(miner, &ids).await?;
                Ok(Value::Null)
            }
            "ReleaseDirectDeals" => {
                p.count(method, 2)?;
                let ids: Vec<u64> = p.get::<Option<_>>(1)?.unwrap_or_default();
                if ids.is_empty() {
                    Ok(Value::Null)
                } else {
                    Err(ApiError::State(format!(
                        "allocations {ids:?}: this market makes no direct (DDO) deals"
                    )))
                }
            }
            "GetDeals" => {
                p.count(method, 3)?;
                let AddressJson(miner) = p.get(0)?;
                let page: i64 = p.get(1)?;
                let size: i64 = p.get(2)?;
                Ok(to_json(&self.deals(miner, page, size).await?))
            }
            "GetDealInfo" => {
                p.count(method, 2)?;
                let AddressJson(miner) = p.get(0)?;
                let id: u64 = p.get(1)?;
                let deal = self.deal(miner, DealId(id)).await?;
                Ok(to_json(&self.deal_info(&deal).await?))
            }
            "PiecesGetPieceInfo" => {
                p.count(method, 1)?;
                let CidJson(piece) = p.get(0)?;
                Ok(to_json(&self.piece_info(&piece).await?))
            }
            "ActorSectorSize" => {
                p.count(method, 1)?;
                let AddressJson(miner) = p.get(0)?;
                let miner = self.served(miner)?;
                Ok(to_json(
                    &self.inner.chain.miner_info(&miner).await?.sector_size,
                ))
            }
            "ActorList" => Ok(to_json(
                &self
                    .inner
                    .miners
                    .iter()
                    .map(|m| MinerAccount {
                        addr: *m,
                        account: "fil-market-rs".into(),
                    })
                    .collect::<Vec<_>>(),
            )),
            "ActorExist" => {
                p.count(method, 1)?;
                let AddressJson(miner) = p.get(0)?;
                Ok(Value::Bool(self.inner.miners.contains(&miner)))
            }
            "ResponseMarketEvent" => {
                p.count(method, 1)?;
                self.inner.events.respond(p.get(0)?);
                Ok(Value::Null)
            }
            "ListenMarketEvent" => Err(ApiError::Params(
                "ListenMarketEvent returns a channel: call it over a WebSocket".into(),
            )),
            "Version" => Ok(to_json(&MarketVersion {
                version: concat!("fil-market-rs/", env!("CARGO_PKG_VERSION")).into(),
                // droplet v2.15's API version (1.2.0 << 8 style: 0x020300 = 131840).
                api_version: 131840,
            })),
            other => Err(ApiError::Params(format!(
                "method '{NAMESPACE}.{}' not found",
                jsonrpc::clip(other)
            ))),
        }
    }

    /// `AssignUnPackedDeals`: picks deals for sector `sid` of `sector_size`, marks them
    /// `Assigned` to it and returns them in layout order with the zero fillers.
    pub async fn assign(
        &self,
        sid: SectorId,
        sector_size: u64,
        spec: Option<&GetDealSpec>,
    ) -> Result<Vec<DealInfoIncludePath>, ApiError> {
        let miner = self.served(Address::new_id(sid.miner))?;
        let info = self.inner.chain.miner_info(&miner).await?;
        if info.sector_size != sector_size {
            return Err(ApiError::Params(format!(
                "miner {miner} seals {}-byte sectors, not {sector_size}",
                info.sector_size
            )));
        }
        let _one_at_a_time = self.inner.assigning.lock().await;
        let head = self.inner.chain.head().await?;
        let deals = self.inner.store.sealable_deals(&miner).await?;
        let deals: Vec<ProviderDeal> = deals.into_iter().filter(|d| d.deal_id.is_some()).collect();
        let candidates: Vec<Candidate> = deals
            .iter()
            .map(|d| {
                let p = &d.proposal.proposal;
                Candidate {
                    deal_id: d.deal_id.unwrap_or_default(),
                    piece_size: p.piece_size,
                    start_epoch: p.start_epoch,
                    end_epoch: p.end_epoch,
                    price: p.storage_price_per_epoch,
                }
            })
            .collect();
        let Some(slots) = assign::plan(&candidates, sector_size, spec, head) else {
            return Ok(Vec::new());
        };
        let sector = SectorNumber(sid.number);
        let mut changes = Vec::new();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Deal { index, offset } => {
                    let deal = &deals[index];
                    let placement = self
                        .inner
                        .store
                        .placement(&deal.proposal_cid)
                        .await?
                        .ok_or_else(|| ApiError::State("deal lost its placement".into()))?;
                    changes.push(PlacementChange {
                        expect: vec![PieceStatus::Undefine],
                        new: placement.at(PieceStatus::Assigned, sector, offset),
                    });
                    out.push(self.include_path(deal, offset).await?);
                }
                Slot::Filler { size, .. } => out.push(filler(size)?),
            }
        }
        self.inner.store.update_placements(changes).await?;
        tracing::info!(%miner, sector = sid.number, deals = out.iter().filter(|d| !d.is_filler()).count(), "deals assigned to a sector");
        Ok(out)
    }

    async fn unpacked(
        &self,
        miner: Address,
        spec: Option<&GetDealSpec>,
    ) -> Result<Vec<DealInfoIncludePath>, ApiError> {
        let miner = self.served(miner)?;
        let head = self.inner.chain.head().await?;
        let sector_size = self.inner.chain.miner_info(&miner).await?.sector_size;
        let cap = assign::max_pieces(spec).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for deal in self.inner.store.sealable_deals(&miner).await? {
            if out.len() >= cap {
                break;
            }
            let p = &deal.proposal.proposal;
            let c = Candidate {
                deal_id: deal.deal_id.unwrap_or_default(),
                piece_size: p.piece_size,
                start_epoch: p.start_epoch,
                end_epoch: p.end_epoch,
                price: p.storage_price_per_epoch,
            };
            if deal.deal_id.is_some() && assign::eligible(&c, spec, sector_size, head) {
                out.push(
                    self.include_path(&deal, deal.sector_offset.unwrap_or(0))
                        .await?,
                );
            }
        }
        Ok(out)
    }

    async fn deal(&self, miner: Address, id: DealId) -> Result<ProviderDeal, ApiError> {
        let miner = self.served(miner)?;
        self.inner
            .store
            .provider_deal_by_deal_id(&miner, id)
            .await?
            .ok_or(ApiError::UnknownDeal { miner, deal: id })
    }

    /// Sets the piece status of deals (and their place, when given); all or none.
    async fn set_status(
        &self,
        miner: Address,
        ids: &[u64],
        status: PieceStatus,
        place: Option<(SectorNumber, u64)>,
    ) -> Result<(), ApiError> {
        let mut changes = Vec::new();
        for &id in ids {
            let deal = self.deal(miner, DealId(id)).await?;
            let placement = self.placement_of(&deal).await?;
            let new = match place {
                Some((sector, offset)) => placement.at(status, sector, offset),
                None => storage_market::placement::Placement {
                    status,
                    ..placement
                },
            };
            changes.push(PlacementChange {
                expect: vec![],
                new,
            });
        }
        self.inner.store.update_placements(changes).await?;
        Ok(())
    }

    async fn placement_of(
        &self,
        deal: &ProviderDeal,
    ) -> Result<storage_market::placement::Placement, ApiError> {
        self.inner
            .store
            .placement(&deal.proposal_cid)
            .await?
            .ok_or_else(|| {
                ApiError::State(format!(
                    "deal {} is not offered to sealers (state {})",
                    deal.deal_id.unwrap_or_default(),
                    deal.state
                ))
            })
    }

    async fn update_status(
        &self,
        miner: Address,
        id: DealId,
        status: PieceStatus,
        state: u64,
    ) -> Result<(), ApiError> {
        let deal = self.deal(miner, id).await?;
        let waiting = StorageDealStatus::AwaitingPreCommit.code();
        if state != deal.state.code() && state != waiting {
            return Err(ApiError::State(format!(
                "deal {id} is {}; its state follows the chain and cannot be set to {state}",
                deal.state
            )));
        }
        self.set_status(miner, &[id.0], status, None).await
    }

    /// `ReleaseDeals`: deals of an aborted sector go back to the pool; all or none.
    async fn release(&self, miner: Address, ids: &[u64]) -> Result<(), ApiError> {
        let mut changes = Vec::new();
        for &id in ids {
            let deal = self.deal(miner, DealId(id)).await?;
            if deal.state == StorageDealStatus::Expired {
                continue;
            }
            if !matches!(
                deal.state,
                StorageDealStatus::AwaitingPreCommit | StorageDealStatus::Sealing
            ) {
                return Err(ApiError::State(format!(
                    "deal {id} is {} and cannot be released",
                    deal.state
                )));
            }
            let placement = self.placement_of(&deal).await?;
            changes.push(PlacementChange {
                expect: vec![PieceStatus::Assigned, PieceStatus::Packing],
                new: placement.released(),
            });
        }
        self.inner.store.update_placements(changes).await?;
        tracing::info!(%miner, deals = ?ids, "deals released by a sealer");
        Ok(())
    }

    async fn deals(&self, miner: Address, page: i64, size: i64) -> Result<Vec<DealInfo>, ApiError> {
        let miner = self.served(miner)?;
        let size = size.clamp(1, 1000) as usize;
        let page = page.max(0) as usize;
        let mut out = Vec::new();
        let all = self.inner.store.provider_deals().await?;
        for deal in all
            .iter()
            .filter(|d| d.miner == miner && d.deal_id.is_some())
            .skip(page * size)
            .take(size)
        {
            out.push(self.deal_info(deal).await?);
        }
        Ok(out)
    }

    async fn deal_info(&self, deal: &ProviderDeal) -> Result<DealInfo, ApiError> {
        let p = &deal.proposal.proposal;
        let status = self
            .inner
            .store
            .placement(&deal.proposal_cid)
            .await?
            .map_or(PieceStatus::Undefine, |pl| pl.status);
        let sig = &deal.proposal.client_signature;
        Ok(DealInfo {
            deal_id: deal.deal_id.map_or(0, |d| d.0),
            sector_id: deal.sector.map_or(0, |s| s.0),
            offset: deal.sector_offset.unwrap_or(0),
            length: p.piece_size,
            proposal: DealProposalJson::from(p),
            client_signature: SignatureJson {
                kind: sig.kind() as u8,
                data: B64.encode(sig.bytes()),
            },
            transfer_type: if deal.is_offline {
                "manual".into()
            } else {
                deal.transfer.kind.clone()
            },
            root: deal.payload_root,
            publish_cid: deal.publish_cid,
            fast_retrieval: deal.fast_retrieval,
            status: status.to_string(),
        })
    }

    async fn piece_info(&self, piece: &Cid) -> Result<PieceInfoJson, ApiError> {
        let record = self.inner.index.piece(piece).await?;
        Ok(PieceInfoJson {
            piece_cid: *piece,
            deals: record
                .map(|r| {
                    r.deals
                        .iter()
                        .map(|d| PieceDealLocation {
                            deal_id: d.deal_id,
                            sector_id: d.sector,
                            offset: d.offset,
                            length: d.length,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    async fn include_path(
        &self,
        deal: &ProviderDeal,
        offset: u64,
    ) -> Result<DealInfoIncludePath, ApiError> {
        let p = &deal.proposal.proposal;
        let payload_size = self
            .inner
            .pieces
            .stat(&p.piece_cid)
            .await?
            .map_or(0, |m| m.payload_size);
        let duration = (p.end_epoch.get() - p.start_epoch.get()).max(0) as u128;
        Ok(DealInfoIncludePath {
            piece_cid: p.piece_cid,
            piece_size: p.piece_size,
            verified_deal: p.verified_deal,
            client: p.client.to_string(),
            provider: p.provider.to_string(),
            label: match &p.label {
                market_core::types::DealLabel::String(s) => s.clone(),
                _ => String::new(),
            },
            start_epoch: p.start_epoch.get(),
            end_epoch: p.end_epoch.get(),
            storage_price_per_epoch: p.storage_price_per_epoch,
            provider_collateral: p.provider_collateral,
            client_collateral: p.client_collateral,
            offset,
            length: p.piece_size,
            payload_size,
            deal_id: deal.deal_id.map_or(0, |d| d.0),
            total_storage_fee: p
                .storage_price_per_epoch
                .checked_mul(duration)
                .unwrap_or_default(),
            fast_retrieval: deal.fast_retrieval,
            publish_cid: deal.publish_cid,
        })
    }
}

/// A zero filler piece of `size`, as droplet lists it.
fn filler(size: u64) -> Result<DealInfoIncludePath, ApiError> {
    let padded =
        commp::PaddedPieceSize::new(size).map_err(|e| ApiError::State(format!("filler: {e}")))?;
    let zero = market_core::cid::widen(&commp::zero_commitment(padded).to_cid_v1());
    Ok(DealInfoIncludePath {
        piece_cid: zero,
        piece_size: size,
        verified_deal: false,
        client: UNDEF_ADDRESS.into(),
        provider: UNDEF_ADDRESS.into(),
        label: String::new(),
        start_epoch: 0,
        end_epoch: 0,
        storage_price_per_epoch: Default::default(),
        provider_collateral: Default::default(),
        client_collateral: Default::default(),
        offset: 0,
        length: 0,
        payload_size: 0,
        deal_id: 0,
        total_storage_fee: Default::default(),
        fast_retrieval: false,
        publish_cid: None,
    })
}

/// Answers a JSON-RPC call for `method` (with its namespace) if it is one of this API's,
/// checking `perms` the way droplet does; `None` for other namespaces.
pub async fn dispatch(
    api: &SealerApi,
    perms: &[String],
    method: &str,
    params: &[Value],
    version: ApiVersion,
) -> Option<Result<Value, Fault>> {
    let name = method.strip_prefix(NAMESPACE)?.strip_prefix('.')?;
    let Some(needed) = permission(name, version) else {
        return Some(Err(Fault::not_found(method)));
    };
    if !jwt::allows(perms, needed) {
        return Some(Err(Fault::server(format!(
            "missing permission to invoke '{name}'  (need '{needed}')"
        ))));
    }
    Some(
        api.call(name, params, version)
            .await
            .map_err(|e| Fault::new(e.code(), e.to_string())),
    )
}

/// The [`Sealer`](storage_market::sealer::Sealer) of the pull model: a published deal is
/// queued for the sealer API, and a sealer takes it when it packs a sector.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullSealer;

#[async_trait::async_trait]
impl storage_market::sealer::Sealer for PullSealer {
    async fn add_piece(
        &self,
        _deal: &storage_market::sealer::SealingDeal,
        _piece: &storage_market::sealer::PieceHandle,
    ) -> Result<storage_market::sealer::Handoff, storage_market::sealer::SealerError> {
        Ok(storage_market::sealer::Handoff::Queued)
    }
}

/// `GET /rpc/v0` and `/rpc/v1` upgraded to a WebSocket: every sealer method, and
/// `ListenMarketEvent` as a go-jsonrpc channel (`xrpc.ch.val` frames, `xrpc.ch.close`).
pub fn ws_router(api: SealerApi, secret: Vec<u8>) -> axum::Router {
    let state = Arc::new((api, secret));
    axum::Router::new()
        .route(
            "/rpc/v0",
            axum::routing::get(
                |s: axum::extract::State<Arc<(SealerApi, Vec<u8>)>>,
                 q: axum::extract::Query<TokenQuery>,
                 h: axum::http::HeaderMap,
                 ws: axum::extract::ws::WebSocketUpgrade| {
                    upgrade(s, q, h, ws, ApiVersion::V0)
                },
            ),
        )
        .route(
            "/rpc/v1",
            axum::routing::get(
                |s: axum::extract::State<Arc<(SealerApi, Vec<u8>)>>,
                 q: axum::extract::Query<TokenQuery>,
                 h: axum::http::HeaderMap,
                 ws: axum::extract::ws::WebSocketUpgrade| {
                    upgrade(s, q, h, ws, ApiVersion::V1)
                },
            ),
        )
        .with_state(state)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Largest WebSocket frame a sealer may send.
const MAX_FRAME: usize = 1 << 20;

async fn upgrade(
    axum::extract::State(state): axum::extract::State<Arc<(SealerApi, Vec<u8>)>>,
    axum::extract::Query(q): axum::extract::Query<TokenQuery>,
    headers: axum::http::HeaderMap,
    ws: axum::extract::ws::WebSocketUpgrade,
    version: ApiVersion,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token = crate::resource::request_token(&headers, q.token.as_deref());
    let Some(perms) = token.and_then(|t| jwt::verify(&state.1, t).ok()) else {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    };
    let api = state.0.clone();
    ws.max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve_socket(api, perms, version, socket))
}

async fn serve_socket(
    api: SealerApi,
    perms: Vec<String>,
    version: ApiVersion,
    socket: axum::extract::ws::WebSocket,
) {
    use axum::extract::ws::Message as Ws;
    use futures::{SinkExt, StreamExt};
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Ws::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    let mut channels = 0u64;
    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            Ws::Text(t) => t.to_string(),
            Ws::Close(_) => break,
            _ => continue,
        };
        let call = match serde_json::from_str::<Value>(&text) {
            Err(e) => Err((
                Value::Null,
                Fault::new(jsonrpc::PARSE_ERROR, format!("parse error: {e}")),
            )),
            Ok(req) => jsonrpc::call_of(req),
        };
        let call = match call {
            Ok(call) => call,
            Err((id, fault)) => {
                let _ = tx.send(jsonrpc::reply(id, Err(fault)).to_string()).await;
                continue;
            }
        };
        let id = call.id.clone().unwrap_or(Value::Null);
        if call.method == format!("{NAMESPACE}.ListenMarketEvent") {
            let miner = call
                .params
                .first()
                .and_then(|p| p["Miner"].as_str())
                .and_then(|m| Address::from_str(m).ok());
            let answer = match miner {
                None => jsonrpc::reply(id, Err(Fault::params(r#"param 0: want {"Miner": "f0…"}"#))),
                Some(m) if !jwt::allows(&perms, jwt::READ) || api.served(m).is_err() => {
                    jsonrpc::reply(id, Err(Fault::server(format!("cannot listen for {m}"))))
                }
                Some(m) => {
                    channels += 1;
                    let ch = channels;
                    let mut events = api.events().listen(m);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while let Some(e) = events.recv().await {
                            let frame = serde_json::json!({"jsonrpc": "2.0", "method": "xrpc.ch.val", "params": [ch, e]});
                            if tx.send(frame.to_string()).await.is_err() {
                                return;
                            }
                        }
                        let close = serde_json::json!({"jsonrpc": "2.0", "method": "xrpc.ch.close", "params": [ch]});
                        let _ = tx.send(close.to_string()).await;
                    });
                    jsonrpc::reply(id, Ok(ch.into()))
                }
            };
            let _ = tx.send(answer.to_string()).await;
            continue;
        }
        let (api, perms, tx) = (api.clone(), perms.clone(), tx.clone());
        tokio::spawn(async move {
            let result = dispatch(&api, &perms, &call.method, &call.params, version)
                .await
                .unwrap_or_else(|| Err(Fault::not_found(&call.method)));
            if call.id.is_some() {
                let _ = tx.send(jsonrpc::reply(id, result).to_string()).await;
            }
        });
    }
    drop(tx);
    writer.abort();
}
