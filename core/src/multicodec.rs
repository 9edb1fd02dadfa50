//! Multicodec and multihash codes the markets use, in one place. The piece codes (and raw,
//! which piece CID v2 uses) are commp's, which sits below this crate.

/// Raw binary (CAR leaves, raw blocks, piece CID v2).
pub use commp::RAW;
pub use commp::{
    FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADBINTREE, SHA2_256_TRUNC254_PADDED,
};
/// DAG-PB (UnixFS nodes).
pub const DAG_PB: u64 = 0x70;
/// DAG-CBOR (messages, deal proposals).
pub const DAG_CBOR: u64 = 0x71;
/// The identity multihash (inlined blocks).
pub const IDENTITY: u64 = 0x00;
/// SHA2-256.
pub const SHA2_256: u64 = 0x12;
/// BLAKE2b-256 (Lotus CIDs).
pub const BLAKE2B_256: u64 = 0xb220;
