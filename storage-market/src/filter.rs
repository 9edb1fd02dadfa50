//! Deal filters: the operator's policy on top of protocol validation.
//!
//! [`BasicFilter`] is the flag set Lotus, Boost and droplet share (`Consider*` flags, piece CID
//! blocklist, expected seal duration, maximum start delay). [`ExternalFilter`] runs the
//! operator's command with Boost's JSON (format version 2.2.0) on stdin: exit status 0
//! accepts, anything else rejects with the command's output as the reason.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use crate::Cid;
use base64::Engine;
use tokio::io::AsyncWriteExt;

use crate::message::DealParams;
use crate::types::ChainEpoch;

/// Seconds per epoch on every Filecoin network.
pub const EPOCH_SECONDS: u64 = 30;

/// The basic filter flags.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BasicFilter {
    /// Accept online (transferred) deals.
    pub consider_online: bool,
    /// Accept offline (imported) deals.
    pub consider_offline: bool,
    /// Accept verified deals.
    pub consider_verified: bool,
    /// Accept unverified deals.
    pub consider_unverified: bool,
    /// Pieces never accepted.
    pub piece_cid_blocklist: HashSet<Cid>,
    /// How long sealing takes; deals must start after now + this.
    pub expected_seal_duration: Duration,
    /// Online deals may not start later than now + seal duration + this.
    pub max_deal_start_delay: Duration,
}

impl Default for BasicFilter {
    /// Boost's and droplet's defaults: everything considered, 24 h sealing, 14 days delay.
    fn default() -> Self {
        Self {
            consider_online: true,
            consider_offline: true,
            consider_verified: true,
            consider_unverified: true,
            piece_cid_blocklist: HashSet::new(),
            expected_seal_duration: Duration::from_secs(24 * 3600),
            max_deal_start_delay: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

impl BasicFilter {
    /// Sets [`consider_online`](Self::consider_online).
    pub fn with_consider_online(mut self, consider_online: bool) -> Self {
        self.consider_online = consider_online;
        self
    }

    /// Sets [`consider_offline`](Self::consider_offline).
    pub fn with_consider_offline(mut self, consider_offline: bool) -> Self {
        self.consider_offline = consider_offline;
        self
    }

    /// Sets [`consider_verified`](Self::consider_verified).
    pub fn with_consider_verified(mut self, consider_verified: bool) -> Self {
        self.consider_verified = consider_verified;
        self
    }

    /// Sets [`consider_unverified`](Self::consider_unverified).
    pub fn with_consider_unverified(mut self, consider_unverified: bool) -> Self {
        self.consider_unverified = consider_unverified;
        self
    }

    /// Sets [`piece_cid_blocklist`](Self::piece_cid_blocklist).
    pub fn with_piece_cid_blocklist(mut self, piece_cid_blocklist: HashSet<Cid>) -> Self {
        self.piece_cid_blocklist = piece_cid_blocklist;
        self
    }

    /// Sets [`expected_seal_duration`](Self::expected_seal_duration).
    pub fn with_expected_seal_duration(mut self, expected_seal_duration: Duration) -> Self {
        self.expected_seal_duration = expected_seal_duration;
        self
    }

    /// Sets [`max_deal_start_delay`](Self::max_deal_start_delay).
    pub fn with_max_deal_start_delay(mut self, max_deal_start_delay: Duration) -> Self {
        self.max_deal_start_delay = max_deal_start_delay;
        self
    }
}

impl BasicFilter {
    /// Returns the rejection reason, if any, for a deal at chain head `head`.
    pub fn check(&self, params: &DealParams, head: ChainEpoch) -> Result<(), String> {
        let p = &params.client_deal_proposal.proposal;
        if !params.is_offline && !self.consider_online {
            return Err("miner is not considering online storage deals".into());
        }
        if params.is_offline && !self.consider_offline {
            return Err("miner is not accepting offline storage deals".into());
        }
        if p.verified_deal && !self.consider_verified {
            return Err("miner is not accepting verified storage deals".into());
        }
        if !p.verified_deal && !self.consider_unverified {
            return Err("miner is not accepting unverified storage deals".into());
        }
        if self.piece_cid_blocklist.contains(&p.piece_cid) {
            return Err(format!("miner has blocklisted piece CID {}", p.piece_cid));
        }
        let seal_epochs = (self.expected_seal_duration.as_secs() / EPOCH_SECONDS) as i64;
        let earliest = head.plus(seal_epochs);
        if p.start_epoch < earliest {
            return Err(format!(
                "cannot seal a sector before {earliest} (current epoch {head}, deal start {})",
                p.start_epoch
            ));
        }
        let delay_epochs = (self.max_deal_start_delay.as_secs() / EPOCH_SECONDS) as i64;
        if !params.is_offline && p.start_epoch > earliest.plus(delay_epochs) {
            return Err(format!(
                "deal start epoch is too far in the future: {} > {}",
                p.start_epoch,
                earliest.plus(delay_epochs)
            ));
        }
        Ok(())
    }
}

/// What the provider knows about its funds and storage, passed to the external filter.
#[derive(Debug, Clone, Default)]
pub struct FilterContext {
    /// Market escrow available to the provider.
    pub escrow_available: String,
    /// Market escrow locked.
    pub escrow_locked: String,
    /// Free bytes in the piece store.
    pub storage_free: u64,
}

/// An operator command run for each deal (`sh -c <command>`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExternalFilter {
    /// The shell command.
    pub command: String,
    /// How long the command may run before the deal is rejected.
    pub timeout: Duration,
}

impl ExternalFilter {
    /// Runs `command` for every proposal, allowing it `timeout`.
    pub fn new(command: impl Into<String>, timeout: Duration) -> Self {
        Self {
            command: command.into(),
            timeout,
        }
    }

    /// Runs the filter: `Ok(())` accepts, `Err(reason)` rejects.
    pub async fn check(&self, params: &DealParams, ctx: &FilterContext) -> Result<(), String> {
        let input = serde_json::to_vec_pretty(&boost_filter_json(params, ctx))
            .map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("deal filter could not start: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A filter that exits without reading stdin is fine; ignore a broken pipe.
            let _ = stdin.write_all(&input).await;
        }
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(format!("deal filter failed: {e}")),
            Err(_) => return Err(format!("deal filter timed out after {:?}", self.timeout)),
        };
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let text = text.trim();
        Err(if text.is_empty() {
            format!("deal rejected by filter ({})", out.status)
        } else {
            text.to_owned()
        })
    }
}

/// Boost's filter input (`storagemarket/dealfilter/cli.go`, format version 2.2.0).
fn boost_filter_json(params: &DealParams, ctx: &FilterContext) -> serde_json::Value {
    let p = &params.client_deal_proposal.proposal;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let label = match &p.label {
        crate::types::DealLabel::String(s) => s.clone(),
        crate::types::DealLabel::Bytes(_) => String::new(),
    };
    serde_json::json!({
        "DealUUID": params.deal_uuid.to_string(),
        "IsOffline": params.is_offline,
        "ClientDealProposal": {
            "Proposal": {
                "PieceCID": {"/": p.piece_cid.to_string()},
                "PieceSize": p.piece_size,
                "VerifiedDeal": p.verified_deal,
                "Client": p.client.to_string(),
                "Provider": p.provider.to_string(),
                "Label": label,
                "StartEpoch": p.start_epoch.get(),
                "EndEpoch": p.end_epoch.get(),
                "StoragePricePerEpoch": p.storage_price_per_epoch.atto().to_string(),
                "ProviderCollateral": p.provider_collateral.atto().to_string(),
                "ClientCollateral": p.client_collateral.atto().to_string(),
            },
            "ClientSignature": {
                "Type": params.client_deal_proposal.client_signature.kind().code(),
                "Data": b64(params.client_deal_proposal.client_signature.bytes()),
            },
        },
        "DealDataRoot": {"/": params.deal_data_root.to_string()},
        "Transfer": {
            "Type": params.transfer.kind,
            "ClientID": params.transfer.client_id,
            "Params": b64(&params.transfer.params),
            "Size": params.transfer.size,
        },
        "RemoveUnsealedCopy": params.remove_unsealed_copy,
        "SkipIPNIAnnounce": params.skip_ipni_announce,
        "SealingPipelineState": {"SectorStates": {}, "Workers": []},
        "FundsState": {
            "Escrow": {"Tagged": "0", "Available": ctx.escrow_available, "Locked": ctx.escrow_locked},
            "Collateral": {"Address": "", "Balance": "0"},
            "PubMsg": {"Address": "", "Balance": "0"},
        },
        "StorageState": {"TotalAvailable": ctx.storage_free, "Tagged": 0, "Staged": 0, "Free": ctx.storage_free},
        "DealType": "storage",
        "FormatVersion": "2.2.0",
        "Agent": "boost",
    })
}
