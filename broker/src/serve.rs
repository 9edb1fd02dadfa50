//! The quote protocol on a libp2p host: [`QuoteProvider`] answers requests for the miners a
//! node serves (gathering the facts, bidding, signing with the worker key), [`serve`]
//! mounts it, [`request_quote`] asks one provider and checks what comes back.

use std::sync::{Arc, RwLock};

use market_core::chain::ChainNode;
use market_core::host::{Host, HostError, PeerAddr};
use market_core::libp2p::StreamProtocol;
use market_core::rpc::{self, Codec, RpcError, RpcLimits, Service};
use market_core::types::{Address, ChainEpoch};
use market_core::wallet::{SignPurpose, Wallet};

use crate::bidding::{BidFacts, BiddingPolicy, bid};
use crate::quote::{
    MAX_MESSAGE_SIZE, QUOTE_PROTOCOL, QuoteError, QuoteResponse, SignedQuote, SignedQuoteRequest,
    check_quote, check_request,
};

/// The versions of the quote protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteVersion {
    /// `/fil-market/quote/1.0.0`.
    V100,
}

/// Plain DAG-CBOR both ways.
#[derive(Debug)]
pub struct QuoteCodec;

impl Codec for QuoteCodec {
    type Protocol = QuoteVersion;
    type Request = SignedQuoteRequest;
    type Response = QuoteResponse;
    fn protocol_id(_version: QuoteVersion) -> StreamProtocol {
        StreamProtocol::new(QUOTE_PROTOCOL)
    }
}

/// The limits the protocol is served and requested with: [`MAX_MESSAGE_SIZE`] either way.
pub fn quote_limits() -> RpcLimits {
    RpcLimits::default().with_max_message_size(MAX_MESSAGE_SIZE)
}

/// How much a provider can still take in, asked at each request (staging space, sealing
/// capacity: whatever the node measures).
pub type Capacity = Arc<dyn Fn() -> u64 + Send + Sync>;

struct Inner {
    chain: Arc<dyn ChainNode>,
    wallet: Arc<dyn Wallet>,
    miners: Vec<Address>,
    policy: RwLock<BiddingPolicy>,
    capacity: Capacity,
}

/// A provider's side of the protocol. Cheap to clone.
#[derive(Clone)]
pub struct QuoteProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QuoteProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuoteProvider")
            .field("miners", &self.inner.miners)
            .finish_non_exhaustive()
    }
}

impl QuoteProvider {
    /// Quotes for `miners`, signing with their workers' keys in `wallet`.
    pub fn new(
        chain: Arc<dyn ChainNode>,
        wallet: Arc<dyn Wallet>,
        miners: Vec<Address>,
        policy: BiddingPolicy,
        capacity: Capacity,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                chain,
                wallet,
                miners,
                policy: RwLock::new(policy),
                capacity,
            }),
        }
    }

    /// Replaces the policy (an operator's change takes effect at the next request).
    pub fn set_policy(&self, policy: BiddingPolicy) {
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Answers one request: a signed quote, or why there is none. Failures of the chain or
    /// the wallet are declines that say so, never a dropped stream.
    pub async fn answer(&self, signed: SignedQuoteRequest) -> QuoteResponse {
        match self.try_answer(signed).await {
            Ok(q) => QuoteResponse::bid(q),
            Err(why) => QuoteResponse::decline(&why),
        }
    }

    async fn try_answer(&self, signed: SignedQuoteRequest) -> Result<SignedQuote, String> {
        let inner = &self.inner;
        let r = &signed.request;
        if !inner.miners.contains(&r.provider) {
            return Err(format!("this node does not serve miner {}", r.provider));
        }
        let chain_err = |e: market_core::chain::ChainError| format!("chain unavailable: {e}");
        let head = inner.chain.head().await.map_err(chain_err)?;
        let client_key = inner
            .chain
            .account_key(&r.client)
            .await
            .map_err(|e| format!("client {}: {e}", r.client))?;
        check_request(&signed, &client_key, head).map_err(|e| e.to_string())?;
        let size = commp::PaddedPieceSize::new(r.piece_size).map_err(|e| e.to_string())?;
        let bounds = inner
            .chain
            .collateral_bounds(size, r.verified)
            .await
            .map_err(chain_err)?;
        let facts = BidFacts::new(head, (inner.capacity)(), bounds.min);
        let policy = inner
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let quote = bid(&policy, r, &facts).map_err(|d| d.to_string())?;
        let worker = worker_key(inner.chain.as_ref(), &r.provider)
            .await
            .map_err(chain_err)?;
        let signature = inner
            .wallet
            .sign_for(&worker, &quote.to_cbor(), SignPurpose::Unknown)
            .await
            .map_err(|e| format!("signing the quote: {e}"))?;
        tracing::debug!(client = %r.client, size = r.piece_size, price = quote.price_per_epoch.atto(), "quoted");
        Ok(SignedQuote { quote, signature })
    }
}

/// The key address of `miner`'s worker, which signs its quotes.
pub async fn worker_key(
    chain: &dyn ChainNode,
    miner: &Address,
) -> Result<Address, market_core::chain::ChainError> {
    let info = chain.miner_info(miner).await?;
    chain.account_key(&info.worker).await
}

/// Serves the quote protocol for `provider` on `host`; dropping the service stops it. A
/// request that does not decode gets a decline naming the error.
pub fn serve(host: &Host, provider: QuoteProvider) -> Result<Service, HostError> {
    rpc::serve::<QuoteCodec, _, _>(
        host,
        &[QuoteVersion::V100],
        quote_limits(),
        move |_, _, req| {
            let p = provider.clone();
            async move {
                Some(match req {
                    Ok(r) => p.answer(r).await,
                    Err(e) => QuoteResponse::decline(&format!("malformed quote request: {e}")),
                })
            }
        },
    )
}

/// Why asking for a quote gave none.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AskQuoteError {
    /// The provider could not be reached, or does not speak the protocol (fall back to its
    /// ask).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// It declined, saying why.
    #[error("declined: {0}")]
    Declined(String),
    /// What it sent does not hold (signature, request, validity).
    #[error(transparent)]
    Invalid(#[from] QuoteError),
}

/// Asks `peer` for a quote on `signed` and checks the answer against the worker key
/// `worker` at `head`.
pub async fn request_quote(
    host: &Host,
    peer: &PeerAddr,
    signed: &SignedQuoteRequest,
    worker: &Address,
    head: ChainEpoch,
) -> Result<SignedQuote, AskQuoteError> {
    let (_, answer) =
        rpc::request::<QuoteCodec>(host, peer, &[QuoteVersion::V100], &quote_limits(), |_| {
            signed.clone()
        })
        .await?;
    let Some(q) = answer.quote else {
        return Err(AskQuoteError::Declined(answer.message));
    };
    check_quote(&q, &signed.request, worker, head)?;
    Ok(q)
}
