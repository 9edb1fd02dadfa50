//! What the libp2p listener tests share: a one-number protocol and the bound on "now".

#![allow(dead_code)]

use std::time::Duration;

use libp2p::StreamProtocol;
use market_core::rpc::Codec;

/// Generous bound on anything that should happen "now": only a hang trips it.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// The only version of [`Double`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V1;

/// A request of one number answered with its double.
pub(crate) struct Double;

impl Codec for Double {
    type Protocol = V1;
    type Request = u64;
    type Response = u64;
    fn protocol_id(_: V1) -> StreamProtocol {
        StreamProtocol::new("/fil-market-rs/test/double/1")
    }
}
