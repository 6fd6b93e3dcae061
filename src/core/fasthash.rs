//! A hasher for the backend-local maps the insert path reads for every row
//! (pending row counts by segment id, remembered free space by relation).
//! The standard SipHash costs more than the rest of such a lookup; the keys
//! are integers no one picks to collide in this backend's memory.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hash of integer keys (the FxHash recipe).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// `HashMap<K, V, IdBuild>`: a map hashed by [`IdHasher`].
pub type IdBuild = BuildHasherDefault<IdHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn distinct_ids_spread_and_maps_work() {
        let h = |n: i64| {
            let mut x = IdHasher::default();
            x.write_i64(n);
            x.finish()
        };
        assert_ne!(h(1), h(2));
        assert_ne!(h(0), h(-1));
        let mut m: HashMap<i64, i64, IdBuild> = HashMap::default();
        for i in -500..500 {
            m.insert(i * 7, i);
        }
        assert_eq!(m.len(), 1000);
        assert!((-500..500).all(|i| m[&(i * 7)] == i));
    }
}
