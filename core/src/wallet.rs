//! Keys, signing and signature verification, as Lotus does them.
//!
//! secp256k1 signs blake2b-256 of the message and appends the recovery id (65 bytes); the
//! signer's `f1` address is recovered from the signature. BLS signs the raw message (96 bytes)
//! and verifies against the public key inside the `f3` address. Verification is written on
//! `secp256k1` (libsecp256k1, what Lotus's go-crypto wraps, so the same signatures pass:
//! recovery takes high-S signatures too) and `bls-signatures` directly because `fvm_shared`'s
//! helpers need its `crypto` feature, which pulls in the proofs stack.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::deal::blake2b_256;
use crate::types::{Address, AddressKind, Signature, SignatureType};

/// Key algorithm of a wallet key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// secp256k1 (`f1` addresses).
    Secp256k1,
    /// BLS12-381 (`f3` addresses).
    Bls,
}

impl KeyType {
    fn lotus_name(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::Bls => "bls",
        }
    }
}

/// Errors of key handling, signing and verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The wallet holds no key for this address.
    #[error("no key for address {0}")]
    UnknownAddress(Address),
    /// Key bytes that are not a valid key of their type.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The signature does not verify for the address and message.
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    /// The signature type cannot be checked locally (delegated, or one that does not match
    /// the signer's address kind).
    #[error("unsupported signature: {0}")]
    Unsupported(String),
    /// Reading or writing the keystore failed.
    #[error("keystore i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A remote signer (a node's wallet, venus-wallet, sophon-gateway) refused or failed.
    #[error("remote signer: {0}")]
    Remote(String),
}

/// A private key with its address.
#[derive(Clone)]
pub struct PrivateKey {
    kind: KeyType,
    bytes: [u8; 32],
    address: Address,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, {})", self.kind, self.address)
    }
}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(kind: KeyType) -> Self {
        let mut rng = rand::rngs::OsRng;
        match kind {
            KeyType::Secp256k1 => loop {
                // Below the group order with overwhelming probability; retried otherwise.
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rng, &mut bytes);
                if let Ok(key) = Self::from_bytes(kind, &bytes) {
                    break key;
                }
            },
            KeyType::Bls => {
                use bls_signatures::Serialize as _;
                let sk = bls_signatures::PrivateKey::generate(&mut rng);
                Self::from_bytes(kind, &sk.as_bytes()).expect("fresh BLS key is valid")
            }
        }
    }

    /// A key from its 32 raw bytes (the `PrivateKey` field of a Lotus KeyInfo).
    pub fn from_bytes(kind: KeyType, bytes: &[u8]) -> Result<Self, WalletError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| WalletError::InvalidKey(format!("{} bytes, expected 32", bytes.len())))?;
        let address = match kind {
            KeyType::Secp256k1 => {
                let sk = secp256k1::SecretKey::from_byte_array(arr)
                    .map_err(|e| WalletError::InvalidKey(e.to_string()))?;
                let pk = secp256k1::PublicKey::from_secret_key_global(&sk);
                Address::new_secp256k1(&pk.serialize_uncompressed())
                    .map_err(|e| WalletError::InvalidKey(e.to_string()))?
            }
            KeyType::Bls => {
                use bls_signatures::Serialize as _;
                let sk = bls_signatures::PrivateKey::from_bytes(&arr)
                    .map_err(|e| WalletError::InvalidKey(e.to_string()))?;
                Address::new_bls(&sk.public_key().as_bytes())
                    .map_err(|e| WalletError::InvalidKey(e.to_string()))?
            }
        };
        Ok(Self {
            kind,
            bytes: arr,
            address,
        })
    }

    /// The key's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The key's algorithm.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// Signs `msg` as Lotus does.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        match self.kind {
            KeyType::Secp256k1 => {
                let sk = secp256k1::SecretKey::from_byte_array(self.bytes)
                    .expect("validated at construction");
                let digest = secp256k1::Message::from_digest(blake2b_256(msg));
                let (recid, rs) = secp256k1::SECP256K1
                    .sign_ecdsa_recoverable(digest, &sk)
                    .serialize_compact();
                let mut out = rs.to_vec();
                out.push(i32::from(recid) as u8);
                Signature::new(SignatureType::Secp256k1, out)
            }
            KeyType::Bls => {
                use bls_signatures::Serialize as _;
                let sk = bls_signatures::PrivateKey::from_bytes(&self.bytes)
                    .expect("validated at construction");
                Signature::new(SignatureType::Bls, sk.sign(msg).as_bytes())
            }
        }
    }

    /// The Lotus `wallet export` form: hex of the KeyInfo JSON.
    pub fn to_lotus_export(&self) -> String {
        let info = KeyInfo {
            kind: self.kind.lotus_name().to_owned(),
            private_key: base64::engine::general_purpose::STANDARD.encode(self.bytes),
        };
        hex::encode(serde_json::to_vec(&info).expect("KeyInfo serialises"))
    }

    /// Parses the Lotus `wallet export` form.
    pub fn from_lotus_export(s: &str) -> Result<Self, WalletError> {
        let json = hex::decode(s.trim()).map_err(|e| WalletError::InvalidKey(e.to_string()))?;
        let info: KeyInfo =
            serde_json::from_slice(&json).map_err(|e| WalletError::InvalidKey(e.to_string()))?;
        let kind = match info.kind.as_str() {
            "secp256k1" => KeyType::Secp256k1,
            "bls" => KeyType::Bls,
            other => return Err(WalletError::InvalidKey(format!("key type {other:?}"))),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(info.private_key)
            .map_err(|e| WalletError::InvalidKey(e.to_string()))?;
        Self::from_bytes(kind, &bytes)
    }
}

#[derive(Serialize, Deserialize)]
struct KeyInfo {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "PrivateKey")]
    private_key: String,
}

/// Verifies that `sig` over `msg` was made by the key behind `signer` (an `f1` or `f3`
/// address; resolve `f0` ids to their key address first).
pub fn verify(sig: &Signature, signer: &Address, msg: &[u8]) -> Result<(), WalletError> {
    match (sig.kind(), signer.kind()) {
        (SignatureType::Secp256k1, AddressKind::Secp256k1) => {
            let b = sig.bytes();
            if b.len() != 65 {
                return Err(WalletError::BadSignature(format!(
                    "secp256k1 signature of {} bytes",
                    b.len()
                )));
            }
            let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(b[64]))
                .map_err(|_| WalletError::BadSignature("invalid recovery id".into()))?;
            let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(&b[..64], recid)
                .map_err(|e| WalletError::BadSignature(e.to_string()))?;
            // A recovered key verifies the signature by construction: no second check needed.
            let digest = secp256k1::Message::from_digest(blake2b_256(msg));
            let pk = secp256k1::SECP256K1
                .recover_ecdsa(digest, &rs)
                .map_err(|e| WalletError::BadSignature(e.to_string()))?;
            let recovered = Address::new_secp256k1(&pk.serialize_uncompressed())
                .map_err(|e| WalletError::BadSignature(e.to_string()))?;
            if &recovered != signer {
                return Err(WalletError::BadSignature(format!(
                    "signed by {recovered}, not {signer}"
                )));
            }
            Ok(())
        }
        (SignatureType::Bls, AddressKind::Bls) => {
            use bls_signatures::Serialize as _;
            let pk = bls_signatures::PublicKey::from_bytes(&signer.payload_bytes())
                .map_err(|e| WalletError::BadSignature(format!("public key: {e}")))?;
            let s = bls_signatures::Signature::from_bytes(sig.bytes())
                .map_err(|e| WalletError::BadSignature(format!("signature bytes: {e}")))?;
            if pk.verify(s, msg) {
                Ok(())
            } else {
                Err(WalletError::BadSignature("BLS check failed".into()))
            }
        }
        (kind, addr) => Err(WalletError::Unsupported(format!(
            "{kind:?} signature for a {addr:?} address"
        ))),
    }
}

/// What a signature is for (venus-wallet's `MsgMeta` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignPurpose<'a> {
    /// Raw bytes of no declared kind.
    Unknown,
    /// A chain message: the bytes are its CID, `cbor` the unsigned message.
    Message {
        /// The unsigned message's CBOR.
        cbor: &'a [u8],
    },
    /// A client's deal proposal (CBOR of the `DealProposal`).
    DealProposal,
    /// A storage ask.
    StorageAsk,
    /// A provider's response to a deal proposal.
    DealResponse,
    /// A provider's deal status answer.
    DealStatus,
    /// A client's deal status request.
    ClientDeal,
}

impl SignPurpose<'_> {
    /// The `MsgMeta.Type` string.
    pub fn meta_type(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Message { .. } => "message",
            Self::DealProposal => "dealproposal",
            Self::StorageAsk => "storageask",
            // (sic) venus-shared's spelling.
            Self::DealResponse => "networkresposne",
            Self::DealStatus => "providerdealstate",
            Self::ClientDeal => "clientdeal",
        }
    }
}

/// Signs with keys the market controls (workers, clients, publish addresses).
///
/// The local [`KeyStore`] implements it; a remote signer (Lotus `WalletSign`, venus-wallet,
/// sophon-gateway) can implement it too.
#[async_trait::async_trait]
pub trait Wallet: Send + Sync {
    /// Signs `msg` with the key of `address`.
    async fn sign(&self, address: &Address, msg: &[u8]) -> Result<Signature, WalletError>;
    /// Signs `msg`, saying what it is: a remote wallet (venus-wallet, sophon-gateway) decodes
    /// the bytes as that kind of object and refuses a mismatch. Local keys ignore it.
    async fn sign_for(
        &self,
        address: &Address,
        msg: &[u8],
        purpose: SignPurpose<'_>,
    ) -> Result<Signature, WalletError> {
        let _ = purpose;
        self.sign(address, msg).await
    }
    /// Whether the wallet holds the key of `address`.
    async fn has(&self, address: &Address) -> bool;
}

/// A directory of keys, one file per address holding the Lotus `wallet export` form, so keys
/// move between this keystore and `lotus wallet import/export` unchanged.
#[derive(Clone, Default)]
pub struct KeyStore {
    dir: Option<PathBuf>,
    keys: Arc<RwLock<HashMap<Address, PrivateKey>>>,
}

impl KeyStore {
    /// A keystore kept only in memory.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Opens (creating if needed) a keystore directory and loads every `*.key` file in it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, WalletError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let mut keys = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "key") {
                let key = PrivateKey::from_lotus_export(&std::fs::read_to_string(&path)?)?;
                keys.insert(key.address(), key);
            }
        }
        Ok(Self {
            dir: Some(dir),
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    /// Adds a key, writing it to disk (mode 0600) before it becomes usable.
    pub fn import(&self, key: PrivateKey) -> Result<Address, WalletError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{}.key", key.address()));
            let tmp = dir.join(format!(".{}.tmp", key.address()));
            std::fs::write(&tmp, key.to_lotus_export())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            }
            std::fs::rename(&tmp, &path)?;
        }
        let addr = key.address();
        self.keys.write().expect("keystore lock").insert(addr, key);
        Ok(addr)
    }

    /// Generates and stores a new key.
    pub fn generate(&self, kind: KeyType) -> Result<Address, WalletError> {
        self.import(PrivateKey::generate(kind))
    }

    /// The addresses held.
    pub fn addresses(&self) -> Vec<Address> {
        let mut v: Vec<_> = self
            .keys
            .read()
            .expect("keystore lock")
            .keys()
            .copied()
            .collect();
        v.sort();
        v
    }

    /// The key of `address` in Lotus's `wallet export` form (hex of its JSON), for
    /// `lotus wallet import` or another keystore.
    pub fn export(&self, address: &Address) -> Result<String, WalletError> {
        let keys = self.keys.read().expect("keystore lock");
        let key = keys
            .get(address)
            .ok_or(WalletError::UnknownAddress(*address))?;
        Ok(key.to_lotus_export())
    }

    /// Signs synchronously.
    pub fn sign_sync(&self, address: &Address, msg: &[u8]) -> Result<Signature, WalletError> {
        let keys = self.keys.read().expect("keystore lock");
        let key = keys
            .get(address)
            .ok_or(WalletError::UnknownAddress(*address))?;
        Ok(key.sign(msg))
    }
}

#[async_trait::async_trait]
impl Wallet for KeyStore {
    async fn sign(&self, address: &Address, msg: &[u8]) -> Result<Signature, WalletError> {
        self.sign_sync(address, msg)
    }

    async fn has(&self, address: &Address) -> bool {
        self.keys
            .read()
            .expect("keystore lock")
            .contains_key(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_both_kinds() {
        for kind in [KeyType::Secp256k1, KeyType::Bls] {
            let key = PrivateKey::generate(kind);
            let sig = key.sign(b"deal proposal bytes");
            verify(&sig, &key.address(), b"deal proposal bytes").unwrap();
            assert!(verify(&sig, &key.address(), b"other bytes").is_err());
            let other = PrivateKey::generate(kind);
            assert!(verify(&sig, &other.address(), b"deal proposal bytes").is_err());
            let back = PrivateKey::from_lotus_export(&key.to_lotus_export()).unwrap();
            assert_eq!(back.address(), key.address());
        }
    }

    #[test]
    fn mismatched_kinds_and_garbage_are_errors() {
        let secp = PrivateKey::generate(KeyType::Secp256k1);
        let bls = PrivateKey::generate(KeyType::Bls);
        assert!(verify(&secp.sign(b"m"), &bls.address(), b"m").is_err());
        let junk = Signature::new(SignatureType::Bls, vec![0xff; 96]);
        assert!(verify(&junk, &bls.address(), b"m").is_err());
        let short = Signature::new(SignatureType::Secp256k1, vec![1; 10]);
        assert!(verify(&short, &secp.address(), b"m").is_err());
    }

    /// RFC 6979 signatures are deterministic: this one was also produced by `k256` (the
    /// previous implementation) from the same key and message.
    const VECTOR_SIG: &str = "a1511a60639a797dce802e738aa72ab805dd261950a57d431ac461d5fb91d8ea\
                              6687c1ba4e3d766bdb5937df8d0e1f7ecae811271ada55ac8ffb1ff1a0e1b27c00";
    const VECTOR_MSG: &[u8] = b"fil-market-rs wallet vector";

    #[test]
    fn secp256k1_signature_vector() {
        let key = PrivateKey::from_bytes(KeyType::Secp256k1, &[7u8; 32]).unwrap();
        let sig = key.sign(VECTOR_MSG);
        assert_eq!(hex::encode(sig.bytes()), VECTOR_SIG);
        verify(&sig, &key.address(), VECTOR_MSG).unwrap();
    }

    #[test]
    fn high_s_secp256k1_signatures_verify_as_in_lotus() {
        // The same signature with s replaced by n - s and the recovery parity flipped: Lotus
        // (libsecp256k1's recovery) accepts it, so a provider must too.
        let key = PrivateKey::from_bytes(KeyType::Secp256k1, &[7u8; 32]).unwrap();
        let high = "a1511a60639a797dce802e738aa72ab805dd261950a57d431ac461d5fb91d8ea\
                    99783e45b1c2899424a6c82072f1e07fefc6cbbf946e4a8f2fd73e9b2f548ec501";
        let sig = Signature::new(SignatureType::Secp256k1, hex::decode(high).unwrap());
        verify(&sig, &key.address(), VECTOR_MSG).unwrap();
        let mut bad_recid = sig.bytes().to_vec();
        bad_recid[64] = 4;
        let bad = Signature::new(SignatureType::Secp256k1, bad_recid);
        assert!(matches!(
            verify(&bad, &key.address(), VECTOR_MSG),
            Err(WalletError::BadSignature(_))
        ));
    }

    #[test]
    fn keystore_persists_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path()).unwrap();
        let a = ks.generate(KeyType::Bls).unwrap();
        let b = ks.generate(KeyType::Secp256k1).unwrap();
        let again = KeyStore::open(dir.path()).unwrap();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(again.addresses(), want);
        let sig = again.sign_sync(&b, b"x").unwrap();
        verify(&sig, &b, b"x").unwrap();
    }
}
