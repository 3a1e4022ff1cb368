//! The backtest loop: candles -> indicators -> strategy -> broker -> stats.
//!
//! Candles are pulled in batches of [`RunOptions::batch`]; each batch is
//! checked as a series, run through the indicators (one row of values per
//! bar), handed to the strategy as one call (as the live pipeline batches
//! plugin calls), and then replayed bar by bar into the broker, each bar's
//! signal queued for the next bar's open. Memory is the batch plus the
//! equity curve (three numbers per bar) and the trades.

use candlewick_indicators::IndicatorSet;
use candlewick_market::{Candle, DataError};

use crate::broker::{Broker, BrokerResult};
use crate::config::BrokerConfig;
use crate::equity::EquityCurve;
use crate::error::RunError;
use crate::series::{GapPolicy, SeriesCheck};
use crate::signal::Signal;
use crate::source::SignalSource;
use crate::stats::Stats;
use crate::trade::Trade;

/// Settings of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub broker: BrokerConfig,
    pub gaps: GapPolicy,
    /// Bars per strategy call. Default 1024.
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

/// Runs `source` over `candles`. `progress` is called after each batch
/// with the number of bars done.
///
/// # Errors
/// A bad candle or series, a failing strategy, an unknown indicator, data
/// too short for the strategy's indicators, or invalid settings.
pub fn run<S, I>(
    source: &mut S,
    candles: I,
    options: &RunOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<RunResult, RunError>
where
    S: SignalSource + ?Sized,
    I: IntoIterator<Item = Result<Candle, DataError>>,
{
    let mut indicators = Indicators::for_spec(&source.indicator_spec())?;
    let mut broker = Broker::new(options.broker.clone())?;
    let mut check = SeriesCheck::new(options.gaps);
    let mut loop_state = Batches::new(indicators.width(), options.batch.max(1));
    let mut candles = candles.into_iter();
    let mut done = 0;
    while loop_state.fill(&mut candles)? {
        if done == 0 {
            check.infer_interval(&loop_state.times());
        }
        for bar in &loop_state.bars {
            check.push(bar.open_time)?;
        }
        loop_state.step(&mut indicators, source, &mut broker)?;
        done += loop_state.bars.len();
        progress(done);
    }
    finish(broker.finish(), &indicators, done, options)
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

    fn width(&self) -> usize {
        self.0.as_ref().map_or(0, IndicatorSet::width)
    }

    fn update(&mut self, bar: &Candle, row: &mut [f64]) {
        if let Some(set) = &mut self.0 {
            set.update(bar, row);
        }
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

/// The reused buffers of the batch loop.
struct Batches {
    bars: Vec<Candle>,
    values: Vec<f64>,
    row: Vec<f64>,
    signals: Vec<(usize, Signal)>,
    cap: usize,
}

impl Batches {
    fn new(width: usize, cap: usize) -> Self {
        Batches {
            bars: Vec::with_capacity(cap),
            values: Vec::with_capacity(cap * width),
            row: vec![0.0; width],
            signals: Vec::new(),
            cap,
        }
    }

    fn times(&self) -> Vec<i64> {
        self.bars.iter().map(|b| b.open_time).collect()
    }

    /// Pulls up to `cap` candles; false when there were none left.
    fn fill<I>(&mut self, candles: &mut I) -> Result<bool, DataError>
    where
        I: Iterator<Item = Result<Candle, DataError>>,
    {
        self.bars.clear();
        for candle in candles.by_ref() {
            self.bars.push(candle?);
            if self.bars.len() == self.cap {
                break;
            }
        }
        Ok(!self.bars.is_empty())
    }

    fn step<S: SignalSource + ?Sized>(
        &mut self,
        indicators: &mut Indicators,
        source: &mut S,
        broker: &mut Broker,
    ) -> Result<(), RunError> {
        self.values.clear();
        for bar in &self.bars {
            indicators.update(bar, &mut self.row);
            self.values.extend_from_slice(&self.row);
        }
        self.signals.clear();
        source
            .on_batch(&self.bars, &self.values, &mut self.signals)
            .map_err(|e| RunError::Strategy(e.0))?;
        let mut next = self.signals.iter().peekable();
        let mut last_index = None;
        for (i, bar) in self.bars.iter().enumerate() {
            broker.on_bar(bar);
            while let Some((_, signal)) = next.next_if(|(at, _)| *at == i) {
                if last_index == Some(i) {
                    return Err(RunError::Strategy(format!(
                        "two signals for bar {i} of a batch"
                    )));
                }
                last_index = Some(i);
                signal
                    .validate()
                    .map_err(|e| RunError::Strategy(e.to_string()))?;
                broker.submit(*signal);
            }
        }
        if let Some((at, _)) = next.next() {
            return Err(RunError::Strategy(format!(
                "signal for bar {at} of a batch of {} (indices must increase and be in the batch)",
                self.bars.len()
            )));
        }
        Ok(())
    }
}
