//! What a backtest is asked ([`RunOptions`]) and what it answers
//! ([`RunResult`]): the broker's trades and curve, with the statistics
//! computed from the first bar on which every indicator of the strategy
//! has a value.

use candlewick_indicators::IndicatorSet;

use crate::broker::BrokerResult;
use crate::config::BrokerConfig;
use crate::equity::EquityCurve;
use crate::error::RunError;
use crate::series::GapPolicy;
use crate::stats::Stats;
use crate::trade::Trade;

/// Settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub broker: BrokerConfig,
    pub gaps: GapPolicy,
    /// Most bars a shard worker drains as one batch (one strategy call per
    /// batch and stream). Default 1024.
    pub batch: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            broker: BrokerConfig::new(),
            gaps: GapPolicy::default(),
            batch: 1024,
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub trades: Vec<Trade>,
    pub curve: EquityCurve,
    pub stats: Stats,
    /// The first bar on which every indicator of the strategy has a value.
    pub warmup: usize,
    /// The strategy's indicators, canonical spec.
    pub indicator_spec: String,
    pub rejected_orders: u64,
    pub bankrupt: bool,
    pub options: RunOptions,
}

/// The strategy's indicators; a strategy may need none.
pub(crate) struct Indicators(Option<IndicatorSet>);

impl Indicators {
    pub(crate) fn for_spec(spec: &str) -> Result<Self, RunError> {
        if spec.trim().is_empty() {
            return Ok(Indicators(None));
        }
        IndicatorSet::parse(spec)
            .map(|set| Indicators(Some(set)))
            .map_err(|source| RunError::Indicators {
                spec: spec.to_owned(),
                source,
            })
    }

    fn spec(&self) -> &str {
        self.0.as_ref().map_or("", IndicatorSet::spec)
    }

    /// The column that warms up last and its first bar with a value.
    fn slowest(&self) -> (usize, String) {
        let Some(set) = &self.0 else {
            return (0, String::new());
        };
        set.lookbacks()
            .iter()
            .zip(set.columns())
            .max_by_key(|(l, _)| **l)
            .map_or((0, String::new()), |(l, c)| (*l, c.clone()))
    }
}

pub(crate) fn finish(
    result: BrokerResult,
    indicators: &Indicators,
    bars: usize,
    options: &RunOptions,
) -> Result<RunResult, RunError> {
    if bars < 2 {
        return Err(RunError::TooShort(bars));
    }
    let (warmup, column) = indicators.slowest();
    if warmup >= bars {
        return Err(RunError::NotEnoughHistory {
            column,
            needed: warmup,
            have: bars,
        });
    }
    let stats = Stats::compute(&result.curve, &result.trades, warmup);
    Ok(RunResult {
        trades: result.trades,
        curve: result.curve,
        stats,
        warmup,
        indicator_spec: indicators.spec().to_owned(),
        rejected_orders: result.rejected_orders,
        bankrupt: result.bankrupt,
        options: options.clone(),
    })
}
