//! commD: the commitment of an unsealed sector (or of any aggregate) built from piece
//! commitments alone.
//!
//! Pieces are laid out in order, each at an offset that is a multiple of its own size, with
//! zero filler before any piece that would otherwise be misaligned; the result is the root
//! of the tree over that layout. [`aggregate`] stops at the smallest tree covering the
//! pieces (rust-fil-proofs `compute_comm_d`, go-commp-utils `PieceAggregateCommP`);
//! [`unsealed_sector_commitment`] grows it to the whole sector with zero subtrees, which is
//! what lotus `GenerateUnsealedCID` and the FVM's `compute_unsealed_sector_cid` produce.

use crate::zero::ZERO_LEVELS;
use crate::{Commitment, PaddedPieceSize};

/// A piece as a sector sees it: its commitment and padded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Piece {
    /// The piece commitment (commP).
    pub commitment: Commitment,
    /// The padded piece size.
    pub size: PaddedPieceSize,
}

/// Why pieces cannot form a sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommDError {
    /// [`aggregate`] needs at least one piece.
    #[error("no pieces to aggregate")]
    NoPieces,
    /// The pieces, aligned, need more space than the sector has.
    #[error("pieces need {needed} bytes once aligned, the sector has {sector}")]
    DoesNotFit {
        /// Padded bytes the aligned layout needs (a power of two).
        needed: u64,
        /// Sector size.
        sector: u64,
    },
    /// The aligned layout would exceed the largest piece size (2^63 bytes).
    #[error("the aligned layout of these pieces exceeds 2^63 bytes")]
    TooLarge,
    /// More pieces than a sector can index (`unpadded(sector) / 127`, as rust-fil-proofs).
    #[error("{count} pieces exceed the limit of {max} for this sector size")]
    TooManyPieces {
        /// Pieces given.
        count: usize,
        /// The limit.
        max: u64,
    },
}

fn zero(size: u64) -> [u8; 32] {
    ZERO_LEVELS[(size / 32).trailing_zeros() as usize]
}

/// The root of the smallest tree that holds `pieces` in order, each aligned to its size,
/// and that tree's size.
pub fn aggregate(pieces: &[Piece]) -> Result<(Commitment, PaddedPieceSize), CommDError> {
    let (first, rest) = pieces.split_first().ok_or(CommDError::NoPieces)?;
    // Bound the layout first, so no size below can overflow while the tree is built.
    let mut end = 0u128;
    for piece in pieces {
        let size = u128::from(piece.size.get());
        end = end.div_ceil(size) * size + size;
    }
    if end > 1 << 63 {
        return Err(CommDError::TooLarge);
    }
    // Subtree roots of decreasing size, as in a binary counter.
    let mut stack: Vec<([u8; 32], u64)> = vec![(first.commitment.to_bytes(), first.size.get())];
    let reduce = |stack: &mut Vec<([u8; 32], u64)>| {
        while let [.., (left, ls), (right, rs)] = stack[..] {
            if ls != rs {
                break;
            }
            stack.truncate(stack.len() - 2);
            stack.push((crate::sha256::node_of(&left, &right), ls * 2));
        }
    };
    for piece in rest {
        let size = piece.size.get();
        while let Some(&(_, top)) = stack.last() {
            if top >= size {
                break;
            }
            stack.push((zero(top), top));
            reduce(&mut stack);
        }
        stack.push((piece.commitment.to_bytes(), size));
        reduce(&mut stack);
    }
    while stack.len() > 1 {
        let top = stack.last().expect("len > 1").1;
        stack.push((zero(top), top));
        reduce(&mut stack);
    }
    let (root, size) = stack[0];
    let size =
        PaddedPieceSize::new(size).expect("sums of aligned powers of two stay powers of two");
    Ok((Commitment::from_bytes(root), size))
}

/// The unsealed sector commitment (commD) of a sector of `sector_size` holding `pieces`:
/// the aligned layout padded with zeros to the full sector. No pieces gives the zero
/// commitment of the sector.
pub fn unsealed_sector_commitment(
    sector_size: PaddedPieceSize,
    pieces: &[Piece],
) -> Result<Commitment, CommDError> {
    let sector = sector_size.get();
    let max = sector_size.unpadded().get() / 127;
    if pieces.len() as u64 > max {
        return Err(CommDError::TooManyPieces {
            count: pieces.len(),
            max,
        });
    }
    let total: u128 = pieces.iter().map(|p| u128::from(p.size.get())).sum();
    if total > u128::from(sector) {
        let needed = u64::try_from(total).unwrap_or(u64::MAX);
        return Err(CommDError::DoesNotFit { needed, sector });
    }
    if pieces.is_empty() {
        return Ok(crate::zero_commitment(sector_size));
    }
    let (root, size) = aggregate(pieces)?;
    if size > sector_size {
        return Err(CommDError::DoesNotFit {
            needed: size.get(),
            sector,
        });
    }
    let mut root = root.to_bytes();
    let mut size = size.get();
    while size < sector {
        root = crate::sha256::node_of(&root, &zero(size));
        size *= 2;
    }
    Ok(Commitment::from_bytes(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(byte: u8, size: u64) -> Piece {
        Piece {
            commitment: Commitment::from_bytes([byte; 32]),
            size: PaddedPieceSize::new(size).unwrap(),
        }
    }

    #[test]
    fn errors() {
        let s2k = PaddedPieceSize::new(2048).unwrap();
        assert_eq!(aggregate(&[]), Err(CommDError::NoPieces));
        assert_eq!(
            unsealed_sector_commitment(s2k, &[p(1, 2048), p(2, 128)]),
            Err(CommDError::DoesNotFit {
                needed: 2176,
                sector: 2048
            })
        );
        // 128 + 1024 + 512 fits by sum (1664) but not once the 1024 piece is aligned.
        assert_eq!(
            unsealed_sector_commitment(s2k, &[p(1, 128), p(2, 1024), p(3, 128), p(4, 512)]),
            Err(CommDError::DoesNotFit {
                needed: 4096,
                sector: 2048
            })
        );
        let s128 = PaddedPieceSize::MIN;
        assert_eq!(
            unsealed_sector_commitment(s128, &[p(1, 128), p(2, 128)]),
            Err(CommDError::TooManyPieces { count: 2, max: 1 })
        );
    }

    #[test]
    fn huge_layouts_are_refused() {
        let half = PaddedPieceSize::new(1 << 62).unwrap().get();
        assert!(aggregate(&[p(1, half), p(2, half)]).is_ok());
        assert_eq!(
            aggregate(&[p(1, 128), p(2, 1 << 63)]),
            Err(CommDError::TooLarge)
        );
        assert_eq!(
            aggregate(&[p(1, 1 << 63), p(2, 1 << 63)]),
            Err(CommDError::TooLarge)
        );
    }

    #[test]
    fn one_piece_filling_the_sector_is_itself() {
        let piece = p(5, 2048);
        let s = PaddedPieceSize::new(2048).unwrap();
        assert_eq!(
            unsealed_sector_commitment(s, &[piece]).unwrap(),
            piece.commitment
        );
        assert_eq!(aggregate(&[piece]).unwrap(), (piece.commitment, piece.size));
    }
}
