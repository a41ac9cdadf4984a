//! Replay tokens: their limits, their errors and their number syntax;
//! [`Explorer::try_replay`](super::Explorer::try_replay) parses them.

use std::fmt;
use std::string::String;

// Only named by intra-doc links.
#[cfg(doc)]
use super::{Explorer, Policy};

/// The highest [`Policy::Pct`] depth an [`Explorer`] accepts (a run keeps
/// `depth - 1` change points and scans them at every step).
pub const MAX_PCT_DEPTH: u32 = 1024;

/// The default of [`Explorer::max_steps`], also assumed by a token without a
/// `max_steps` field.
pub const DEFAULT_MAX_STEPS: u64 = 100_000;

/// Why [`Explorer::try_replay`] rejected a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token does not start with `random:`, `pct:` or `choices:`.
    UnknownKind(String),
    /// A field is not `key=value`.
    Malformed(String),
    /// A key this kind of token does not have.
    UnknownKey {
        /// The token's kind (`random`, `pct` or `choices`).
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// A key given twice.
    DuplicateKey(String),
    /// A field this kind of token needs is missing.
    MissingKey {
        /// The token's kind.
        kind: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A value that is not an unsigned decimal or `0x` hex number of the
    /// field's type.
    BadNumber {
        /// The key (`choices` for an entry of the list).
        key: String,
        /// The value as written.
        value: String,
    },
    /// A `choices` list longer than the token's `max_steps`: a run with that
    /// cap records at most `max_steps` choices.
    TooManyChoices {
        /// The cap.
        max_steps: u64,
    },
    /// A value outside its field's limits (see [`Explorer::try_replay`]).
    OutOfRange {
        /// The key (`choices` for an entry of the list).
        key: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::UnknownKind(kind) => write!(f, "unknown kind {kind:?} (random, pct or choices)"),
            TokenError::Malformed(field) => write!(f, "field {field:?} is not key=value"),
            TokenError::UnknownKey { kind, key } => write!(f, "a {kind} token has no key {key:?}"),
            TokenError::DuplicateKey(key) => write!(f, "{key} is given twice"),
            TokenError::MissingKey { kind, key } => write!(f, "a {kind} token needs {key}="),
            TokenError::BadNumber { key, value } => {
                write!(f, "{key}: {value:?} is not an unsigned decimal or 0x-hex number in range")
            }
            TokenError::TooManyChoices { max_steps } => {
                write!(f, "more choices than a run with max_steps={max_steps} records")
            }
            TokenError::OutOfRange { key, value, min, max } => {
                write!(f, "{key}={value} is out of range {min}..={max}")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// An unsigned decimal or `0x`-hex `u64` (no sign, no empty value).
pub(super) fn parse_number(key: &str, value: &str) -> Result<u64, TokenError> {
    let (digits, radix) = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (value, 10),
    };
    let bad = || TokenError::BadNumber { key: String::from(key), value: String::from(value) };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    u64::from_str_radix(digits, radix).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::explore::policy::seeded;
    use crate::host::explore::{Explorer, Mode, Policy};
    use std::format;
    use std::string::ToString;

    #[test]
    fn tokens_round_trip() {
        let e = Explorer::replay("pct:depth=3:steps=57:seed=0x1234");
        assert!(matches!(e.mode, Mode::Seed { seed: 0x1234, steps: 57 }));
        assert_eq!(e.policy, Policy::Pct { depth: 3 });
        assert_eq!(e.max_steps, DEFAULT_MAX_STEPS);
        let e = Explorer::replay("random:seed=0xff:max_steps=7");
        assert!(matches!(e.mode, Mode::Seed { seed: 0xff, .. }));
        assert_eq!(e.max_steps, 7);
        assert!(matches!(Explorer::replay("choices:1,0,2").mode, Mode::Choices(ref c) if c == &[1, 0, 2]));
        let e = Explorer::replay(" choices:1,0:max_steps=2 ");
        assert!(matches!(e.mode, Mode::Choices(ref c) if c == &[1, 0]));
        assert_eq!(e.max_steps, 2);
        assert!(matches!(Explorer::replay("choices:").mode, Mode::Choices(ref c) if c.is_empty()));
        // What the explorer writes, it reads.
        let (_, token) = seeded(Policy::Pct { depth: 2 }, 9, 41, 50);
        assert_eq!(token, "pct:depth=2:steps=41:seed=0x9:max_steps=50");
        let e = Explorer::replay(&token);
        assert!(matches!(e.mode, Mode::Seed { seed: 9, steps: 41 }) && e.max_steps == 50);
    }

    #[test]
    fn bad_tokens_are_typed_errors() {
        use TokenError::*;
        let err = |t: &str| Explorer::try_replay(t).unwrap_err();
        assert_eq!(
            err("pct:depth=4294967295:steps=1:seed=0x1"),
            OutOfRange { key: "depth", value: 4294967295, min: 0, max: u64::from(MAX_PCT_DEPTH) }
        );
        assert_eq!(err("pct:seed=0x1:steps=1"), MissingKey { kind: "pct", key: "depth" });
        assert_eq!(err("pct:depth=2:seed=0x1"), MissingKey { kind: "pct", key: "steps" });
        assert_eq!(err("random:max_steps=3"), MissingKey { kind: "random", key: "seed" });
        assert_eq!(err("random"), MissingKey { kind: "random", key: "seed" });
        assert_eq!(err("bogus:seed=1"), UnknownKind(String::from("bogus")));
        assert_eq!(err("random:seed=1:seed=2"), DuplicateKey(String::from("seed")));
        assert_eq!(err("random:seed=1:depth=2"), UnknownKey { kind: "random", key: String::from("depth") });
        assert_eq!(err("choices:0:seed=1"), UnknownKey { kind: "choices", key: String::from("seed") });
        assert_eq!(err("random:seed"), Malformed(String::from("seed")));
        for bad in ["+1", "-1", "", "0x", "0x+1", "1e3", "18446744073709551616", "0x1_0"] {
            assert!(matches!(err(&format!("random:seed={bad}")), BadNumber { .. }), "{bad:?}");
        }
        assert_eq!(
            err("pct:depth=2:steps=0:seed=1"),
            OutOfRange { key: "steps", value: 0, min: 1, max: DEFAULT_MAX_STEPS }
        );
        assert_eq!(
            err("pct:depth=2:steps=11:seed=1:max_steps=10"),
            OutOfRange { key: "steps", value: 11, min: 1, max: 10 }
        );
        assert_eq!(
            err("choices:0,4294967296"),
            OutOfRange { key: "choices", value: 4294967296, min: 0, max: 4294967295 }
        );
        assert_eq!(err("choices:0,1,2:max_steps=2"), TooManyChoices { max_steps: 2 });
        assert!(matches!(err("choices:0,x"), BadNumber { .. }));
        // Every error prints as one readable line.
        assert!(err("choices:0,1,2:max_steps=2").to_string().contains("max_steps=2"));
        assert!(err("pct:depth=4294967295:steps=1:seed=0x1").to_string().contains("depth=4294967295 is out of range"));
    }
}
