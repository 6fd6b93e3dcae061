//! The index-side cost of a clustered_pk_index scan, as the planner sees it.
//!
//! Like btree's estimate, pages the scan always touches and that stay hot
//! (the metapage, as btree's root and inner pages) cost CPU only; segment
//! pages cost one random page each. There is no tree to descend: finding a
//! segment is a binary search over the directory and one page. The heap
//! side is the planner's own (correlation-driven) and not counted here.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostInputs {
    /// Fraction of the table's rows the index conditions select.
    pub selectivity: f64,
    /// Rows in the table.
    pub heap_tuples: f64,
    /// Segment pages of the index (all pages but the metapage).
    pub segment_pages: f64,
    /// Segments in the map.
    pub segments: f64,
    pub random_page_cost: f64,
    pub cpu_operator_cost: f64,
    pub cpu_index_tuple_cost: f64,
    /// Repetitions of the scan (inner side of a nested loop).
    pub loop_count: f64,
    /// Heap blocks a point lookup reads, on average (1 when every block
    /// holds its own narrow key range; more when zones overlap, as after a
    /// random-order load into clustered_heap).
    pub lookup_blocks: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostOutputs {
    pub startup: f64,
    pub total: f64,
    /// Index pages read per scan.
    pub pages: f64,
}

pub fn index_cost(i: &CostInputs) -> CostOutputs {
    let sel = i.selectivity.clamp(0.0, 1.0);
    let pages = (sel * i.segment_pages)
        .ceil()
        .clamp(1.0, i.segment_pages.max(1.0));
    // Binary search over segments, then one zone check per candidate row's
    // share of the map (rows per segment share a listing).
    let search = (i.segments.max(2.0)).log2() * i.cpu_operator_cost;
    let tuples = sel * i.heap_tuples;
    // The planner prices the heap pages the selected rows need; blocks whose
    // zones overlap the key but hold no match are read on top, about
    // `lookup_blocks - 1` per lookup (inside a range they are mostly blocks
    // the range needs anyway): charge them here, or a btree that reads
    // fewer blocks would lose to us.
    let extra_heap = (i.lookup_blocks.max(1.0) - 1.0) * i.random_page_cost;
    let per_scan =
        pages * i.random_page_cost + search + tuples * i.cpu_index_tuple_cost + extra_heap;
    // Repeated scans mostly hit cached segment pages: charge the pages once.
    let loops = i.loop_count.max(1.0);
    let total = if loops > 1.0 {
        (pages * i.random_page_cost) / loops + search + tuples * i.cpu_index_tuple_cost + extra_heap
    } else {
        per_scan
    };
    CostOutputs {
        startup: search,
        total,
        pages,
    }
}

/// Selectivity of a range scan that reads `candidate_blocks` of a table's
/// `heap_pages` whole (lossy): at least that share of the rows passes
/// through it, whatever the statistics say (they guess one row at the ends
/// of the key range, where the scan still reads a block or two).
pub fn range_selectivity(generic: f64, candidate_blocks: f64, heap_pages: f64) -> f64 {
    let by_map = if heap_pages >= 1.0 {
        candidate_blocks / heap_pages
    } else {
        0.0
    };
    generic.max(by_map).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(sel: f64) -> CostInputs {
        CostInputs {
            selectivity: sel,
            heap_tuples: 1_000_000.0,
            segment_pages: 40.0,
            segments: 1000.0,
            random_page_cost: 4.0,
            cpu_operator_cost: 0.0025,
            cpu_index_tuple_cost: 0.005,
            loop_count: 1.0,
            lookup_blocks: 1.0,
        }
    }

    #[test]
    fn overlapping_zones_cost_their_extra_heap_blocks() {
        let clean = index_cost(&inputs(1e-6));
        let overlapped = index_cost(&CostInputs {
            lookup_blocks: 4.0,
            ..inputs(1e-6)
        });
        // A point lookup that reads 4 blocks instead of 1 costs 3 more
        // random pages: more than a btree's extra leaf page.
        assert!(
            (overlapped.total - clean.total - 12.0).abs() < 1e-9,
            "{overlapped:?}"
        );
    }

    #[test]
    fn range_selectivity_is_at_least_the_blocks_read() {
        // Statistics say one row of a million; the map says 2 of 9,000
        // blocks: the scan handles 2/9,000 of the table.
        let s = range_selectivity(1e-6, 2.0, 9000.0);
        assert!((s - 2.0 / 9000.0).abs() < 1e-12);
        // A good estimate above the blocks' share stands.
        assert_eq!(range_selectivity(0.5, 2.0, 9000.0), 0.5);
        assert_eq!(range_selectivity(0.1, 50.0, 10.0), 1.0);
        assert_eq!(range_selectivity(0.1, 3.0, 0.0), 0.1);
    }

    #[test]
    fn point_lookup_reads_one_segment_page() {
        let c = index_cost(&inputs(1e-6));
        assert_eq!(c.pages, 1.0);
        // One page plus a little CPU: cheaper than btree's leaf page plus
        // its descent charge for the same lookup (4 + ~0.4).
        assert!(c.total < 4.1, "{c:?}");
    }

    #[test]
    fn ranges_read_proportionally_few_pages() {
        let c = index_cost(&inputs(0.005));
        assert_eq!(c.pages, 1.0);
        let all = index_cost(&inputs(1.0));
        assert_eq!(all.pages, 40.0);
        assert!(all.total > c.total);
    }

    #[test]
    fn repeated_scans_amortise_pages() {
        let once = index_cost(&inputs(1e-6));
        let looped = index_cost(&CostInputs {
            loop_count: 100.0,
            ..inputs(1e-6)
        });
        assert!(looped.total < once.total);
    }
}
