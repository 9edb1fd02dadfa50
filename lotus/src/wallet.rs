//! Signing with keys held elsewhere: a Lotus or Venus node's wallet (`WalletSign`), a
//! venus-wallet / lotus-wallet, or sophon-gateway, so a market can sign asks and deal
//! responses with a worker key it never sees.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use market_core::types::{Address, Signature};
use market_core::wallet::{SignPurpose, Wallet, WalletError};

use crate::chain::Flavor;
use crate::json::{AddressJson, MsgMeta, SignatureJson};
use crate::rpc::RpcClient;

fn meta(purpose: SignPurpose<'_>) -> MsgMeta {
    MsgMeta {
        kind: purpose.meta_type().to_string(),
        extra: match purpose {
            SignPurpose::Message { cbor } => Some(cbor.to_vec()),
            _ => None,
        },
    }
}

fn remote(e: impl std::fmt::Display) -> WalletError {
    WalletError::Remote(e.to_string())
}

/// A node's wallet over `Filecoin.WalletSign` / `WalletHas` (`sign` permission): two params on
/// Lotus, three (with `MsgMeta`) on Venus and on remote wallets.
#[derive(Debug, Clone)]
pub struct NodeWallet {
    rpc: RpcClient,
    flavor: Flavor,
}

impl NodeWallet {
    /// The wallet of the node at `rpc`.
    pub fn new(rpc: RpcClient, flavor: Flavor) -> Self {
        Self { rpc, flavor }
    }
}

#[async_trait::async_trait]
impl Wallet for NodeWallet {
    async fn sign(&self, address: &Address, msg: &[u8]) -> Result<Signature, WalletError> {
        self.sign_for(address, msg, SignPurpose::Unknown).await
    }

    async fn sign_for(
        &self,
        address: &Address,
        msg: &[u8],
        purpose: SignPurpose<'_>,
    ) -> Result<Signature, WalletError> {
        let data = B64.encode(msg);
        let sig: SignatureJson = match self.flavor {
            Flavor::Lotus => {
                self.rpc
                    .call("WalletSign", (AddressJson(*address), data))
                    .await
            }
            Flavor::Venus => {
                self.rpc
                    .call("WalletSign", (AddressJson(*address), data, meta(purpose)))
                    .await
            }
        }
        .map_err(remote)?;
        sig.try_into().map_err(remote)
    }

    async fn has(&self, address: &Address) -> bool {
        self.rpc
            .call::<_, bool>("WalletHas", (AddressJson(*address),))
            .await
            .unwrap_or(false)
    }
}

/// sophon-gateway's wallet relay (`Gateway.WalletSign(addr, accounts, bytes, meta)` on
/// `/rpc/v2`, `admin`): it forwards to the venus-wallet of whichever account owns the key.
#[derive(Debug, Clone)]
pub struct GatewayWallet {
    rpc: RpcClient,
    accounts: Vec<String>,
}

impl GatewayWallet {
    /// The gateway at `rpc` (any namespace; `Gateway` is used), signing for `accounts` (the
    /// sophon-auth user names that own the signers).
    pub fn new(rpc: &RpcClient, accounts: Vec<String>) -> Self {
        Self {
            rpc: rpc.with_namespace("Gateway"),
            accounts,
        }
    }
}

#[async_trait::async_trait]
impl Wallet for GatewayWallet {
    async fn sign(&self, address: &Address, msg: &[u8]) -> Result<Signature, WalletError> {
        self.sign_for(address, msg, SignPurpose::Unknown).await
    }

    async fn sign_for(
        &self,
        address: &Address,
        msg: &[u8],
        purpose: SignPurpose<'_>,
    ) -> Result<Signature, WalletError> {
        let sig: SignatureJson = self
            .rpc
            .call(
                "WalletSign",
                (
                    AddressJson(*address),
                    &self.accounts,
                    B64.encode(msg),
                    meta(purpose),
                ),
            )
            .await
            .map_err(remote)?;
        sig.try_into().map_err(remote)
    }

    async fn has(&self, address: &Address) -> bool {
        self.rpc
            .call::<_, bool>("WalletHas", (AddressJson(*address), &self.accounts))
            .await
            .unwrap_or(false)
    }
}
