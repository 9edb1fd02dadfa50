//! The provider's deal state machine, free of I/O.
//!
//! States carry go-fil-markets' numeric codes (`storagemarket/dealstatus.go`), which the 1.1
//! wire and droplet's database use; [`Checkpoint`] gives Boost's names for the 1.2 status wire.
//! [`StorageDealStatus::on`] is the only place transitions are defined; the provider persists
//! the new state before acting on it, so a restart resumes from the last durable state.
//!
//! Happy path of an offline deal:
//! `Validating → AcceptWait → WaitingForData →(data imported, commP verified)
//! ReserveProviderFunds →(ProviderFunding →) Publish → Publishing → Staged →
//! AwaitingPreCommit → Sealing → Finalizing → Active → Expired`.
//! Any failure goes to `Failing` and then `Error`; a slashed deal ends in `Slashed`.

use std::fmt;

macro_rules! statuses {
    ($($name:ident = $code:literal),* $(,)?) => {
        /// go-fil-markets `StorageDealStatus`, with its numeric codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum StorageDealStatus {
            $(
                #[doc = concat!("Code ", stringify!($code), ".")]
                $name,
            )*
        }

        impl StorageDealStatus {
            /// The wire code.
            pub const fn code(self) -> u64 {
                match self { $(Self::$name => $code,)* }
            }

            /// The status for a wire code.
            pub const fn from_code(code: u64) -> Option<Self> {
                match code { $($code => Some(Self::$name),)* _ => None }
            }

            /// The go-fil-markets name (`StorageDealActive`, …).
            pub const fn name(self) -> &'static str {
                match self { $(Self::$name => concat!("StorageDeal", stringify!($name)),)* }
            }
        }
    };
}

statuses! {
    Unknown = 0, ProposalNotFound = 1, ProposalRejected = 2, ProposalAccepted = 3, Staged = 4,
    Sealing = 5, Finalizing = 6, Active = 7, Expired = 8, Slashed = 9, Rejecting = 10,
    Failing = 11, FundsReserved = 12, CheckForAcceptance = 13, Validating = 14, AcceptWait = 15,
    StartDataTransfer = 16, Transferring = 17, WaitingForData = 18, VerifyData = 19,
    ReserveProviderFunds = 20, ReserveClientFunds = 21, ProviderFunding = 22, ClientFunding = 23,
    Publish = 24, Publishing = 25, Error = 26, ProviderTransferAwaitRestart = 27,
    ClientTransferRestart = 28, AwaitingPreCommit = 29, TransferQueued = 30,
}

impl fmt::Display for StorageDealStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happened to a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DealEvent {
    /// Validation passed and the deal was accepted (offline deals wait for data).
    Accepted {
        /// Whether the data will be imported by hand.
        offline: bool,
    },
    /// The data arrived and its commP matched the proposal.
    DataVerified,
    /// Provider escrow already covers the collateral.
    FundsReserved,
    /// An AddBalance message was sent to cover the collateral.
    FundingInitiated,
    /// The AddBalance message landed.
    Funded,
    /// The deal went out in a PublishStorageDeals message.
    PublishSent,
    /// The publish message landed and the deal has an id.
    Published,
    /// The sealer took the piece.
    HandedOff,
    /// The sector holding the deal was pre-committed.
    PreCommitted,
    /// The sealer gave the deal back (its sector was aborted); it waits for a sealer again.
    Released,
    /// The sector was proven and the deal activated on chain.
    Activated,
    /// Post-activation clean-up finished.
    Finalized,
    /// The deal reached its end epoch.
    Expired,
    /// The deal was slashed (or timed out before activation).
    Slashed,
    /// Something failed; the deal is being failed.
    Failed,
    /// Clean-up after a failure finished.
    CleanedUp,
    /// The operator retried a deal that failed before it was published: it waits for its
    /// data again.
    Retried {
        /// Whether the data will be imported by hand.
        offline: bool,
    },
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} is not valid in state {from}")]
pub struct InvalidTransition {
    /// The state.
    pub from: StorageDealStatus,
    /// The event.
    pub event: DealEvent,
}

impl StorageDealStatus {
    /// The state after `event`.
    pub fn on(self, event: DealEvent) -> Result<Self, InvalidTransition> {
        use DealEvent as E;
        use StorageDealStatus as S;
        let next = match (self, &event) {
            (_, E::Failed) if !self.is_terminal() => S::Failing,
            (S::Failing, E::CleanedUp) => S::Error,
            (S::Error, E::Retried { offline: true }) => S::WaitingForData,
            (S::Error, E::Retried { offline: false }) => S::Transferring,
            (S::Validating | S::AcceptWait, E::Accepted { offline: true }) => S::WaitingForData,
            (S::Validating | S::AcceptWait, E::Accepted { offline: false }) => S::Transferring,
            (S::WaitingForData | S::Transferring | S::VerifyData, E::DataVerified) => {
                S::ReserveProviderFunds
            }
            (S::ReserveProviderFunds, E::FundsReserved) => S::Publish,
            (S::ReserveProviderFunds, E::FundingInitiated) => S::ProviderFunding,
            (S::ProviderFunding, E::Funded) => S::Publish,
            (S::Publish, E::PublishSent) => S::Publishing,
            (S::Publishing, E::Published) => S::Staged,
            (S::Staged, E::HandedOff) => S::AwaitingPreCommit,
            (S::AwaitingPreCommit, E::PreCommitted) => S::Sealing,
            (S::Sealing, E::Released) => S::AwaitingPreCommit,
            (S::AwaitingPreCommit | S::Sealing, E::Activated) => S::Finalizing,
            (S::Finalizing, E::Finalized) => S::Active,
            (S::Active, E::Expired) => S::Expired,
            (
                S::Publishing
                | S::Staged
                | S::AwaitingPreCommit
                | S::Sealing
                | S::Finalizing
                | S::Active,
                E::Slashed,
            ) => S::Slashed,
            _ => return Err(InvalidTransition { from: self, event }),
        };
        Ok(next)
    }

    /// Whether the deal is finished (nothing more will happen to it).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Expired | Self::Slashed | Self::Error | Self::ProposalRejected
        )
    }

    /// Whether an operator may cancel a deal in this state: only before its data is
    /// verified, when nothing was spent and nothing is on chain.
    pub const fn is_cancellable(self) -> bool {
        matches!(
            self,
            Self::WaitingForData
                | Self::Transferring
                | Self::TransferQueued
                | Self::ProviderTransferAwaitRestart
        )
    }

    /// Boost's checkpoint for this state, as the 1.2 status protocol reports it.
    pub const fn checkpoint(self) -> Checkpoint {
        match self {
            Self::Validating
            | Self::AcceptWait
            | Self::WaitingForData
            | Self::Transferring
            | Self::TransferQueued => Checkpoint::Accepted,
            Self::VerifyData
            | Self::ReserveProviderFunds
            | Self::ProviderFunding
            | Self::Publish => Checkpoint::Transferred,
            Self::Publishing => Checkpoint::Published,
            Self::Staged => Checkpoint::PublishConfirmed,
            Self::AwaitingPreCommit | Self::Sealing | Self::Finalizing => Checkpoint::AddedPiece,
            _ => Checkpoint::Complete,
        }
    }
}

/// Boost's deal checkpoints (`dealcheckpoints/checkpoints.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Checkpoint {
    /// Accepted, data not yet received.
    Accepted,
    /// Data received and verified.
    Transferred,
    /// Publish message sent.
    Published,
    /// Publish message landed, deal id known.
    PublishConfirmed,
    /// Handed to the sealer.
    AddedPiece,
    /// Indexed and announced.
    IndexedAndAnnounced,
    /// Finished (active, expired, or failed with an error).
    Complete,
}

impl Checkpoint {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::Transferred => "Transferred",
            Self::Published => "Published",
            Self::PublishConfirmed => "PublishConfirmed",
            Self::AddedPiece => "AddedPiece",
            Self::IndexedAndAnnounced => "IndexedAndAnnounced",
            Self::Complete => "Complete",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DealEvent as E;
    use StorageDealStatus as S;

    #[test]
    fn codes_round_trip() {
        for code in 0..=30 {
            assert_eq!(S::from_code(code).unwrap().code(), code);
        }
        assert_eq!(S::from_code(31), None);
        assert_eq!(S::WaitingForData.code(), 18);
        assert_eq!(S::Failing.code(), 11);
        assert_eq!(S::AwaitingPreCommit.name(), "StorageDealAwaitingPreCommit");
    }

    #[test]
    fn offline_happy_path() {
        let path = [
            E::Accepted { offline: true },
            E::DataVerified,
            E::FundingInitiated,
            E::Funded,
            E::PublishSent,
            E::Published,
            E::HandedOff,
            E::PreCommitted,
            E::Activated,
            E::Finalized,
            E::Expired,
        ];
        let mut s = S::Validating;
        for e in path {
            s = s.on(e).unwrap();
        }
        assert_eq!(s, S::Expired);
        assert!(s.is_terminal());
    }

    #[test]
    fn failures_and_invalid_events() {
        assert_eq!(S::Publishing.on(E::Failed), Ok(S::Failing));
        assert_eq!(S::Failing.on(E::CleanedUp), Ok(S::Error));
        assert!(S::Error.on(E::Failed).is_err());
        assert!(S::WaitingForData.on(E::Published).is_err());
        assert!(S::Active.on(E::DataVerified).is_err());
        assert_eq!(S::Active.on(E::Slashed), Ok(S::Slashed));
        assert_eq!(S::Publishing.checkpoint().name(), "Published");
    }
}
