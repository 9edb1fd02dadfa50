//! lotus-miner's answers and droplet's results decode or fail cleanly: every JSON type the
//! push sealer and the sealer client read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealing::json::*;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<SectorOffset>(data);
    let _ = serde_json::from_slice::<SectorStatus>(data);
    let _ = serde_json::from_slice::<Option<Vec<DealInfoIncludePath>>>(data);
    let _ = serde_json::from_slice::<DealInfo>(data);
    let _ = serde_json::from_slice::<PieceInfoJson>(data);
    let _ = serde_json::from_slice::<GetDealSpec>(data);
    let _ = serde_json::from_slice::<lotus_api::json::SectorPreCommitOnChainJson>(data);
    let _ = serde_json::from_slice::<lotus_api::json::SectorOnChainJson>(data);
});
