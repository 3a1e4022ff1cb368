//! Instrument symbols.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An exchange symbol such as `BTCUSDT` or `EURUSD`.
///
/// Validated on construction: 1 to 32 ASCII characters from `A-Z`, `0-9`,
/// `-`, `_` and `.`, upper-cased. The limit keeps RocksDB keys and feed
/// frames small and stops a hostile frame from smuggling anything else in.
///
/// Shared, not copied: every signal of a stream carries its symbol, and a
/// clone is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(Arc<str>);

/// Why a string is not a symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid symbol {0:?}: expected 1-32 characters of A-Z, 0-9, '-', '_' or '.'")]
pub struct SymbolError(pub String);

impl Symbol {
    pub const MAX_LEN: usize = 32;

    /// Parses and upper-cases `s`.
    ///
    /// # Errors
    /// [`SymbolError`] when `s` is empty, too long or has other characters.
    pub fn new(s: &str) -> Result<Self, SymbolError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Symbol(s.to_ascii_uppercase().into()))
        } else {
            Err(SymbolError(s.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;
    fn try_from(s: String) -> Result<Self, SymbolError> {
        Symbol::new(&s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0.as_ref().to_owned()
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_and_validates() {
        assert_eq!(Symbol::new("btcusdt").unwrap().as_str(), "BTCUSDT");
        assert!(Symbol::new("").is_err());
        assert!(Symbol::new("BTC/USDT").is_err());
        assert!(Symbol::new(&"A".repeat(33)).is_err());
    }
}
