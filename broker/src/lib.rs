//! The broker side of the storage market (the roadmap's platform phase): what lets a
//! deal-making platform get prices from many providers in real time and place replicas on
//! the best of them.
//!
//! - [`quote`]: `/fil-market/quote/1.0.0`, a signed request for quote and a signed quote,
//!   one bounded CBOR item each way, and the checks both sides make (is the request
//!   well-formed and the client's, does the quote answer it, is a deal within a quote);
//! - [`bidding`]: the provider's bidding policy as a pure function of the request and what
//!   it knows (head, free capacity, minimum collateral);
//! - [`serve`]: the protocol on a libp2p host: [`serve::QuoteProvider`] answers for a node's
//!   miners, [`serve::request_quote`] asks one provider and checks the answer.
//!
//! The provider registry, the placement of replicas and reputation are to follow (issue 15).

pub mod bidding;
pub mod quote;
pub mod serve;

pub use bidding::{BidFacts, BiddingPolicy, ClientRule, Decline, Discount, bid};
pub use quote::{
    MAX_MESSAGE_SIZE, QUOTE_PROTOCOL, Quote, QuoteError, QuoteRequest, QuoteResponse, SignedQuote,
    SignedQuoteRequest,
};
