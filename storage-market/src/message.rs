//! Wire messages of the storage-market libp2p protocols.
//!
//! Map-encoded messages (go-fil-markets 1.1.x, Boost 1.2.x) use the Go field names as keys.
//! The encoder writes keys in canonical order (shorter first, then bytewise) exactly as
//! cbor-gen does; decoders accept any order and skip unknown keys, as cbor-gen decoders do.
//! Tuple forms of the 1.0.1 protocols are private structs converted at the codec boundary.

use std::collections::BTreeMap;

use crate::Cid;
use fvm_ipld_encoding::tuple::*;
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::deal::{ClientDealProposal, DealProposal};
use crate::types::{Address, ChainEpoch, DealId, DealUuid, Signature, TokenAmount};

/// A miner's storage ask: prices per GiB per epoch and accepted piece sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageAsk {
    /// The miner actor.
    #[serde(rename = "Miner")]
    pub miner: Address,
    /// attoFIL per GiB per epoch for unverified deals.
    #[serde(rename = "Price")]
    pub price: TokenAmount,
    /// Increases with every change of the ask.
    #[serde(rename = "SeqNo")]
    pub seq_no: u64,
    /// The epoch after which the ask is stale.
    #[serde(rename = "Expiry")]
    pub expiry: ChainEpoch,
    /// The epoch the ask was set.
    #[serde(rename = "Timestamp")]
    pub timestamp: ChainEpoch,
    /// Largest accepted padded piece size.
    #[serde(rename = "MaxPieceSize")]
    pub max_piece_size: u64,
    /// Smallest accepted padded piece size.
    #[serde(rename = "MinPieceSize")]
    pub min_piece_size: u64,
    /// attoFIL per GiB per epoch for verified deals.
    #[serde(rename = "VerifiedPrice")]
    pub verified_price: TokenAmount,
}

impl StorageAsk {
    /// The map-form bytes, which the worker key signs for `/fil/storage/ask/1.1.0`.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    /// The tuple-form bytes, which the worker key signs for `/fil/storage/ask/1.0.1`.
    pub fn to_cbor_v0(&self) -> Vec<u8> {
        cbor::to_vec(&StorageAsk0::from(self))
    }
}

/// An ask with the miner worker's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStorageAsk {
    /// The ask.
    #[serde(rename = "Ask")]
    pub ask: Option<StorageAsk>,
    /// Worker signature over the ask's CBOR (map form on 1.1.0, tuple form on 1.0.1).
    #[serde(rename = "Signature")]
    pub signature: Option<Signature>,
}

/// `/fil/storage/ask/1.1.0` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskRequest {
    /// The miner whose ask is wanted.
    #[serde(rename = "Miner")]
    pub miner: Address,
}

/// `/fil/storage/ask/1.1.0` response. `ask` is `None` when the provider does not serve the
/// requested miner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskResponse {
    /// The signed ask.
    #[serde(rename = "Ask")]
    pub ask: Option<SignedStorageAsk>,
}

#[derive(Serialize_tuple, Deserialize_tuple)]
pub(crate) struct StorageAsk0 {
    price: TokenAmount,
    verified_price: TokenAmount,
    min_piece_size: u64,
    max_piece_size: u64,
    miner: Address,
    timestamp: ChainEpoch,
    expiry: ChainEpoch,
    seq_no: u64,
}

impl From<&StorageAsk> for StorageAsk0 {
    fn from(a: &StorageAsk) -> Self {
        Self {
            price: a.price,
            verified_price: a.verified_price,
            min_piece_size: a.min_piece_size,
            max_piece_size: a.max_piece_size,
            miner: a.miner,
            timestamp: a.timestamp,
            expiry: a.expiry,
            seq_no: a.seq_no,
        }
    }
}

impl From<StorageAsk0> for StorageAsk {
    fn from(a: StorageAsk0) -> Self {
        Self {
            miner: a.miner,
            price: a.price,
            seq_no: a.seq_no,
            expiry: a.expiry,
            timestamp: a.timestamp,
            max_piece_size: a.max_piece_size,
            min_piece_size: a.min_piece_size,
            verified_price: a.verified_price,
        }
    }
}

#[derive(Serialize_tuple, Deserialize_tuple)]
pub(crate) struct SignedStorageAsk0 {
    ask: Option<StorageAsk0>,
    signature: Option<Signature>,
}

#[derive(Serialize_tuple, Deserialize_tuple)]
pub(crate) struct AskRequest0 {
    miner: Address,
}

#[derive(Serialize_tuple, Deserialize_tuple)]
pub(crate) struct AskResponse0 {
    ask: Option<SignedStorageAsk0>,
}

/// Encodes an ask request in the form of protocol 1.0.1 (tuple) or 1.1.0 (map).
pub(crate) fn encode_ask_request(req: &AskRequest, tuple: bool) -> Vec<u8> {
    if tuple {
        cbor::to_vec(&AskRequest0 { miner: req.miner })
    } else {
        cbor::to_vec(req)
    }
}

pub(crate) fn decode_ask_request(
    b: &[u8],
    tuple: bool,
    limit: usize,
) -> Result<AskRequest, cbor::DecodeError> {
    if tuple {
        let r: AskRequest0 = cbor::from_slice(b, limit)?;
        Ok(AskRequest { miner: r.miner })
    } else {
        cbor::from_slice(b, limit)
    }
}

pub(crate) fn encode_ask_response(res: &AskResponse, tuple: bool) -> Vec<u8> {
    if !tuple {
        return cbor::to_vec(res);
    }
    let ask = res.ask.as_ref().map(|s| SignedStorageAsk0 {
        ask: s.ask.as_ref().map(StorageAsk0::from),
        signature: s.signature.clone(),
    });
    cbor::to_vec(&AskResponse0 { ask })
}

pub(crate) fn decode_ask_response(
    b: &[u8],
    tuple: bool,
    limit: usize,
) -> Result<AskResponse, cbor::DecodeError> {
    if !tuple {
        return cbor::from_slice(b, limit);
    }
    let r: AskResponse0 = cbor::from_slice(b, limit)?;
    Ok(AskResponse {
        ask: r.ask.map(|s| SignedStorageAsk {
            ask: s.ask.map(StorageAsk::from),
            signature: s.signature,
        }),
    })
}

// ---------------------------------------------------------------------------------------
// go-fil-markets deal protocol 1.1.x

/// Transfer type of an offline (manually imported) deal in go-fil-markets.
pub const TRANSFER_TYPE_MANUAL: &str = "manual";
/// Transfer type of a graphsync push deal in go-fil-markets.
pub const TRANSFER_TYPE_GRAPHSYNC: &str = "graphsync";

/// Where a go-fil-markets deal's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// The payload root CID.
    #[serde(rename = "Root")]
    pub root: Cid,
    /// The piece CID, when the client computed it.
    #[serde(rename = "PieceCid")]
    pub piece_cid: Option<Cid>,
    /// The **unpadded** piece size.
    #[serde(rename = "PieceSize")]
    pub piece_size: u64,
    /// The payload size, only used for progress reporting.
    #[serde(rename = "RawBlockSize")]
    pub raw_block_size: u64,
    /// `"manual"` (offline) or `"graphsync"`.
    #[serde(rename = "TransferType")]
    pub transfer_type: String,
}

/// `/fil/storage/mk/1.1.1` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The data reference.
    #[serde(rename = "Piece")]
    pub piece: Option<DataRef>,
    /// The signed deal proposal.
    #[serde(rename = "DealProposal")]
    pub deal_proposal: Option<ClientDealProposal>,
    /// Whether the provider should keep an unsealed copy.
    #[serde(rename = "FastRetrieval")]
    pub fast_retrieval: bool,
}

/// The provider's answer to a 1.1.x proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The go-fil-markets deal status code: 18 (waiting for data) on acceptance, 11
    /// (failing) on rejection.
    #[serde(rename = "State")]
    pub state: u64,
    /// The rejection reason, empty on acceptance.
    #[serde(rename = "Message")]
    pub message: String,
    /// The signed proposal's CID.
    #[serde(rename = "Proposal")]
    pub proposal: Cid,
    /// The publish message, once sent.
    #[serde(rename = "PublishMessage")]
    pub publish_message: Option<Cid>,
}

/// A [`Response`] signed by the miner's worker key over its CBOR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedResponse {
    /// The response.
    #[serde(rename = "Response")]
    pub response: Response,
    /// The worker's signature.
    #[serde(rename = "Signature")]
    pub signature: Option<Signature>,
}

/// `/fil/storage/status/1.1.0` request, signed by the client over the CBOR of the proposal CID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStatusRequest {
    /// The signed proposal's CID.
    #[serde(rename = "Proposal")]
    pub proposal: Cid,
    /// The client's signature over [`status_request_payload`].
    #[serde(rename = "Signature")]
    pub signature: Signature,
}

/// The bytes a client signs in a 1.1.0 status request: the CBOR encoding of the proposal CID.
pub fn status_request_payload(proposal: &Cid) -> Vec<u8> {
    cbor::to_vec(proposal)
}

/// The provider's view of a deal, as the 1.1.0 status protocol reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDealState {
    /// go-fil-markets deal status code.
    #[serde(rename = "State")]
    pub state: u64,
    /// On-chain deal id, 0 before publication.
    #[serde(rename = "DealID")]
    pub deal_id: DealId,
    /// Error or progress text.
    #[serde(rename = "Message")]
    pub message: String,
    /// The deal proposal.
    #[serde(rename = "Proposal")]
    pub proposal: Option<DealProposal>,
    /// The publish message.
    #[serde(rename = "PublishCid")]
    pub publish_cid: Option<Cid>,
    /// The AddBalance message the provider sent, if any.
    #[serde(rename = "AddFundsCid")]
    pub add_funds_cid: Option<Cid>,
    /// The signed proposal's CID.
    #[serde(rename = "ProposalCid")]
    pub proposal_cid: Option<Cid>,
    /// Whether an unsealed copy is kept.
    #[serde(rename = "FastRetrieval")]
    pub fast_retrieval: bool,
}

/// `/fil/storage/status/1.1.0` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStatusResponse {
    /// The deal's state.
    #[serde(rename = "DealState")]
    pub deal_state: ProviderDealState,
    /// The worker's signature over the CBOR of `deal_state`.
    #[serde(rename = "Signature")]
    pub signature: Signature,
}

// ---------------------------------------------------------------------------------------
// Boost deal protocol 1.2.x

/// Boost transfer type of an HTTP pull.
pub const TRANSFER_TYPE_HTTP: &str = "http";
/// Boost transfer type of HTTP over a libp2p stream.
pub const TRANSFER_TYPE_LIBP2P: &str = "libp2p";

/// How the provider fetches an online deal's data. All zero for offline deals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Transfer {
    /// CAR size in bytes.
    #[serde(rename = "Size")]
    pub size: u64,
    /// `"http"` or `"libp2p"`; empty for offline deals.
    #[serde(rename = "Type")]
    pub kind: String,
    /// JSON of [`HttpRequest`].
    #[serde(rename = "Params", with = "serde_bytes")]
    pub params: Vec<u8>,
    /// Optional client-chosen transfer id.
    #[serde(rename = "ClientID")]
    pub client_id: String,
}

/// The JSON inside [`Transfer::params`]: what URL to GET, with which headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `http(s)://…` or `libp2p:///ip4/…/tcp/…/p2p/<peer>`.
    #[serde(rename = "URL")]
    pub url: String,
    /// Extra request headers (for example an Authorization token).
    #[serde(rename = "Headers", default)]
    pub headers: BTreeMap<String, String>,
}

/// `/fil/storage/mk/1.2.1` request (also accepted on 1.2.0, where the last two flags are
/// absent and default to `false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealParams {
    /// Client-chosen deal id.
    #[serde(rename = "DealUUID")]
    pub deal_uuid: DealUuid,
    /// How to fetch the data (zero for offline deals).
    #[serde(rename = "Transfer")]
    pub transfer: Transfer,
    /// Whether the data is imported manually.
    #[serde(rename = "IsOffline")]
    pub is_offline: bool,
    /// The payload root CID.
    #[serde(rename = "DealDataRoot")]
    pub deal_data_root: Cid,
    /// Do not announce to IPNI.
    #[serde(rename = "SkipIPNIAnnounce", default)]
    pub skip_ipni_announce: bool,
    /// The signed proposal.
    #[serde(rename = "ClientDealProposal")]
    pub client_deal_proposal: ClientDealProposal,
    /// Do not keep an unsealed copy.
    #[serde(rename = "RemoveUnsealedCopy", default)]
    pub remove_unsealed_copy: bool,
}

/// The 5-field 1.2.0 shape of [`DealParams`].
#[derive(Serialize)]
struct DealParamsV120<'a> {
    #[serde(rename = "DealUUID")]
    deal_uuid: &'a DealUuid,
    #[serde(rename = "Transfer")]
    transfer: &'a Transfer,
    #[serde(rename = "IsOffline")]
    is_offline: bool,
    #[serde(rename = "DealDataRoot")]
    deal_data_root: &'a Cid,
    #[serde(rename = "ClientDealProposal")]
    client_deal_proposal: &'a ClientDealProposal,
}

impl DealParams {
    /// An offline deal (data imported by hand) with a fresh UUID, keeping an unsealed copy.
    pub fn offline(client_deal_proposal: ClientDealProposal, deal_data_root: Cid) -> Self {
        Self {
            deal_uuid: DealUuid::new_v4(),
            transfer: Transfer::default(),
            is_offline: true,
            deal_data_root,
            skip_ipni_announce: false,
            client_deal_proposal,
            remove_unsealed_copy: false,
        }
    }

    /// The exact 1.2.0 encoding (five keys).
    pub fn to_cbor_v120(&self) -> Vec<u8> {
        cbor::to_vec(&DealParamsV120 {
            deal_uuid: &self.deal_uuid,
            transfer: &self.transfer,
            is_offline: self.is_offline,
            deal_data_root: &self.deal_data_root,
            client_deal_proposal: &self.client_deal_proposal,
        })
    }
}

/// The provider's answer to a 1.2.x proposal (unsigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealResponse {
    /// Whether the deal was accepted.
    #[serde(rename = "Accepted")]
    pub accepted: bool,
    /// The rejection reason.
    #[serde(rename = "Message")]
    pub message: String,
}

/// `/fil/storage/status/1.2.0` request, signed by the client over the 16 UUID bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStatusRequestV12 {
    /// The deal.
    #[serde(rename = "DealUUID")]
    pub deal_uuid: DealUuid,
    /// The client's signature over the raw UUID bytes.
    #[serde(rename = "Signature")]
    pub signature: Signature,
}

/// A deal's status as Boost reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStatus {
    /// Error text of a failed deal.
    #[serde(rename = "Error")]
    pub error: String,
    /// The checkpoint name (`Accepted`, `Transferred`, …, `Complete`).
    #[serde(rename = "Status")]
    pub status: String,
    /// The proposal.
    #[serde(rename = "Proposal")]
    pub proposal: DealProposal,
    /// The publish message.
    #[serde(rename = "PublishCid")]
    pub publish_cid: Option<Cid>,
    /// On-chain deal id, 0 before publication.
    #[serde(rename = "ChainDealID")]
    pub chain_deal_id: DealId,
    /// The sealing state of the sector holding the deal.
    #[serde(rename = "SealingStatus")]
    pub sealing_status: String,
    /// The signed proposal's CID.
    #[serde(rename = "SignedProposalCid")]
    pub signed_proposal_cid: Cid,
}

/// `/fil/storage/status/1.2.0` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStatusResponseV12 {
    /// The deal.
    #[serde(rename = "DealUUID")]
    pub deal_uuid: DealUuid,
    /// Why the status could not be given (unknown deal, bad signature).
    #[serde(rename = "Error")]
    pub error: String,
    /// Whether the deal is offline.
    #[serde(rename = "IsOffline")]
    pub is_offline: bool,
    /// The status, absent on error.
    #[serde(rename = "DealStatus")]
    pub deal_status: Option<DealStatus>,
    /// Transfer size in bytes.
    #[serde(rename = "TransferSize")]
    pub transfer_size: u64,
    /// Bytes received so far.
    #[serde(rename = "NBytesReceived")]
    pub n_bytes_received: u64,
}
