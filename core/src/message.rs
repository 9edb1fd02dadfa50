//! Chain messages as the chain encodes, hashes and signs them.
//!
//! A message's CID is the blake2b-256 DAG-CBOR CID of its 10-field tuple; a secp256k1 sender
//! signs the CID bytes and the signed message's CID is that of `[message, signature]`, while a
//! BLS signed message keeps the unsigned CID (Lotus `types.SignedMessage.Cid`).

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::cid::Cid;
use crate::deal::chain_cid;
use crate::types::{Address, Signature, SignatureType, TokenAmount};

/// A message with its nonce and gas terms filled in: what senders sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsignedMessage {
    /// Message format version (0).
    pub version: u64,
    /// Recipient.
    pub to: Address,
    /// Sender.
    pub from: Address,
    /// The sender's sequence number.
    pub nonce: u64,
    /// Value transferred.
    pub value: TokenAmount,
    /// Gas units the message may use.
    pub gas_limit: i64,
    /// Most attoFIL per gas unit the sender pays (base fee plus premium).
    pub gas_fee_cap: TokenAmount,
    /// attoFIL per gas unit offered to the block producer.
    pub gas_premium: TokenAmount,
    /// Method number.
    pub method: u64,
    /// CBOR parameters.
    pub params: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Tuple(
    u64,
    Address,
    Address,
    u64,
    TokenAmount,
    i64,
    TokenAmount,
    TokenAmount,
    u64,
    #[serde(with = "serde_bytes")] Vec<u8>,
);

impl UnsignedMessage {
    /// The chain's CBOR form.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::to_vec(&self.tuple())
    }

    fn tuple(&self) -> Tuple {
        Tuple(
            self.version,
            self.to,
            self.from,
            self.nonce,
            self.value,
            self.gas_limit,
            self.gas_fee_cap,
            self.gas_premium,
            self.method,
            self.params.clone(),
        )
    }

    /// Decodes the chain's CBOR form.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, cbor::DecodeError> {
        let Tuple(
            version,
            to,
            from,
            nonce,
            value,
            gas_limit,
            gas_fee_cap,
            gas_premium,
            method,
            params,
        ) = cbor::from_slice(bytes, MAX_MESSAGE_BYTES)?;
        Ok(Self {
            version,
            to,
            from,
            nonce,
            value,
            gas_limit,
            gas_fee_cap,
            gas_premium,
            method,
            params,
        })
    }

    /// The message CID, which is also what the sender signs.
    pub fn cid(&self) -> Cid {
        chain_cid(&self.to_cbor())
    }

    /// The most this message can cost in fees: gas limit × fee cap.
    pub fn max_fee(&self) -> TokenAmount {
        self.gas_fee_cap
            .checked_mul(self.gas_limit.max(0) as u128)
            .unwrap_or(TokenAmount::TOTAL_FILECOIN)
    }
}

/// The largest message the chain accepts (Lotus `MaxMessageSize`, 64 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// A message with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The message.
    pub message: UnsignedMessage,
    /// The sender's signature over the message CID bytes.
    pub signature: Signature,
}

impl SignedMessage {
    /// The CID the chain knows this message by.
    pub fn cid(&self) -> Cid {
        if self.signature.kind() == SignatureType::Bls {
            return self.message.cid();
        }
        chain_cid(&cbor::to_vec(&(self.message.tuple(), &self.signature)))
    }

    /// Checks the signature against the sender's key address (`from` resolved to `f1`/`f3`).
    #[cfg(feature = "wallet")]
    pub fn verify(&self, key: &Address) -> Result<(), crate::wallet::WalletError> {
        crate::wallet::verify(&self.signature, key, &self.message.cid().to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The example message of Lotus's API documents and its CID, as the docs print it.
    #[test]
    fn lotus_doc_message_encodes_to_its_cid() {
        let a = Address::from_str("f01234").unwrap();
        let m = UnsignedMessage {
            version: 42,
            to: a,
            from: a,
            nonce: 42,
            value: TokenAmount::ZERO,
            gas_limit: 9,
            gas_fee_cap: TokenAmount::ZERO,
            gas_premium: TokenAmount::ZERO,
            method: 1,
            params: b"byte array".to_vec(),
        };
        assert_eq!(
            hex::encode(m.to_cbor()),
            "8a182a4300d2094300d209182a40094040014a62797465206172726179"
        );
        assert_eq!(
            m.cid().to_string(),
            "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"
        );
        assert_eq!(UnsignedMessage::from_cbor(&m.to_cbor()).unwrap(), m);
    }

    #[cfg(feature = "wallet")]
    #[test]
    fn signed_messages_verify_and_tampering_does_not() {
        use crate::wallet::{KeyType, PrivateKey};
        let key = PrivateKey::generate(KeyType::Secp256k1);
        let mut m = UnsignedMessage {
            version: 0,
            to: Address::new_id(5),
            from: key.address(),
            nonce: 3,
            value: TokenAmount::from_whole(1),
            gas_limit: 1_000_000,
            gas_fee_cap: TokenAmount::from_nano(1),
            gas_premium: TokenAmount::from_nano(1),
            method: 2,
            params: vec![],
        };
        let signed = SignedMessage {
            signature: key.sign(&m.cid().to_bytes()),
            message: m.clone(),
        };
        signed.verify(&key.address()).unwrap();
        assert_ne!(signed.cid(), m.cid());
        m.nonce = 4;
        let forged = SignedMessage {
            message: m,
            signature: signed.signature.clone(),
        };
        assert!(forged.verify(&key.address()).is_err());
    }
}
