//! Units and identifiers of the market: addresses, token amounts, epochs, deal ids,
//! signatures and deal labels, each with the exact CBOR form the Go implementations use.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Which network an address string belongs to: `f…` on mainnet, `t…` on test networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Network {
    /// Mainnet: addresses print as `f…`.
    #[default]
    Mainnet,
    /// Calibration, devnets and the dev chain: addresses print as `t…`.
    Testnet,
}

/// A Filecoin address (f0 id, f1 secp256k1, f2 actor, f3 BLS, f4 delegated).
///
/// Wraps `fvm_shared`'s address so its parsing and checksums are the chain's own, while the
/// text form is chosen per call instead of through `fvm_shared`'s process-wide network flag.
/// CBOR form: byte string `protocol ‖ payload`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(fvm_shared::address::Address);

/// The kind of key or actor an address designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressKind {
    /// `f0`: an actor id.
    Id,
    /// `f1`: blake2b-160 of an uncompressed secp256k1 public key.
    Secp256k1,
    /// `f2`: an actor address derived at creation.
    Actor,
    /// `f3`: a BLS public key.
    Bls,
    /// `f4`: a delegated (for example EVM) address.
    Delegated,
}

/// An address string or byte form that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {input:?}: {reason}")]
pub struct AddressError {
    input: String,
    reason: String,
}

impl Address {
    /// The id address `f0<id>`.
    pub const fn new_id(id: u64) -> Self {
        Self(fvm_shared::address::Address::new_id(id))
    }

    /// The `f1` address of an uncompressed (65-byte) secp256k1 public key.
    pub fn new_secp256k1(uncompressed_pubkey: &[u8]) -> Result<Self, AddressError> {
        fvm_shared::address::Address::new_secp256k1(uncompressed_pubkey)
            .map(Self)
            .map_err(|e| AddressError {
                input: hex::encode(uncompressed_pubkey),
                reason: e.to_string(),
            })
    }

    /// The `f3` address of a 48-byte BLS public key.
    pub fn new_bls(pubkey: &[u8]) -> Result<Self, AddressError> {
        fvm_shared::address::Address::new_bls(pubkey)
            .map(Self)
            .map_err(|e| AddressError {
                input: hex::encode(pubkey),
                reason: e.to_string(),
            })
    }

    /// Parses the binary form (`protocol ‖ payload`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AddressError> {
        fvm_shared::address::Address::from_bytes(bytes)
            .map(Self)
            .map_err(|e| AddressError {
                input: hex::encode(bytes),
                reason: e.to_string(),
            })
    }

    /// The binary form (`protocol ‖ payload`), as it appears inside CBOR.
    pub fn to_bytes(self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// What kind of address this is.
    pub fn kind(&self) -> AddressKind {
        use fvm_shared::address::Protocol;
        match self.0.protocol() {
            Protocol::ID => AddressKind::Id,
            Protocol::Secp256k1 => AddressKind::Secp256k1,
            Protocol::Actor => AddressKind::Actor,
            Protocol::BLS => AddressKind::Bls,
            Protocol::Delegated => AddressKind::Delegated,
        }
    }

    /// The actor id of an `f0` address.
    pub fn id(&self) -> Option<u64> {
        self.0.id().ok()
    }

    /// The address payload without the protocol byte (public key hash, BLS key, id varint).
    pub fn payload_bytes(&self) -> Vec<u8> {
        self.0.payload_bytes()
    }

    /// The text form on `network` (`f…` or `t…`).
    pub fn to_string_on(&self, network: Network) -> String {
        let mut s = self.0.to_string();
        // fvm_shared prints with its global network flag, which this crate never sets, so the
        // first character is the mainnet prefix; swap it for the requested one.
        if network == Network::Testnet {
            s.replace_range(0..1, "t");
        }
        s
    }
}

impl fmt::Display for Address {
    /// Mainnet form; use [`Address::to_string_on`] for `t…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_on(Network::Mainnet))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Accepts both `f…` and `t…` forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use fvm_shared::address::Network as N;
        let network = if s.starts_with('t') {
            N::Testnet
        } else {
            N::Mainnet
        };
        network
            .parse_address(s)
            .map(Self)
            .map_err(|e| AddressError {
                input: s.chars().take(128).collect(),
                reason: e.to_string(),
            })
    }
}

/// An amount of attoFIL (10^-18 FIL).
///
/// Stored as `u128`: the total supply (2·10^27 attoFIL) fits with a factor of 10^11 to spare,
/// and a market never handles negative amounts. CBOR form: Filecoin's BigInt byte string
/// (`00 ‖ big-endian magnitude`, empty for zero); decoding a negative or oversized value
/// fails instead of wrapping.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TokenAmount(u128);

impl TokenAmount {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The total FIL supply, the chain's upper bound for any single amount.
    pub const TOTAL_FILECOIN: Self = Self(2_000_000_000 * 1_000_000_000_000_000_000);

    /// An amount in attoFIL.
    pub const fn from_atto(atto: u128) -> Self {
        Self(atto)
    }

    /// An amount in nanoFIL (10^-9 FIL).
    pub const fn from_nano(nano: u64) -> Self {
        Self(nano as u128 * 1_000_000_000)
    }

    /// An amount in whole FIL.
    pub const fn from_whole(fil: u64) -> Self {
        Self(fil as u128 * 1_000_000_000_000_000_000)
    }

    /// The amount in attoFIL.
    pub const fn atto(self) -> u128 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        self.0.checked_add(rhs.0).map(Self)
    }

    /// `self − rhs`, or `None` when `rhs` is larger.
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.0.checked_sub(rhs.0).map(Self)
    }

    /// `self − rhs`, floored at zero.
    pub fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `self × n`, or `None` on overflow.
    pub fn checked_mul(self, n: u128) -> Option<Self> {
        self.0.checked_mul(n).map(Self)
    }

    /// `self × num / den` with an exact intermediate (saturating at `u128::MAX`), as the ask
    /// price formula `price × size / 2^30` needs.
    pub fn mul_div(self, num: u128, den: u128) -> Self {
        match self.0.checked_mul(num) {
            Some(p) => Self(p / den.max(1)),
            None => Self((self.0 / den.max(1)).saturating_mul(num)),
        }
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for TokenAmount {
    /// Prints FIL with up to 18 decimals, trailing zeros trimmed (`1.5 FIL`, `0 FIL`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ATTO: u128 = 1_000_000_000_000_000_000;
        let whole = self.0 / ATTO;
        let frac = self.0 % ATTO;
        if frac == 0 {
            write!(f, "{whole} FIL")
        } else {
            let digits = format!("{frac:018}");
            write!(f, "{whole}.{} FIL", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}attoFIL", self.0)
    }
}

impl FromStr for TokenAmount {
    type Err = String;

    /// Parses `"<n>"` (attoFIL), `"<n> attofil"`, `"<x> fil"` or `"<x>"` with a decimal point
    /// (FIL), the forms Lotus CLIs accept.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (num, fil) = if let Some(n) = lower.strip_suffix("attofil") {
            (n.trim(), false)
        } else if let Some(n) = lower.strip_suffix("fil") {
            (n.trim(), true)
        } else {
            (lower.as_str(), lower.contains('.'))
        };
        let bad = || format!("invalid amount {s:?}");
        if !fil {
            return num.parse::<u128>().map(Self).map_err(|_| bad());
        }
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if frac.len() > 18 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_atto: u128 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<18}").parse().map_err(|_| bad())?
        };
        whole
            .checked_mul(1_000_000_000_000_000_000)
            .and_then(|w| w.checked_add(frac_atto))
            .map(Self)
            .ok_or_else(bad)
    }
}

impl Serialize for TokenAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            return s.serialize_bytes(&[]);
        }
        let be = self.0.to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        let mut out = Vec::with_capacity(17);
        out.push(0);
        out.extend_from_slice(&be[first..]);
        s.serialize_bytes(&out)
    }
}

impl<'de> Deserialize<'de> for TokenAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TokenAmount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Filecoin BigInt byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<TokenAmount, E> {
                let Some((&sign, magnitude)) = v.split_first() else {
                    return Ok(TokenAmount::ZERO);
                };
                if sign == 1 {
                    return Err(E::custom("negative token amount"));
                }
                if sign != 0 {
                    return Err(E::custom("invalid BigInt sign byte"));
                }
                let start = magnitude
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(magnitude.len());
                let magnitude = &magnitude[start..];
                if magnitude.len() > 16 {
                    return Err(E::custom("token amount exceeds 2^128 attoFIL"));
                }
                let mut be = [0u8; 16];
                be[16 - magnitude.len()..].copy_from_slice(magnitude);
                Ok(TokenAmount(u128::from_be_bytes(be)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<TokenAmount, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A chain epoch (30-second rounds on mainnet). Negative values appear on the wire (−1 means
/// "not yet" in on-chain deal states), so it is signed like the chain's `int64`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ChainEpoch(i64);

impl ChainEpoch {
    /// Epochs per day at 30-second epochs.
    pub const PER_DAY: i64 = 2880;

    /// Epoch `n`.
    pub const fn new(n: i64) -> Self {
        Self(n)
    }

    /// The epoch number.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + n`, saturating.
    pub const fn plus(self, n: i64) -> Self {
        Self(self.0.saturating_add(n))
    }

    /// Epochs from `earlier` to `self` (negative when `earlier` is later).
    pub const fn since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for ChainEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A network version: the number of the protocol upgrade the chain runs
/// (`StateNetworkVersion`), which decides the rules deals follow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NetworkVersion(pub u32);

impl NetworkVersion {
    /// nv22 "Dragon" (2024): direct data onboarding; deal states carry their sector number.
    pub const DRAGON: Self = Self(22);
    /// nv29 "Solstice" (FIP-0118): FIL+ ends. The verified registry's methods revert, DataCap
    /// is frozen and every new sector gets 10x QA power, so verified deals can no longer be made.
    pub const SOLSTICE: Self = Self(29);

    /// Whether verified (FIL+) deals can still be made at this version.
    pub fn allows_verified_deals(self) -> bool {
        self < Self::SOLSTICE
    }
}

impl fmt::Display for NetworkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nv{}", self.0)
    }
}

/// An on-chain deal id, assigned by the market actor when the deal is published.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct DealId(pub u64);

impl fmt::Display for DealId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A sector number within one miner.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SectorNumber(pub u64);

impl fmt::Display for SectorNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The signature scheme, the first byte of a signature on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureType {
    /// 1: secp256k1 over blake2b-256 of the message, 65 bytes `r ‖ s ‖ v`.
    Secp256k1,
    /// 2: BLS12-381 G2 signature over the raw message, 96 bytes.
    Bls,
    /// 3: delegated (f4 / EVM) signature; verified by the account actor, not here.
    Delegated,
}

impl SignatureType {
    /// The wire byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::Secp256k1 => 1,
            Self::Bls => 2,
            Self::Delegated => 3,
        }
    }

    /// The type for a wire byte.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Secp256k1),
            2 => Some(Self::Bls),
            3 => Some(Self::Delegated),
            _ => None,
        }
    }
}

/// A typed signature. CBOR form: one byte string, type byte ‖ signature bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    kind: SignatureType,
    bytes: Vec<u8>,
}

impl Signature {
    /// A signature of `kind` with raw `bytes`.
    pub fn new(kind: SignatureType, bytes: Vec<u8>) -> Self {
        Self { kind, bytes }
    }

    /// The scheme.
    pub fn kind(&self) -> SignatureType {
        self.kind
    }

    /// The raw signature bytes (without the type byte).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({:?}, {})",
            self.kind,
            hex::encode(&self.bytes)
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(1 + self.bytes.len());
        out.push(self.kind.code());
        out.extend_from_slice(&self.bytes);
        s.serialize_bytes(&out)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signature byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let Some((&code, data)) = v.split_first() else {
                    return Err(E::custom("empty signature"));
                };
                let kind = SignatureType::from_code(code)
                    .ok_or_else(|| E::custom(format!("unknown signature type {code}")))?;
                Ok(Signature {
                    kind,
                    bytes: data.to_vec(),
                })
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Signature, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// The deal label: a UTF-8 string or raw bytes (market actor v9+). CBOR form: a text string
/// or a byte string; the default is the empty text string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DealLabel {
    /// A text label (CBOR major type 3), usually the payload root CID.
    String(String),
    /// A byte label (CBOR major type 2).
    Bytes(Vec<u8>),
}

impl DealLabel {
    /// The on-chain size limit of a label, in bytes.
    pub const MAX_LEN: usize = 256;

    /// The label's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::String(s) => s.len(),
            Self::Bytes(b) => b.len(),
        }
    }

    /// Whether the label is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for DealLabel {
    fn default() -> Self {
        Self::String(String::new())
    }
}

impl fmt::Debug for DealLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Bytes(b) => write!(f, "0x{}", hex::encode(b)),
        }
    }
}

impl Serialize for DealLabel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(v) => s.serialize_str(v),
            Self::Bytes(v) => s.serialize_bytes(v),
        }
    }
}

impl<'de> Deserialize<'de> for DealLabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DealLabel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text or byte string label")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DealLabel, E> {
                Ok(DealLabel::String(v.to_owned()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<DealLabel, E> {
                Ok(DealLabel::Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<DealLabel, E> {
                Ok(DealLabel::Bytes(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Boost deal UUID. CBOR form: a 16-byte byte string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DealUuid(pub uuid::Uuid);

impl DealUuid {
    /// A fresh random (v4) UUID.
    pub fn new_v4() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The 16 raw bytes, which are what a Boost status request signs.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for DealUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for DealUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DealUuid {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl Serialize for DealUuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0.as_bytes())
    }
}

impl<'de> Deserialize<'de> for DealUuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DealUuid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 UUID bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<DealUuid, E> {
                let arr: [u8; 16] = v
                    .try_into()
                    .map_err(|_| E::custom(format!("uuid of {} bytes", v.len())))?;
                Ok(DealUuid(uuid::Uuid::from_bytes(arr)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<DealUuid, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_amount_bigint_bytes() {
        let enc = |a: TokenAmount| serde_ipld_dagcbor::to_vec(&a).unwrap();
        assert_eq!(enc(TokenAmount::ZERO), [0x40]);
        assert_eq!(enc(TokenAmount::from_atto(1)), [0x42, 0, 1]);
        assert_eq!(
            enc(TokenAmount::from_whole(1)),
            hex::decode("49000de0b6b3a7640000").unwrap()
        );
        let neg: Result<TokenAmount, _> = serde_ipld_dagcbor::from_slice(&[0x42, 1, 1]);
        assert!(neg.is_err());
        let huge = [&[0x52u8, 0][..], &[0xff; 17][..]].concat();
        assert!(serde_ipld_dagcbor::from_slice::<TokenAmount>(&huge).is_err());
        let padded: TokenAmount = serde_ipld_dagcbor::from_slice(&[0x43, 0, 0, 5]).unwrap();
        assert_eq!(padded, TokenAmount::from_atto(5));
    }

    #[test]
    fn token_amount_text() {
        assert_eq!(
            "1.5 FIL".parse::<TokenAmount>().unwrap(),
            TokenAmount::from_atto(15 * 10u128.pow(17))
        );
        assert_eq!(
            "0.05fil".parse::<TokenAmount>().unwrap().to_string(),
            "0.05 FIL"
        );
        assert_eq!(
            "42".parse::<TokenAmount>().unwrap(),
            TokenAmount::from_atto(42)
        );
        assert!("1.0000000000000000001 FIL".parse::<TokenAmount>().is_err());
        assert!("-1".parse::<TokenAmount>().is_err());
    }

    #[test]
    fn addresses_round_trip_both_networks() {
        let a: Address = "f020523".parse().unwrap();
        assert_eq!(a.to_bytes(), [0x00, 0xab, 0xa0, 0x01]);
        assert_eq!(a.to_string_on(Network::Testnet), "t020523");
        assert_eq!("t020523".parse::<Address>().unwrap(), a);
        let bls = "f3wivhkdivcxj5zp2l4wjkzon232s52smnd5m3na66ujl5nel75jggguhgaa3zbhjo3as4epf5ytxl6ly3qoha";
        let b: Address = bls.parse().unwrap();
        assert_eq!(b.kind(), AddressKind::Bls);
        assert_eq!(b.to_string(), bls);
        assert!("f3wivhkdivcxj5zp2l4wjkzon232s52smnd5m3na66ujl5nel75jggguhgaa3zbhjo3as4epf5ytxl6ly3qohb".parse::<Address>().is_err());
    }

    #[test]
    fn labels_keep_their_major_type() {
        let s = serde_ipld_dagcbor::to_vec(&DealLabel::default()).unwrap();
        assert_eq!(s, [0x60]);
        let b =
            serde_ipld_dagcbor::to_vec(&DealLabel::Bytes(vec![0xca, 0xfe, 0xb0, 0x0a])).unwrap();
        assert_eq!(b, [0x44, 0xca, 0xfe, 0xb0, 0x0a]);
        let back: DealLabel = serde_ipld_dagcbor::from_slice(&b).unwrap();
        assert_eq!(back, DealLabel::Bytes(vec![0xca, 0xfe, 0xb0, 0x0a]));
        // Invalid UTF-8 in a text label is a decode error, as in go-state-types.
        assert!(serde_ipld_dagcbor::from_slice::<DealLabel>(&[0x61, 0xff]).is_err());
    }
}
