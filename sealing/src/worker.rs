//! An external sealer that pulls deals from a market, as damocles does, and seals them on
//! a chain without a proofs stack: the `sealer` example binary is this loop.
//!
//! One sector at a time: take a sector number (recorded before asking, so a crash never
//! reuses it), `AssignUnPackedDeals`, download every piece from `/resource` and check its
//! commP against the deal, compute the sector's commD from the pieces in layout order,
//! pre-commit (`PreCommitSectorBatch2` with the deal ids and commD), then prove
//! (`ProveCommitSectors3`). A piece that does not hash to its deal's piece CID aborts the
//! sector: its deals are released to the market. A sector found half-done at start is
//! resumed if its pre-commit landed, aborted (deals released) if not.
//!
//! The proofs are placeholders: this sealer is for chains that do not verify them (the
//! devnet). Everything a market sees — assignment, piece fetches, commD, messages, deal
//! activation — is real.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use commp::commd::{Piece, unsealed_sector_commitment};
use commp::{CommP, PaddedPieceSize, PieceCid};
use market_core::Cid;
use market_core::cbor;
use market_core::chain::{ChainError, ChainNode, Message, SectorStage};
use market_core::miner::{
    self, PieceActivationManifest, PreCommitSectorBatchParams2, Proof, ProveCommitSectors3Params,
    SectorActivationManifest, SectorPreCommitInfo,
};
use market_core::types::{Address, ChainEpoch, DealId, SectorNumber, TokenAmount};
use serde::{Deserialize, Serialize};

use crate::client::{ClientError, MarketClient};
use crate::json::{DealInfoIncludePath, GetDealSpec, SectorId};

/// Worker settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The miner sealed for.
    pub miner: Address,
    /// The address sending pre-commits and prove-commits (the worker or a control address).
    pub sender: Address,
    /// What to ask for in each sector.
    pub spec: GetDealSpec,
    /// Confirmations to wait for each message.
    pub confidence: u64,
    /// Fee cap per message.
    pub max_fee: TokenAmount,
    /// Where the sector counter and the sector in progress are kept.
    pub state_dir: PathBuf,
    /// Keep each sealed piece's bytes under `state_dir/unsealed`, to answer the market's
    /// unseal requests (as a sealer keeping unsealed copies does).
    pub keep_unsealed: bool,
}

impl WorkerConfig {
    /// Seals for `miner`, sending from `sender`, keeping state in `state_dir`; up to 10
    /// deals a sector, one confirmation, 1 FIL fee cap.
    pub fn new(miner: Address, sender: Address, state_dir: PathBuf) -> Self {
        Self {
            miner,
            sender,
            spec: GetDealSpec {
                max_piece: crate::assign::DEFAULT_MAX_PIECES as i64,
                ..GetDealSpec::default()
            },
            confidence: 1,
            max_fee: TokenAmount::from_whole(1),
            state_dir,
            keep_unsealed: true,
        }
    }

    /// Sets [`keep_unsealed`](Self::keep_unsealed).
    pub fn with_keep_unsealed(mut self, keep: bool) -> Self {
        self.keep_unsealed = keep;
        self
    }

    /// Sets [`spec`](Self::spec).
    pub fn with_spec(mut self, spec: GetDealSpec) -> Self {
        self.spec = spec;
        self
    }

    /// Sets [`confidence`](Self::confidence).
    pub fn with_confidence(mut self, confidence: u64) -> Self {
        self.confidence = confidence;
        self
    }
}

/// Why a sector could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The market refused or failed a call.
    #[error("market: {0}")]
    Market(#[from] ClientError),
    /// The chain refused or failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A piece did not hash to its deal's piece CID; the sector was aborted.
    #[error(
        "deal {deal}: piece {expected} fetched as {got}; sector {sector} aborted, its deals released"
    )]
    PieceMismatch {
        /// The sector aborted.
        sector: SectorNumber,
        /// The deal.
        deal: u64,
        /// The deal's piece CID.
        expected: Box<Cid>,
        /// What the fetched bytes hash to.
        got: String,
    },
    /// The deals cannot form a sector (a market bug, or an unknown piece CID).
    #[error("sector {sector}: {reason}")]
    Layout {
        /// The sector.
        sector: SectorNumber,
        /// Why.
        reason: String,
    },
    /// A message failed on chain.
    #[error("sector {sector}: {what} failed on chain with exit code {code}")]
    Message {
        /// The sector.
        sector: SectorNumber,
        /// Which message.
        what: &'static str,
        /// Its exit code.
        code: u32,
    },
    /// The state directory could not be read or written.
    #[error("worker state: {0}")]
    State(#[from] std::io::Error),
}

/// A sector this worker sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSector {
    /// Its number.
    pub sector: SectorNumber,
    /// The deals it activated.
    pub deals: Vec<DealId>,
    /// Its commD.
    pub commd: Cid,
}

/// What survives a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WorkerState {
    next_sector: u64,
    /// The sector being sealed and its deals, if any.
    current: Option<(u64, Vec<u64>)>,
}

/// The sealing loop's state.
pub struct SealWorker {
    market: MarketClient,
    chain: Arc<dyn ChainNode>,
    config: WorkerConfig,
    sector_size: PaddedPieceSize,
}

impl SealWorker {
    /// A worker for `config.miner`, asking `market` for deals and sealing on `chain`.
    pub async fn new(
        market: MarketClient,
        chain: Arc<dyn ChainNode>,
        config: WorkerConfig,
    ) -> Result<Self, WorkerError> {
        let info = chain.miner_info(&config.miner).await?;
        let sector_size =
            PaddedPieceSize::new(info.sector_size).map_err(|e| WorkerError::Layout {
                sector: SectorNumber(0),
                reason: format!("miner sector size: {e}"),
            })?;
        std::fs::create_dir_all(&config.state_dir)?;
        Ok(Self {
            market,
            chain,
            config,
            sector_size,
        })
    }

    fn state_path(&self) -> PathBuf {
        self.config.state_dir.join("sealer-state.json")
    }

    fn load(&self) -> Result<WorkerState, WorkerError> {
        match std::fs::read(self.state_path()) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                WorkerError::State(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WorkerState {
                next_sector: 1,
                current: None,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the state durably (temp file, fsync, rename).
    fn save(&self, state: &WorkerState) -> Result<(), WorkerError> {
        let path = self.state_path();
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(state).unwrap_or_default())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// Finishes or aborts the sector a previous run left half-done.
    pub async fn recover(&self) -> Result<(), WorkerError> {
        let mut state = self.load()?;
        let Some((n, deals)) = state.current.clone() else {
            return Ok(());
        };
        let sector = SectorNumber(n);
        match self.chain.sector(&self.config.miner, sector).await? {
            Some(s) if s.stage == SectorStage::PreCommitted => {
                tracing::info!(%sector, "resuming: proving a sector pre-committed before the restart");
                let assigned = self.market_view(&deals).await?;
                self.prove(sector, &assigned).await?;
            }
            Some(_) => {
                tracing::info!(%sector, "resuming: the sector was proven before the restart")
            }
            None => {
                tracing::warn!(%sector, ?deals, "aborting a sector left before its pre-commit; releasing its deals");
                self.market
                    .release_deals(&self.config.miner, &deals)
                    .await?;
            }
        }
        state.current = None;
        self.save(&state)
    }

    /// The market's record of deals (for their pieces), in the given order.
    async fn market_view(&self, deals: &[u64]) -> Result<Vec<DealInfoIncludePath>, WorkerError> {
        let mut out = Vec::new();
        for &id in deals {
            let d = self.market.deal_info(&self.config.miner, id).await?;
            out.push(DealInfoIncludePath {
                piece_cid: d.proposal.piece_cid,
                piece_size: d.proposal.piece_size,
                verified_deal: d.proposal.verified_deal,
                client: d.proposal.client.to_string(),
                provider: d.proposal.provider.to_string(),
                label: d.proposal.label.clone(),
                start_epoch: d.proposal.start_epoch,
                end_epoch: d.proposal.end_epoch,
                storage_price_per_epoch: d.proposal.storage_price_per_epoch,
                provider_collateral: d.proposal.provider_collateral,
                client_collateral: d.proposal.client_collateral,
                offset: d.offset,
                length: d.length,
                payload_size: 0,
                deal_id: d.deal_id,
                total_storage_fee: TokenAmount::ZERO,
                fast_retrieval: d.fast_retrieval,
                publish_cid: d.publish_cid,
            });
        }
        Ok(out)
    }

    /// Seals one sector if the market has deals for it; `None` when it has none.
    pub async fn seal_one(&self) -> Result<Option<SealedSector>, WorkerError> {
        let mut state = self.load()?;
        let sector = SectorNumber(state.next_sector.max(1));
        // The number is spent before it is used: a crash never reuses it.
        state.next_sector = sector.0 + 1;
        self.save(&state)?;
        let miner_id = self.config.miner.id().ok_or_else(|| WorkerError::Layout {
            sector,
            reason: format!("miner {} is not an id address", self.config.miner),
        })?;
        let sid = SectorId {
            miner: miner_id,
            number: sector.0,
        };
        let assigned = self
            .market
            .assign_unpacked_deals(sid, self.sector_size.get(), Some(&self.config.spec))
            .await?;
        let deals: Vec<&DealInfoIncludePath> = assigned.iter().filter(|d| !d.is_filler()).collect();
        if deals.is_empty() {
            // Nothing was assigned to the number, so the next sector may use it.
            state.next_sector = sector.0;
            self.save(&state)?;
            return Ok(None);
        }
        let ids: Vec<u64> = deals.iter().map(|d| d.deal_id).collect();
        state.current = Some((sector.0, ids.clone()));
        self.save(&state)?;
        tracing::info!(%sector, deals = ?ids, "sector assigned");

        if let Err(e) = self.check_pieces(sector, &deals).await {
            self.market.release_deals(&self.config.miner, &ids).await?;
            state.current = None;
            self.save(&state)?;
            return Err(e);
        }
        let commd = self.commd(sector, &assigned)?;
        self.precommit(sector, &deals, commd).await?;
        let owned: Vec<DealInfoIncludePath> = deals.iter().map(|d| (*d).clone()).collect();
        self.prove(sector, &owned).await?;
        state.current = None;
        self.save(&state)?;
        Ok(Some(SealedSector {
            sector,
            deals: ids.into_iter().map(DealId).collect(),
            commd,
        }))
    }

    /// Downloads every deal's piece and checks its commP.
    async fn check_pieces(
        &self,
        sector: SectorNumber,
        deals: &[&DealInfoIncludePath],
    ) -> Result<(), WorkerError> {
        for d in deals {
            let size = PaddedPieceSize::new(d.piece_size).map_err(|e| WorkerError::Layout {
                sector,
                reason: format!("deal {}: {e}", d.deal_id),
            })?;
            // The sector holds the piece zero-padded to its size whatever the payload's
            // length, so a payload under 65 bytes hashes as the proofs and the client hash it
            // (FRC-0069) instead of being refused, which aborted its sector every time.
            let mut hasher = CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
            let limit = size.unpadded().get();
            // The kept copy streams to disk next to its final name; written only if it hashes.
            let dir = self.config.state_dir.join("unsealed");
            let tmp = dir.join(format!("{}.partial", d.piece_cid));
            let mut copy = if self.config.keep_unsealed {
                std::fs::create_dir_all(&dir)?;
                Some(std::io::BufWriter::new(std::fs::File::create(&tmp)?))
            } else {
                None
            };
            let mut write_error = None;
            self.market
                .fetch_piece(&d.piece_cid, limit, |chunk| {
                    hasher.update(chunk);
                    if let Some(f) = copy.as_mut()
                        && let Err(e) = std::io::Write::write_all(f, chunk)
                    {
                        write_error.get_or_insert(e);
                    }
                })
                .await?;
            if let Some(e) = write_error {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            let got = hasher
                .finish_padded_to(size)
                .map(|info| market_core::cid::widen(&info.cid_v1()));
            if got.as_ref().ok() != Some(&d.piece_cid) {
                let _ = std::fs::remove_file(&tmp);
                return Err(WorkerError::PieceMismatch {
                    sector,
                    deal: d.deal_id,
                    expected: Box::new(d.piece_cid),
                    got: got.map_or_else(|e| e.to_string(), |c| c.to_string()),
                });
            }
            if let Some(f) = copy {
                let f = f.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                std::fs::rename(&tmp, dir.join(d.piece_cid.to_string()))?;
            }
            tracing::info!(%sector, deal = d.deal_id, piece = %d.piece_cid, "piece fetched and verified");
        }
        Ok(())
    }

    /// The sector's commD over every entry (deals and fillers) in layout order.
    fn commd(&self, sector: SectorNumber, all: &[DealInfoIncludePath]) -> Result<Cid, WorkerError> {
        let layout = |reason: String| WorkerError::Layout { sector, reason };
        let pieces = all
            .iter()
            .map(|d| {
                let commitment = PieceCid::from_cid(&d.piece_cid)
                    .map_err(|e| layout(format!("piece {}: {e}", d.piece_cid)))?
                    .commitment();
                let size = PaddedPieceSize::new(d.piece_size)
                    .map_err(|e| layout(format!("piece {}: {e}", d.piece_cid)))?;
                Ok(Piece { commitment, size })
            })
            .collect::<Result<Vec<_>, WorkerError>>()?;
        let commd = unsealed_sector_commitment(self.sector_size, &pieces)
            .map_err(|e| layout(e.to_string()))?;
        Ok(market_core::cid::widen(&commd.to_cid_v1()))
    }

    async fn send(
        &self,
        sector: SectorNumber,
        what: &'static str,
        method: u64,
        params: Vec<u8>,
    ) -> Result<Vec<u8>, WorkerError> {
        let msg = Message {
            from: self.config.sender,
            to: self.config.miner,
            method,
            params,
            value: TokenAmount::ZERO,
            max_fee: self.config.max_fee,
            uuid: Some(uuid::Uuid::new_v4()),
        };
        let cid = self.chain.push_message(msg).await?;
        let found = self
            .chain
            .wait_message(&cid, self.config.confidence)
            .await?;
        if found.receipt.exit_code.0 != 0 {
            return Err(WorkerError::Message {
                sector,
                what,
                code: found.receipt.exit_code.0,
            });
        }
        tracing::info!(%sector, message = %cid, epoch = %found.epoch, "{what} landed");
        Ok(found.receipt.return_data)
    }

    async fn precommit(
        &self,
        sector: SectorNumber,
        deals: &[&DealInfoIncludePath],
        commd: Cid,
    ) -> Result<(), WorkerError> {
        let head = self.chain.head().await?;
        let last_end = deals
            .iter()
            .map(|d| d.end_epoch)
            .max()
            .unwrap_or(head.get());
        let seal_proof =
            miner::seal_proof_for(self.sector_size.get()).ok_or_else(|| WorkerError::Layout {
                sector,
                reason: format!("no seal proof for {}-byte sectors", self.sector_size.get()),
            })?;
        let info = SectorPreCommitInfo {
            seal_proof,
            sector_number: sector,
            sealed_cid: placeholder_commr(&commd, sector),
            seal_rand_epoch: ChainEpoch::new(head.get() - 1),
            deal_ids: deals.iter().map(|d| DealId(d.deal_id)).collect(),
            expiration: ChainEpoch::new(last_end + ChainEpoch::PER_DAY),
            unsealed_cid: Some(commd),
        };
        let params = cbor::to_vec(&PreCommitSectorBatchParams2 {
            sectors: vec![info],
        });
        self.send(
            sector,
            "pre-commit",
            miner::method::PRE_COMMIT_SECTOR_BATCH2,
            params,
        )
        .await?;
        Ok(())
    }

    async fn prove(
        &self,
        sector: SectorNumber,
        deals: &[DealInfoIncludePath],
    ) -> Result<(), WorkerError> {
        let params = ProveCommitSectors3Params {
            sector_activations: vec![SectorActivationManifest {
                sector_number: sector,
                pieces: deals
                    .iter()
                    .map(|d| PieceActivationManifest {
                        cid: d.piece_cid,
                        size: d.piece_size,
                        verified_allocation_key: None,
                        notify: vec![],
                    })
                    .collect(),
            }],
            sector_proofs: vec![Proof(vec![0xab; 192])],
            aggregate_proof: vec![],
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        };
        let ret = self
            .send(
                sector,
                "prove-commit",
                miner::method::PROVE_COMMIT_SECTORS3,
                cbor::to_vec(&params),
            )
            .await?;
        let batch: miner::BatchReturn = cbor::from_slice(&ret, 1 << 16).unwrap_or_default();
        if batch.success_count != 1 {
            return Err(WorkerError::Message {
                sector,
                what: "prove-commit",
                code: batch.fail_codes.first().map_or(0, |f| f.code),
            });
        }
        Ok(())
    }

    /// Seals until `stop` resolves: a sector whenever the market has deals, else waits
    /// `idle` before asking again, and answers the market's events meanwhile. Errors are
    /// logged and the loop goes on.
    pub async fn run(&self, idle: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::select! {
            _ = stop => {}
            _ = self.seal_loop(idle) => {}
            _ = self.serve_events(idle) => {}
        }
    }

    /// Answers the market's events for ever, listening again whenever the connection drops.
    pub async fn serve_events(&self, retry: Duration) {
        loop {
            match self.market.listen_events(&self.config.miner).await {
                Ok(mut events) => {
                    while let Some(e) = events.recv().await {
                        self.answer(e).await;
                    }
                    tracing::info!("market events: connection closed; listening again");
                }
                Err(e) => {
                    tracing::warn!(error = %market_core::report(&e), "market events: cannot listen")
                }
            }
            tokio::time::sleep(retry.max(Duration::from_millis(100))).await;
        }
    }

    async fn answer(&self, event: crate::events::RequestEvent) {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD as B64;
        if event.method == "InitConnect" {
            tracing::info!("market events: connected");
            return;
        }
        let result = match event.method.as_str() {
            "SectorsUnsealPiece" => self.unseal(&event).await,
            other => Err(format!("{other} is not supported by this sealer")),
        };
        let response = crate::events::ResponseEvent {
            id: event.id,
            payload: B64
                .encode(serde_json::json!(result.as_deref().unwrap_or("failed")).to_string()),
            error: result.err().unwrap_or_default(),
        };
        if let Err(e) = self.market.respond_event(&response).await {
            tracing::warn!(error = %market_core::report(&e), "market events: answering");
        }
    }

    /// Uploads a kept piece, zero-padded to the unpadded piece size, to the request's `Dest`.
    async fn unseal(&self, event: &crate::events::RequestEvent) -> Result<&'static str, String> {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD as B64;
        let payload = B64
            .decode(event.payload.as_bytes())
            .map_err(|e| format!("payload: {e}"))?;
        let req: crate::events::UnsealRequest =
            serde_json::from_slice(&payload).map_err(|e| format!("payload: {e}"))?;
        let path = self
            .config
            .state_dir
            .join("unsealed")
            .join(req.piece_cid.to_string());
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| format!("no unsealed copy of piece {}: {e}", req.piece_cid))?;
        let len = file.metadata().await.map_err(|e| e.to_string())?.len();
        if len > req.size {
            return Err(format!(
                "piece {} is larger than {} bytes",
                req.piece_cid, req.size
            ));
        }
        let body = file.chain(tokio::io::repeat(0).take(req.size - len));
        self.market.upload(&req.dest, body, req.size).await?;
        tracing::info!(piece = %req.piece_cid, sector = req.sid, "unsealed piece uploaded to the market");
        Ok("finished")
    }

    async fn seal_loop(&self, idle: Duration) {
        if let Err(e) = self.recover().await {
            tracing::error!(error = %market_core::report(&e), "recovering the sector in progress");
        }
        loop {
            let wait = match self.seal_one().await {
                Ok(Some(s)) => {
                    tracing::info!(sector = %s.sector, deals = ?s.deals, commd = %s.commd, "sector sealed");
                    Duration::ZERO
                }
                Ok(None) => idle,
                Err(e) => {
                    tracing::error!(error = %market_core::report(&e), "sealing a sector failed");
                    idle
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A stand-in commR (codec `fil-commitment-sealed`, multihash `poseidon-bls12_381-a2-fc1`):
/// the devnet does not check it, a real chain would refuse the proof.
fn placeholder_commr(commd: &Cid, sector: SectorNumber) -> Cid {
    let mut digest = [0u8; 32];
    let d = commd.hash().digest();
    digest[..d.len().min(32)].copy_from_slice(&d[..d.len().min(32)]);
    digest[..8].copy_from_slice(&sector.0.to_be_bytes());
    digest[31] &= 0x3f;
    let mh = market_core::cid::Multihash::wrap(0xb401, &digest).unwrap_or_default();
    Cid::new_v1(0xf102, mh)
}
