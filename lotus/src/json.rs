//! Lotus's JSON encodings of chain types (Lotus `api/types.go`, go-state-types, go-address):
//! CIDs as `{"/": "bafy…"}`, big integers as decimal strings, addresses as `f…`/`t…` text,
//! byte strings as padded base64, Go field names in PascalCase.
//!
//! Decoders are lenient where Lotus is inconsistent across versions: `null` for any slice or
//! pointer, unknown fields ignored (Lotus adds fields with network upgrades), both address
//! prefixes. Encoders write what every Lotus and Venus version accepts.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use market_core::Cid;
use market_core::chain::{CollateralBounds, ExitCode, MarketBalance, MarketDeal};
use market_core::deal::{DealProposal, DealState};
use market_core::message::{SignedMessage, UnsignedMessage};
use market_core::types::{
    Address, ChainEpoch, DealLabel, SectorNumber, Signature, SignatureType, TokenAmount,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `cid.Cid` as `{"/": "<cid>"}`.
pub mod cid {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Link {
        #[serde(rename = "/")]
        link: String,
    }

    /// Serializes a CID.
    pub fn serialize<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        Link {
            link: c.to_string(),
        }
        .serialize(s)
    }

    /// Deserializes a CID.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let l = Link::deserialize(d)?;
        Cid::from_str(&l.link).map_err(|e| D::Error::custom(format!("cid {}: {e}", l.link)))
    }
}

/// `*cid.Cid`: a link or `null`.
pub mod opt_cid {
    use super::*;

    /// Serializes an optional CID.
    pub fn serialize<S: Serializer>(c: &Option<Cid>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => super::cid::serialize(c, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional CID.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cid>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::cid")] Cid);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// `types.TipSetKey`: an array of CIDs; `null` and `[]` both mean "the head".
pub mod tsk {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super::cid")] Cid);

    /// Serializes a tipset key.
    pub fn serialize<S: Serializer>(k: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<W> = k.iter().map(|c| W(*c)).collect();
        v.serialize(s)
    }

    /// Deserializes a tipset key.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        Ok(Option::<Vec<W>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.0)
            .collect())
    }
}

/// `big.Int` as a decimal string.
pub mod amount {
    use super::*;

    /// Serializes an amount.
    pub fn serialize<S: Serializer>(a: &TokenAmount, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.atto().to_string())
    }

    /// Deserializes an amount (a JSON string of digits; negative amounts are refused).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenAmount, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    pub(crate) fn parse(s: &str) -> Result<TokenAmount, String> {
        if s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a non-negative big integer: {s:?}"));
        }
        s.parse::<u128>()
            .map(TokenAmount::from_atto)
            .map_err(|e| format!("big integer {s:?}: {e}"))
    }
}

/// An optional `big.Int` (`null` or a decimal string), as `StateVerifiedClientStatus` returns.
pub mod opt_amount {
    use super::*;

    /// Deserializes an optional amount.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TokenAmount>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| amount::parse(&s).map_err(D::Error::custom))
            .transpose()
    }

    /// Serializes an optional amount.
    pub fn serialize<S: Serializer>(a: &Option<TokenAmount>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => amount::serialize(a, s),
            None => s.serialize_none(),
        }
    }
}

/// `address.Address` as text.
pub mod address {
    use super::*;

    /// Serializes an address (mainnet prefix; Lotus and Venus accept either prefix).
    pub fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_string())
    }

    /// Deserializes an address in either prefix.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = String::deserialize(d)?;
        Address::from_str(&s).map_err(D::Error::custom)
    }
}

/// `[]address.Address` where `null` means empty.
pub mod addresses {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super::address")] Address);

    /// Serializes addresses.
    pub fn serialize<S: Serializer>(a: &[Address], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<W> = a.iter().map(|a| W(*a)).collect();
        v.serialize(s)
    }

    /// Deserializes addresses.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
        Ok(Option::<Vec<W>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.0)
            .collect())
    }
}

/// `[]byte` as padded base64; `null` decodes as empty.
pub mod bytes {
    use super::*;

    /// Serializes bytes.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    /// Deserializes bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => B64.decode(s.as_bytes()).map_err(D::Error::custom),
        }
    }
}

/// `crypto.Signature`: `{"Type": 1, "Data": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureJson {
    /// 1 secp256k1, 2 BLS, 3 delegated.
    #[serde(rename = "Type")]
    pub kind: u8,
    /// The raw signature.
    #[serde(rename = "Data", with = "bytes")]
    pub data: Vec<u8>,
}

impl From<&Signature> for SignatureJson {
    fn from(s: &Signature) -> Self {
        Self {
            kind: s.kind().code(),
            data: s.bytes().to_vec(),
        }
    }
}

impl TryFrom<SignatureJson> for Signature {
    type Error = String;
    fn try_from(s: SignatureJson) -> Result<Self, String> {
        let kind = SignatureType::from_code(s.kind)
            .ok_or_else(|| format!("unknown signature type {}", s.kind))?;
        Ok(Signature::new(kind, s.data))
    }
}

/// `types.Message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageJson {
    /// Format version.
    #[serde(default)]
    pub version: u64,
    /// Recipient.
    #[serde(with = "address")]
    pub to: Address,
    /// Sender.
    #[serde(with = "address")]
    pub from: Address,
    /// Nonce (0 = "fill in" for `MpoolPushMessage`).
    #[serde(default)]
    pub nonce: u64,
    /// Value.
    #[serde(with = "amount")]
    pub value: TokenAmount,
    /// Gas limit (0 = estimate).
    #[serde(default)]
    pub gas_limit: i64,
    /// Fee cap per gas unit.
    #[serde(with = "amount")]
    pub gas_fee_cap: TokenAmount,
    /// Premium per gas unit.
    #[serde(with = "amount")]
    pub gas_premium: TokenAmount,
    /// Method number.
    #[serde(default)]
    pub method: u64,
    /// CBOR params.
    #[serde(with = "bytes", default)]
    pub params: Vec<u8>,
    /// The CID (output only; ignored on input).
    #[serde(
        rename = "CID",
        with = "opt_cid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cid: Option<Cid>,
}

impl From<&UnsignedMessage> for MessageJson {
    fn from(m: &UnsignedMessage) -> Self {
        Self {
            version: m.version,
            to: m.to,
            from: m.from,
            nonce: m.nonce,
            value: m.value,
            gas_limit: m.gas_limit,
            gas_fee_cap: m.gas_fee_cap,
            gas_premium: m.gas_premium,
            method: m.method,
            params: m.params.clone(),
            cid: Some(m.cid()),
        }
    }
}

impl From<MessageJson> for UnsignedMessage {
    fn from(m: MessageJson) -> Self {
        Self {
            version: m.version,
            to: m.to,
            from: m.from,
            nonce: m.nonce,
            value: m.value,
            gas_limit: m.gas_limit,
            gas_fee_cap: m.gas_fee_cap,
            gas_premium: m.gas_premium,
            method: m.method,
            params: m.params,
        }
    }
}

/// `types.SignedMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessageJson {
    /// The message.
    #[serde(rename = "Message")]
    pub message: MessageJson,
    /// The signature.
    #[serde(rename = "Signature")]
    pub signature: SignatureJson,
    /// The signed message's CID (output only).
    #[serde(
        rename = "CID",
        with = "opt_cid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cid: Option<Cid>,
}

impl From<&SignedMessage> for SignedMessageJson {
    fn from(m: &SignedMessage) -> Self {
        Self {
            message: (&m.message).into(),
            signature: (&m.signature).into(),
            cid: Some(m.cid()),
        }
    }
}

impl TryFrom<SignedMessageJson> for SignedMessage {
    type Error = String;
    fn try_from(m: SignedMessageJson) -> Result<Self, String> {
        Ok(Self {
            message: m.message.into(),
            signature: m.signature.try_into()?,
        })
    }
}

/// `api.MessageSendSpec`. Venus's version has other fields; both ignore unknown ones, so
/// `MaxFee` alone is portable and `MsgUuid` is honoured by Lotus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSendSpec {
    /// Cap on the total fee (`"0"`: the node's default).
    #[serde(rename = "MaxFee", with = "amount")]
    pub max_fee: TokenAmount,
    /// Idempotency key: the node returns the message it already signed for this uuid.
    #[serde(rename = "MsgUuid", default, skip_serializing_if = "Option::is_none")]
    pub msg_uuid: Option<uuid::Uuid>,
    /// Use the whole fee cap instead of the estimate.
    #[serde(rename = "MaximizeFeeCap", default)]
    pub maximize_fee_cap: bool,
}

/// A tipset as far as a market reads it: its key and height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipSetJson {
    /// The block CIDs (the tipset key).
    #[serde(rename = "Cids", with = "tsk", default)]
    pub cids: Vec<Cid>,
    /// Block headers, kept as JSON: the market does not validate blocks.
    #[serde(rename = "Blocks", default, deserialize_with = "null_vec")]
    pub blocks: Vec<serde_json::Value>,
    /// The epoch.
    #[serde(rename = "Height")]
    pub height: i64,
}

fn null_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One `ChainNotify` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadChangeJson {
    /// `current`, `apply` or `revert`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The tipset.
    #[serde(rename = "Val")]
    pub val: TipSetJson,
}

/// `types.MessageReceipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptJson {
    /// Exit code.
    #[serde(rename = "ExitCode")]
    pub exit_code: u32,
    /// CBOR return value.
    #[serde(rename = "Return", with = "bytes", default)]
    pub return_data: Vec<u8>,
    /// Gas used.
    #[serde(rename = "GasUsed", default)]
    pub gas_used: i64,
    /// Events root, `null` without events.
    #[serde(
        rename = "EventsRoot",
        with = "opt_cid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub events_root: Option<Cid>,
}

/// `api.MsgLookup` (`StateWaitMsg`, `StateSearchMsg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgLookupJson {
    /// The message actually executed (differs from the one asked for if it was replaced).
    #[serde(rename = "Message", with = "cid")]
    pub message: Cid,
    /// Its receipt.
    #[serde(rename = "Receipt")]
    pub receipt: ReceiptJson,
    /// The decoded return value, or `null`.
    #[serde(rename = "ReturnDec", default)]
    pub return_dec: serde_json::Value,
    /// The tipset that executed it.
    #[serde(rename = "TipSet", with = "tsk", default)]
    pub tipset: Vec<Cid>,
    /// That tipset's epoch.
    #[serde(rename = "Height")]
    pub height: i64,
}

/// `api.MarketBalance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketBalanceJson {
    /// Total escrow.
    #[serde(rename = "Escrow", with = "amount")]
    pub escrow: TokenAmount,
    /// Locked by deals.
    #[serde(rename = "Locked", with = "amount")]
    pub locked: TokenAmount,
}

impl From<MarketBalanceJson> for MarketBalance {
    fn from(b: MarketBalanceJson) -> Self {
        Self {
            escrow: b.escrow,
            locked: b.locked,
        }
    }
}

impl From<MarketBalance> for MarketBalanceJson {
    fn from(b: MarketBalance) -> Self {
        Self {
            escrow: b.escrow,
            locked: b.locked,
        }
    }
}

/// `api.DealCollateralBounds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollateralBoundsJson {
    /// Minimum.
    #[serde(rename = "Min", with = "amount")]
    pub min: TokenAmount,
    /// Maximum.
    #[serde(rename = "Max", with = "amount")]
    pub max: TokenAmount,
}

impl From<CollateralBoundsJson> for CollateralBounds {
    fn from(b: CollateralBoundsJson) -> Self {
        Self {
            min: b.min,
            max: b.max,
        }
    }
}

/// `market.DealProposal` in Lotus JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealProposalJson {
    /// Piece CID.
    #[serde(rename = "PieceCID", with = "cid")]
    pub piece_cid: Cid,
    /// Padded piece size.
    pub piece_size: u64,
    /// FIL+ deal.
    pub verified_deal: bool,
    /// Client.
    #[serde(with = "address")]
    pub client: Address,
    /// Provider.
    #[serde(with = "address")]
    pub provider: Address,
    /// Label; Lotus prints byte labels as `""` (lossy, so never recompute a proposal CID
    /// from JSON).
    #[serde(default)]
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
}

impl From<&DealProposal> for DealProposalJson {
    fn from(p: &DealProposal) -> Self {
        Self {
            piece_cid: p.piece_cid,
            piece_size: p.piece_size,
            verified_deal: p.verified_deal,
            client: p.client,
            provider: p.provider,
            label: match &p.label {
                DealLabel::String(s) => s.clone(),
                _ => String::new(),
            },
            start_epoch: p.start_epoch.get(),
            end_epoch: p.end_epoch.get(),
            storage_price_per_epoch: p.storage_price_per_epoch,
            provider_collateral: p.provider_collateral,
            client_collateral: p.client_collateral,
        }
    }
}

impl From<DealProposalJson> for DealProposal {
    fn from(p: DealProposalJson) -> Self {
        Self {
            piece_cid: p.piece_cid,
            piece_size: p.piece_size,
            verified_deal: p.verified_deal,
            client: p.client,
            provider: p.provider,
            label: DealLabel::String(p.label),
            start_epoch: ChainEpoch::new(p.start_epoch),
            end_epoch: ChainEpoch::new(p.end_epoch),
            storage_price_per_epoch: p.storage_price_per_epoch,
            provider_collateral: p.provider_collateral,
            client_collateral: p.client_collateral,
        }
    }
}

/// `market.DealState` in Lotus JSON (`SectorNumber` from nv22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DealStateJson {
    /// The deal's sector (0 until activated; absent before nv22).
    #[serde(default)]
    pub sector_number: u64,
    /// Activation epoch, −1 before.
    pub sector_start_epoch: i64,
    /// Last payment epoch, −1 before.
    pub last_updated_epoch: i64,
    /// Slash epoch, −1 if never.
    pub slash_epoch: i64,
}

/// `api.MarketDeal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDealJson {
    /// The proposal.
    #[serde(rename = "Proposal")]
    pub proposal: DealProposalJson,
    /// Its state.
    #[serde(rename = "State")]
    pub state: DealStateJson,
}

impl From<MarketDealJson> for MarketDeal {
    fn from(d: MarketDealJson) -> Self {
        Self {
            proposal: d.proposal.into(),
            state: DealState {
                sector_start_epoch: ChainEpoch::new(d.state.sector_start_epoch),
                last_updated_epoch: ChainEpoch::new(d.state.last_updated_epoch),
                slash_epoch: ChainEpoch::new(d.state.slash_epoch),
                verified_claim: 0,
            },
            sector: (d.state.sector_start_epoch >= 0 && d.state.sector_number > 0)
                .then_some(SectorNumber(d.state.sector_number)),
        }
    }
}

/// `miner.SectorPreCommitInfo`: what a pre-commit declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitInfoJson {
    /// `abi.RegisteredSealProof`.
    pub seal_proof: i64,
    /// The sector number.
    pub sector_number: u64,
    /// commR.
    #[serde(rename = "SealedCID", with = "cid")]
    pub sealed_cid: Cid,
    /// The ticket epoch.
    pub seal_rand_epoch: i64,
    /// Builtin-market deals in the sector (`null` when none).
    #[serde(rename = "DealIDs", default, deserialize_with = "null_vec")]
    pub deal_ids: Vec<u64>,
    /// Expiration epoch.
    pub expiration: i64,
    /// commD, `null` for a sector of zeros.
    #[serde(with = "opt_cid", default)]
    pub unsealed_cid: Option<Cid>,
}

/// `miner.SectorPreCommitOnChainInfo` (`StateSectorPreCommitInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorPreCommitOnChainJson {
    /// The declaration.
    pub info: SectorPreCommitInfoJson,
    /// The deposit held until prove-commit.
    #[serde(with = "amount")]
    pub pre_commit_deposit: TokenAmount,
    /// The epoch it landed.
    pub pre_commit_epoch: i64,
}

/// `miner.SectorOnChainInfo` (`StateSectorGetInfo`): the fields a market reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectorOnChainJson {
    /// The sector number.
    pub sector_number: u64,
    /// `abi.RegisteredSealProof`.
    pub seal_proof: i64,
    /// commR.
    #[serde(rename = "SealedCID", with = "cid")]
    pub sealed_cid: Cid,
    /// Builtin-market deals (`DealIDs` before nv22, gone after; `null` when none).
    #[serde(rename = "DealIDs", default, deserialize_with = "null_vec")]
    pub deal_ids: Vec<u64>,
    /// Activation epoch.
    pub activation: i64,
    /// Expiration epoch.
    pub expiration: i64,
}

/// `api.MinerInfo`: the fields a market reads; every address is an id address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerInfoJson {
    /// Owner.
    #[serde(with = "address")]
    pub owner: Address,
    /// Worker (an id address; resolve it with `StateAccountKey` to check signatures).
    #[serde(with = "address")]
    pub worker: Address,
    /// Control addresses.
    #[serde(with = "addresses", default)]
    pub control_addresses: Vec<Address>,
    /// libp2p peer id, `null` if unset.
    #[serde(default)]
    pub peer_id: Option<String>,
    /// Binary multiaddrs, base64 each.
    #[serde(default, deserialize_with = "null_vec")]
    pub multiaddrs: Vec<String>,
    /// Sector size in bytes.
    pub sector_size: u64,
    /// Window PoSt proof type.
    #[serde(default)]
    pub window_po_st_proof_type: i64,
}

/// `api.APIVersion` (`Version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionJson {
    /// The node's version string (`1.34.1+mainnet+git…`, `venus …`).
    #[serde(rename = "Version")]
    pub version: String,
    /// The API version number.
    #[serde(rename = "APIVersion")]
    pub api_version: u64,
    /// Seconds per epoch.
    #[serde(rename = "BlockDelay")]
    pub block_delay: u64,
    /// The node's agent string.
    #[serde(rename = "Agent", default)]
    pub agent: String,
}

/// `api.InvocResult` (`StateCall`): the receipt and the error text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocResultJson {
    /// The receipt, `null` if the message could not run.
    #[serde(rename = "MsgRct", default)]
    pub receipt: Option<ReceiptJson>,
    /// Why it failed.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// venus-wallet's `MsgMeta`: what the bytes to sign are, so a remote wallet can check them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgMeta {
    /// `message`, `dealproposal`, `storageask`, `networkresposne`, `providerdealstate`, …
    #[serde(rename = "Type")]
    pub kind: String,
    /// For messages, the unsigned message's CBOR.
    #[serde(rename = "Extra", default, with = "opt_bytes")]
    pub extra: Option<Vec<u8>>,
}

/// Optional base64 bytes.
pub mod opt_bytes {
    use super::*;

    /// Serializes optional bytes.
    pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_str(&B64.encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes optional bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| B64.decode(s.as_bytes()).map_err(D::Error::custom))
            .transpose()
    }
}

impl ReceiptJson {
    /// The exit code.
    pub fn exit(&self) -> ExitCode {
        ExitCode(self.exit_code)
    }
}

/// A JSON `Address` wrapper for positional params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressJson(#[serde(with = "address")] pub Address);

/// A JSON `Cid` wrapper for positional params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidJson(#[serde(with = "cid")] pub Cid);

/// A JSON amount wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountJson(#[serde(with = "amount")] pub TokenAmount);

/// A tipset key for positional params (`[]` = the head).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TipSetKey(#[serde(with = "tsk")] pub Vec<Cid>);

impl TipSetKey {
    /// The head.
    pub const HEAD: Self = Self(Vec::new());
}
