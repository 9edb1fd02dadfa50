//! Packing deals into a sector: which deals a sealer gets, and where each one goes.
//!
//! Pure: [`plan`] decides from the waiting deals, the sector size, the sealer's
//! [`GetDealSpec`] and the chain head; the API applies the plan with a compare-and-set.
//!
//! Choice: deals that can still be activated (start epoch after the head) and pass the
//! spec's filters, most urgent first (earliest start epoch; then larger pieces, then higher
//! price), taken while they fit. droplet orders by piece size first; starting with the most
//! urgent deal keeps deals from timing out while smaller ones are sealed.
//!
//! Layout: a piece must sit at an offset that is a multiple of its size. Laying the chosen
//! pieces out largest first puts every one of them at an aligned offset with no gap, so a
//! set of pieces fits exactly when their sizes add up to at most the sector. The rest of the
//! sector is filled with zero pieces, one per set bit of the remaining size, smallest first
//! (each lands aligned), as droplet's fillers are.

use market_core::types::{ChainEpoch, DealId, TokenAmount};

use crate::json::GetDealSpec;

/// A deal waiting for a sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// On-chain deal id.
    pub deal_id: DealId,
    /// Padded piece size (a power of two).
    pub piece_size: u64,
    /// Start epoch: the deal must be activated by then.
    pub start_epoch: ChainEpoch,
    /// End epoch.
    pub end_epoch: ChainEpoch,
    /// Price per epoch.
    pub price: TokenAmount,
}

/// One piece of a planned sector, in layout order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// `candidates[index]` at padded `offset`.
    Deal {
        /// Index into the candidates given to [`plan`].
        index: usize,
        /// Padded offset in the sector.
        offset: u64,
    },
    /// A zero piece of `size` at `offset`.
    Filler {
        /// Padded size.
        size: u64,
        /// Padded offset.
        offset: u64,
    },
}

/// The deals a spec allows by default when a sealer sends none (droplet's default).
pub const DEFAULT_MAX_PIECES: usize = 10;

/// The effective deal-count cap of an optional spec.
pub fn max_pieces(spec: Option<&GetDealSpec>) -> Option<usize> {
    match spec {
        None => Some(DEFAULT_MAX_PIECES),
        Some(s) if s.max_piece > 0 => Some(s.max_piece as usize),
        Some(_) => None,
    }
}

/// Whether `c` passes the spec's filters and can still be activated after `head`.
pub fn eligible(
    c: &Candidate,
    spec: Option<&GetDealSpec>,
    sector_size: u64,
    head: ChainEpoch,
) -> bool {
    let size_ok =
        c.piece_size.is_power_of_two() && c.piece_size >= 128 && c.piece_size <= sector_size;
    let Some(s) = spec else {
        return size_ok && c.start_epoch > head;
    };
    size_ok
        && c.start_epoch > head
        && (s.start_epoch <= 0 || c.start_epoch.get() > s.start_epoch)
        && (s.end_epoch <= 0 || c.end_epoch.get() < s.end_epoch)
        && (s.min_piece_size == 0 || c.piece_size >= s.min_piece_size)
        && (s.max_piece_size == 0 || c.piece_size <= s.max_piece_size)
}

/// Plans a sector of `sector_size` from `candidates`, or `None` when the spec's minimums
/// (deal count, used space) are not met or nothing fits.
pub fn plan(
    candidates: &[Candidate],
    sector_size: u64,
    spec: Option<&GetDealSpec>,
    head: ChainEpoch,
) -> Option<Vec<Slot>> {
    if !sector_size.is_power_of_two() || sector_size < 256 {
        return None;
    }
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| eligible(&candidates[i], spec, sector_size, head))
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        x.start_epoch
            .cmp(&y.start_epoch)
            .then(y.piece_size.cmp(&x.piece_size))
            .then(y.price.cmp(&x.price))
            .then(x.deal_id.cmp(&y.deal_id))
    });
    let cap = max_pieces(spec).unwrap_or(usize::MAX);
    // rust-fil-proofs' limit on pieces in one sector.
    let max_in_sector = (sector_size / 128) as usize;
    let mut chosen = Vec::new();
    let mut used = 0u64;
    for i in order {
        if chosen.len() >= cap.min(max_in_sector) {
            break;
        }
        let size = candidates[i].piece_size;
        if used + size <= sector_size {
            used += size;
            chosen.push(i);
        }
    }
    let (min_count, min_used) =
        spec.map_or((0, 0), |s| (s.min_piece.max(0) as usize, s.min_used_space));
    if chosen.is_empty() || chosen.len() < min_count || used < min_used {
        return None;
    }
    // Largest first keeps every offset aligned; stable, so urgency breaks ties.
    chosen.sort_by(|&a, &b| candidates[b].piece_size.cmp(&candidates[a].piece_size));
    let mut slots = Vec::with_capacity(chosen.len() + 8);
    let mut offset = 0;
    for index in chosen {
        slots.push(Slot::Deal { index, offset });
        offset += candidates[index].piece_size;
    }
    let mut rest = sector_size - offset;
    while rest > 0 {
        let size = 1u64 << rest.trailing_zeros();
        slots.push(Slot::Filler { size, offset });
        offset += size;
        rest -= size;
    }
    Some(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u64, size: u64, start: i64) -> Candidate {
        Candidate {
            deal_id: DealId(id),
            piece_size: size,
            start_epoch: ChainEpoch::new(start),
            end_epoch: ChainEpoch::new(start + 1000),
            price: TokenAmount::ZERO,
        }
    }

    fn deals(slots: &[Slot]) -> Vec<(usize, u64)> {
        slots
            .iter()
            .filter_map(|s| match s {
                Slot::Deal { index, offset } => Some((*index, *offset)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn urgent_deals_first_largest_first_aligned_and_zero_filled() {
        let cands = [
            c(1, 128, 300),
            c(2, 512, 200),
            c(3, 1024, 400),
            c(4, 1024, 100),
        ];
        let slots = plan(&cands, 2048, None, ChainEpoch::new(10)).unwrap();
        // By urgency 4 (1024), 2 (512), 1 (128) fit; 3 (1024) does not.
        assert_eq!(deals(&slots), vec![(3, 0), (1, 1024), (0, 1536)]);
        // 2048 - 1664 = 384 = 128 + 256, smallest first, each aligned.
        let fillers: Vec<_> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Filler { size, offset } => Some((*size, *offset)),
                _ => None,
            })
            .collect();
        assert_eq!(fillers, vec![(128, 1664), (256, 1792)]);
        for s in &slots {
            let (size, offset) = match *s {
                Slot::Deal { index, offset } => (cands[index].piece_size, offset),
                Slot::Filler { size, offset } => (size, offset),
            };
            assert_eq!(offset % size, 0, "{s:?} is misaligned");
        }
    }

    #[test]
    fn spec_limits_are_honoured() {
        let cands = [c(1, 512, 300), c(2, 512, 200), c(3, 256, 400)];
        let head = ChainEpoch::new(10);
        let one = GetDealSpec {
            max_piece: 1,
            ..GetDealSpec::default()
        };
        assert_eq!(
            deals(&plan(&cands, 2048, Some(&one), head).unwrap()),
            vec![(1, 0)]
        );
        let big = GetDealSpec {
            min_piece_size: 512,
            ..GetDealSpec::default()
        };
        assert_eq!(
            deals(&plan(&cands, 2048, Some(&big), head).unwrap()).len(),
            2
        );
        let window = GetDealSpec {
            start_epoch: 250,
            end_epoch: 1350,
            ..GetDealSpec::default()
        };
        assert_eq!(
            deals(&plan(&cands, 2048, Some(&window), head).unwrap()),
            vec![(0, 0)]
        );
        let needs_three = GetDealSpec {
            min_piece: 4,
            ..GetDealSpec::default()
        };
        assert_eq!(plan(&cands, 2048, Some(&needs_three), head), None);
        let needs_space = GetDealSpec {
            min_used_space: 2048,
            ..GetDealSpec::default()
        };
        assert_eq!(plan(&cands, 2048, Some(&needs_space), head), None);
    }

    #[test]
    fn deals_that_can_no_longer_start_or_never_fit_are_skipped() {
        let cands = [c(1, 512, 5), c(2, 4096, 200), c(3, 300, 200)];
        assert_eq!(plan(&cands, 2048, None, ChainEpoch::new(10)), None);
    }

    #[test]
    fn the_default_spec_caps_at_ten_deals() {
        let cands: Vec<_> = (0..20).map(|i| c(i, 128, 100)).collect();
        let slots = plan(&cands, 8 << 20, None, ChainEpoch::new(10)).unwrap();
        assert_eq!(deals(&slots).len(), DEFAULT_MAX_PIECES);
        let all = GetDealSpec::default();
        let slots = plan(&cands, 8 << 20, Some(&all), ChainEpoch::new(10)).unwrap();
        assert_eq!(deals(&slots).len(), 20);
    }
}
