//! The clustered locator: a 16-byte value naming where a key lives, the
//! seed's contract kept byte for byte. Bytes 0..7 are the `major` (segment),
//! bytes 8..15 the `minor` (key), each a big-endian two's-complement int64.
//! Ordering is by (major, minor) as signed integers, not by raw bytes.

use std::cmp::Ordering;
use std::fmt;

/// Size of a locator on disk and in memory.
pub const LOCATOR_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Locator {
    pub major: i64,
    pub minor: i64,
}

/// Why a locator could not be decoded or advanced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocatorError {
    /// Not exactly 16 bytes.
    BadLength(usize),
    /// Text that is neither `(major,minor)` nor 32 hex digits.
    BadText(String),
    /// An advance would leave the int64 range.
    Overflow {
        part: &'static str,
        value: i64,
        delta: i64,
    },
}

impl fmt::Display for LocatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocatorError::BadLength(n) => {
                write!(f, "a clustered locator must be exactly 16 bytes, got {n}")
            }
            LocatorError::BadText(s) => {
                write!(
                    f,
                    "invalid input syntax for type clustered_locator: \"{s}\""
                )
            }
            LocatorError::Overflow { part, value, delta } => write!(
                f,
                "clustered locator {part} out of range: {value} + {delta} does not fit in bigint"
            ),
        }
    }
}

impl Locator {
    pub const fn new(major: i64, minor: i64) -> Self {
        Locator { major, minor }
    }

    /// The seed's single-column primary-key form: `{major = 0, minor = pk}`.
    pub const fn from_int8(pk: i64) -> Self {
        Locator {
            major: 0,
            minor: pk,
        }
    }

    pub fn to_bytes(self) -> [u8; LOCATOR_LEN] {
        let mut out = [0u8; LOCATOR_LEN];
        out[..8].copy_from_slice(&self.major.to_be_bytes());
        out[8..].copy_from_slice(&self.minor.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, LocatorError> {
        if b.len() != LOCATOR_LEN {
            return Err(LocatorError::BadLength(b.len()));
        }
        let major = i64::from_be_bytes(b[..8].try_into().unwrap());
        let minor = i64::from_be_bytes(b[8..].try_into().unwrap());
        Ok(Locator { major, minor })
    }

    /// 32 lowercase hex digits of the 16 bytes (the seed's `locator_to_hex`).
    pub fn to_hex(self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Text form used by the type's output function: `(major,minor)`.
    pub fn to_text(self) -> String {
        format!("({},{})", self.major, self.minor)
    }

    /// Parses `(major,minor)` (spaces allowed) or 32 hex digits, optionally
    /// prefixed by `\x` or `0x`.
    pub fn parse(text: &str) -> Result<Self, LocatorError> {
        let bad = || LocatorError::BadText(text.to_string());
        let t = text.trim();
        if let Some(inner) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            let (a, b) = inner.split_once(',').ok_or_else(bad)?;
            let major = a.trim().parse::<i64>().map_err(|_| bad())?;
            let minor = b.trim().parse::<i64>().map_err(|_| bad())?;
            return Ok(Locator { major, minor });
        }
        let hex = t
            .strip_prefix("\\x")
            .or_else(|| t.strip_prefix("0x"))
            .unwrap_or(t);
        if hex.len() != 2 * LOCATOR_LEN || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut bytes = [0u8; LOCATOR_LEN];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).map_err(|_| bad())?;
            bytes[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
        }
        Locator::from_bytes(&bytes)
    }

    /// The next segment: `major + delta`, minor kept (the key does not
    /// change when it moves to another segment). Overflow is an error.
    pub fn advance_major(self, delta: i64) -> Result<Self, LocatorError> {
        let major = self
            .major
            .checked_add(delta)
            .ok_or(LocatorError::Overflow {
                part: "major",
                value: self.major,
                delta,
            })?;
        Ok(Locator { major, ..self })
    }

    /// The next key in the same segment: `minor + delta`.
    pub fn next_minor(self, delta: i64) -> Result<Self, LocatorError> {
        let minor = self
            .minor
            .checked_add(delta)
            .ok_or(LocatorError::Overflow {
                part: "minor",
                value: self.minor,
                delta,
            })?;
        Ok(Locator { minor, ..self })
    }
}

impl Ord for Locator {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }
}

impl PartialOrd for Locator {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Three-way comparison of two encoded locators, as `locator_cmp` returns.
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Result<i32, LocatorError> {
    Ok(
        match Locator::from_bytes(a)?.cmp(&Locator::from_bytes(b)?) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_big_endian_major_then_minor() {
        let l = Locator::new(1, -2);
        insta::assert_snapshot!(l.to_hex(), @"0000000000000001fffffffffffffffe");
        assert_eq!(Locator::from_bytes(&l.to_bytes()).unwrap(), l);
    }

    #[test]
    fn seed_int8_form() {
        let l = Locator::from_int8(42);
        assert_eq!((l.major, l.minor), (0, 42));
        insta::assert_snapshot!(l.to_hex(), @"0000000000000000000000000000002a");
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(
            Locator::from_bytes(&[0u8; 15]),
            Err(LocatorError::BadLength(15))
        );
        assert_eq!(
            Locator::from_bytes(&[0u8; 17]),
            Err(LocatorError::BadLength(17))
        );
    }

    #[test]
    fn ordering_is_signed_not_bytewise() {
        let neg = Locator::new(-1, 0).to_bytes();
        let pos = Locator::new(1, 0).to_bytes();
        // Raw bytes of -1 (0xff...) sort after 1; the locator order must not.
        assert!(neg > pos);
        assert_eq!(compare_bytes(&neg, &pos).unwrap(), -1);
        assert_eq!(compare_bytes(&pos, &neg).unwrap(), 1);
        assert_eq!(compare_bytes(&pos, &pos).unwrap(), 0);
        let a = Locator::new(0, i64::MAX);
        let b = Locator::new(1, i64::MIN);
        assert!(a < b, "major dominates minor");
    }

    #[test]
    fn ordering_matches_tuple_order_on_many_values() {
        let vals = [i64::MIN, -70000, -1, 0, 1, 255, 256, 70000, i64::MAX];
        let mut locs = Vec::new();
        for &a in &vals {
            for &b in &vals {
                locs.push(Locator::new(a, b));
            }
        }
        for x in &locs {
            for y in &locs {
                let expect = (x.major, x.minor).cmp(&(y.major, y.minor)) as i32;
                assert_eq!(compare_bytes(&x.to_bytes(), &y.to_bytes()).unwrap(), expect);
            }
        }
    }

    #[test]
    fn text_forms_round_trip() {
        let l = Locator::new(-5, 9_000_000_000);
        assert_eq!(l.to_text(), "(-5,9000000000)");
        assert_eq!(Locator::parse(&l.to_text()).unwrap(), l);
        assert_eq!(Locator::parse(" ( -5 , 9000000000 ) ").unwrap(), l);
        assert_eq!(Locator::parse(&l.to_hex()).unwrap(), l);
        assert_eq!(Locator::parse(&format!("\\x{}", l.to_hex())).unwrap(), l);
        for bad in [
            "",
            "(1)",
            "(1,2,3)",
            "(a,b)",
            "abc",
            "(1,99999999999999999999)",
            "00",
        ] {
            assert!(Locator::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn advance_and_next_check_overflow() {
        let l = Locator::new(i64::MAX - 1, 7);
        assert_eq!(l.advance_major(1).unwrap(), Locator::new(i64::MAX, 7));
        let e = l.advance_major(2).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @"clustered locator major out of range: 9223372036854775806 + 2 does not fit in bigint");
        let m = Locator::new(3, i64::MIN + 1);
        assert_eq!(m.next_minor(-1).unwrap(), Locator::new(3, i64::MIN));
        assert!(m.next_minor(-2).is_err());
        assert_eq!(
            Locator::new(0, 0).next_minor(1).unwrap(),
            Locator::new(0, 1)
        );
    }
}
