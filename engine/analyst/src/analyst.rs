//! [`Analyst`]: one analysis (with its retries, pacing and budget), and
//! many at once under the concurrency limit.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{CallError, Client};
use crate::limits::{utc_day, Bucket, Budget};
use crate::stats::micro;
use crate::{Analysis, AnalystError, Cause, Record, Results, Settings, Stats};

/// One analysis to make.
#[derive(Debug, Clone)]
pub struct Job {
    pub symbol: String,
    /// From [`crate::context::build`].
    pub context: Value,
    /// `schedule`, `signal:STRATEGY`, `prediction:MODEL` or `manual`.
    pub trigger: String,
}

/// What one call (its attempts) used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Requests sent (retries included).
    pub attempts: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// The request and token buckets, taken together.
#[derive(Debug)]
struct Pace {
    requests: Bucket,
    tokens: Bucket,
}

/// The analyst: a client, its limits, its budget and its store. Share it
/// in an `Arc`; [`Analyst::analyze_all`] runs the jobs concurrently, at
/// most `concurrency` at once.
pub struct Analyst {
    settings: Settings,
    client: Client,
    pace: Mutex<Pace>,
    budget: Mutex<Budget>,
    results: Arc<Results>,
    stats: Arc<Stats>,
    permits: Semaphore,
}

impl std::fmt::Debug for Analyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyst")
            .field("settings", &self.settings)
            .field("results", &self.results)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Lock a mutex whose holder may have panicked (the data is counters).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Tokens a request body of `bytes` bytes is counted as before the call: a
/// token is about 4 bytes of English or JSON; 3 errs on the safe side.
fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3) + 16
}

impl Analyst {
    /// An analyst for `settings`, storing into `results`.
    ///
    /// # Errors
    /// [`AnalystError::Client`]; [`AnalystError::Rocks`] reading today's
    /// spend.
    pub fn new(settings: Settings, results: Arc<Results>) -> Result<Analyst, AnalystError> {
        let client = Client::new(&settings)?;
        let now = Instant::now();
        let day = utc_day(unix_ms());
        let spent = results.spent(day)?;
        let stats = Arc::new(Stats::default());
        stats.spent_today_micro_usd.store(micro(spent), Relaxed);
        Ok(Analyst {
            pace: Mutex::new(Pace {
                requests: Bucket::new(settings.requests_per_min, now),
                tokens: Bucket::new(settings.tokens_per_min, now),
            }),
            budget: Mutex::new(Budget::new(settings.daily_budget_usd, day, spent)),
            permits: Semaphore::new(settings.concurrency),
            client,
            settings,
            results,
            stats,
        })
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn results(&self) -> &Arc<Results> {
        &self.results
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `jobs` concurrently (at most `concurrency` at once), each as
    /// [`Analyst::analyze`]; results in the order the jobs were given.
    pub async fn analyze_all(
        self: &Arc<Self>,
        jobs: Vec<Job>,
    ) -> Vec<(String, Result<Record, AnalystError>)> {
        let mut set = JoinSet::new();
        let n = jobs.len();
        for (i, job) in jobs.into_iter().enumerate() {
            let me = self.clone();
            set.spawn(async move {
                let r = me.analyze(&job).await;
                (i, job.symbol, r)
            });
        }
        let mut out: Vec<Option<(String, Result<Record, AnalystError>)>> =
            (0..n).map(|_| None).collect();
        while let Some(done) = set.join_next().await {
            match done {
                Ok((i, symbol, r)) => out[i] = Some((symbol, r)),
                Err(e) => tracing::error!("an analysis task panicked: {e}"),
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Whether the day's budget is spent: a call was refused for it
    /// today, or not even `max_output_tokens` of output is left.
    pub fn budget_reached(&self) -> bool {
        let worst = self.worst_cost(0);
        let mut b = lock(&self.budget);
        self.roll_day(&mut b);
        self.stats.budget_reached.load(Relaxed) || b.reached(worst)
    }

    /// One analysis of `job.symbol`: waits for a permit, then for the rate
    /// limits, calls the server (retrying transient failures with backoff,
    /// and an invalid answer once), and stores the record, done or failed.
    ///
    /// # Errors
    /// [`AnalystError::Budget`] when the day's budget leaves nothing for
    /// a call (nothing is stored: no call was made); [`AnalystError::Rocks`]
    /// when the record cannot be stored.
    pub async fn analyze(&self, job: &Job) -> Result<Record, AnalystError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AnalystError::config("concurrency", "the analyst was closed"))?;
        let time = unix_ms();
        let (body, est_in) = self.request(job);
        let est_total = (est_in + u64::from(self.settings.max_output_tokens)) as f64;
        let mut record = Record {
            symbol: job.symbol.clone(),
            time,
            model: self.settings.model.clone(),
            trigger: job.trigger.clone(),
            analysis: None,
            cause: None,
            error: None,
            attempts: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            context: job.context.clone(),
        };
        let started = Instant::now();
        let outcome = if est_total > lock(&self.pace).tokens.capacity() {
            Err((
                Cause::TooLarge,
                format!(
                    "a request of about {est_total} tokens does not fit tokens_per_min = {}",
                    self.settings.tokens_per_min
                ),
            ))
        } else {
            let mut spent = Spent::default();
            let r = self
                .attempts(&body, est_in, est_total, &mut spent, &Analysis::parse)
                .await;
            record.attempts = spent.attempts;
            record.tokens_in = spent.tokens_in;
            record.tokens_out = spent.tokens_out;
            record.cost_usd = spent.cost_usd;
            r?
        };
        record.latency_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(a) => {
                Stats::add(&self.stats.analyses, 1);
                tracing::info!(
                    symbol = %job.symbol,
                    trigger = %job.trigger,
                    bias = a.bias.as_str(),
                    confidence = a.confidence,
                    tokens_in = record.tokens_in,
                    tokens_out = record.tokens_out,
                    cost_usd = record.cost_usd,
                    "analysis done"
                );
                record.analysis = Some(a);
            }
            Err((cause, error)) => {
                self.stats.fail(cause);
                tracing::warn!(
                    symbol = %job.symbol,
                    trigger = %job.trigger,
                    cause = cause.as_str(),
                    attempts = record.attempts,
                    "analysis failed: {error}"
                );
                record.cause = Some(cause);
                record.error = Some(error);
            }
        }
        self.results.put(&record)?;
        Ok(record)
    }

    /// Sends `system` and `user` asking for JSON of `schema` (named
    /// `name`), under the same permits, limits, budget and retries as an
    /// analysis, the answer checked by `parse` (an answer it refuses is
    /// asked for once more). Nothing is stored.
    ///
    /// # Errors
    /// [`AnalystError::Budget`] when the day's budget leaves nothing.
    pub async fn complete<T>(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: Value,
        parse: &(dyn Fn(&str) -> Result<T, String> + Sync),
    ) -> Result<(Result<T, (Cause, String)>, Spent), AnalystError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AnalystError::config("concurrency", "the analyst was closed"))?;
        let body = self.client.body(system, user, name, schema);
        let est_in = estimate_tokens(body.len());
        let est_total = (est_in + u64::from(self.settings.max_output_tokens)) as f64;
        let mut spent = Spent::default();
        if est_total > lock(&self.pace).tokens.capacity() {
            let e = format!(
                "a request of about {est_total} tokens does not fit tokens_per_min = {}",
                self.settings.tokens_per_min
            );
            return Ok((Err((Cause::TooLarge, e)), spent));
        }
        let r = self
            .attempts(&body, est_in, est_total, &mut spent, parse)
            .await?;
        Ok((r, spent))
    }

    /// The attempts of one call; `Err` only for the budget.
    async fn attempts<T>(
        &self,
        body: &[u8],
        est_in: u64,
        est_total: f64,
        record: &mut Spent,
        parse: &(dyn Fn(&str) -> Result<T, String> + Sync),
    ) -> Result<Result<T, (Cause, String)>, AnalystError> {
        let max_out = u64::from(self.settings.max_output_tokens);
        let mut transient = 0u32;
        let mut answer_retried = false;
        loop {
            let worst = self.worst_cost(est_in);
            match self.reserve(worst) {
                Ok(()) => {}
                // Spent on this call's earlier attempts: recorded as failed.
                Err(AnalystError::Budget { spent, limit }) if record.attempts > 0 => {
                    return Ok(Err((
                        Cause::Budget,
                        format!(
                            "the daily budget ran out before a retry ({spent:.4} of {limit} USD; {} attempts)",
                            record.attempts
                        ),
                    )));
                }
                Err(e) => return Err(e),
            }
            self.pace(est_total).await;
            record.attempts += 1;
            Stats::add(&self.stats.requests, 1);
            let t = Instant::now();
            let r = self.client.complete(body.to_vec()).await;
            self.stats.latency(t.elapsed());
            let reported = match &r {
                Ok(c) => c.usage,
                Err(e) => e.usage,
            };
            // A completion without `usage` is charged its worst case.
            let (tin, tout) =
                reported.unwrap_or(if r.is_ok() { (est_in, max_out) } else { (0, 0) });
            if let Some((i, o)) = reported {
                Stats::add(&self.stats.tokens_in, i);
                Stats::add(&self.stats.tokens_out, o);
            }
            let cost = self.settings.price.map_or(0.0, |p| p.cost(tin, tout));
            self.settle(worst, cost);
            lock(&self.pace).tokens.settle(
                est_total,
                if reported.is_some() {
                    (tin + tout) as f64
                } else {
                    est_total
                },
            );
            record.tokens_in += tin;
            record.tokens_out += tout;
            record.cost_usd += cost;
            let failure = match r {
                Ok(c) => match parse(&c.content) {
                    Ok(a) => return Ok(Ok(a)),
                    Err(reason) => CallError {
                        cause: Cause::Invalid,
                        detail: reason,
                        retry_after: None,
                        usage: None,
                    },
                },
                Err(e) => e,
            };
            let attempts = record.attempts;
            match failure.cause {
                Cause::Invalid | Cause::Malformed if !answer_retried => {
                    answer_retried = true;
                    tracing::debug!(
                        cause = failure.cause.as_str(),
                        "asking again: {}",
                        failure.detail
                    );
                }
                c if c.is_transient() && transient < self.settings.max_retries => {
                    if let Some(ra) = failure
                        .retry_after
                        .filter(|ra| *ra > self.settings.max_retry_after)
                    {
                        return Ok(Err((
                            c,
                            format!(
                                "{}; Retry-After {} s is longer than max_retry_after_s ({attempts} attempts)",
                                failure.detail,
                                ra.as_secs()
                            ),
                        )));
                    }
                    transient += 1;
                    let delay = self.settings.retry.delay(
                        transient,
                        candlewick_notify::jitter(),
                        failure.retry_after,
                    );
                    tracing::debug!(cause = c.as_str(), ?delay, "retrying: {}", failure.detail);
                    tokio::time::sleep(delay).await;
                }
                c => {
                    return Ok(Err((
                        c,
                        format!("{} ({attempts} attempts)", failure.detail),
                    )));
                }
            }
        }
    }

    /// The request body of `job` and its estimated prompt tokens (the
    /// whole body counts: messages, schema and JSON).
    fn request(&self, job: &Job) -> (Vec<u8>, u64) {
        let system = self.settings.prompt.replace("{{symbol}}", &job.symbol);
        let user = job.context.to_string();
        let body = self
            .client
            .body(&system, &user, "analysis", crate::json_schema());
        let est_in = estimate_tokens(body.len());
        (body, est_in)
    }

    /// USD reserved against the budget before each attempt of `job`: its
    /// estimated prompt tokens and `max_output_tokens` at the price (0
    /// without one).
    pub fn worst_cost_usd(&self, job: &Job) -> f64 {
        self.worst_cost(self.request(job).1)
    }

    fn worst_cost(&self, est_in: u64) -> f64 {
        self.settings.price.map_or(0.0, |p| {
            p.cost(est_in, u64::from(self.settings.max_output_tokens))
        })
    }

    /// Loads the spend of a new UTC day into the budget.
    fn roll_day(&self, b: &mut Budget) {
        let day = utc_day(unix_ms());
        if day != b.day {
            let spent = self.results.spent(day).unwrap_or(0.0);
            b.roll(day, spent);
            self.stats.budget_reached.store(false, Relaxed);
            self.stats
                .spent_today_micro_usd
                .store(micro(spent), Relaxed);
        }
    }

    fn reserve(&self, worst: f64) -> Result<(), AnalystError> {
        let mut b = lock(&self.budget);
        self.roll_day(&mut b);
        match b.reserve(worst) {
            Ok(()) => Ok(()),
            Err(reached) => {
                self.stats.budget_reached.store(true, Relaxed);
                Stats::add(&self.stats.skipped_budget, 1);
                if !b.announced {
                    b.announced = true;
                    tracing::warn!(
                        spent_usd = reached.spent,
                        budget_usd = reached.limit,
                        "analyst: the daily budget is spent; no calls until 00:00 UTC"
                    );
                }
                Err(AnalystError::Budget {
                    spent: reached.spent,
                    limit: reached.limit,
                })
            }
        }
    }

    fn settle(&self, worst: f64, cost: f64) {
        let mut b = lock(&self.budget);
        b.settle(worst, cost);
        Stats::add(&self.stats.cost_micro_usd, micro(cost));
        self.stats
            .spent_today_micro_usd
            .store(micro(b.spent), Relaxed);
        if cost > 0.0 {
            if let Err(e) = self.results.set_spent(b.day, b.spent) {
                tracing::error!("analyst: cannot record today's spend: {e}");
            }
        }
    }

    /// Waits until one request and `tokens` tokens may be taken.
    async fn pace(&self, tokens: f64) {
        loop {
            let wait = {
                let mut p = lock(&self.pace);
                let now = Instant::now();
                let w = p.requests.wait(1.0, now).max(p.tokens.wait(tokens, now));
                if w.is_zero() {
                    p.requests.take(1.0);
                    p.tokens.take(tokens);
                    return;
                }
                w
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}
