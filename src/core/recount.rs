//! How a split that reads its segment's heap blocks divides the row count.
//!
//! Row counts are maintained by deltas: an insert whose zone already covers
//! its key adds its row when its transaction commits (pre-commit, so the
//! row is counted before any other transaction can see it as committed).
//! A split that counts the keys its blocks really hold can replace the
//! counter with the truth only when no other transaction's insert is still
//! in flight in those blocks: such a row is physically there, but its
//! transaction adds it to the counter itself (or already has, if it is
//! between its pre-commit and its commit). Counting it too would run the
//! sum ahead of the table; leaving it out could drop a row already added.
//! So with rows in flight the split keeps the counter's total and only
//! divides it in the proportion the blocks show.

/// Row counts of the lower and upper half after a split.
///
/// `recorded`: the segment's counter plus this transaction's own pending
/// rows; `below` / `total`: keys under the split key / all keys its blocks
/// hold (own rows included); `others_in_flight`: whether any of those
/// belongs to another transaction still in progress.
pub fn split_counts(recorded: i64, below: i64, total: i64, others_in_flight: bool) -> (i64, i64) {
    let below = below.clamp(0, total.max(0));
    if !others_in_flight || total <= 0 {
        return (below, total.max(0) - below);
    }
    let recorded = recorded.max(0);
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
    fn exact_recount_without_rows_in_flight() {
        // The counter had drifted (say, deletes not yet vacuumed): the
        // heap's truth wins.
        assert_eq!(split_counts(70, 30, 64, false), (30, 34));
        assert_eq!(split_counts(0, 0, 0, false), (0, 0));
    }

    #[test]
    fn rows_in_flight_keep_the_counter_total() {
        for (recorded, below, total) in [(64, 33, 66), (64, 1, 70), (10, 9, 10), (1, 0, 3)] {
            let (l, u) = split_counts(recorded, below, total, true);
            assert_eq!(l + u, recorded);
            assert!(l >= 0 && u >= 0);
        }
        // Proportional, rounded.
        assert_eq!(split_counts(64, 33, 66, true), (32, 32));
        assert_eq!(split_counts(100, 1, 3, true), (33, 67));
    }

    #[test]
    fn nonsense_inputs_stay_in_range() {
        assert_eq!(split_counts(-5, 3, 4, true), (0, 0));
        assert_eq!(split_counts(10, 9, 4, true), (10, 0));
        assert_eq!(split_counts(10, -1, 4, false), (0, 4));
        let (l, u) = split_counts(i64::MAX, 5, 10, true);
        assert_eq!(l.checked_add(u), Some(i64::MAX));
    }
}
