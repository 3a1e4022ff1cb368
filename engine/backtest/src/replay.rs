//! Backtests through the live pipeline (DESIGN §2): history is routed to
//! the same shard workers that serve the exchange, the strategy runs in the
//! same plugin runners, and the simulated broker is the sink.
//!
//! ```text
//! series 1..N --(checked: order, duplicates, gaps)--> router --> shard workers
//!   (one router thread per series,                        indicators, plugins,
//!    a few at a time)                                     in-memory checkpoint
//!                                                              |
//!                              BrokerSink <--signals, candles--+
//!                              one Account (broker) per stream
//! ```
//!
//! Only the source, the clock and the store differ from a live run: the
//! source is a file read as fast as the workers take it (the router's
//! backpressure paces it), and the store is in memory. Each stream belongs
//! to one worker, which hands the sink a batch's signals and then its
//! candles, in order; the stream's [`Account`] plays them into its broker,
//! each bar's signal queued for the next bar's open, so a series gives the
//! same trades however many workers run it and however they batch it.
//! This is the only backtest loop: `candlewick backtest`, its sweeps, the
//! benches and the tests against backtesting.py all run through it.
//!
//! A live engine quarantines a failing plugin and goes on; a backtest that
//! skipped bars would report numbers that never happened, so any
//! quarantine during a replay fails the whole run.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use candlewick_inference::NamedModel;
use candlewick_market::{Candle, DataError, Interval, Symbol};
use candlewick_pipeline::{CandleEvent, Engine, Router, Sink, Strategy, StreamId};
use candlewick_plugins::{Limits, PluginHost};
use candlewick_state::StreamKey;

use crate::broker::Broker;
use crate::error::RunError;
use crate::result::{finish, Indicators, RunOptions, RunResult};
use crate::series::SeriesCheck;
use crate::signal::Signal;

/// Wall time one strategy call (a batch of bars) may take in a backtest.
/// The live default (a millisecond) is a latency budget; on a busy machine,
/// with every core running a symbol, a batch can miss it through no fault
/// of the plugin, and a backtest that fails or not by the machine's load is
/// not reproducible. Here the deadline only guards against a plugin that
/// never returns. It never changes a result: a run either completes,
/// identical, or stops with an error.
pub const BACKTEST_DEADLINE: Duration = Duration::from_secs(10);

/// The plugin limits of a backtest: the default caps, with
/// [`BACKTEST_DEADLINE`].
pub fn backtest_limits() -> Limits {
    Limits {
        deadline: BACKTEST_DEADLINE,
        ..Limits::default()
    }
}

/// Candles read ahead of the run to infer a series' interval (its stream
/// key names one before the pipeline starts).
const HEAD: usize = 1024;

/// Candles of one series, oldest first; read on a router thread.
pub type Candles<'a> = Box<dyn Iterator<Item = Result<Candle, DataError>> + Send + 'a>;

/// One symbol's candles.
pub struct ReplaySeries<'a> {
    pub symbol: Symbol,
    pub candles: Candles<'a>,
}

/// A backtest of one strategy over many series on `workers` shard workers.
pub struct Replay<'a> {
    pub host: &'a PluginHost,
    /// The strategy with its parameters (and limits: a backtest's deadline
    /// guards against a plugin that never returns, not a latency budget).
    pub strategy: Strategy,
    pub options: RunOptions,
    pub workers: usize,
}

impl Replay<'_> {
    /// Replays every series and returns one result per series, in input
    /// order. `progress` gets the number of candles routed since its last
    /// call, from the router threads.
    ///
    /// # Errors
    /// A setting the whole run shares is bad (the strategy's indicators or
    /// parameters, the broker's configuration), the pipeline failed, or
    /// the strategy faulted on any series. A problem of one series (bad or
    /// short data, a gap) is that series' `Err` only.
    pub fn run(
        &self,
        series: Vec<ReplaySeries<'_>>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Result<RunResult, RunError>>, RunError> {
        self.run_with_models(&[], series, progress)
    }

    /// [`Replay::run`] with the verified models whose outputs the strategy
    /// reads (its manifest's `models`): the workers run them as live
    /// ([`PipelineConfig::models`]).
    ///
    /// # Errors
    /// As [`Replay::run`], and a strategy that reads a model not in
    /// `models` (named).
    pub fn run_with_models(
        &self,
        models: &[NamedModel],
        series: Vec<ReplaySeries<'_>>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Result<RunResult, RunError>>, RunError> {
        let spec = self.indicator_spec()?;
        let indicators = Indicators::for_spec(&spec)?;
        Broker::new(self.options.broker.clone())?; // validate once, up front
        let mut outcomes: Vec<Result<Prepared<'_>, RunError>> = series
            .into_iter()
            .map(|s| Prepared::read_head(s, &self.options))
            .collect();
        let keys: Vec<StreamKey> = outcomes
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|p| p.key.clone()))
            .collect();
        if let Some(key) = duplicate(&keys) {
            return Err(RunError::Pipeline(format!(
                "stream {key} is given twice; give each series once"
            )));
        }
        let sink = Arc::new(BrokerSink::new(&keys, &self.options)?);
        for prepared in outcomes.iter().filter_map(|p| p.as_ref().ok()) {
            if let Some(mut account) = sink.account(&prepared.key) {
                account.broker.reserve(prepared.bars_hint());
            }
        }
        let (pipeline, router) = Engine::backtest(keys)
            .workers(self.workers)
            .configure(|c| c.max_batch = self.options.batch.max(1))
            .models(models.to_vec())
            .strategies(self.host, std::slice::from_ref(&self.strategy))
            .sink(sink.clone())
            .start()
            .map_err(|e| RunError::Pipeline(e.to_string()))?;
        let routed = route_all(&mut outcomes, router, self.workers, progress);
        let metrics = pipeline.metrics().clone();
        pipeline
            .join()
            .map_err(|e| RunError::Pipeline(e.to_string()))?;
        // Read after the join: the workers may fault while draining.
        let quarantines = metrics.quarantines();
        if quarantines > 0 {
            return Err(RunError::Strategy(format!(
                "the plugin faulted {quarantines} time(s) during the replay (see the log); \
                 a backtest over skipped bars would report trades that never happened"
            )));
        }
        let mut accounts = sink.into_accounts().into_iter();
        Ok(outcomes
            .into_iter()
            .zip(routed)
            .map(|(prepared, routed)| {
                prepared?;
                // Accounts exist for the prepared series only, in order.
                let account = accounts
                    .next()
                    .ok_or_else(|| RunError::Pipeline("a stream lost its account".to_owned()))?;
                routed?;
                account.finish(&indicators, &self.options)
            })
            .collect())
    }

    fn indicator_spec(&self) -> Result<String, RunError> {
        let manifest = self.strategy.module.manifest();
        let values = manifest
            .resolve_params(&self.strategy.params)
            .map_err(|e| RunError::Strategy(e.to_string()))?;
        manifest
            .indicator_spec(&values)
            .map_err(|e| RunError::Strategy(format!("indicators: {e}")))
    }
}

/// A series ready to route: its key, its checker, and what was read ahead.
struct Prepared<'a> {
    key: StreamKey,
    check: SeriesCheck,
    head: Vec<Candle>,
    rest: Candles<'a>,
}

impl<'a> Prepared<'a> {
    /// Reads up to [`HEAD`] candles and names the series' stream by the
    /// interval they show.
    fn read_head(series: ReplaySeries<'a>, options: &RunOptions) -> Result<Self, RunError> {
        let mut rest = series.candles;
        let mut head = Vec::with_capacity(HEAD);
        for candle in rest.by_ref() {
            head.push(candle?);
            if head.len() == HEAD {
                break;
            }
        }
        if head.len() < 2 {
            return Err(RunError::TooShort(head.len()));
        }
        let mut check = SeriesCheck::new(options.gaps);
        let times: Vec<i64> = head.iter().map(|c| c.open_time).collect();
        check.infer_interval(&times);
        let ms = check.interval().unwrap_or(0);
        let interval = match Interval::from_ms(ms) {
            Some(i) => i,
            // A duplicate or disorder in the head explains a bad interval
            // better than the interval itself: report it first.
            None => {
                for &t in &times {
                    check.push(t)?;
                }
                return Err(RunError::Interval(ms));
            }
        };
        Ok(Prepared {
            key: StreamKey::new(series.symbol, interval),
            check,
            head,
            rest,
        })
    }
}

impl Prepared<'_> {
    /// The series' length when its reader knows it (a columnar file's
    /// metadata), capped: the broker then sizes its per-bar curve once
    /// instead of doubling it (a copy and fresh pages each time).
    fn bars_hint(&self) -> usize {
        const MOST: usize = 1 << 27;
        let left = self.rest.size_hint().1.unwrap_or(0);
        self.head.len().saturating_add(left).min(MOST)
    }
}

/// Routes every prepared series on a few threads (each takes the next
/// series when done with one); returns each series' routing outcome.
fn route_all(
    outcomes: &mut [Result<Prepared<'_>, RunError>],
    router: Router,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Result<(), RunError>> {
    let jobs: Vec<Mutex<Option<(StreamId, &mut Prepared<'_>)>>> = outcomes
        .iter_mut()
        .filter_map(|p| p.as_mut().ok())
        .enumerate()
        .map(|(i, p)| Mutex::new(Some((StreamId(i as u32), p))))
        .collect();
    let results: Vec<Mutex<Result<(), RunError>>> =
        jobs.iter().map(|_| Mutex::new(Ok(()))).collect();
    let next = AtomicUsize::new(0);
    let threads = jobs.len().min(2 * workers.max(1)).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let router = router.clone();
            let (jobs, results, next) = (&jobs, &results, &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let taken = job.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some((id, prepared)) = taken {
                    let outcome = route_series(id, prepared, &router, progress);
                    *results[i].lock().unwrap_or_else(PoisonError::into_inner) = outcome;
                }
            });
        }
    });
    drop(router); // the workers drain and stop once every clone is gone
    drop(jobs);
    let mut results = results
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
    outcomes
        .iter()
        .map(|p| match p {
            Ok(_) => results.next().unwrap_or(Ok(())),
            Err(_) => Ok(()), // its own error is reported from `outcomes`
        })
        .collect()
}

/// The first key that appears twice.
fn duplicate(keys: &[StreamKey]) -> Option<&StreamKey> {
    let mut seen = std::collections::HashSet::new();
    keys.iter().find(|k| !seen.insert(*k))
}

/// Checks and routes one series; stops at its first bad candle.
fn route_series(
    stream: StreamId,
    prepared: &mut Prepared<'_>,
    router: &Router,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), RunError> {
    let head = std::mem::take(&mut prepared.head);
    let route = |batch| {
        router
            .route_batch(batch)
            .map_err(|e| RunError::Pipeline(e.to_string()))
    };
    let mut batch = router.spare_batch(ROUTE_BATCH);
    for candle in head.into_iter().map(Ok).chain(prepared.rest.by_ref()) {
        let candle = candle?;
        prepared.check.push(candle.open_time)?;
        batch.push(CandleEvent {
            stream,
            candle,
            ingest_ns: 0, // not timed (`measure_latency` is off)
        });
        if batch.len() == ROUTE_BATCH {
            route(std::mem::replace(
                &mut batch,
                router.spare_batch(ROUTE_BATCH),
            ))?;
            progress(ROUTE_BATCH as u64);
        }
    }
    progress(batch.len() as u64);
    route(batch)
}

/// Candles per hand-off to a worker: one queue operation per batch.
const ROUTE_BATCH: usize = 256;

/// The simulated broker as the pipeline's sink: one account per stream.
struct BrokerSink {
    keys: Vec<StreamKey>,
    index: HashMap<StreamKey, usize>,
    accounts: Vec<Mutex<Account>>,
    /// The account a signal last went to: a stream's signals come in runs,
    /// so most find theirs without a key built and hashed.
    last: AtomicUsize,
}

impl BrokerSink {
    fn new(keys: &[StreamKey], options: &RunOptions) -> Result<Self, RunError> {
        Ok(BrokerSink {
            keys: keys.to_vec(),
            last: AtomicUsize::new(0),
            index: keys.iter().cloned().zip(0..).collect(),
            accounts: keys
                .iter()
                .map(|_| Account::new(options).map(Mutex::new))
                .collect::<Result<_, _>>()?,
        })
    }

    fn account(&self, key: &StreamKey) -> Option<std::sync::MutexGuard<'_, Account>> {
        self.account_at(*self.index.get(key)?)
    }

    fn account_at(&self, i: usize) -> Option<std::sync::MutexGuard<'_, Account>> {
        Some(
            self.accounts
                .get(i)?
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The account of `signal`'s stream.
    fn signal_account(
        &self,
        signal: &candlewick_pipeline::Signal,
    ) -> Option<std::sync::MutexGuard<'_, Account>> {
        let hint = self.last.load(Ordering::Relaxed);
        let hit = self
            .keys
            .get(hint)
            .is_some_and(|k| k.symbol == signal.symbol && k.interval == signal.interval);
        let i = if hit {
            hint
        } else {
            let key = StreamKey::new(signal.symbol.clone(), signal.interval);
            let i = *self.index.get(&key)?;
            self.last.store(i, Ordering::Relaxed);
            i
        };
        self.account_at(i)
    }

    fn into_accounts(self: Arc<Self>) -> Vec<Account> {
        match Arc::try_unwrap(self) {
            Ok(sink) => sink
                .accounts
                .into_iter()
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
                .collect(),
            // The workers have joined, so this is the last reference.
            Err(_) => Vec::new(),
        }
    }
}

impl Sink for BrokerSink {
    fn signal(&self, s: candlewick_pipeline::Signal) {
        if let Some(mut account) = self.signal_account(&s) {
            account.pending.push_back((
                s.time,
                Signal {
                    action: s.action,
                    strength: s.strength,
                    stop_loss: s.stop_loss,
                    take_profit: s.take_profit,
                },
            ));
        }
    }

    fn wants_candles(&self) -> bool {
        true
    }

    fn candle(&self, stream: &StreamKey, candle: &Candle) {
        if let Some(mut account) = self.account(stream) {
            account.candle(candle);
        }
    }

    fn candles(&self, stream: &StreamKey, candles: &mut dyn Iterator<Item = &Candle>) {
        if let Some(mut account) = self.account(stream) {
            for candle in candles {
                account.candle(candle);
            }
        }
    }
}

/// One stream's broker. A worker hands over a batch's signals, then its
/// candles: each candle is played into the broker, then the signal decided
/// on it (if any) is queued for the next bar's open.
struct Account {
    broker: Broker,
    pending: VecDeque<(i64, Signal)>,
    bars: usize,
    error: Option<String>,
}

impl Account {
    fn new(options: &RunOptions) -> Result<Self, RunError> {
        Ok(Account {
            broker: Broker::new(options.broker.clone())?,
            pending: VecDeque::new(),
            bars: 0,
            error: None,
        })
    }

    #[inline]
    fn candle(&mut self, candle: &Candle) {
        self.broker.on_bar(candle);
        self.bars += 1;
        while let Some(&(time, signal)) = self.pending.front() {
            if time > candle.open_time {
                break;
            }
            self.pending.pop_front();
            if time < candle.open_time {
                self.fail(format!(
                    "a signal for bar time {time}, which was never applied"
                ));
                continue;
            }
            match signal.validate() {
                Ok(()) => self.broker.submit(signal),
                Err(e) => self.fail(e.to_string()),
            }
        }
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    fn finish(self, indicators: &Indicators, options: &RunOptions) -> Result<RunResult, RunError> {
        if let Some(e) = self.error {
            return Err(RunError::Strategy(e));
        }
        finish(self.broker.finish(), indicators, self.bars, options)
    }
}
