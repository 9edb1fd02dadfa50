//! The market actor's on-chain deal types, tuple-encoded field for field as
//! builtin-actors `actors/market/src/deal.rs` and go-state-types `builtin/v9/market` do.
//!
//! These are defined here rather than taken from `fil_actor_market_state`, which would pull
//! in the proofs stack and double the build; `tests/vectors.rs` pins the bytes against real
//! Lotus fixtures instead.

use commp::{PaddedPieceSize, SizeError};
use fvm_ipld_bitfield::BitField;
use fvm_ipld_encoding::tuple::*;

use crate::cbor;
use crate::cid::{Cid, Multihash};
use crate::multicodec::{BLAKE2B_256, DAG_CBOR, SHA2_256};
use crate::types::{Address, ChainEpoch, DealId, DealLabel, Signature, TokenAmount};

/// A storage deal as the market actor stores it (11-field tuple).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DealProposal {
    /// The piece commitment (a `baga…` CID).
    pub piece_cid: Cid,
    /// The padded piece size, as sent. Not validated on decode so that a bad value can be
    /// rejected with a reason; see [`DealProposal::padded_piece_size`].
    pub piece_size: u64,
    /// Whether the deal spends the client's DataCap.
    pub verified_deal: bool,
    /// The client (pays storage, signs the proposal).
    pub client: Address,
    /// The provider's miner actor.
    pub provider: Address,
    /// Free-form label, at most 256 bytes.
    pub label: DealLabel,
    /// The epoch by which the sector holding the deal must be proven.
    pub start_epoch: ChainEpoch,
    /// The epoch the deal ends.
    pub end_epoch: ChainEpoch,
    /// Total price per epoch for the whole piece (not per GiB).
    pub storage_price_per_epoch: TokenAmount,
    /// Collateral the provider locks, slashed on a fault.
    pub provider_collateral: TokenAmount,
    /// Collateral the client locks.
    pub client_collateral: TokenAmount,
}

impl DealProposal {
    /// The DAG-CBOR bytes, which are also what the client signs.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    /// The on-chain proposal CID: blake2b-256 over the DAG-CBOR of the unsigned proposal.
    /// The market actor keys pending proposals by it.
    pub fn cid(&self) -> Cid {
        cid_of(BLAKE2B_256, &self.to_cbor())
    }

    /// Deal duration in epochs.
    pub fn duration(&self) -> i64 {
        self.end_epoch.since(self.start_epoch)
    }

    /// The piece size, if it is a valid padded size.
    pub fn padded_piece_size(&self) -> Result<PaddedPieceSize, SizeError> {
        PaddedPieceSize::new(self.piece_size)
    }

    /// What the client pays over the whole deal: price per epoch × duration.
    pub fn total_storage_fee(&self) -> TokenAmount {
        let epochs = u128::try_from(self.duration()).unwrap_or(0);
        self.storage_price_per_epoch
            .checked_mul(epochs)
            .unwrap_or(TokenAmount::from_atto(u128::MAX))
    }

    /// The client's total lock: collateral plus the whole storage fee.
    pub fn client_balance_requirement(&self) -> TokenAmount {
        self.client_collateral
            .checked_add(self.total_storage_fee())
            .unwrap_or(TokenAmount::from_atto(u128::MAX))
    }
}

/// A deal proposal with the client's signature over [`DealProposal::to_cbor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ClientDealProposal {
    /// The proposal.
    pub proposal: DealProposal,
    /// The client's signature.
    pub client_signature: Signature,
}

impl ClientDealProposal {
    /// The market's proposal CID (go-fil-markets `ProposalCid`, Boost `SignedProposalCid`):
    /// sha2-256 over the DAG-CBOR of the *signed* proposal. Not the on-chain CID.
    pub fn cid(&self) -> Cid {
        cid_of(SHA2_256, &cbor::to_vec(self))
    }
}

/// Parameters of `PublishStorageDeals` (method 4 on the market actor f05).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PublishStorageDealsParams {
    /// The deals, all for one provider.
    pub deals: Vec<ClientDealProposal>,
}

/// Return value of `PublishStorageDeals` (actors v6+).
#[derive(Debug, Clone, PartialEq, Serialize_tuple, Deserialize_tuple)]
pub struct PublishStorageDealsReturn {
    /// The ids of the valid deals, in input order.
    pub ids: Vec<DealId>,
    /// Which input indices were valid (RLE+ bitfield).
    pub valid_deals: BitField,
}

impl PublishStorageDealsReturn {
    /// The deal id assigned to input `index`, or `None` if that deal was dropped as invalid.
    pub fn deal_id_for(&self, index: u64) -> Option<DealId> {
        if !self.valid_deals.get(index) {
            return None;
        }
        let before = self.valid_deals.iter().take_while(|&i| i < index).count();
        self.ids.get(before).copied()
    }
}

/// The market actor's per-deal state (v9 shape, 4-field tuple).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DealState {
    /// The epoch the sector holding the deal was activated, −1 before.
    pub sector_start_epoch: ChainEpoch,
    /// The last epoch payments were settled, −1 before the first.
    pub last_updated_epoch: ChainEpoch,
    /// The epoch the deal was slashed, −1 if never.
    pub slash_epoch: ChainEpoch,
    /// The verified-registry claim id, 0 for unverified deals.
    pub verified_claim: u64,
}

/// Method numbers on the market actor (f05) that a market node calls.
pub mod method {
    /// `AddBalance(address)` with the deposit as message value.
    pub const ADD_BALANCE: u64 = 2;
    /// `WithdrawBalance`.
    pub const WITHDRAW_BALANCE: u64 = 3;
    /// `PublishStorageDeals`.
    pub const PUBLISH_STORAGE_DEALS: u64 = 4;
}

/// The market actor's address.
pub const STORAGE_MARKET_ACTOR: Address = Address::new_id(5);

fn cid_of(hash_code: u64, bytes: &[u8]) -> Cid {
    let digest: [u8; 32] = match hash_code {
        SHA2_256 => {
            use sha2::Digest;
            sha2::Sha256::digest(bytes).into()
        }
        _ => blake2b_256(bytes),
    };
    let mh = Multihash::wrap(hash_code, &digest).expect("32-byte digest fits");
    Cid::new_v1(DAG_CBOR, mh)
}

/// blake2b-256 of `bytes`, the pre-hash of secp256k1 signatures and message CIDs.
pub fn blake2b_256(bytes: &[u8]) -> [u8; 32] {
    let h = blake2b_simd::Params::new().hash_length(32).hash(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(h.as_bytes());
    out
}

/// A blake2b-256 DAG-CBOR CID of `bytes`, as chain messages use.
pub fn chain_cid(bytes: &[u8]) -> Cid {
    cid_of(BLAKE2B_256, bytes)
}
