//! How a split that reads its segment's heap blocks divides the row count.
//!
//! Row counts are maintained by deltas: an insert adds its row either at
//! once (when it widens a zone, in the same WAL record) or when its
//! transaction commits (pre-commit, before anyone can see the row as
//! committed). A split reads the keys its blocks hold, and those include
//! rows of transactions still in flight, whose counts are on the page or
//! not yet, and rows another split has since attributed to a different
//! segment. Replacing the counter with what the blocks show would count
//! some rows twice and drop others, and the sum over the table would drift
//! under concurrent writers. So a split keeps the counter's total and only
//! divides it in the proportion of the keys on each side: the sum stays
//! exact, a half may be off by the rows in flight at that moment, and
//! VACUUM, segment_map_touch and rebuilds recount. In one session the
//! counter equals the keys read, and so does each half.

/// Row counts of the lower and upper half after a split: `recorded` (the
/// segment's counter plus this transaction's own pending rows for it)
/// divided as `below` of the `total` keys its blocks hold lie under the
/// split key.
pub fn split_counts(recorded: i64, below: i64, total: i64) -> (i64, i64) {
    let recorded = recorded.max(0);
    if total <= 0 {
        return (0, recorded);
    }
    let below = below.clamp(0, total);
    // Rounded share, in i128 so large counters cannot overflow.
    let lower = ((i128::from(recorded) * i128::from(below) * 2 + i128::from(total))
        / (i128::from(total) * 2)) as i64;
    let lower = lower.clamp(0, recorded);
    (lower, recorded - lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_counter_splits_exactly() {
        assert_eq!(split_counts(64, 20, 64), (20, 44));
        assert_eq!(split_counts(64, 0, 64), (0, 64));
        assert_eq!(split_counts(64, 64, 64), (64, 0));
    }

    #[test]
    fn the_total_is_kept_whatever_the_blocks_show() {
        for (recorded, below, total) in [(64, 33, 66), (64, 1, 70), (10, 9, 10), (1, 0, 3)] {
            let (l, u) = split_counts(recorded, below, total);
            assert_eq!(l + u, recorded);
            assert!(l >= 0 && u >= 0);
        }
        // Proportional, rounded.
        assert_eq!(split_counts(64, 33, 66), (32, 32));
        assert_eq!(split_counts(100, 1, 3), (33, 67));
    }

    #[test]
    fn nonsense_inputs_stay_in_range() {
        assert_eq!(split_counts(-5, 3, 4), (0, 0));
        assert_eq!(split_counts(10, 9, 4), (10, 0));
        assert_eq!(split_counts(10, -1, 4), (0, 10));
        assert_eq!(split_counts(7, 3, 0), (0, 7));
        let (l, u) = split_counts(i64::MAX, 5, 10);
        assert_eq!(l.checked_add(u), Some(i64::MAX));
    }
}
