//! The Filecoin storage market: `StorageClient` and `StorageProvider`.
//!
//! Planned role: asks, the deal protocols (`/fil/storage/mk/1.1.1`, `1.2.0`, `1.2.1`) and deal
//! status, proposal validation, the persisted deal state machine, publishing, hand-off to
//! sealing and the chain-node adapter. Not implemented yet: this crate has no API.
