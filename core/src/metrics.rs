//! Every metric the crates record, in one catalogue: name, labels, unit and meaning.
//!
//! The crates record through the [`metrics`] facade, so an embedder picks the exporter (or
//! none: without a recorder installed every call here is a no-op costing a branch). The node
//! installs a Prometheus recorder and serves `/metrics`. Labels take few values only (a state
//! name, a reason code, a route), never a CID or a peer id, so series stay bounded.
//!
//! Gauges that describe stored state (deals by state, pieces, IPNI lag) are not kept here:
//! the node reads them from its stores when scraped, so they can never drift from the truth.

use std::time::Duration;

/// Deal proposals answered, by `outcome` (`accepted`, `rejected`) and `reason` (the
/// rejection's code, `none` when accepted).
pub const PROPOSALS: &str = "fil_market_proposals_total";
/// Deals entering each `state` (the status name), counted when the new state is stored.
pub const DEAL_TRANSITIONS: &str = "fil_market_deal_transitions_total";
/// Bytes of deal data received, by `transport` (`http`, `libp2p`).
pub const TRANSFER_BYTES: &str = "fil_market_transfer_bytes_total";
/// Transfers finished, by `outcome` (`complete`, `failed`).
pub const TRANSFERS: &str = "fil_market_transfers_total";
/// Bytes of unpadded piece data hashed into commP.
pub const COMMP_BYTES: &str = "fil_market_commp_bytes_total";
/// Time each commP computation took; `rate(COMMP_BYTES) / rate(COMMP_SECONDS_sum)` is the
/// throughput.
pub const COMMP_SECONDS: &str = "fil_market_commp_seconds";
/// PublishStorageDeals messages pushed, by `miner`.
pub const PUBLISH_MESSAGES: &str = "fil_market_publish_messages_total";
/// Deals carried by pushed publish messages, by `miner`.
pub const PUBLISH_DEALS: &str = "fil_market_publish_deals_total";
/// The most a pushed publish message may cost (fee cap × gas limit), in attoFIL, by `miner`.
pub const PUBLISH_MAX_FEE: &str = "fil_market_publish_max_fee_attofil_total";
/// HTTP requests answered, by `route` (`piece`, `ipfs`, `ipni`, `rpc`, `ui`, `metrics`,
/// `other`) and `status` (the code).
pub const HTTP_REQUESTS: &str = "fil_market_http_requests_total";
/// Response body bytes sent, by `route`.
pub const HTTP_RESPONSE_BYTES: &str = "fil_market_http_response_bytes_total";
/// Time to the response head, by `route`.
pub const HTTP_SECONDS: &str = "fil_market_http_request_seconds";
/// Time a database call took, queue wait included, by `db` and `op` (`write`: a group-committed write; `call`: anything else).
pub const DB_SECONDS: &str = "fil_market_db_seconds";
/// Time a piece store call took, by `op` (`put`, `open`, `read_at`, `stat`, `delete`, `list`).
pub const PIECE_STORE_SECONDS: &str = "fil_market_piece_store_seconds";

/// Histogram buckets for the `_seconds` histograms: 100 µs to 5 min.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0,
];

/// Registers the help text and unit of every metric above with the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(PROPOSALS, "Deal proposals answered, by outcome and reason");
    describe_counter!(DEAL_TRANSITIONS, "Deals entering each state");
    describe_counter!(TRANSFER_BYTES, Unit::Bytes, "Deal data bytes received");
    describe_counter!(TRANSFERS, "Transfers finished, by outcome");
    describe_counter!(COMMP_BYTES, Unit::Bytes, "Piece bytes hashed into commP");
    describe_histogram!(
        COMMP_SECONDS,
        Unit::Seconds,
        "Time each commP computation took"
    );
    describe_counter!(PUBLISH_MESSAGES, "PublishStorageDeals messages pushed");
    describe_counter!(PUBLISH_DEALS, "Deals carried by pushed publish messages");
    describe_counter!(
        PUBLISH_MAX_FEE,
        "Fee cap times gas limit of pushed publish messages, attoFIL"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route and status");
    describe_counter!(
        HTTP_RESPONSE_BYTES,
        Unit::Bytes,
        "HTTP response body bytes sent"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "Time to the HTTP response head"
    );
    describe_histogram!(DB_SECONDS, Unit::Seconds, "Database call latency");
    describe_histogram!(
        PIECE_STORE_SECONDS,
        Unit::Seconds,
        "Piece store call latency"
    );
}

/// Counts one answered proposal.
pub fn proposal(accepted: bool, reason: &'static str) {
    let outcome = if accepted { "accepted" } else { "rejected" };
    metrics::counter!(PROPOSALS, "outcome" => outcome, "reason" => reason).increment(1);
}

/// Counts a deal entering `state`.
pub fn deal_transition(state: &'static str) {
    metrics::counter!(DEAL_TRANSITIONS, "state" => state).increment(1);
}

/// Counts received deal bytes.
pub fn transfer_bytes(transport: &'static str, n: u64) {
    metrics::counter!(TRANSFER_BYTES, "transport" => transport).increment(n);
}

/// Counts a finished transfer.
pub fn transfer_done(complete: bool) {
    let outcome = if complete { "complete" } else { "failed" };
    metrics::counter!(TRANSFERS, "outcome" => outcome).increment(1);
}

/// Counts `bytes` hashed into commP in `took`.
pub fn commp(bytes: u64, took: Duration) {
    metrics::counter!(COMMP_BYTES).increment(bytes);
    metrics::histogram!(COMMP_SECONDS).record(took.as_secs_f64());
}

/// Records a database call.
pub fn db(db: &'static str, op: &'static str, took: Duration) {
    metrics::histogram!(DB_SECONDS, "db" => db, "op" => op).record(took.as_secs_f64());
}

/// Records a piece store call.
pub fn piece_store(op: &'static str, took: Duration) {
    metrics::histogram!(PIECE_STORE_SECONDS, "op" => op).record(took.as_secs_f64());
}

/// Records an answered HTTP request (the body's bytes are counted as they are sent, by
/// [`http_bytes`]).
pub fn http_request(route: &'static str, status: u16, took: Duration) {
    let status = status.to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    metrics::histogram!(HTTP_SECONDS, "route" => route).record(took.as_secs_f64());
}

/// The counter of response body bytes sent on `route`: resolved once per response, so
/// each body frame costs one atomic add.
pub fn http_bytes(route: &'static str) -> metrics::Counter {
    metrics::counter!(HTTP_RESPONSE_BYTES, "route" => route)
}

/// Counts a pushed publish message carrying `deals` deals with at most `max_fee` attoFIL.
pub fn publish(miner: String, deals: u64, max_fee: u64) {
    metrics::counter!(PUBLISH_MESSAGES, "miner" => miner.clone()).increment(1);
    metrics::counter!(PUBLISH_DEALS, "miner" => miner.clone()).increment(deals);
    metrics::counter!(PUBLISH_MAX_FEE, "miner" => miner).increment(max_fee);
}
