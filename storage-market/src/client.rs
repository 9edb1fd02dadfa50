//! The storage client: query asks, prepare and sign proposals, fund escrow, propose on
//! `/fil/storage/mk/1.2.1` (falling back to `1.1.1`), poll status, and remember deals in SQLite.

use std::path::Path;
use std::sync::Arc;

use crate::Cid;
use commp::{PaddedPieceSize, PieceInfo};

use crate::chain::{ChainError, ChainNode, Message};
use crate::deal::{self, ClientDealProposal, DealProposal};
use crate::message::*;
use crate::network::{MarketNetwork, NetworkError, PeerAddr, is_unsupported};
use crate::protocol::Protocol;
use crate::state::StorageDealStatus;
use crate::store::{ClientDeal, DealStore, StoreError, unix_now};
use crate::types::{Address, ChainEpoch, DealLabel, DealUuid, TokenAmount};
use crate::wallet::{self, SignPurpose, Wallet, WalletError};

/// Client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The provider could not be reached or the exchange failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The provider rejected the deal; the text is its reason.
    #[error("deal rejected: {0}")]
    Rejected(String),
    /// The provider does not serve the miner or sent an ask that fails its signature check.
    #[error("invalid ask: {0}")]
    InvalidAsk(String),
    /// The provider's answer is inconsistent (wrong proposal CID, bad response signature).
    #[error("invalid provider response: {0}")]
    InvalidResponse(String),
    /// Chain failure.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Wallet failure.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bad deal parameters.
    #[error("invalid deal parameters: {0}")]
    InvalidParams(String),
    /// Reading the data failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data cannot be a piece (too short or too large).
    #[error("commP")]
    CommP(#[from] commp::CommPError),
    /// The hashing task panicked or was cancelled.
    #[error("commP task")]
    Task(#[from] tokio::task::JoinError),
}

/// Which deal protocol generation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DealProtocol {
    /// Boost 1.2.x, falling back to go-fil-markets 1.1.1 if the provider lacks it.
    #[default]
    Auto,
    /// Only Boost 1.2.x (`/fil/storage/mk/1.2.1`, `1.2.0`).
    V12,
    /// Only go-fil-markets `/fil/storage/mk/1.1.1` (offline deals only).
    V111,
}

/// What deal to propose.
#[derive(Debug, Clone)]
pub struct DealSpec {
    /// Paying client (its key must be in the wallet).
    pub client: Address,
    /// The provider's miner actor.
    pub miner: Address,
    /// The piece CID.
    pub piece_cid: Cid,
    /// The padded piece size.
    pub piece_size: PaddedPieceSize,
    /// The payload root CID (also the default label).
    pub payload_root: Cid,
    /// Label; defaults to the payload root CID string, as Boost's client does.
    pub label: Option<DealLabel>,
    /// Start epoch.
    pub start_epoch: ChainEpoch,
    /// Duration in epochs.
    pub duration: i64,
    /// Total price per epoch for the piece (see [`price_per_epoch`]).
    pub price_per_epoch: TokenAmount,
    /// Provider collateral; defaults to 1.2 × the chain minimum, as Lotus and Boost clients do.
    pub provider_collateral: Option<TokenAmount>,
    /// Whether the deal spends DataCap.
    pub verified: bool,
    /// How the provider gets the data; `None` for an offline deal.
    pub transfer: Option<Transfer>,
    /// Keep an unsealed copy for fast retrieval.
    pub fast_retrieval: bool,
    /// Protocol generation.
    pub protocol: DealProtocol,
    /// The deal's UUID (Boost 1.2.x); `None` picks a fresh one. Set it to retry a proposal
    /// whose answer was lost (the provider restarted, the stream broke): the provider accepts
    /// the same deal under the same UUID again, where a new UUID would be refused as a
    /// duplicate of the first, which it may already hold.
    pub deal_uuid: Option<DealUuid>,
}

/// The per-epoch price of a piece under an ask (price is per GiB per epoch).
pub fn price_per_epoch(ask: &StorageAsk, size: PaddedPieceSize, verified: bool) -> TokenAmount {
    let per_gib = if verified {
        ask.verified_price
    } else {
        ask.price
    };
    per_gib.mul_div(u128::from(size.get()), 1 << 30)
}

/// The storage client.
#[derive(Clone)]
pub struct Client {
    network: MarketNetwork,
    wallet: Arc<dyn Wallet>,
    chain: Arc<dyn ChainNode>,
    store: Arc<dyn DealStore>,
}

impl Client {
    /// A client over the given parts.
    pub fn new(
        network: MarketNetwork,
        wallet: Arc<dyn Wallet>,
        chain: Arc<dyn ChainNode>,
        store: Arc<dyn DealStore>,
    ) -> Self {
        Self {
            network,
            wallet,
            chain,
            store,
        }
    }

    /// Queries and verifies a miner's ask: the signature must come from the miner's worker.
    pub async fn query_ask(
        &self,
        peer: &PeerAddr,
        miner: &Address,
    ) -> Result<StorageAsk, ClientError> {
        let res = self.network.ask(peer, AskRequest { miner: *miner }).await?;
        let signed = res
            .ask
            .ok_or_else(|| ClientError::InvalidAsk(format!("provider does not serve {miner}")))?;
        let (Some(ask), Some(sig)) = (signed.ask, signed.signature) else {
            return Err(ClientError::InvalidAsk("ask or signature missing".into()));
        };
        if ask.miner != *miner {
            return Err(ClientError::InvalidAsk(format!(
                "ask is for {}, not {miner}",
                ask.miner
            )));
        }
        let info = self.chain.miner_info(miner).await?;
        let worker = self.chain.account_key(&info.worker).await?;
        wallet::verify(&sig, &worker, &ask.to_cbor())
            .map_err(|e| ClientError::InvalidAsk(e.to_string()))?;
        Ok(ask)
    }

    /// Computes the piece CID and sizes of a file (the CAR a deal will store).
    pub async fn piece_info(path: &Path) -> Result<PieceInfo, ClientError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|source| ClientError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(commp::commp_reader(std::io::BufReader::with_capacity(
                1 << 20,
                file,
            ))?)
        })
        .await?
    }

    /// Makes sure `client` has at least `amount` available in market escrow, sending
    /// AddBalance for the difference and waiting for it to land. Returns the message, if any.
    pub async fn ensure_funds(
        &self,
        client: &Address,
        amount: TokenAmount,
        max_fee: TokenAmount,
    ) -> Result<Option<Cid>, ClientError> {
        let balance = self.chain.market_balance(client).await?;
        if balance.available() >= amount {
            return Ok(None);
        }
        let missing = amount.saturating_sub(balance.available());
        let cid = self.add_funds(client, missing, max_fee).await?;
        Ok(Some(cid))
    }

    /// Adds `amount` to `client`'s market escrow and waits for the message.
    pub async fn add_funds(
        &self,
        client: &Address,
        amount: TokenAmount,
        max_fee: TokenAmount,
    ) -> Result<Cid, ClientError> {
        let msg = Message {
            from: *client,
            to: deal::STORAGE_MARKET_ACTOR,
            method: deal::method::ADD_BALANCE,
            params: crate::cbor::to_vec(client),
            value: amount,
            max_fee,
            uuid: None,
        };
        let cid = self.chain.push_message(msg).await?;
        let found = self.chain.wait_message(&cid, 0).await?;
        if !found.receipt.exit_code.is_ok() {
            return Err(ClientError::Chain(ChainError::MessageRejected(format!(
                "AddBalance exited with code {}",
                found.receipt.exit_code.0
            ))));
        }
        Ok(cid)
    }

    /// Takes up to `amount` of `client`'s unlocked escrow back to its wallet
    /// (`WithdrawBalance`), waits for the message and returns what the market actor paid.
    pub async fn withdraw_funds(
        &self,
        client: &Address,
        amount: TokenAmount,
        max_fee: TokenAmount,
    ) -> Result<(Cid, TokenAmount), ClientError> {
        let msg = Message {
            from: *client,
            to: deal::STORAGE_MARKET_ACTOR,
            method: deal::method::WITHDRAW_BALANCE,
            params: crate::cbor::to_vec(&(*client, amount)),
            value: TokenAmount::ZERO,
            max_fee,
            uuid: None,
        };
        let cid = self.chain.push_message(msg).await?;
        let found = self.chain.wait_message(&cid, 0).await?;
        if !found.receipt.exit_code.is_ok() {
            return Err(ClientError::Chain(ChainError::MessageRejected(format!(
                "WithdrawBalance exited with code {}",
                found.receipt.exit_code.0
            ))));
        }
        let paid = crate::cbor::from_slice(&found.receipt.return_data, 64).unwrap_or(amount);
        Ok((cid, paid))
    }

    /// Builds and signs the proposal of `spec`.
    pub async fn sign_proposal(&self, spec: &DealSpec) -> Result<ClientDealProposal, ClientError> {
        if spec.verified {
            let version = self.chain.network_version().await?;
            if !version.allows_verified_deals() {
                return Err(ClientError::InvalidParams(format!(
                    "verified deals cannot be made on this chain: it runs network version {} and FIL+ ended with nv29 Solstice (FIP-0118); propose the deal as unverified",
                    version.0
                )));
            }
        }
        let collateral = match spec.provider_collateral {
            Some(c) => c,
            None => {
                let b = self
                    .chain
                    .collateral_bounds(spec.piece_size, spec.verified)
                    .await?;
                b.min.mul_div(12, 10)
            }
        };
        let label = spec
            .label
            .clone()
            .unwrap_or_else(|| DealLabel::String(spec.payload_root.to_string()));
        if label.len() > DealLabel::MAX_LEN {
            return Err(ClientError::InvalidParams(format!(
                "label of {} bytes exceeds 256",
                label.len()
            )));
        }
        let proposal = DealProposal {
            piece_cid: spec.piece_cid,
            piece_size: spec.piece_size.get(),
            verified_deal: spec.verified,
            client: spec.client,
            provider: spec.miner,
            label,
            start_epoch: spec.start_epoch,
            end_epoch: spec.start_epoch.plus(spec.duration),
            storage_price_per_epoch: spec.price_per_epoch,
            provider_collateral: collateral,
            client_collateral: TokenAmount::ZERO,
        };
        let client_signature = self
            .wallet
            .sign_for(&spec.client, &proposal.to_cbor(), SignPurpose::DealProposal)
            .await?;
        Ok(ClientDealProposal {
            proposal,
            client_signature,
        })
    }

    /// Proposes a deal and records it. Offline deals then wait for the provider to import the
    /// data; online deals name a [`Transfer`].
    pub async fn propose_deal(
        &self,
        peer: &PeerAddr,
        spec: &DealSpec,
    ) -> Result<ClientDeal, ClientError> {
        let cdp = self.sign_proposal(spec).await?;
        let proposal_cid = cdp.cid();
        let deal_uuid = spec.deal_uuid.unwrap_or_else(DealUuid::new_v4);
        let offline = spec.transfer.is_none();
        let (protocol, state, message) = if spec.protocol != DealProtocol::V111 {
            let params = DealParams {
                deal_uuid,
                transfer: spec.transfer.clone().unwrap_or_default(),
                is_offline: offline,
                deal_data_root: spec.payload_root,
                skip_ipni_announce: false,
                client_deal_proposal: cdp.clone(),
                remove_unsealed_copy: !spec.fast_retrieval,
            };
            match self.network.propose(peer, params).await {
                Ok((version, r)) if r.accepted => (
                    version,
                    StorageDealStatus::CheckForAcceptance,
                    String::new(),
                ),
                Ok((_, r)) => return Err(ClientError::Rejected(r.message)),
                Err(e) if is_unsupported(&e) && spec.protocol == DealProtocol::Auto => {
                    self.propose_v11(peer, spec, &cdp).await?
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            self.propose_v11(peer, spec, &cdp).await?
        };
        let deal = ClientDeal {
            proposal_cid,
            deal_uuid,
            provider_peer: peer.peer_id.to_string(),
            protocol,
            proposal: cdp,
            payload_root: Some(spec.payload_root),
            is_offline: offline,
            state,
            checkpoint: String::new(),
            message,
            deal_id: None,
            publish_cid: None,
            created_at: unix_now(),
            updated_at: unix_now(),
        };
        self.store.put_client_deal(deal.clone()).await?;
        Ok(deal)
    }

    async fn propose_v11(
        &self,
        peer: &PeerAddr,
        spec: &DealSpec,
        cdp: &ClientDealProposal,
    ) -> Result<(Protocol, StorageDealStatus, String), ClientError> {
        if spec.transfer.is_some() {
            return Err(ClientError::InvalidParams(
                "/fil/storage/mk/1.1.1 carries data over graphsync, which this client does not push; make an offline deal".into(),
            ));
        }
        let proposal = Proposal {
            piece: Some(DataRef {
                root: spec.payload_root,
                piece_cid: Some(spec.piece_cid),
                piece_size: spec.piece_size.unpadded().get(),
                raw_block_size: 0,
                transfer_type: TRANSFER_TYPE_MANUAL.into(),
            }),
            deal_proposal: Some(cdp.clone()),
            fast_retrieval: spec.fast_retrieval,
        };
        let signed = self.network.propose_v11(peer, proposal).await?;
        let r = &signed.response;
        if r.proposal != cdp.cid() {
            return Err(ClientError::InvalidResponse(format!(
                "response is for proposal {}",
                r.proposal
            )));
        }
        let sig = signed
            .signature
            .as_ref()
            .ok_or_else(|| ClientError::InvalidResponse("unsigned response".into()))?;
        let worker = self
            .chain
            .account_key(&self.chain.miner_info(&spec.miner).await?.worker)
            .await?;
        wallet::verify(sig, &worker, &crate::cbor::to_vec(r))
            .map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
        let state = StorageDealStatus::from_code(r.state).unwrap_or(StorageDealStatus::Unknown);
        if state == StorageDealStatus::Failing || state == StorageDealStatus::Error {
            return Err(ClientError::Rejected(r.message.clone()));
        }
        Ok((Protocol::DealV111, state, r.message.clone()))
    }

    /// Asks the provider for a deal's status and records it.
    pub async fn update_status(
        &self,
        peer: &PeerAddr,
        deal: &ClientDeal,
    ) -> Result<ClientDeal, ClientError> {
        let mut d = deal.clone();
        let client = d.proposal.proposal.client;
        if d.protocol == Protocol::DealV111 {
            let signature = self
                .wallet
                .sign_for(
                    &client,
                    &status_request_payload(&d.proposal_cid),
                    SignPurpose::ClientDeal,
                )
                .await?;
            let res = self
                .network
                .status_v11(
                    peer,
                    DealStatusRequest {
                        proposal: d.proposal_cid,
                        signature,
                    },
                )
                .await?;
            let s = res.deal_state;
            d.state = StorageDealStatus::from_code(s.state).unwrap_or(StorageDealStatus::Unknown);
            d.message = s.message;
            d.deal_id = (s.deal_id.0 != 0).then_some(s.deal_id);
            d.publish_cid = s.publish_cid;
        } else {
            let signature = self
                .wallet
                .sign_for(&client, d.deal_uuid.as_bytes(), SignPurpose::ClientDeal)
                .await?;
            let res = self
                .network
                .status(
                    peer,
                    DealStatusRequestV12 {
                        deal_uuid: d.deal_uuid,
                        signature,
                    },
                )
                .await?;
            if !res.error.is_empty() {
                return Err(ClientError::InvalidResponse(res.error));
            }
            let s = res
                .deal_status
                .ok_or_else(|| ClientError::InvalidResponse("no deal status".into()))?;
            d.checkpoint = s.status;
            d.message = s.error;
            d.deal_id = (s.chain_deal_id.0 != 0).then_some(s.chain_deal_id);
            d.publish_cid = s.publish_cid;
        }
        self.store.put_client_deal(d.clone()).await?;
        Ok(d)
    }

    /// Deals this client made, oldest first.
    pub async fn deals(&self) -> Result<Vec<ClientDeal>, ClientError> {
        Ok(self.store.client_deals().await?)
    }
}
