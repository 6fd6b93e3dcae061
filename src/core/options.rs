//! Index options (reloptions) of clustered_pk_index: names, defaults and
//! bounds in one place, shared by `amoptions`, `observability()` and the
//! segment-map functions.

/// Rows a segment may hold before it splits.
pub const SPLIT_THRESHOLD_DEFAULT: i32 = 1024;
pub const SPLIT_THRESHOLD_MIN: i32 = 16;
pub const SPLIT_THRESHOLD_MAX: i32 = 1_048_576;

/// How full (percent) placement fills a heap page before it opens another.
pub const TARGET_FILLFACTOR_DEFAULT: i32 = 90;
pub const TARGET_FILLFACTOR_MIN: i32 = 10;
pub const TARGET_FILLFACTOR_MAX: i32 = 100;

/// Seconds after which a fragmented segment counts as due for repack
/// (0 disables the heuristic).
pub const AUTO_REPACK_INTERVAL_DEFAULT: i32 = 3600;
pub const AUTO_REPACK_INTERVAL_MIN: i32 = 0;
pub const AUTO_REPACK_INTERVAL_MAX: i32 = i32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexOptions {
    pub split_threshold: i32,
    pub target_fillfactor: i32,
    pub auto_repack_interval: i32,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            split_threshold: SPLIT_THRESHOLD_DEFAULT,
            target_fillfactor: TARGET_FILLFACTOR_DEFAULT,
            auto_repack_interval: AUTO_REPACK_INTERVAL_DEFAULT,
        }
    }
}

impl IndexOptions {
    /// Checks every value against its bounds; the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: i32, lo: i32, hi: i32| {
            if v < lo || v > hi {
                Err(format!("{name} must be between {lo} and {hi}, got {v}"))
            } else {
                Ok(())
            }
        };
        check(
            "split_threshold",
            self.split_threshold,
            SPLIT_THRESHOLD_MIN,
            SPLIT_THRESHOLD_MAX,
        )?;
        check(
            "target_fillfactor",
            self.target_fillfactor,
            TARGET_FILLFACTOR_MIN,
            TARGET_FILLFACTOR_MAX,
        )?;
        check(
            "auto_repack_interval",
            self.auto_repack_interval,
            AUTO_REPACK_INTERVAL_MIN,
            AUTO_REPACK_INTERVAL_MAX,
        )
    }

    /// `{split_threshold=..,target_fillfactor=..,auto_repack_interval=..}`
    pub fn describe(&self) -> String {
        format!(
            "{{split_threshold={},target_fillfactor={},auto_repack_interval={}}}",
            self.split_threshold, self.target_fillfactor, self.auto_repack_interval
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_described() {
        let d = IndexOptions::default();
        assert!(d.validate().is_ok());
        insta::assert_snapshot!(d.describe(), @"{split_threshold=1024,target_fillfactor=90,auto_repack_interval=3600}");
    }

    #[test]
    fn bounds_are_enforced() {
        let bad = IndexOptions {
            target_fillfactor: 5,
            ..Default::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "target_fillfactor must be between 10 and 100, got 5"
        );
        let bad = IndexOptions {
            split_threshold: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = IndexOptions {
            auto_repack_interval: -1,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
