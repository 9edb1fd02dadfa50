//! The miner actor's sector rules on the dev chain: `PreCommitSectorBatch2` and
//! `ProveCommitSectors3`, checked as the miner and market actors check them, without proofs.
//!
//! A pre-commit naming deals must declare the commD of their pieces laid out in order
//! (the market actor's `VerifyDealsForActivation` computes it); the deals must be the
//! miner's, published, not yet in a sector and not past their start epoch, and end before
//! the sector expires. A prove-commit's manifest, when it lists pieces, must give that same
//! commD; pieces notifying the market actor with a deal id activate that deal (direct data
//! onboarding). Proofs are accepted if present (the dev chain has no proofs stack).

use serde::{Deserialize, Serialize};

use commp::commd::{Piece, unsealed_sector_commitment};
use commp::{Commitment, PaddedPieceSize, PieceCid};
use market_core::Cid;
use market_core::chain::{ExitCode, SectorOnChain, SectorStage};
use market_core::deal;
use market_core::miner::{
    BatchReturn, FailCode, PieceActivationManifest, ProveCommitSectors3Params,
    ProveReplicaUpdates3Params, SectorActivationManifest, SectorPreCommitInfo,
    SectorUpdateManifest, seal_proof_sector_size,
};
use market_core::types::{ChainEpoch, DealId, SectorNumber};

use super::State;

/// A sector of a miner, as the dev chain keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SectorRecord {
    /// What its pre-commit declared.
    pub info: SectorPreCommitInfo,
    /// Pre-committed or proven.
    pub stage: SectorStage,
    /// The epoch the pre-commit landed.
    pub precommit_epoch: i64,
    /// The epoch it was proven, −1 before.
    pub activation: i64,
}

impl SectorRecord {
    /// The chain-facing view.
    pub fn on_chain(&self) -> SectorOnChain {
        SectorOnChain {
            stage: self.stage,
            deal_ids: self.info.deal_ids.clone(),
            unsealed_cid: self.info.unsealed_cid,
            expiration: self.info.expiration,
        }
    }
}

/// A refused sector message: the exit code the receipt carries and the reason, which the
/// devnet logs (a real chain's receipt has only the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: ExitCode,
    pub(crate) reason: String,
}

fn illegal(reason: String) -> Refusal {
    Refusal {
        code: ExitCode::ILLEGAL_ARGUMENT,
        reason,
    }
}

/// The commD of `pieces` in a sector of `sector_size`, as a piece CID (the form pre-commits
/// carry).
pub(crate) fn commd_of(sector_size: u64, pieces: &[(Cid, u64)]) -> Result<Cid, String> {
    let size = PaddedPieceSize::new(sector_size).map_err(|e| format!("sector size: {e}"))?;
    let pieces = pieces
        .iter()
        .map(|(cid, size)| {
            let commitment: Commitment = PieceCid::from_cid(cid)
                .map_err(|e| format!("piece {cid}: {e}"))?
                .commitment();
            let size = PaddedPieceSize::new(*size).map_err(|e| format!("piece {cid}: {e}"))?;
            Ok(Piece { commitment, size })
        })
        .collect::<Result<Vec<_>, String>>()?;
    unsealed_sector_commitment(size, &pieces)
        .map(|c| market_core::cid::widen(&c.to_cid_v1()))
        .map_err(|e| e.to_string())
}

/// Exactly one of per-sector proofs (one per sector, none empty) or an aggregate proof with
/// its type: the miner actor's shape check (the proofs themselves are not verified here).
fn check_proofs(
    count: usize,
    sector_proofs: &[market_core::miner::Proof],
    aggregate: &[u8],
    aggregate_type: Option<i64>,
) -> Result<(), Refusal> {
    let ok = if aggregate.is_empty() {
        sector_proofs.len() == count && sector_proofs.iter().all(|p| !p.0.is_empty())
    } else {
        sector_proofs.is_empty() && aggregate_type.is_some()
    };
    if count == 0 || !ok {
        return Err(illegal(
            "exactly one of sector_proofs (one per sector) or aggregate_proof must be given".into(),
        ));
    }
    Ok(())
}

/// Checks each item of a batch: the ones that pass, and the failures' exit codes; with
/// `require_all`, the first failure refuses the whole message.
fn check_batch<I, T>(
    items: &[I],
    require_all: bool,
    sector: impl Fn(&I) -> SectorNumber,
    mut check: impl FnMut(&I) -> Result<T, Refusal>,
) -> Result<(Vec<T>, BatchReturn), Refusal> {
    let mut ret = BatchReturn::default();
    let mut passed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match check(item) {
            Ok(t) => passed.push(t),
            Err(refusal) if require_all => return Err(refusal),
            Err(refusal) => {
                tracing::warn!(sector = %sector(item), reason = %refusal.reason, "devnet: sector left out of a batch");
                ret.fail_codes.push(FailCode {
                    idx: i as u32,
                    code: refusal.code.0,
                });
            }
        }
    }
    ret.success_count = passed.len() as u64;
    Ok((passed, ret))
}

impl State {
    /// Refuses `sender` unless it may send sector messages for miner `mid`.
    fn check_sealer(&self, mid: u64, sender: u64) -> Result<(), Refusal> {
        if self.may_seal(mid, sender) {
            Ok(())
        } else {
            Err(Refusal {
                code: ExitCode::FORBIDDEN,
                reason: format!("f0{sender} is not a worker or control address of f0{mid}"),
            })
        }
    }

    /// Whether `sender` may send sector messages for miner `mid` (its worker or a control
    /// address; the owner too, as the actor allows).
    fn may_seal(&self, mid: u64, sender: u64) -> bool {
        self.miners.get(&mid).is_some_and(|m| {
            std::iter::once(&m.worker)
                .chain(std::iter::once(&m.owner))
                .chain(&m.control_addresses)
                .any(|a| self.resolve(a) == Some(sender))
        })
    }

    /// The pieces of `deals` for a sector of miner `mid`, checked for pre-commit.
    fn precommit_deal_pieces(
        &self,
        mid: u64,
        sector: &SectorPreCommitInfo,
        claimed: &[DealId],
    ) -> Result<Vec<(Cid, u64)>, Refusal> {
        let mut pieces = Vec::with_capacity(sector.deal_ids.len());
        for (i, id) in sector.deal_ids.iter().enumerate() {
            let d = self.deals.get(&id.0).ok_or_else(|| Refusal {
                code: ExitCode::NOT_FOUND,
                reason: format!("deal {id} not found"),
            })?;
            let why = if d.provider != mid {
                Some(format!("deal {id} is not for miner f0{mid}"))
            } else if d.state.sector_start_epoch.get() >= 0 {
                Some(format!("deal {id} already activated"))
            } else if d.proposal.start_epoch.get() < self.epoch {
                Some(format!(
                    "deal {id} start epoch {} has passed (epoch {})",
                    d.proposal.start_epoch, self.epoch
                ))
            } else if d.proposal.end_epoch > sector.expiration {
                Some(format!(
                    "deal {id} ends at {} after the sector expires at {}",
                    d.proposal.end_epoch, sector.expiration
                ))
            } else if sector.deal_ids[..i].contains(id) || claimed.contains(id) {
                Some(format!("deal {id} is named twice"))
            } else if self.deal_in_a_sector(mid, *id) {
                Some(format!("deal {id} is already in a pre-committed sector"))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(illegal(why));
            }
            pieces.push((d.proposal.piece_cid, d.proposal.piece_size));
        }
        Ok(pieces)
    }

    fn deal_in_a_sector(&self, mid: u64, id: DealId) -> bool {
        self.sectors
            .iter()
            .any(|((m, _), s)| *m == mid && s.info.deal_ids.contains(&id))
    }

    /// `PreCommitSectorBatch2` from `sender` to miner `mid`: all sectors or none.
    pub(crate) fn precommit_batch(
        &mut self,
        mid: u64,
        sender: u64,
        sectors: Vec<SectorPreCommitInfo>,
    ) -> Result<(), Refusal> {
        self.check_sealer(mid, sender)?;
        let miner_size = self.miners.get(&mid).map(|m| m.sector_size).unwrap_or(0);
        if sectors.is_empty() {
            return Err(illegal("no sectors to pre-commit".into()));
        }
        let mut claimed = Vec::new();
        for (i, sector) in sectors.iter().enumerate() {
            let n = sector.sector_number;
            if seal_proof_sector_size(sector.seal_proof) != Some(miner_size) {
                return Err(illegal(format!(
                    "sector {n}: seal proof {} does not make {miner_size}-byte sectors",
                    sector.seal_proof
                )));
            }
            if self.sectors.contains_key(&(mid, n.0))
                || sectors[..i].iter().any(|s| s.sector_number == n)
            {
                return Err(illegal(format!("sector {n} is already allocated")));
            }
            if sector.expiration.get() <= self.epoch {
                return Err(illegal(format!(
                    "sector {n} expires at {} which is not after epoch {}",
                    sector.expiration, self.epoch
                )));
            }
            let pieces = self.precommit_deal_pieces(mid, sector, &claimed)?;
            claimed.extend(sector.deal_ids.iter().copied());
            if !pieces.is_empty() {
                let want = commd_of(miner_size, &pieces)
                    .map_err(|e| illegal(format!("sector {n}: deals do not fit: {e}")))?;
                if sector.unsealed_cid != Some(want) {
                    return Err(illegal(format!(
                        "sector {n}: unsealed CID {} is not the commD {want} of its deals",
                        sector
                            .unsealed_cid
                            .map_or_else(|| "(zero)".to_owned(), |c| c.to_string())
                    )));
                }
            }
        }
        let epoch = self.epoch;
        for info in sectors {
            self.sectors.insert(
                (mid, info.sector_number.0),
                SectorRecord {
                    info,
                    stage: SectorStage::PreCommitted,
                    precommit_epoch: epoch,
                    activation: -1,
                },
            );
        }
        Ok(())
    }

    /// Checks one sector's activation; returns the deals it activates.
    fn check_activation(
        &self,
        mid: u64,
        manifest: &SectorActivationManifest,
    ) -> Result<Vec<DealId>, Refusal> {
        let n = manifest.sector_number;
        let record = self
            .sectors
            .get(&(mid, n.0))
            .filter(|s| s.stage == SectorStage::PreCommitted)
            .ok_or_else(|| Refusal {
                code: ExitCode::NOT_FOUND,
                reason: format!("sector {n} is not pre-committed"),
            })?;
        let miner_size = self.miners.get(&mid).map(|m| m.sector_size).unwrap_or(0);
        let mut deals = record.info.deal_ids.clone();
        if !manifest.pieces.is_empty() {
            let pieces: Vec<(Cid, u64)> = manifest.pieces.iter().map(|p| (p.cid, p.size)).collect();
            let got = commd_of(miner_size, &pieces)
                .map_err(|e| illegal(format!("sector {n}: pieces do not fit: {e}")))?;
            let declared = match record.info.unsealed_cid {
                Some(c) => c,
                None => commd_of(miner_size, &[]).map_err(illegal)?,
            };
            if got != declared {
                return Err(illegal(format!(
                    "sector {n}: the manifest's pieces give commD {got}, the pre-commit declared {declared}"
                )));
            }
            for id in &record.info.deal_ids {
                let Some(d) = self.deals.get(&id.0) else {
                    continue;
                };
                if !pieces.contains(&(d.proposal.piece_cid, d.proposal.piece_size)) {
                    return Err(illegal(format!(
                        "sector {n}: deal {id}'s piece is missing from the manifest"
                    )));
                }
            }
            for piece in &manifest.pieces {
                deals.extend(self.notified_deals(piece));
            }
        }
        for id in &deals {
            let d = self.deals.get(&id.0).ok_or_else(|| Refusal {
                code: ExitCode::NOT_FOUND,
                reason: format!("sector {n}: deal {id} not found (expired or timed out)"),
            })?;
            if d.provider != mid {
                return Err(illegal(format!("deal {id} is not for miner f0{mid}")));
            }
            if d.state.sector_start_epoch.get() >= 0 {
                return Err(illegal(format!("deal {id} already activated")));
            }
            if d.proposal.start_epoch.get() < self.epoch {
                return Err(illegal(format!("deal {id} start epoch has passed")));
            }
        }
        Ok(deals)
    }

    /// Deal ids a piece's notifications give the market actor.
    fn notified_deals(&self, piece: &PieceActivationManifest) -> Vec<DealId> {
        piece
            .notify
            .iter()
            .filter(|n| n.address == deal::STORAGE_MARKET_ACTOR)
            .filter_map(|n| market_core::cbor::from_slice::<DealId>(&n.payload, 64).ok())
            .collect()
    }

    /// `ProveCommitSectors3` from `sender` to miner `mid`.
    pub(crate) fn prove_commit(
        &mut self,
        mid: u64,
        sender: u64,
        params: &ProveCommitSectors3Params,
    ) -> Result<BatchReturn, Refusal> {
        self.check_sealer(mid, sender)?;
        check_proofs(
            params.sector_activations.len(),
            &params.sector_proofs,
            &params.aggregate_proof,
            params.aggregate_proof_type,
        )?;
        let (activations, ret) = check_batch(
            &params.sector_activations,
            params.require_activation_success,
            |m| m.sector_number,
            |m| Ok((m.sector_number, self.check_activation(mid, m)?)),
        )?;
        let epoch = ChainEpoch::new(self.epoch);
        for (sector, deals) in activations {
            if let Some(record) = self.sectors.get_mut(&(mid, sector.0)) {
                record.stage = SectorStage::Proven;
                record.activation = epoch.get();
            }
            for id in deals {
                if let Some(d) = self.deals.get_mut(&id.0) {
                    d.state.sector_start_epoch = epoch;
                    d.sector = Some(sector);
                }
            }
        }
        Ok(ret)
    }

    /// `ProveReplicaUpdates3` from `sender` to miner `mid`: deals snapped into proven
    /// committed-capacity sectors, each piece naming its deal in a notification to the
    /// market actor.
    pub(crate) fn prove_replica_updates(
        &mut self,
        mid: u64,
        sender: u64,
        params: &ProveReplicaUpdates3Params,
    ) -> Result<BatchReturn, Refusal> {
        self.check_sealer(mid, sender)?;
        check_proofs(
            params.sector_updates.len(),
            &params.sector_proofs,
            &params.aggregate_proof,
            params.aggregate_proof_type,
        )?;
        let (updates, ret) = check_batch(
            &params.sector_updates,
            params.require_activation_success,
            |u| u.sector,
            |u| self.check_update(mid, u),
        )?;
        let epoch = ChainEpoch::new(self.epoch);
        for (update, commd, deals) in updates {
            if let Some(record) = self.sectors.get_mut(&(mid, update.sector.0)) {
                record.info.sealed_cid = update.new_sealed_cid;
                record.info.unsealed_cid = Some(commd);
            }
            for id in deals {
                if let Some(d) = self.deals.get_mut(&id.0) {
                    d.state.sector_start_epoch = epoch;
                    d.sector = Some(update.sector);
                }
            }
        }
        Ok(ret)
    }

    /// Checks one snap: a proven sector with no data yet, pieces that fit, deals that can
    /// still start and end before the sector does. Returns the new commD and the deals.
    fn check_update(
        &self,
        mid: u64,
        update: &SectorUpdateManifest,
    ) -> Result<(SectorUpdateManifest, Cid, Vec<DealId>), Refusal> {
        let n = update.sector;
        let record = self
            .sectors
            .get(&(mid, n.0))
            .filter(|s| s.stage == SectorStage::Proven)
            .ok_or_else(|| Refusal {
                code: ExitCode::NOT_FOUND,
                reason: format!("sector {n} is not a proven sector"),
            })?;
        let holds_data = !record.info.deal_ids.is_empty()
            || self
                .deals
                .values()
                .any(|d| d.provider == mid && d.sector == Some(n));
        if holds_data {
            return Err(illegal(format!("sector {n} already holds data")));
        }
        if update.pieces.is_empty() {
            return Err(illegal(format!("sector {n}: a snap needs pieces")));
        }
        let miner_size = self.miners.get(&mid).map(|m| m.sector_size).unwrap_or(0);
        let pieces: Vec<(Cid, u64)> = update.pieces.iter().map(|p| (p.cid, p.size)).collect();
        let commd = commd_of(miner_size, &pieces)
            .map_err(|e| illegal(format!("sector {n}: pieces do not fit: {e}")))?;
        let mut deals = Vec::new();
        for piece in &update.pieces {
            for id in self.notified_deals(piece) {
                let d = self.deals.get(&id.0).ok_or_else(|| Refusal {
                    code: ExitCode::NOT_FOUND,
                    reason: format!("deal {id} not found"),
                })?;
                let why = if d.provider != mid {
                    Some(format!("deal {id} is not for miner f0{mid}"))
                } else if d.state.sector_start_epoch.get() >= 0 || deals.contains(&id) {
                    Some(format!("deal {id} already activated"))
                } else if d.proposal.start_epoch.get() < self.epoch {
                    Some(format!("deal {id} start epoch has passed"))
                } else if (d.proposal.piece_cid, d.proposal.piece_size) != (piece.cid, piece.size) {
                    Some(format!("deal {id} is for another piece"))
                } else if d.proposal.end_epoch > record.info.expiration {
                    Some(format!("deal {id} ends after sector {n} expires"))
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(illegal(why));
                }
                deals.push(id);
            }
        }
        Ok((update.clone(), commd, deals))
    }

    /// A miner's sector.
    pub(crate) fn sector(&self, mid: u64, n: SectorNumber) -> Option<&SectorRecord> {
        self.sectors.get(&(mid, n.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ActiveDeal;
    use market_core::chain::MinerInfo;
    use market_core::deal::{DealProposal, DealState};
    use market_core::miner::{Proof, SectorActivationManifest};
    use market_core::types::{Address, DealLabel, TokenAmount};

    const MINER: u64 = 1000;
    const WORKER: u64 = 1001;

    fn piece(seed: u8) -> (Cid, u64) {
        let info = commp::commp(&[seed; 900]).unwrap();
        (
            market_core::cid::widen(&info.cid_v1()),
            info.padded_size.get(),
        )
    }

    /// A chain at epoch 100 with miner f01000 (2 KiB sectors, worker f01001) and deals 1
    /// and 2 of 1 KiB pieces, starting at 200.
    fn state() -> State {
        let mut s = State {
            epoch: 100,
            next_id: WORKER,
            ..State::default()
        };
        let key: Address = "f15ihq5ibzwki2b4ep2f46avlkrqzhpqgtga7pdrq".parse().unwrap();
        assert_eq!(s.ensure_account(key), WORKER);
        s.miners.insert(
            MINER,
            MinerInfo {
                owner: Address::new_id(WORKER),
                worker: Address::new_id(WORKER),
                control_addresses: vec![],
                sector_size: 2048,
            },
        );
        for (id, seed) in [(1u64, 1u8), (2, 2)] {
            let (cid, size) = piece(seed);
            s.deals.insert(
                id,
                ActiveDeal {
                    proposal: DealProposal {
                        piece_cid: cid,
                        piece_size: size,
                        verified_deal: false,
                        client: Address::new_id(2000),
                        provider: Address::new_id(MINER),
                        label: DealLabel::default(),
                        start_epoch: ChainEpoch::new(200),
                        end_epoch: ChainEpoch::new(1000),
                        storage_price_per_epoch: TokenAmount::ZERO,
                        provider_collateral: TokenAmount::ZERO,
                        client_collateral: TokenAmount::ZERO,
                    },
                    state: DealState {
                        sector_start_epoch: ChainEpoch::new(-1),
                        last_updated_epoch: ChainEpoch::new(-1),
                        slash_epoch: ChainEpoch::new(-1),
                        verified_claim: 0,
                    },
                    client: 2000,
                    provider: MINER,
                    sector: None,
                },
            );
        }
        s
    }

    fn precommit(n: u64, deals: &[u64], commd: Option<Cid>) -> SectorPreCommitInfo {
        SectorPreCommitInfo {
            seal_proof: 5,
            sector_number: SectorNumber(n),
            sealed_cid: Cid::default(),
            seal_rand_epoch: ChainEpoch::new(99),
            deal_ids: deals.iter().map(|d| DealId(*d)).collect(),
            expiration: ChainEpoch::new(5000),
            unsealed_cid: commd,
        }
    }

    fn prove(n: u64, pieces: &[(Cid, u64)]) -> ProveCommitSectors3Params {
        ProveCommitSectors3Params {
            sector_activations: vec![SectorActivationManifest {
                sector_number: SectorNumber(n),
                pieces: pieces
                    .iter()
                    .map(|(cid, size)| PieceActivationManifest {
                        cid: *cid,
                        size: *size,
                        verified_allocation_key: None,
                        notify: vec![],
                    })
                    .collect(),
            }],
            sector_proofs: vec![Proof(vec![1])],
            aggregate_proof: vec![],
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        }
    }

    #[test]
    fn a_precommit_must_declare_the_commd_of_its_deals() {
        let mut s = state();
        let (p1, p2) = (piece(1), piece(2));
        let right = commd_of(2048, &[p1, p2]).unwrap();
        let swapped = commd_of(2048, &[p2, p1]).unwrap();
        assert_ne!(right, swapped, "order matters");
        let r = s
            .precommit_batch(MINER, WORKER, vec![precommit(1, &[1, 2], Some(swapped))])
            .unwrap_err();
        assert_eq!(r.code, ExitCode::ILLEGAL_ARGUMENT);
        assert!(r.reason.contains("is not the commD"), "{}", r.reason);
        let r = s
            .precommit_batch(MINER, WORKER, vec![precommit(1, &[1, 2], None)])
            .unwrap_err();
        assert!(r.reason.contains("(zero)"), "{}", r.reason);
        // Through a message, the receipt carries the exit code.
        let msg = market_core::chain::Message {
            from: Address::new_id(WORKER),
            to: Address::new_id(MINER),
            method: market_core::miner::method::PRE_COMMIT_SECTOR_BATCH2,
            params: market_core::cbor::to_vec(&market_core::miner::PreCommitSectorBatchParams2 {
                sectors: vec![precommit(1, &[1, 2], Some(swapped))],
            }),
            value: TokenAmount::ZERO,
            max_fee: TokenAmount::ZERO,
            uuid: None,
        };
        assert_eq!(
            s.miner_method(MINER, WORKER, &msg).unwrap_err().code,
            ExitCode::ILLEGAL_ARGUMENT
        );
        s.precommit_batch(MINER, WORKER, vec![precommit(1, &[1, 2], Some(right))])
            .unwrap();
        assert_eq!(
            s.sector(MINER, SectorNumber(1)).unwrap().stage,
            SectorStage::PreCommitted
        );
    }

    #[test]
    fn precommits_check_miner_deals_size_and_sender() {
        let mut s = state();
        let c1 = commd_of(2048, &[piece(1)]).unwrap();
        let refuse = |s: &mut State, sender, info: SectorPreCommitInfo| {
            s.precommit_batch(MINER, sender, vec![info]).unwrap_err()
        };
        assert_eq!(
            refuse(&mut s, 3000, precommit(1, &[1], Some(c1))).code,
            ExitCode::FORBIDDEN
        );
        let mut wrong_size = precommit(1, &[1], Some(c1));
        wrong_size.seal_proof = 8;
        assert!(
            refuse(&mut s, WORKER, wrong_size)
                .reason
                .contains("seal proof")
        );
        assert_eq!(
            refuse(&mut s, WORKER, precommit(1, &[9], Some(c1))).code,
            ExitCode::NOT_FOUND
        );
        let mut short = precommit(1, &[1], Some(c1));
        short.expiration = ChainEpoch::new(500);
        assert!(
            refuse(&mut s, WORKER, short)
                .reason
                .contains("after the sector expires")
        );
        s.epoch = 201;
        assert!(
            refuse(&mut s, WORKER, precommit(1, &[1], Some(c1)))
                .reason
                .contains("has passed")
        );
        s.epoch = 100;
        s.precommit_batch(MINER, WORKER, vec![precommit(1, &[1], Some(c1))])
            .unwrap();
        assert!(
            refuse(&mut s, WORKER, precommit(2, &[1], Some(c1)))
                .reason
                .contains("already in a pre-committed sector")
        );
        assert!(
            refuse(&mut s, WORKER, precommit(1, &[2], Some(c1)))
                .reason
                .contains("already allocated")
        );
    }

    #[test]
    fn deals_snap_into_a_proven_empty_sector() {
        let mut s = state();
        let (p1, p2) = (piece(1), piece(2));
        s.precommit_batch(MINER, WORKER, vec![precommit(6, &[], None)])
            .unwrap();
        s.prove_commit(MINER, WORKER, &prove(6, &[])).unwrap();
        let notify = |id: u64| market_core::miner::DataActivationNotification {
            address: market_core::deal::STORAGE_MARKET_ACTOR,
            payload: market_core::cbor::to_vec(&DealId(id)),
        };
        let snap = |pieces: Vec<(Cid, u64, u64)>| ProveReplicaUpdates3Params {
            sector_updates: vec![SectorUpdateManifest {
                sector: SectorNumber(6),
                deadline: 0,
                partition: 0,
                new_sealed_cid: Cid::default(),
                pieces: pieces
                    .into_iter()
                    .map(|(cid, size, id)| PieceActivationManifest {
                        cid,
                        size,
                        verified_allocation_key: None,
                        notify: vec![notify(id)],
                    })
                    .collect(),
            }],
            sector_proofs: vec![Proof(vec![1])],
            aggregate_proof: vec![],
            update_proofs_type: 3,
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        };
        let wrong = s.prove_replica_updates(MINER, WORKER, &snap(vec![(p2.0, p2.1, 1)]));
        assert!(wrong.unwrap_err().reason.contains("another piece"));
        let ret = s
            .prove_replica_updates(MINER, WORKER, &snap(vec![(p1.0, p1.1, 1), (p2.0, p2.1, 2)]))
            .unwrap();
        assert_eq!(ret.success_count, 1);
        assert_eq!(s.deals[&1].sector, Some(SectorNumber(6)));
        assert_eq!(s.deals[&2].state.sector_start_epoch.get(), 100);
        let again = s.prove_replica_updates(MINER, WORKER, &snap(vec![(p1.0, p1.1, 1)]));
        assert!(again.unwrap_err().reason.contains("already holds data"));
    }

    #[test]
    fn a_prove_commit_activates_the_deals_when_its_pieces_match() {
        let mut s = state();
        let (p1, p2) = (piece(1), piece(2));
        let commd = commd_of(2048, &[p1, p2]).unwrap();
        s.precommit_batch(MINER, WORKER, vec![precommit(4, &[1, 2], Some(commd))])
            .unwrap();
        let r = s
            .prove_commit(MINER, WORKER, &prove(4, &[p2, p1]))
            .unwrap_err();
        assert!(r.reason.contains("the pre-commit declared"), "{}", r.reason);
        let mut no_proof = prove(4, &[p1, p2]);
        no_proof.sector_proofs.clear();
        assert!(s.prove_commit(MINER, WORKER, &no_proof).is_err());
        assert!(
            s.prove_commit(MINER, WORKER, &prove(5, &[p1])).is_err(),
            "not pre-committed"
        );
        let ret = s.prove_commit(MINER, WORKER, &prove(4, &[p1, p2])).unwrap();
        assert_eq!(ret.success_count, 1);
        for id in [1, 2] {
            let d = &s.deals[&id];
            assert_eq!(d.state.sector_start_epoch.get(), 100);
            assert_eq!(d.sector, Some(SectorNumber(4)));
        }
        assert_eq!(
            s.sector(MINER, SectorNumber(4)).unwrap().stage,
            SectorStage::Proven
        );
        assert!(
            s.prove_commit(MINER, WORKER, &prove(4, &[p1, p2])).is_err(),
            "proven once"
        );
    }

    #[test]
    fn commd_of_no_pieces_is_the_zero_sector() {
        let zero = commd_of(2048, &[]).unwrap();
        assert_eq!(
            zero,
            market_core::cid::widen(
                &commp::zero_commitment(PaddedPieceSize::new(2048).unwrap()).to_cid_v1()
            )
        );
        assert!(commd_of(2048, &[(zero, 4096)]).is_err());
    }
}
