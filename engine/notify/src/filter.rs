//! [`Filter`]: which notifications one webhook wants.

use crate::{Kind, Notification};

/// Which notifications a webhook receives. Every list that is empty
/// accepts everything; a list applies only to notifications that have
/// that part (a strategy filter does not hide engine start/stop).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Kinds to send; empty: all.
    pub kinds: Vec<Kind>,
    pub strategies: Vec<String>,
    pub symbols: Vec<String>,
    /// Signal actions (`buy`, `sell`, `exit`, `hold`).
    pub actions: Vec<String>,
    /// Signals whose |strength| is below this are not sent.
    pub min_strength: Option<f64>,
    /// Analyses whose confidence is below this are not sent.
    pub min_confidence: Option<f64>,
}

impl Filter {
    /// Whether a notification with these parts passes. Cheap (a few
    /// comparisons over short lists): the engine asks before it builds a
    /// signal's notification.
    pub fn accepts_parts(
        &self,
        kind: Kind,
        strategy: Option<&str>,
        symbol: Option<&str>,
        action: Option<&str>,
        strength: Option<f64>,
    ) -> bool {
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_none_or(|v| list.iter().any(|x| x == v))
        };
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && listed(&self.strategies, strategy)
            && listed(&self.symbols, symbol)
            && listed(&self.actions, action)
            && match (kind, self.min_strength, self.min_confidence, strength) {
                (Kind::Analysis, _, Some(min), Some(c)) => c >= min,
                (Kind::Analysis, ..) => true,
                (_, Some(min), _, Some(s)) => s.abs() >= min,
                _ => true,
            }
    }

    /// Whether `n` passes.
    pub fn accepts(&self, n: &Notification) -> bool {
        self.accepts_parts(
            n.kind,
            n.strategy.as_deref(),
            n.symbol.as_deref(),
            n.action,
            n.strength,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_accept_everything_and_lists_only_bind_their_part() {
        let all = Filter::default();
        assert!(all.accepts_parts(Kind::Engine, None, None, None, None));
        let f = Filter {
            kinds: vec![Kind::Signal, Kind::Engine],
            strategies: vec!["sma_cross".into()],
            symbols: vec!["BTCUSDT".into()],
            actions: vec!["buy".into(), "sell".into()],
            min_strength: Some(0.5),
            min_confidence: None,
        };
        let sig = |strategy, symbol, action, strength| {
            f.accepts_parts(
                Kind::Signal,
                Some(strategy),
                Some(symbol),
                Some(action),
                Some(strength),
            )
        };
        assert!(sig("sma_cross", "BTCUSDT", "buy", 0.5));
        assert!(sig("sma_cross", "BTCUSDT", "sell", -0.9));
        assert!(!sig("sma_cross", "BTCUSDT", "buy", 0.49));
        assert!(!sig("sma_cross", "BTCUSDT", "exit", 1.0));
        assert!(!sig("rsi", "BTCUSDT", "buy", 1.0));
        assert!(!sig("sma_cross", "ETHUSDT", "buy", 1.0));
        assert!(f.accepts_parts(Kind::Engine, None, None, None, None));
        assert!(!f.accepts_parts(
            Kind::Quarantine,
            Some("sma_cross"),
            Some("BTCUSDT"),
            None,
            None
        ));
    }

    #[test]
    fn analyses_are_filtered_on_confidence_not_on_strength() {
        let f = Filter {
            kinds: vec![Kind::Analysis],
            min_strength: Some(0.9),
            min_confidence: Some(0.7),
            ..Filter::default()
        };
        let analysis = |c| Notification::analysis("BTCUSDT", 1, c, "{}".into());
        assert!(f.accepts(&analysis(0.7)));
        assert!(!f.accepts(&analysis(0.69)));
        let any = Filter::default();
        assert!(any.accepts(&analysis(0.0)));
    }
}
