//! Per-backend activity counters reported by `observability()`.
//!
//! Each backend is a process, so plain process-wide atomics are exactly
//! per-session counters; no shared memory (and no shared_preload_libraries)
//! is needed.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Every counter, in report order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        pub enum Counter { $($name),* }
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

counters!(
    costestimate,
    rowcount_lookups,
    insert,
    scan,
    split,
    maintenance,
    errors,
);

static VALUES: [AtomicU64; NAMES.len()] = [const { AtomicU64::new(0) }; NAMES.len()];

pub fn bump(c: Counter) {
    VALUES[c as usize].fetch_add(1, Ordering::Relaxed);
}

pub fn get(c: Counter) -> u64 {
    VALUES[c as usize].load(Ordering::Relaxed)
}

/// `{costestimate=N,rowcount_lookups=N,...}`
pub fn describe() -> String {
    let parts: Vec<String> = NAMES
        .iter()
        .zip(VALUES.iter())
        .map(|(n, v)| format!("{n}={}", v.load(Ordering::Relaxed)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_is_reported() {
        let before = get(Counter::split);
        bump(Counter::split);
        assert_eq!(get(Counter::split), before + 1);
        let d = describe();
        assert!(d.starts_with("{costestimate="), "{d}");
        assert!(d.contains(&format!("split={}", before + 1)), "{d}");
    }
}
