//! The JSON shapes of droplet's sealer-facing API (venus-shared `types/market`) and of the
//! lotus-miner methods a market calls, field for field.
//!
//! CIDs are `{"/": …}`, amounts decimal strings, addresses `f0…` text (droplet writes
//! `"<empty>"` for the undefined address of a filler piece), and a nil Go slice is `null`.

use lotus_api::json::{address, amount, cid, opt_cid};
use market_core::Cid;
use market_core::types::{Address, TokenAmount};
use serde::{Deserialize, Deserializer, Serialize};

/// Text of an undefined address (go-address `UndefAddressString`).
pub const UNDEF_ADDRESS: &str = "<empty>";

fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `abi.SectorID`: a miner's actor id and a sector number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorId {
    /// The miner's actor id (`1000` for `f01000`).
    pub miner: u64,
    /// The sector number.
    pub number: u64,
}

/// `market.GetDealSpec`: what a sealer wants in a sector; zero means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetDealSpec {
    /// At most this many deals (0: no cap; a missing spec means 10).
    pub max_piece: i64,
    /// Largest padded piece.
    pub max_piece_size: u64,
    /// Assign nothing unless at least this many deals fit.
    pub min_piece: i64,
    /// Smallest padded piece.
    pub min_piece_size: u64,
    /// Assign nothing unless the deals use at least this many padded bytes.
    pub min_used_space: u64,
    /// Only deals starting after this epoch (0: any).
    pub start_epoch: i64,
    /// Only deals ending before this epoch, the sector's expiration (0: any).
    pub end_epoch: i64,
    /// The sector's expiration (newer sealers send it; informational here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_expiration: Option<i64>,
}

/// `market.DealInfoIncludePath`: a deal (or a zero filler piece) as a sealer packs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealInfoIncludePath {
    /// The piece CID (a zero commitment for fillers).
    #[serde(rename = "PieceCID", with = "cid")]
    pub piece_cid: Cid,
    /// Padded piece size.
    pub piece_size: u64,
    /// FIL+ deal.
    pub verified_deal: bool,
    /// Client address text (`<empty>` for fillers).
    pub client: String,
    /// Provider address text (`<empty>` for fillers).
    pub provider: String,
    /// Label (a bytes label is written as `""`).
    pub label: String,
    /// Start epoch.
    pub start_epoch: i64,
    /// End epoch.
    pub end_epoch: i64,
    /// Price per epoch.
    #[serde(with = "amount")]
    pub storage_price_per_epoch: TokenAmount,
    /// Provider collateral.
    #[serde(with = "amount")]
    pub provider_collateral: TokenAmount,
    /// Client collateral.
    #[serde(with = "amount")]
    pub client_collateral: TokenAmount,
    /// Padded offset in the sector (0 for fillers, whose place is their position).
    pub offset: u64,
    /// Padded length (`PieceSize`; 0 for fillers).
    pub length: u64,
    /// Bytes stored for the piece (what `/resource` returns).
    pub payload_size: u64,
    /// On-chain deal id (0 for fillers).
    #[serde(rename = "DealID")]
    pub deal_id: u64,
    /// Price × duration.
    #[serde(with = "amount")]
    pub total_storage_fee: TokenAmount,
    /// Keep an unsealed copy.
    pub fast_retrieval: bool,
    /// The publish message (`null` for fillers).
    #[serde(with = "opt_cid", default)]
    pub publish_cid: Option<Cid>,
}

impl DealInfoIncludePath {
    /// Whether this entry is a zero filler piece rather than a deal.
    pub fn is_filler(&self) -> bool {
        self.deal_id == 0 && self.publish_cid.is_none()
    }
}

/// `market.DealInfoV2` (`AssignDeals`, damocles' current call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealInfoV2 {
    /// On-chain deal id (0 for fillers and direct deals).
    #[serde(rename = "DealID")]
    pub deal_id: u64,
    /// The publish message; `null` for direct deals and fillers.
    #[serde(with = "opt_cid", default)]
    pub publish_cid: Option<Cid>,
    /// Verified allocation of a direct deal (0 otherwise).
    #[serde(rename = "AllocationID")]
    pub allocation_id: u64,
    /// The piece CID.
    #[serde(rename = "PieceCID", with = "cid")]
    pub piece_cid: Cid,
    /// Padded piece size.
    pub piece_size: u64,
    /// Client address text.
    pub client: String,
    /// Provider address text.
    pub provider: String,
    /// Padded offset in the sector.
    pub offset: u64,
    /// Padded length.
    pub length: u64,
    /// Bytes stored for the piece.
    pub payload_size: u64,
    /// Start epoch.
    pub start_epoch: i64,
    /// End epoch.
    pub end_epoch: i64,
}

impl From<&DealInfoIncludePath> for DealInfoV2 {
    fn from(d: &DealInfoIncludePath) -> Self {
        Self {
            deal_id: d.deal_id,
            publish_cid: d.publish_cid,
            allocation_id: 0,
            piece_cid: d.piece_cid,
            piece_size: d.piece_size,
            client: d.client.clone(),
            provider: d.provider.clone(),
            offset: d.offset,
            length: d.length,
            payload_size: d.payload_size,
            start_epoch: d.start_epoch,
            end_epoch: d.end_epoch,
        }
    }
}

/// A deal's place in a sector, as `PiecesGetPieceInfo` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PieceDealLocation {
    /// On-chain deal id.
    #[serde(rename = "DealID")]
    pub deal_id: u64,
    /// The sector number.
    #[serde(rename = "SectorID")]
    pub sector_id: u64,
    /// Padded offset.
    pub offset: u64,
    /// Padded length.
    pub length: u64,
}

/// `piecestore.PieceInfo` (`PiecesGetPieceInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PieceInfoJson {
    /// The piece.
    #[serde(rename = "PieceCID", with = "cid")]
    pub piece_cid: Cid,
    /// Where its deals are.
    #[serde(default, deserialize_with = "null_default")]
    pub deals: Vec<PieceDealLocation>,
}

/// `{Type, Data}` of a client signature, as `GetDeals` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureJson {
    /// 1 secp256k1, 2 BLS.
    #[serde(rename = "Type")]
    pub kind: u8,
    /// Base64 signature bytes.
    pub data: String,
}

/// `market.DealInfo` (`GetDeals`, and our `GetDealInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealInfo {
    /// On-chain deal id.
    #[serde(rename = "DealID")]
    pub deal_id: u64,
    /// Sector (0 until assigned).
    #[serde(rename = "SectorID")]
    pub sector_id: u64,
    /// Padded offset (0 until assigned).
    pub offset: u64,
    /// Padded length.
    pub length: u64,
    /// The proposal.
    pub proposal: lotus_api::json::DealProposalJson,
    /// The client's signature.
    pub client_signature: SignatureJson,
    /// `manual` (offline) or `graphsync`/`http` (online).
    pub transfer_type: String,
    /// The payload root.
    #[serde(with = "opt_cid", default)]
    pub root: Option<Cid>,
    /// The publish message.
    #[serde(with = "opt_cid", default)]
    pub publish_cid: Option<Cid>,
    /// Keep an unsealed copy.
    pub fast_retrieval: bool,
    /// Piece status (`Undefine`, `Assigned`, `Packing`, `Proving`).
    pub status: String,
}

/// `api.VersionInfo` of droplet (`Version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MarketVersion {
    /// Software version text.
    pub version: String,
    /// API version number (major << 16 | minor << 8 | patch).
    #[serde(rename = "APIVersion")]
    pub api_version: u32,
}

/// One of a node's miners (`ActorList`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerAccount {
    /// The miner.
    #[serde(with = "address")]
    pub addr: Address,
    /// The account that owns it in droplet's user system (the node's name here).
    pub account: String,
}

// ---- lotus-miner (push model) ----

/// `storiface.Data` as go-jsonrpc's ReaderStream: how the miner gets the piece bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderStream {
    /// `http` (the miner GETs `Info`), `null` (zeros), or `push`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The URL, the byte count, or the push id.
    #[serde(rename = "Info")]
    pub info: String,
}

/// `piece.DealSchedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealSchedule {
    /// Start epoch.
    pub start_epoch: i64,
    /// End epoch.
    pub end_epoch: i64,
}

/// `piece.PieceDealInfo`: the deal a piece belongs to (builtin-market form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PieceDealInfo {
    /// The publish message.
    #[serde(with = "opt_cid", default)]
    pub publish_cid: Option<Cid>,
    /// On-chain deal id.
    #[serde(rename = "DealID")]
    pub deal_id: u64,
    /// The proposal.
    pub deal_proposal: Option<lotus_api::json::DealProposalJson>,
    /// When it runs.
    pub deal_schedule: DealSchedule,
    /// Direct data onboarding manifest (`null` for builtin-market deals).
    #[serde(default)]
    pub piece_activation_manifest: Option<serde_json::Value>,
    /// Keep an unsealed copy.
    pub keep_unsealed: bool,
}

/// `api.SectorOffset`: where `SectorAddPieceToAny` put a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorOffset {
    /// The sector number.
    pub sector: u64,
    /// Padded offset.
    pub offset: u64,
}

/// The part of `api.SectorInfo` (`SectorsStatus`) a market reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorStatus {
    /// The sector number.
    #[serde(rename = "SectorID")]
    pub sector_id: u64,
    /// The sealing state (`WaitDeals`, `PreCommit1`, …, `Proving`).
    pub state: String,
    /// Deal ids in the sector.
    #[serde(default, deserialize_with = "null_default")]
    pub deals: Vec<u64>,
    /// The last error, if any.
    #[serde(default)]
    pub last_err: String,
}

impl SectorStatus {
    /// Boost's `IsFinalSealingState`: the sector has left the sealing pipeline.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "Proving"
                | "Available"
                | "UpdateActivating"
                | "ReleaseSectorKey"
                | "Removed"
                | "Removing"
                | "Terminating"
                | "TerminateWait"
                | "TerminateFinality"
                | "TerminateFailed"
                | "FailedUnrecoverable"
        )
    }
}

/// `storiface.SectorRef`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectorRef {
    /// The sector.
    #[serde(rename = "ID")]
    pub id: SectorId,
    /// `abi.RegisteredSealProof`.
    #[serde(rename = "ProofType")]
    pub proof_type: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_spec_field_is_no_limit_and_null_deal_lists_are_empty() {
        let spec: GetDealSpec = serde_json::from_str(r#"{"MaxPiece": 3}"#).unwrap();
        assert_eq!(spec.max_piece, 3);
        assert_eq!(spec.min_used_space, 0);
        let info: PieceInfoJson = serde_json::from_str(
            r#"{"PieceCID":{"/":"baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"},"Deals":null}"#,
        )
        .unwrap();
        assert!(info.deals.is_empty());
    }
}
