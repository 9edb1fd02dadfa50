//! [`DevApi`]: the devnet's `Dev` namespace from another process (faucet, miner set-up, the
//! dev sealer's sector intake), next to the Lotus API that `lotus-api` speaks.

use lotus_api::RpcClient;
use lotus_api::json::{AddressJson, AmountJson};
use market_core::chain::ChainError;
use market_core::types::{Address, DealId, SectorNumber, TokenAmount};

use crate::sealer::SealingChain;

/// The devnet's dev-only methods.
#[derive(Debug, Clone)]
pub struct DevApi {
    rpc: RpcClient,
}

impl DevApi {
    /// The `Dev` namespace of the devnet `rpc` points at.
    pub fn new(rpc: &RpcClient) -> Self {
        Self {
            rpc: rpc.with_namespace("Dev"),
        }
    }

    /// Faucet (`write`; capped per address): credits `amount` to `addr`, returns its id address.
    pub async fn fund(&self, addr: &Address, amount: TokenAmount) -> Result<Address, ChainError> {
        let AddressJson(a) = self
            .rpc
            .call("Fund", (AddressJson(*addr), AmountJson(amount)))
            .await?;
        Ok(a)
    }

    /// The miner owned by `owner` with worker `worker`, created if there is none (`admin`).
    pub async fn create_miner(
        &self,
        owner: &Address,
        worker: &Address,
        sector_size: u64,
    ) -> Result<Address, ChainError> {
        let AddressJson(a) = self
            .rpc
            .call(
                "CreateMiner",
                (AddressJson(*owner), AddressJson(*worker), sector_size),
            )
            .await?;
        Ok(a)
    }

    /// Grants DataCap (`admin`).
    pub async fn add_verified_client(
        &self,
        client: &Address,
        bytes: u128,
    ) -> Result<(), ChainError> {
        let _: Option<()> = self
            .rpc
            .call(
                "AddVerifiedClient",
                (AddressJson(*client), bytes.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Terminates a deal early (`admin`).
    pub async fn slash_deal(&self, id: DealId) -> Result<(), ChainError> {
        let _: Option<()> = self.rpc.call("SlashDeal", (id.0,)).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SealingChain for DevApi {
    async fn add_piece(&self, miner: &Address, deal: DealId) -> Result<SectorNumber, ChainError> {
        Ok(SectorNumber(
            self.rpc
                .call("SectorAddPiece", (AddressJson(*miner), deal.0))
                .await?,
        ))
    }
    async fn precommit_all(&self) -> Result<usize, ChainError> {
        Ok(self.rpc.call("SectorsPreCommit", ()).await?)
    }
    async fn prove_all(&self) -> Result<usize, ChainError> {
        Ok(self.rpc.call("SectorsProve", ()).await?)
    }
}
