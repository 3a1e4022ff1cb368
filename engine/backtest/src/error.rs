//! Errors of the backtest engine: one enum per operation that can fail.

/// A signal that the broker refuses to act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    #[error("action {0} is not hold (0), buy (1), sell (2) or exit (3)")]
    UnknownAction(u32),
    #[error("strength {0} is not a finite number in [-1, 1]")]
    Strength(f64),
    #[error("{field} {value} is neither NaN (none) nor a finite price > 0")]
    Price { field: &'static str, value: f64 },
}

/// Broker settings that make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cash {0} must be a finite amount > 0")]
    Cash(f64),
    #[error("{name} {value} bps must be finite and in [0, 1000) (0 to 10%)")]
    Bps { name: &'static str, value: f64 },
    #[error("lot size {0} must be a finite number > 0")]
    LotSize(f64),
    #[error("max fraction {0} must be in (0, 1]")]
    MaxFraction(f64),
}

/// Why a backtest run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The candle source failed (bad row, unreadable file); its message
    /// already names the file and line.
    #[error(transparent)]
    Data(#[from] candlewick_market::DataError),
    /// The candles were valid one by one but are not a regular series.
    #[error("{0}")]
    Series(#[from] SeriesError),
    /// The strategy failed or produced an invalid signal.
    #[error("strategy: {0}")]
    Strategy(String),
    /// The strategy asked for indicators the engine does not know.
    #[error("strategy needs indicators {spec:?}: {source}")]
    Indicators {
        spec: String,
        source: candlewick_indicators::SpecError,
    },
    /// The data is too short for an indicator ever to have a value.
    #[error(
        "strategy needs {column}, which has its first value at bar {needed}, \
         but the data has only {have} bars"
    )]
    NotEnoughHistory {
        column: String,
        needed: usize,
        have: usize,
    },
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The input held fewer than two candles.
    #[error("{0} candles: a backtest needs at least two bars")]
    TooShort(usize),
    #[error(
        "bars {0} ms apart: not a kline interval (1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, \
         8h, 12h, 1d, 3d, 1w, 1M)"
    )]
    Interval(i64),
    #[error("pipeline: {0}")]
    Pipeline(String),
}

/// The candle series is not one a backtest can trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    #[error("bar {index} ({}): duplicate of the previous bar's time", fmt(*time))]
    Duplicate { index: usize, time: i64 },
    #[error("bar {index} ({}): before the previous bar ({})", fmt(*time), fmt(*previous))]
    OutOfOrder {
        index: usize,
        time: i64,
        previous: i64,
    },
    #[error(
        "bar {index}: {missing} bars missing after {} (interval {} s, next bar {} s later); \
         fill or cut the data, or run over holes (`--gaps report`, the default: they are \
         counted in the statistics, never filled)",
        fmt(*previous), interval_ms / 1000, gap_ms / 1000
    )]
    Gap {
        index: usize,
        previous: i64,
        gap_ms: i64,
        interval_ms: i64,
        missing: i64,
    },
}

fn fmt(ms: i64) -> String {
    candlewick_market::time::format_ms(ms)
}
