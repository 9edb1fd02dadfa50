//! `/fil-market/quote/1.0.0`: a broker asks a provider for a price on one deal before making
//! it, and the provider answers with terms it signs and then honours.
//!
//! One DAG-CBOR item each way on a fresh stream, like the Boost protocols
//! ([`market_core::rpc`]): the broker sends a [`SignedQuoteRequest`], the provider answers a
//! [`QuoteResponse`] carrying a [`SignedQuote`] or the reason it declines. Messages are maps
//! with Go-style keys written in canonical order, so a later version can add fields that this
//! one skips. Each message is at most [`MAX_MESSAGE_SIZE`] bytes.
//!
//! - The client signs the request's CBOR with its wallet key: the quote is for that client
//!   only, and a provider can apply per-client rules.
//! - The provider's worker key signs the quote's CBOR; the quote names the request by the
//!   BLAKE2b-256 of the request's CBOR, so it cannot be replayed for other terms.
//! - A deal proposal is within a quote ([`within_quote`]) when it is the piece size, the
//!   verified flag and the duration asked, starts in the window and no earlier than the
//!   quote allows, pays at least the quoted price and offers at least the quoted collateral,
//!   and the quote is still valid.

use market_core::cbor::{self, DecodeError};
use market_core::deal::{DealProposal, blake2b_256};
use market_core::types::{Address, ChainEpoch, Signature, TokenAmount};
use market_core::wallet;
use serde::{Deserialize, Serialize};

/// The protocol id.
pub const QUOTE_PROTOCOL: &str = "/fil-market/quote/1.0.0";

/// The largest message accepted either way. A request is about 250 bytes with a BLS
/// signature, a quote about 300; the rest is room for fields a later version adds.
pub const MAX_MESSAGE_SIZE: usize = 4096;

/// The longest decline reason sent or kept.
pub const MAX_REASON_LEN: usize = 256;

/// What a broker asks a price for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuoteRequest {
    /// The miner asked.
    #[serde(rename = "Provider")]
    pub provider: Address,
    /// The client the deal would be made for (it signs the request).
    #[serde(rename = "Client")]
    pub client: Address,
    /// The padded piece size.
    #[serde(rename = "PieceSize")]
    pub piece_size: u64,
    /// Deal duration, in epochs.
    #[serde(rename = "Duration")]
    pub duration: i64,
    /// Whether the deal would use DataCap.
    #[serde(rename = "Verified")]
    pub verified: bool,
    /// The earliest start epoch the client accepts.
    #[serde(rename = "StartAfter")]
    pub start_after: ChainEpoch,
    /// The latest start epoch the client accepts.
    #[serde(rename = "StartBefore")]
    pub start_before: ChainEpoch,
    /// Chosen by the broker, so two requests with the same terms differ.
    #[serde(rename = "Nonce")]
    pub nonce: u64,
}

impl QuoteRequest {
    /// A request for `piece_size` bytes over `duration` epochs starting in the window.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provider: Address,
        client: Address,
        piece_size: u64,
        duration: i64,
        verified: bool,
        start_after: ChainEpoch,
        start_before: ChainEpoch,
        nonce: u64,
    ) -> Self {
        Self {
            provider,
            client,
            piece_size,
            duration,
            verified,
            start_after,
            start_before,
            nonce,
        }
    }

    /// The bytes the client signs.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }

    /// The digest a quote names this request by.
    pub fn digest(&self) -> [u8; 32] {
        blake2b_256(&self.to_cbor())
    }
}

/// A request with the client's signature over its CBOR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedQuoteRequest {
    /// The request.
    #[serde(rename = "Request")]
    pub request: QuoteRequest,
    /// The client's signature.
    #[serde(rename = "Signature")]
    pub signature: Signature,
}

/// The terms a provider offers for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Quote {
    /// BLAKE2b-256 of the request's CBOR.
    #[serde(rename = "Request", with = "serde_bytes_array")]
    pub request: [u8; 32],
    /// The miner quoting.
    #[serde(rename = "Provider")]
    pub provider: Address,
    /// attoFIL per epoch for the whole piece (not per GiB).
    #[serde(rename = "PricePerEpoch")]
    pub price_per_epoch: TokenAmount,
    /// The provider collateral it will put up.
    #[serde(rename = "Collateral")]
    pub collateral: TokenAmount,
    /// The earliest start epoch it can seal by.
    #[serde(rename = "EarliestStart")]
    pub earliest_start: ChainEpoch,
    /// The last epoch a deal can be proposed under this quote.
    #[serde(rename = "ValidUntil")]
    pub valid_until: ChainEpoch,
    /// Bytes it can still take in (after this deal), for the broker's placement.
    #[serde(rename = "Capacity")]
    pub remaining_capacity: u64,
}

impl Quote {
    /// Terms for `request` of `provider`.
    pub fn new(
        request: &QuoteRequest,
        price_per_epoch: TokenAmount,
        collateral: TokenAmount,
        earliest_start: ChainEpoch,
        valid_until: ChainEpoch,
        remaining_capacity: u64,
    ) -> Self {
        Self {
            request: request.digest(),
            provider: request.provider,
            price_per_epoch,
            collateral,
            earliest_start,
            valid_until,
            remaining_capacity,
        }
    }

    /// The bytes the worker signs.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::to_vec(self)
    }
}

/// A quote with the provider worker's signature over its CBOR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedQuote {
    /// The quote.
    #[serde(rename = "Quote")]
    pub quote: Quote,
    /// The worker's signature.
    #[serde(rename = "Signature")]
    pub signature: Signature,
}

/// The provider's answer: a quote, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteResponse {
    /// The quote, when the provider bids.
    #[serde(rename = "Quote")]
    pub quote: Option<SignedQuote>,
    /// Why it declines (empty with a quote), at most [`MAX_REASON_LEN`] bytes.
    #[serde(rename = "Message")]
    pub message: String,
}

impl QuoteResponse {
    /// A bid.
    pub fn bid(quote: SignedQuote) -> Self {
        Self {
            quote: Some(quote),
            message: String::new(),
        }
    }

    /// A refusal, its reason cut to [`MAX_REASON_LEN`] bytes.
    pub fn decline(reason: &str) -> Self {
        Self {
            quote: None,
            message: cut(reason, MAX_REASON_LEN),
        }
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Why a message is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// Not a message of this protocol, or over the size limit.
    #[error("quote message: {0}")]
    Decode(#[from] DecodeError),
    /// A signature that does not verify for the signer it must be from.
    #[error("bad signature of {signer}: {source}")]
    BadSignature {
        /// Who should have signed (boxed: an address is large, errors stay small).
        signer: Box<Address>,
        /// What the verification said.
        source: wallet::WalletError,
    },
    /// A request whose terms cannot be quoted (size, duration, window).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A quote that does not answer the request it came for, or is no longer valid.
    #[error("quote does not hold: {0}")]
    Mismatch(String),
}

/// Decodes a request, at most [`MAX_MESSAGE_SIZE`] bytes.
pub fn decode_request(bytes: &[u8]) -> Result<SignedQuoteRequest, QuoteError> {
    Ok(cbor::from_slice(bytes, MAX_MESSAGE_SIZE)?)
}

/// Decodes a response, at most [`MAX_MESSAGE_SIZE`] bytes.
pub fn decode_response(bytes: &[u8]) -> Result<QuoteResponse, QuoteError> {
    Ok(cbor::from_slice(bytes, MAX_MESSAGE_SIZE)?)
}

/// The request's own checks, before any policy: a valid padded piece size, a positive
/// duration, a start window that is not empty and not over at `head`, and the signature of
/// `client_key` (the client's key address: the request may name it by its id).
pub fn check_request(
    signed: &SignedQuoteRequest,
    client_key: &Address,
    head: ChainEpoch,
) -> Result<(), QuoteError> {
    let r = &signed.request;
    commp::PaddedPieceSize::new(r.piece_size)
        .map_err(|e| QuoteError::InvalidRequest(format!("piece size {}: {e}", r.piece_size)))?;
    if r.duration <= 0 {
        return Err(QuoteError::InvalidRequest(format!(
            "duration {} is not positive",
            r.duration
        )));
    }
    if r.start_before < r.start_after {
        return Err(QuoteError::InvalidRequest(format!(
            "start window {}..{} is empty",
            r.start_after, r.start_before
        )));
    }
    if r.start_before <= head {
        return Err(QuoteError::InvalidRequest(format!(
            "start window ends at {}, the chain is at {head}",
            r.start_before
        )));
    }
    wallet::verify(&signed.signature, client_key, &r.to_cbor()).map_err(|source| {
        QuoteError::BadSignature {
            signer: Box::new(*client_key),
            source,
        }
    })
}

/// Checks a quote received for `request` from a provider whose worker is `worker`, at
/// `head`: it names this request and this provider, the worker signed it, it is still valid
/// and its earliest start leaves the window open.
pub fn check_quote<'a>(
    signed: &'a SignedQuote,
    request: &QuoteRequest,
    worker: &Address,
    head: ChainEpoch,
) -> Result<&'a Quote, QuoteError> {
    let q = &signed.quote;
    if q.request != request.digest() {
        return Err(QuoteError::Mismatch("it names another request".into()));
    }
    if q.provider != request.provider {
        return Err(QuoteError::Mismatch(format!(
            "quoted by {}, asked of {}",
            q.provider, request.provider
        )));
    }
    wallet::verify(&signed.signature, worker, &q.to_cbor()).map_err(|source| {
        QuoteError::BadSignature {
            signer: Box::new(*worker),
            source,
        }
    })?;
    if q.valid_until < head {
        return Err(QuoteError::Mismatch(format!(
            "valid until {}, the chain is at {head}",
            q.valid_until
        )));
    }
    if q.earliest_start > request.start_before {
        return Err(QuoteError::Mismatch(format!(
            "earliest start {} is after the window's end {}",
            q.earliest_start, request.start_before
        )));
    }
    Ok(q)
}

/// Whether `proposal`, made at `head`, is within the terms `quote` gave for `request`;
/// `Err` says which term it breaks.
pub fn within_quote(
    proposal: &DealProposal,
    request: &QuoteRequest,
    quote: &Quote,
    head: ChainEpoch,
) -> Result<(), String> {
    if quote.request != request.digest() {
        return Err("the quote is for another request".into());
    }
    if head > quote.valid_until {
        return Err(format!("the quote expired at epoch {}", quote.valid_until));
    }
    if proposal.provider != quote.provider || proposal.client != request.client {
        return Err("another provider or client than quoted".into());
    }
    if proposal.piece_size != request.piece_size || proposal.verified_deal != request.verified {
        return Err("another piece size or verified flag than quoted".into());
    }
    let duration = proposal.end_epoch.since(proposal.start_epoch);
    if duration != request.duration {
        return Err(format!(
            "duration {duration}, quoted for {}",
            request.duration
        ));
    }
    let start = proposal.start_epoch;
    if start < request.start_after || start > request.start_before || start < quote.earliest_start {
        return Err(format!(
            "start epoch {start} outside the quoted window {}..{}",
            quote.earliest_start.max(request.start_after),
            request.start_before
        ));
    }
    if proposal.storage_price_per_epoch < quote.price_per_epoch {
        return Err(format!(
            "price {} per epoch below the quoted {}",
            proposal.storage_price_per_epoch.atto(),
            quote.price_per_epoch.atto()
        ));
    }
    if proposal.provider_collateral < quote.collateral {
        return Err(format!(
            "provider collateral {} below the quoted {}",
            proposal.provider_collateral.atto(),
            quote.collateral.atto()
        ));
    }
    Ok(())
}

/// A 32-byte digest as a CBOR byte string (serde's arrays are CBOR arrays otherwise).
mod serde_bytes_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        <[u8; 32]>::try_from(b.as_slice())
            .map_err(|_| serde::de::Error::invalid_length(b.len(), &"32 bytes"))
    }
}
