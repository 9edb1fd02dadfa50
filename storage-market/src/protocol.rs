//! The storage market's libp2p protocol ids, each version a value of [`Protocol`].

use std::fmt;
use std::str::FromStr;

use libp2p::StreamProtocol;

/// A storage-market protocol version, as a deal records the one it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// `/fil/storage/ask/1.1.0`.
    AskV110,
    /// `/fil/storage/ask/1.0.1` (tuple encoding; the ask is signed over the tuple bytes).
    AskV101,
    /// `/fil/storage/mk/1.2.1` (Boost).
    DealV121,
    /// `/fil/storage/mk/1.2.0` (Boost; `DealParams` without `RemoveUnsealedCopy` and
    /// `SkipIPNIAnnounce`).
    DealV120,
    /// `/fil/storage/mk/1.1.1` (go-fil-markets).
    DealV111,
    /// `/fil/storage/status/1.2.0` (Boost).
    StatusV120,
    /// `/fil/storage/status/1.1.0` (go-fil-markets).
    StatusV110,
}

impl Protocol {
    /// Every version this crate speaks.
    pub const ALL: [Protocol; 7] = [
        Protocol::AskV110,
        Protocol::AskV101,
        Protocol::DealV121,
        Protocol::DealV120,
        Protocol::DealV111,
        Protocol::StatusV120,
        Protocol::StatusV110,
    ];

    /// The protocol id.
    pub const fn id(self) -> &'static str {
        match self {
            Protocol::AskV110 => "/fil/storage/ask/1.1.0",
            Protocol::AskV101 => "/fil/storage/ask/1.0.1",
            Protocol::DealV121 => "/fil/storage/mk/1.2.1",
            Protocol::DealV120 => "/fil/storage/mk/1.2.0",
            Protocol::DealV111 => "/fil/storage/mk/1.1.1",
            Protocol::StatusV120 => "/fil/storage/status/1.2.0",
            Protocol::StatusV110 => "/fil/storage/status/1.1.0",
        }
    }

    /// The libp2p stream protocol.
    pub const fn stream_protocol(self) -> StreamProtocol {
        StreamProtocol::new(self.id())
    }

    /// Whether this is one of Boost's 1.2.x deal protocols.
    pub const fn is_boost_deal(self) -> bool {
        matches!(self, Protocol::DealV121 | Protocol::DealV120)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A protocol id this crate does not speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown storage protocol {0:?}")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.id() == s)
            .ok_or_else(|| UnknownProtocol(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.id().parse::<Protocol>(), Ok(p));
            assert_eq!(p.stream_protocol().as_ref(), p.id());
        }
        assert!("/fil/storage/mk/9.9.9".parse::<Protocol>().is_err());
    }
}
