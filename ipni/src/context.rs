//! Context ids: the retrieval-checking FRC (and Curio) name a piece's ad by the DAG-CBOR array
//! `[padded size, piece CID]`, so a checker that knows a deal finds its ad without asking us.

use cid::Cid;

use crate::IpniError;

/// The context id of a piece: DAG-CBOR `[size (uint), pieceCid (tag 42)]`.
pub fn piece_context_id(padded_size: u64, piece: &Cid) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(&(padded_size, piece)).expect("a u64 and a CID encode")
}

/// The piece a context id names, if it is one of ours (from an indexer's answer: outside
/// input, at most 64 bytes).
pub fn parse_piece_context_id(data: &[u8]) -> Result<(u64, Cid), IpniError> {
    if data.len() > crate::schema::MAX_CONTEXT_ID_LEN {
        return Err(IpniError::Invalid(format!(
            "context id of {} bytes",
            data.len()
        )));
    }
    serde_ipld_dagcbor::from_slice(data).map_err(|e| IpniError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn matches_the_frc_layout() {
        let piece: Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap();
        let id = piece_context_id(32 << 30, &piece);
        // array(2), uint64 32 GiB, tag 42, bytes(len) 0x00 ++ CID bytes.
        let mut want = vec![
            0x82, 0x1b, 0, 0, 0, 8, 0, 0, 0, 0, 0xd8, 0x2a, 0x58, 0x28, 0x00,
        ];
        want.extend_from_slice(&piece.to_bytes());
        assert_eq!(id, want);
        // The example context id of the FRC's discussion (CheckerNetwork/piece-indexer#118)
        // starts "ghsAAAAIAAAAANgqWCgAAYHiA5Ig": a 32 GiB piece, CID bytes from 0x01 0x81 0xe2.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&id);
        assert!(b64.starts_with("ghsAAAAIAAAAANgqWCgAAYHiA5Ig"), "{b64}");
        assert_eq!(parse_piece_context_id(&id).unwrap(), (32 << 30, piece));
        assert!(parse_piece_context_id(&id[..10]).is_err());
    }
}
