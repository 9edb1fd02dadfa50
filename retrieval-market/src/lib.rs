//! The Filecoin retrieval market: `RetrievalClient` and `RetrievalProvider`.
//!
//! Planned role: the query protocol (`/fil/retrieval/qry/1.0.0`), transports advertisement,
//! and HTTP piece and trustless-gateway (CAR) retrieval. Not implemented yet: this crate has
//! no API.
