//! Multicodec and multihash codes the markets use, in one place.

pub use commp::{FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED};

/// Raw binary (CAR leaves, raw blocks).
pub const RAW: u64 = 0x55;
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
