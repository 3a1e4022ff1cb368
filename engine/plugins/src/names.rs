//! The names strategies run under in one engine.

use std::collections::HashSet;

/// Why a set of strategy names cannot run together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("strategy name {0:?} must be 1-64 of [a-z0-9_-] (names starting with `@` are the engine's own records)")]
    Invalid(String),
    #[error("two strategies are named {0:?}: give one a `name` in its [[strategies]] entry")]
    Duplicate(String),
}

/// Whether `name` may name a strategy: 1-64 of `[a-z0-9_-]`. The engine's
/// own state records (`@tail`, `@model:...`) can never match.
pub fn is_strategy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks the names an engine's strategies run under: each valid, none
/// twice (their state records and signal ids would collide).
///
/// # Errors
/// The first bad or repeated name.
pub fn check_strategy_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), NameError> {
    let mut seen = HashSet::new();
    for name in names {
        if !is_strategy_name(name) {
            return Err(NameError::Invalid(name.to_owned()));
        }
        if !seen.insert(name) {
            return Err(NameError::Duplicate(name.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_unique() {
        check_strategy_names(["sma_cross", "rsi-reversion", "a1"]).unwrap();
        assert_eq!(
            check_strategy_names(["sma_cross", "x", "sma_cross"]),
            Err(NameError::Duplicate("sma_cross".into()))
        );
        for bad in [
            "@tail",
            "@model:lstm",
            "",
            "Upper",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert_eq!(
                check_strategy_names([bad]),
                Err(NameError::Invalid(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
