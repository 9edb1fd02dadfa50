//! Postgres behind the market's persisted traits, so several provider instances can share one
//! database (and survive losing a machine): [`PgDealStore`] implements
//! [`storage_market::store::DealStore`], [`PgPieceIndex`] implements
//! [`piecestore::PieceIndex`] (so every instance serves CAR retrieval of every piece),
//! [`PgAdStore`] implements [`market_ipni::store::AdStore`] (so the instances of a provider
//! extend one IPNI chain under its one identity).
//!
//! - [`PgDb`]: a pool of connections (deadpool; a broken connection is replaced on the next
//!   checkout, so a database restart costs the calls in flight, not the process) and
//!   versioned migrations per component, applied once even when several instances start
//!   together.
//! - SQL stays within what YugabyteDB's YSQL also runs (no advisory locks, no
//!   `LISTEN/NOTIFY`, plain `ON CONFLICT`, `SELECT … FOR UPDATE`), so a distributed SQL
//!   cluster works unchanged.
//!
//! SQLite stays the embedded default; this crate is for operators who run more than one
//! instance.

mod db;
mod deals;
mod index;
mod ipni;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Migration, PgDb, PgError};
pub use deals::PgDealStore;
pub use index::PgPieceIndex;
pub use ipni::PgAdStore;
