//! The miner actor's sector messages, tuple-encoded field for field as builtin-actors
//! `actors/miner/src/types.rs`: what a sealer sends to put deals into sectors, and what the
//! devnet checks.
//!
//! Since FIP-0084 (nv23) the one way to prove a new sector is `ProveCommitSectors3`; pieces
//! are named at pre-commit (builtin-market deal ids, whose pieces the market actor turns into
//! commD) or in the prove-commit's activation manifest (direct data onboarding).

use fvm_ipld_encoding::tuple::*;

use crate::cid::Cid;
use crate::types::{Address, ChainEpoch, DealId, SectorNumber};

/// Method numbers on a miner actor.
pub mod method {
    /// `PreCommitSectorBatch2(PreCommitSectorBatchParams2)`.
    pub const PRE_COMMIT_SECTOR_BATCH2: u64 = 28;
    /// `ProveCommitSectors3(ProveCommitSectors3Params)`.
    pub const PROVE_COMMIT_SECTORS3: u64 = 34;
    /// `ProveReplicaUpdates3(ProveReplicaUpdates3Params)`: snap deals into a proven CC sector.
    pub const PROVE_REPLICA_UPDATES3: u64 = 35;
    /// `ChangeMultiaddrs(ChangeMultiaddrsParams)`: where the miner's market node listens.
    pub const CHANGE_MULTIADDRS: u64 = 18;
    /// `ChangePeerID(ChangePeerIDParams)`: the market node's libp2p peer id, which retrieval
    /// checkers and IPNI look the miner up by.
    pub const CHANGE_PEER_ID: u64 = 23;
}

/// `ChangePeerIDParams`: the peer id's bytes (a multihash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ChangePeerIdParams {
    /// `NewID`.
    #[serde(with = "serde_bytes")]
    pub new_id: Vec<u8>,
}

/// `ChangeMultiaddrsParams`: binary multiaddrs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ChangeMultiaddrsParams {
    /// `NewMultiaddrs`.
    pub new_multiaddrs: Vec<serde_bytes::ByteBuf>,
}

/// `abi.RegisteredSealProof` → sector size in bytes, for every seal proof the network has
/// had (V1, V1_1, V1_1 with synthetic PoRep, V1_2 NI-PoRep; each in the five sizes).
pub fn seal_proof_sector_size(proof: i64) -> Option<u64> {
    Some(match proof {
        0 | 5 | 10 | 15 => 2 << 10,
        1 | 6 | 11 | 16 => 8 << 20,
        2 | 7 | 12 | 17 => 512 << 20,
        3 | 8 | 13 | 18 => 32 << 30,
        4 | 9 | 14 | 19 => 64 << 30,
        _ => return None,
    })
}

/// The V1_1 seal proof of a sector size: what a new sector declares.
pub fn seal_proof_for(sector_size: u64) -> Option<i64> {
    (5..=9).find(|p| seal_proof_sector_size(*p) == Some(sector_size))
}

/// One sector of a pre-commit batch (`miner.SectorPreCommitInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorPreCommitInfo {
    /// `abi.RegisteredSealProof`; implies the sector size.
    pub seal_proof: i64,
    /// The sector number, unique per miner.
    pub sector_number: SectorNumber,
    /// commR.
    pub sealed_cid: Cid,
    /// The ticket epoch.
    pub seal_rand_epoch: ChainEpoch,
    /// Builtin-market deals in the sector, in layout order.
    pub deal_ids: Vec<DealId>,
    /// Expiration epoch.
    pub expiration: ChainEpoch,
    /// commD (`CompactCommD`): `None` stands for a sector of zeros.
    pub unsealed_cid: Option<Cid>,
}

/// `PreCommitSectorBatch2` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PreCommitSectorBatchParams2 {
    /// The sectors.
    pub sectors: Vec<SectorPreCommitInfo>,
}

/// A verified allocation a piece claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct VerifiedAllocationKey {
    /// The client's actor id.
    pub client: u64,
    /// The allocation id.
    pub id: u64,
}

/// An actor told about a piece once its sector is active (the market actor, for DDO deals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct DataActivationNotification {
    /// The actor.
    pub address: Address,
    /// What it is told (for the market actor: the CBOR deal id).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// One piece of a sector being activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct PieceActivationManifest {
    /// The piece CID.
    pub cid: Cid,
    /// The padded piece size.
    pub size: u64,
    /// The verified allocation it claims, if any.
    pub verified_allocation_key: Option<VerifiedAllocationKey>,
    /// Actors to notify.
    pub notify: Vec<DataActivationNotification>,
}

/// A sector being activated and its pieces, in order (an implicit zero piece fills the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorActivationManifest {
    /// The sector.
    pub sector_number: SectorNumber,
    /// Its pieces.
    pub pieces: Vec<PieceActivationManifest>,
}

/// A byte string inside a CBOR list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Proof(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// `ProveCommitSectors3` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ProveCommitSectors3Params {
    /// One manifest per sector proven.
    pub sector_activations: Vec<SectorActivationManifest>,
    /// One proof per sector, parallel to the manifests (or none with an aggregate).
    pub sector_proofs: Vec<Proof>,
    /// An aggregate proof of all sectors (or empty with per-sector proofs).
    #[serde(with = "serde_bytes")]
    pub aggregate_proof: Vec<u8>,
    /// The aggregate's proof type, `None` without one.
    pub aggregate_proof_type: Option<i64>,
    /// Abort the whole message if any sector fails to activate.
    pub require_activation_success: bool,
    /// Abort if any notification fails.
    pub require_notification_success: bool,
}

/// New content for a proven committed-capacity sector (a snap deal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct SectorUpdateManifest {
    /// The sector.
    pub sector: SectorNumber,
    /// Its deadline.
    pub deadline: u64,
    /// Its partition.
    pub partition: u64,
    /// The new commR.
    pub new_sealed_cid: Cid,
    /// All pieces of the new content, in order (they imply the new commD).
    pub pieces: Vec<PieceActivationManifest>,
}

/// `ProveReplicaUpdates3` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct ProveReplicaUpdates3Params {
    /// One manifest per sector updated.
    pub sector_updates: Vec<SectorUpdateManifest>,
    /// One proof per sector (or none with an aggregate).
    pub sector_proofs: Vec<Proof>,
    /// An aggregate proof (or empty).
    #[serde(with = "serde_bytes")]
    pub aggregate_proof: Vec<u8>,
    /// `abi.RegisteredUpdateProof`.
    pub update_proofs_type: i64,
    /// The aggregate's proof type, `None` without one.
    pub aggregate_proof_type: Option<i64>,
    /// Abort if any sector fails.
    pub require_activation_success: bool,
    /// Abort if any notification fails.
    pub require_notification_success: bool,
}

/// One failure in a [`BatchReturn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize_tuple, Deserialize_tuple)]
pub struct FailCode {
    /// Index of the failed item.
    pub idx: u32,
    /// Its exit code.
    pub code: u32,
}

/// Per-item results of a batch method (`ProveCommitSectors3Return`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize_tuple, Deserialize_tuple)]
pub struct BatchReturn {
    /// How many items succeeded.
    pub success_count: u64,
    /// The ones that failed.
    pub fail_codes: Vec<FailCode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_proofs_map_to_sizes() {
        assert_eq!(seal_proof_sector_size(8), Some(32 << 30));
        assert_eq!(seal_proof_sector_size(0), Some(2048));
        assert_eq!(seal_proof_sector_size(20), None);
        assert_eq!(seal_proof_for(2048), Some(5));
        assert_eq!(seal_proof_for(64 << 30), Some(9));
        assert_eq!(seal_proof_for(4096), None);
    }

    #[test]
    fn precommit_encodes_as_a_tuple_with_compact_commd() {
        let cid: Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap();
        let info = SectorPreCommitInfo {
            seal_proof: 5,
            sector_number: SectorNumber(9),
            sealed_cid: cid,
            seal_rand_epoch: ChainEpoch::new(10),
            deal_ids: vec![DealId(1), DealId(2)],
            expiration: ChainEpoch::new(1000),
            unsealed_cid: None,
        };
        let bytes = crate::cbor::to_vec(&PreCommitSectorBatchParams2 {
            sectors: vec![info.clone()],
        });
        // [[ 5, 9, cid, 10, [1, 2], 1000, null ]]
        assert_eq!(&bytes[..4], &[0x81, 0x81, 0x87, 0x05]);
        assert_eq!(bytes[bytes.len() - 1], 0xf6, "a zero commD is CBOR null");
        let back: PreCommitSectorBatchParams2 = crate::cbor::from_slice(&bytes, 1 << 10).unwrap();
        assert_eq!(back.sectors, vec![info]);
    }
}
