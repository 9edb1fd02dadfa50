//! Retrieval wire messages. Maps are keyed by the Go field names in canonical order (shorter
//! key first), as cbor-gen and go-ipld-prime write them; decoders take any order and skip
//! unknown keys.

use libp2p::Multiaddr;
use market_core::Cid;
use market_core::types::{Address, TokenAmount};
use serde::{Deserialize, Serialize};

/// Optional restriction of a query to one piece.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryParams {
    /// Only this piece, if set.
    #[serde(rename = "PieceCID")]
    pub piece_cid: Option<Cid>,
}

/// `/fil/retrieval/qry/1.0.0` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The payload (DAG root) asked for.
    #[serde(rename = "PayloadCID")]
    pub payload_cid: Cid,
    /// Restrictions.
    #[serde(rename = "QueryParams")]
    pub params: QueryParams,
}

/// A query's overall answer (`QueryResponseStatus`). A number on the wire, kept open because
/// peers may send values this crate does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueryStatus(pub u64);

impl QueryStatus {
    /// The provider has the payload and will serve it.
    pub const AVAILABLE: Self = Self(0);
    /// The provider does not have it.
    pub const UNAVAILABLE: Self = Self(1);
    /// The provider could not answer.
    pub const ERROR: Self = Self(2);
}

/// Whether the requested piece was found (`QueryItemStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueryItemStatus(pub u64);

impl QueryItemStatus {
    /// Found.
    pub const AVAILABLE: Self = Self(0);
    /// Not found.
    pub const UNAVAILABLE: Self = Self(1);
    /// Not known.
    pub const UNKNOWN: Self = Self(2);
}

/// `/fil/retrieval/qry/1.0.0` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// Unpadded size of the piece holding the payload.
    #[serde(rename = "Size")]
    pub size: u64,
    /// Overall answer.
    #[serde(rename = "Status")]
    pub status: QueryStatus,
    /// Why, when not available.
    #[serde(rename = "Message")]
    pub message: String,
    /// Price to unseal.
    #[serde(rename = "UnsealPrice")]
    pub unseal_price: TokenAmount,
    /// Whether the requested piece was found.
    #[serde(rename = "PieceCIDFound")]
    pub piece_cid_found: QueryItemStatus,
    /// Where payments go (the worker).
    #[serde(rename = "PaymentAddress")]
    pub payment_address: Address,
    /// Price per byte.
    #[serde(rename = "MinPricePerByte")]
    pub min_price_per_byte: TokenAmount,
    /// Bytes sent before the first payment.
    #[serde(rename = "MaxPaymentInterval")]
    pub max_payment_interval: u64,
    /// Growth of the payment interval after each payment.
    #[serde(rename = "MaxPaymentIntervalIncrease")]
    pub max_payment_interval_increase: u64,
}

/// One way to retrieve from a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportProtocol {
    /// `"http"`, `"libp2p"` or `"bitswap"`.
    #[serde(rename = "Name")]
    pub name: String,
    /// Binary multiaddrs.
    #[serde(rename = "Addresses")]
    pub addresses: Vec<serde_bytes::ByteBuf>,
}

impl TransportProtocol {
    /// A protocol reachable at `addrs`.
    pub fn new(name: &str, addrs: &[Multiaddr]) -> Self {
        Self {
            name: name.into(),
            addresses: addrs
                .iter()
                .map(|a| serde_bytes::ByteBuf::from(a.to_vec()))
                .collect(),
        }
    }

    /// The addresses that parse as multiaddrs.
    pub fn multiaddrs(&self) -> Vec<Multiaddr> {
        self.addresses
            .iter()
            .filter_map(|b| Multiaddr::try_from(b.to_vec()).ok())
            .collect()
    }
}

/// `/fil/retrieval/transports/1.0.0` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportsResponse {
    /// The transports offered.
    #[serde(rename = "Protocols")]
    pub protocols: Vec<TransportProtocol>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use market_core::cbor;

    #[test]
    fn query_bytes_match_go_fil_markets() {
        let payload: Cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
            .parse()
            .unwrap();
        let q = Query {
            payload_cid: payload,
            params: QueryParams::default(),
        };
        let mut want = vec![0xa2, 0x6a];
        want.extend_from_slice(b"PayloadCID");
        let c = payload.to_bytes();
        want.extend_from_slice(&[0xd8, 0x2a, 0x58, c.len() as u8 + 1, 0x00]);
        want.extend_from_slice(&c);
        want.push(0x6b);
        want.extend_from_slice(b"QueryParams");
        want.extend_from_slice(&[0xa1, 0x68]);
        want.extend_from_slice(b"PieceCID");
        want.push(0xf6);
        let bytes = cbor::to_vec(&q);
        assert_eq!(bytes, want);
        assert_eq!(
            bytes.len(),
            76,
            "the size protocols.md gives for a CIDv1 sha2-256"
        );
        assert_eq!(cbor::from_slice::<Query>(&bytes, 1024).unwrap(), q);
    }

    #[test]
    fn response_keys_are_canonical_and_unknown_keys_skipped() {
        let r = QueryResponse {
            size: 1016,
            status: QueryStatus::AVAILABLE,
            message: String::new(),
            unseal_price: TokenAmount::ZERO,
            piece_cid_found: QueryItemStatus::AVAILABLE,
            payment_address: Address::new_id(1000),
            min_price_per_byte: TokenAmount::from_atto(1),
            max_payment_interval: 1 << 20,
            max_payment_interval_increase: 1 << 20,
        };
        let bytes = cbor::to_vec(&r);
        assert_eq!(bytes[0], 0xa9);
        let keys = [
            "Size",
            "Status",
            "Message",
            "UnsealPrice",
            "PieceCIDFound",
            "PaymentAddress",
            "MinPricePerByte",
            "MaxPaymentInterval",
            "MaxPaymentIntervalIncrease",
        ];
        let mut at = 0;
        for k in keys {
            let pos = bytes
                .windows(k.len())
                .position(|w| w == k.as_bytes())
                .unwrap();
            assert!(pos > at, "{k} out of order");
            at = pos;
        }
        // Sizes (3-byte: 1 MiB), address f01000 as `43 00 e8 07`, price 1 as `42 00 01`.
        assert!(bytes.windows(4).any(|w| w == [0x43, 0x00, 0xe8, 0x07]));
        assert!(bytes.windows(3).any(|w| w == [0x42, 0x00, 0x01]));
        assert_eq!(cbor::from_slice::<QueryResponse>(&bytes, 4096).unwrap(), r);

        let t = TransportsResponse {
            protocols: vec![TransportProtocol::new(
                "http",
                &["/ip4/127.0.0.1/tcp/7777/http".parse().unwrap()],
            )],
        };
        let tb = cbor::to_vec(&t);
        let name = tb.windows(4).position(|w| w == b"Name").unwrap();
        let addrs = tb.windows(9).position(|w| w == b"Addresses").unwrap();
        assert!(name < addrs, "Name sorts before Addresses");
        let back: TransportsResponse = cbor::from_slice(&tb, 4096).unwrap();
        assert_eq!(back.protocols[0].multiaddrs(), t.protocols[0].multiaddrs());
        // An extra key from a newer peer is skipped.
        let mut extra = vec![0xa2, 0x65];
        extra.extend_from_slice(b"Extra");
        extra.push(0x01);
        extra.extend_from_slice(&tb[1..]);
        assert!(cbor::from_slice::<TransportsResponse>(&extra, 4096).is_ok());
    }
}
