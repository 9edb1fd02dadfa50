//! Ad metadata: how the advertised content is retrieved, as a list of transports, each a
//! varint multicodec followed by its payload, sorted by code (go-libipni `metadata`).

use crate::IpniError;

/// `transport-bitswap`.
pub const BITSWAP: u64 = 0x0900;
/// `transport-graphsync-filecoinv1`.
pub const GRAPHSYNC_FILECOINV1: u64 = 0x0910;
/// `transport-ipfs-gateway-http`: the trustless gateway at the ad's addresses.
pub const IPFS_GATEWAY_HTTP: u64 = 0x0920;
/// `transport-filecoin-piece-http`: `/piece/{pieceCid}` at the ad's addresses.
pub const FILECOIN_PIECE_HTTP: u64 = 0x0930;

/// One retrieval transport of an ad.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Bitswap (code only).
    Bitswap,
    /// The IPFS trustless gateway over HTTP (empty payload).
    IpfsGatewayHttp,
    /// Filecoin piece retrieval over HTTP (empty payload).
    FilecoinPieceHttp,
    /// A transport we do not interpret, with the rest of the metadata as its payload (a
    /// payload's length is known only to its codec, so nothing after it can be read).
    Other {
        /// Its multicodec.
        code: u64,
        /// The bytes after the code.
        payload: Vec<u8>,
    },
}

impl Transport {
    /// The transport's multicodec.
    pub fn code(&self) -> u64 {
        match self {
            Self::Bitswap => BITSWAP,
            Self::IpfsGatewayHttp => IPFS_GATEWAY_HTTP,
            Self::FilecoinPieceHttp => FILECOIN_PIECE_HTTP,
            Self::Other { code, .. } => *code,
        }
    }
}

/// Encodes transports, sorted by code as indexers require.
pub fn encode(transports: &[Transport]) -> Vec<u8> {
    let mut sorted: Vec<&Transport> = transports.iter().collect();
    sorted.sort_by_key(|t| t.code());
    sorted.dedup_by_key(|t| t.code());
    let mut out = Vec::new();
    for t in sorted {
        push_uvarint(&mut out, t.code());
        match t {
            Transport::Bitswap => {}
            Transport::IpfsGatewayHttp | Transport::FilecoinPieceHttp => out.push(0),
            Transport::Other { payload, .. } => out.extend_from_slice(payload),
        }
    }
    out
}

/// Decodes metadata (from an indexer's find answer, say) of at most
/// [`MAX_METADATA_LEN`](crate::schema::MAX_METADATA_LEN) bytes.
pub fn decode(mut data: &[u8]) -> Result<Vec<Transport>, IpniError> {
    if data.len() > crate::schema::MAX_METADATA_LEN {
        return Err(IpniError::Invalid(format!(
            "metadata of {} bytes",
            data.len()
        )));
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let (code, rest) = unsigned_varint::decode::u64(data)
            .map_err(|e| IpniError::Invalid(format!("metadata varint: {e}")))?;
        data = rest;
        let t = match code {
            BITSWAP => Transport::Bitswap,
            IPFS_GATEWAY_HTTP | FILECOIN_PIECE_HTTP => {
                match data.split_first() {
                    Some((0, rest)) => data = rest,
                    _ => {
                        return Err(IpniError::Invalid(format!(
                            "transport {code:#x} with a payload"
                        )));
                    }
                }
                if code == IPFS_GATEWAY_HTTP {
                    Transport::IpfsGatewayHttp
                } else {
                    Transport::FilecoinPieceHttp
                }
            }
            code => {
                let payload = std::mem::take(&mut data).to_vec();
                Transport::Other { code, payload }
            }
        };
        out.push(t);
    }
    if out.is_empty() {
        return Err(IpniError::Invalid("metadata without a transport".into()));
    }
    Ok(out)
}

fn push_uvarint(out: &mut Vec<u8>, v: u64) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_transports_encode_as_golibipni() {
        // varint(0x0920) 0x00, varint(0x0930) 0x00, sorted whatever the order given.
        let m = encode(&[Transport::FilecoinPieceHttp, Transport::IpfsGatewayHttp]);
        assert_eq!(m, [0xa0, 0x12, 0x00, 0xb0, 0x12, 0x00]);
        assert_eq!(
            decode(&m).unwrap(),
            [Transport::IpfsGatewayHttp, Transport::FilecoinPieceHttp]
        );
        assert_eq!(encode(&[Transport::Bitswap]), [0x80, 0x12]);
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xa0, 0x12, 0x05]).is_err());
        assert!(decode(&[0xa0]).is_err());
    }
}
