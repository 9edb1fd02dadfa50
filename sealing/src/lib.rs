//! The market's side of sealing.
//!
//! - [`api`]: droplet's sealer-facing `VENUS_MARKET` methods, so damocles and venus-sealer
//!   take deals from this market unchanged (the pull model), and [`resource`]: the
//!   `/resource` endpoint they fetch piece bytes from.
//! - [`assign`]: which deals go into a sector and where (pure).
//! - [`lotus_miner`]: a [`Sealer`](storage_market::sealer::Sealer) that pushes pieces to
//!   lotus-miner with `SectorAddPieceToAny`, as Boost does (the push model).
//! - [`unseal`]: getting bytes back from sealed sectors.
//! - [`client`] and [`worker`]: a sealer's side of the pull API, used by the `sealer`
//!   example binary.
//!
//! See `../shared/spec/node_api.md` §4 for the shapes pinned here.

pub mod api;
pub mod assign;
pub mod client;
pub mod events;
pub mod json;
pub mod lotus_miner;
pub mod resource;
pub mod unseal;
pub mod worker;

pub use api::{ApiError, ApiVersion, PullSealer, SealerApi};
