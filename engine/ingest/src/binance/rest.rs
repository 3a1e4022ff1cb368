//! REST klines: `GET /api/v3/klines`, paged by 1000, within the exchange's
//! rate limits. One client serves both the live adapter's backfill and
//! `candlewick fetch`, so both obey the same rules.
//!
//! # Rate limits
//!
//! Binance counts request weight per IP in one-minute windows and reports
//! the running total in `X-MBX-USED-WEIGHT-1M`. Past the limit it answers
//! 429 with `Retry-After`; a client that keeps going is banned with 418.
//! So the client:
//!
//! - reads the header on every answer and, once the weight used reaches
//!   [`RestOptions::weight_budget`], waits for the window to roll over
//!   before the next request (it never relies on being told off);
//! - on 429 or 418 waits exactly as long as `Retry-After` says (refusing
//!   with [`IngestError::RateLimited`] a wait longer than
//!   [`RestOptions::max_retry_after`], i.e. a real ban), never retrying
//!   sooner;
//! - retries network errors, dropped connections and 5xx answers with
//!   exponential backoff, [`RestOptions::retry`]`.max_failures` attempts in
//!   a row at most; any other answer (an unknown symbol, say) fails at once
//!   with the exchange's message.
//!
//! # Validation
//!
//! Every row is checked before it leaves this module ([`Kline::from_row`]:
//! numbers, `low <= open,close <= high`, volume >= 0), and [`KlinePager`]
//! checks each page against the request: open times strictly increasing
//! across pages, inside the range asked for, and (for downloads) on the
//! interval's grid ([`crate::grid`]).

use std::time::Duration;

use candlewick_core::{Backoff, StreamId};
use candlewick_market::time::format_ms;
use candlewick_market::{Candle, Interval};
use url::Url;

use super::Connection;
use crate::{grid, IngestError};

/// Rows per request (Binance's maximum).
pub const PAGE: usize = 1000;
/// 429/418 answers in a row after which the client gives up: an exchange
/// that keeps refusing after every wait it asked for is not going to
/// recover within one command.
const MAX_RATE_LIMITED: u32 = 10;
const WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

/// How a [`RestClient`] paces itself and how long it persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestOptions {
    /// Pause once `X-MBX-USED-WEIGHT-1M` reaches this, until the window
    /// rolls over. Default 4800: 80% of Binance's 6000 per minute, leaving
    /// room for other programs on the same IP. Keep it at least one
    /// request's weight (2) below the exchange's limit.
    pub weight_budget: u32,
    /// Length of the exchange's weight window (Binance: one minute, on the
    /// clock's minute boundaries).
    pub weight_window: Duration,
    /// Waits between attempts after a network error or a 5xx answer;
    /// `max_failures` is the number of attempts in a row before giving up.
    pub retry: Backoff,
    /// Longest `Retry-After` obeyed; a longer one fails the request.
    pub max_retry_after: Duration,
    /// Limit on one request, answer included.
    pub timeout: Duration,
}

impl Default for RestOptions {
    fn default() -> Self {
        RestOptions {
            weight_budget: 4800,
            weight_window: Duration::from_secs(60),
            retry: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
                reset_after: Duration::from_secs(60),
                max_failures: 5,
            },
            max_retry_after: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a client did, for summaries and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// 429/418 answers waited out.
    pub rate_limited: u64,
    /// Attempts repeated after a network error or a 5xx.
    pub retried: u64,
    /// Pauses taken because the weight budget was reached.
    pub paused: u64,
}

/// One validated kline as the REST API returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kline {
    pub candle: Candle,
    /// Last millisecond of the interval; a kline still forming has one in
    /// the future.
    pub close_time: i64,
    pub quote_volume: f64,
    pub trades: u64,
    pub taker_buy_volume: f64,
    pub taker_buy_quote_volume: f64,
}

impl Kline {
    /// Parses one row: open time, open, high, low, close and volume as
    /// decimal strings, close time, then quote volume, trades and the taker
    /// volumes (zero when absent). `Err` says which column is wrong.
    pub fn from_row(row: &serde_json::Value) -> Result<Kline, String> {
        let a = row.as_array().ok_or("row is not an array")?;
        let int = |i: usize| {
            a.get(i)
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| format!("column {} is not an integer", i + 1))
        };
        let num = |i: usize| {
            a.get(i)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| format!("column {} is not a decimal string", i + 1))
        };
        let extra = |i: usize| match a.get(i) {
            None => Ok(0.0),
            Some(_) => num(i).and_then(|v| {
                if v.is_finite() && v >= 0.0 {
                    Ok(v)
                } else {
                    Err(format!("column {} is not a volume", i + 1))
                }
            }),
        };
        let candle = Candle {
            open_time: int(0)?,
            open: num(1)?,
            high: num(2)?,
            low: num(3)?,
            close: num(4)?,
            volume: num(5)?,
        };
        candle.check().map_err(|e| e.to_string())?;
        let trades = match a.get(8) {
            None => 0,
            Some(v) => v.as_u64().ok_or("column 9 (trades) is not a count")?,
        };
        Ok(Kline {
            candle,
            close_time: int(6)?,
            quote_volume: extra(7)?,
            trades,
            taker_buy_volume: extra(9)?,
            taker_buy_quote_volume: extra(10)?,
        })
    }
}

/// How one attempt ended.
enum Answer {
    Body(String),
    Limited {
        status: u16,
        retry_after: Option<u64>,
    },
    Transient(String),
    Fatal(String),
}

/// A klines client for one exchange base URL (already allowlisted).
#[derive(Debug)]
pub struct RestClient {
    http: reqwest::Client,
    url: Url,
    options: RestOptions,
    /// Last weight reported: (index of the window it was read in, weight).
    weight: Option<(i64, u32)>,
    stats: RestStats,
}

impl RestClient {
    /// A client for `{base}/api/v3/klines`. Redirects are not followed: the
    /// allowlist checked `base`, not wherever a redirect would lead.
    ///
    /// # Errors
    /// [`IngestError::Rest`] when the HTTP client cannot be built.
    pub fn new(base: &Url, options: RestOptions) -> Result<Self, IngestError> {
        let mut url = base.clone();
        url.set_path("/api/v3/klines");
        url.set_query(None);
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| IngestError::Rest {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        Ok(RestClient {
            http,
            url,
            options,
            weight: None,
            stats: RestStats::default(),
        })
    }

    pub fn stats(&self) -> RestStats {
        self.stats
    }

    /// The klines endpoint this client asks.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One page: at most [`PAGE`] klines of `symbol` opening in
    /// `[start, end]` (both inclusive, as Binance reads them), oldest first,
    /// each row validated. Paces and retries as the module docs say.
    ///
    /// # Errors
    /// [`IngestError::Rest`] (network, HTTP, JSON), [`IngestError::RateLimited`],
    /// [`IngestError::BadKline`].
    pub async fn klines(
        &mut self,
        symbol: &str,
        interval: Interval,
        start: i64,
        end: i64,
    ) -> Result<Vec<Kline>, IngestError> {
        let mut failures = 0u32;
        let mut limited = 0u32;
        loop {
            self.respect_budget().await;
            let answer = self.attempt(symbol, interval, start, end).await;
            match answer {
                Answer::Body(body) => return self.parse(&body),
                Answer::Limited {
                    status,
                    retry_after,
                } => {
                    limited += 1;
                    self.stats.rate_limited += 1;
                    let wait = self.rate_limit_wait(status, retry_after, limited)?;
                    tracing::warn!(
                        status,
                        wait_ms = wait.as_millis() as u64,
                        "exchange rate limit; waiting as told"
                    );
                    tokio::time::sleep(wait).await;
                }
                Answer::Transient(message) => {
                    failures += 1;
                    if failures >= self.options.retry.max_failures.max(1) {
                        return Err(self.error(format!("{message} (after {failures} attempts)")));
                    }
                    self.stats.retried += 1;
                    let wait = self.options.retry.wait(failures);
                    tracing::warn!(cause = %message, attempt = failures, retry_in_ms = wait.as_millis() as u64, "klines request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Answer::Fatal(message) => return Err(self.error(message)),
            }
        }
    }

    /// Sends one request and sorts its answer.
    async fn attempt(&mut self, symbol: &str, interval: Interval, start: i64, end: i64) -> Answer {
        self.stats.requests += 1;
        let sent = self
            .http
            .get(self.url.clone())
            .query(&[
                ("symbol", symbol),
                ("interval", interval.as_str()),
                ("startTime", &start.to_string()),
                ("endTime", &end.to_string()),
                ("limit", &PAGE.to_string()),
            ])
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Transient(describe(&e.without_url())),
        };
        self.note_weight(response.headers());
        let status = response.status().as_u16();
        if status == 429 || status == 418 {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            return Answer::Limited {
                status,
                retry_after,
            };
        }
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => return Answer::Transient(describe(&e.without_url())),
        };
        match status {
            200 => Answer::Body(body),
            500..=599 => Answer::Transient(format!("HTTP {status}: {}", exchange_message(&body))),
            _ => Answer::Fatal(format!("HTTP {status}: {}", exchange_message(&body))),
        }
    }

    /// How long to wait after a 429/418, or why not to.
    fn rate_limit_wait(
        &self,
        status: u16,
        retry_after: Option<u64>,
        limited: u32,
    ) -> Result<Duration, IngestError> {
        let refuse = |detail: String| IngestError::RateLimited {
            url: self.url.to_string(),
            status,
            detail,
        };
        if limited > MAX_RATE_LIMITED {
            return Err(refuse(format!(
                "still refused after {MAX_RATE_LIMITED} waits"
            )));
        }
        let wait = match retry_after {
            Some(s) => Duration::from_secs(s),
            // No Retry-After: back off as for a failure, never hammer.
            None => self.options.retry.wait(limited),
        };
        if wait > self.options.max_retry_after {
            return Err(refuse(format!(
                "told to wait {} s (Retry-After), longer than the {} s allowed; try again later",
                wait.as_secs(),
                self.options.max_retry_after.as_secs()
            )));
        }
        Ok(wait)
    }

    /// Remembers the weight the exchange reports, with its window.
    fn note_weight(&mut self, headers: &reqwest::header::HeaderMap) {
        let used = headers
            .get(WEIGHT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        if let Some(used) = used {
            self.weight = Some((wall_ms().div_euclid(self.window_ms()), used));
        }
    }

    /// Waits for the next window when this one's budget is spent.
    async fn respect_budget(&mut self) {
        let Some((window, used)) = self.weight else {
            return;
        };
        let len = self.window_ms();
        let now = wall_ms();
        if used < self.options.weight_budget || now.div_euclid(len) != window {
            return;
        }
        // A margin past the boundary absorbs clock skew with the exchange.
        let margin = (len / 10).min(1_000);
        let wait = (window + 1) * len - now + margin;
        self.stats.paused += 1;
        tracing::info!(
            used,
            budget = self.options.weight_budget,
            wait_ms = wait,
            "request weight budget reached; pausing until the window rolls over"
        );
        tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
        self.weight = None;
    }

    fn window_ms(&self) -> i64 {
        (self.options.weight_window.as_millis() as i64).max(1)
    }

    fn parse(&self, body: &str) -> Result<Vec<Kline>, IngestError> {
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(body).map_err(|e| self.error(format!("bad JSON: {e}")))?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                Kline::from_row(row).map_err(|reason| IngestError::BadKline {
                    url: self.url.to_string(),
                    reason: format!("row {} of the answer: {reason}", i + 1),
                })
            })
            .collect()
    }

    fn error(&self, message: String) -> IngestError {
        IngestError::Rest {
            url: self.url.to_string(),
            message,
        }
    }
}

/// A reqwest error with its causes (its own text is often just "error
/// sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Binance's `{"code":-1121,"msg":"Invalid symbol."}` as `Invalid symbol.
/// (code -1121)`; anything else as its first 200 characters.
fn exchange_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Problem {
        code: i64,
        msg: String,
    }
    match serde_json::from_str::<Problem>(body) {
        Ok(p) => format!("{} (code {})", p.msg, p.code),
        Err(_) => body.chars().take(200).collect(),
    }
}

/// Walks a range of klines page by page, validating each page against the
/// request. It holds no client, so the caller may use its other fields
/// between pages.
#[derive(Debug, Clone)]
pub struct KlinePager {
    symbol: String,
    interval: Interval,
    /// Start of the next request.
    next: i64,
    /// End of the range, exclusive.
    end: i64,
    /// Whether open times must lie on the interval's grid.
    on_grid: bool,
    last: Option<i64>,
    done: bool,
}

impl KlinePager {
    /// Klines of `symbol` opening in `[start, end)`.
    pub fn new(symbol: &str, interval: Interval, start: i64, end: i64) -> Self {
        KlinePager {
            symbol: symbol.to_owned(),
            interval,
            next: start,
            end,
            on_grid: false,
            last: None,
            done: start >= end,
        }
    }

    /// Also requires every open time to lie on the interval's grid (real
    /// exchange data always does).
    pub fn on_grid(mut self) -> Self {
        self.on_grid = true;
        self
    }

    /// The next page, `None` once the range is exhausted. A page shorter
    /// than [`PAGE`] is the last: the exchange had nothing more in range.
    ///
    /// # Errors
    /// As [`RestClient::klines`]; [`IngestError::BadKline`] for a kline out
    /// of order, outside the range or off the grid.
    pub async fn next_page(
        &mut self,
        client: &mut RestClient,
    ) -> Result<Option<Vec<Kline>>, IngestError> {
        if self.done {
            return Ok(None);
        }
        let page = client
            .klines(&self.symbol, self.interval, self.next, self.end - 1)
            .await?;
        for k in &page {
            self.check(client, k.candle.open_time)?;
            self.last = Some(k.candle.open_time);
        }
        match (page.len() < PAGE, self.last) {
            // On the grid, a page that reached the range's last open time
            // is the last: no need to ask for an empty one.
            (false, Some(last))
                if !(self.on_grid && grid::next_open(self.interval, last) >= self.end) =>
            {
                self.next = last + 1;
            }
            _ => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
    }

    fn check(&self, client: &RestClient, t: i64) -> Result<(), IngestError> {
        let bad = |reason: String| IngestError::BadKline {
            url: client.url().to_string(),
            reason: format!(
                "{} {} kline at {}: {reason}",
                self.symbol,
                self.interval,
                format_ms(t)
            ),
        };
        if let Some(last) = self.last.filter(|&l| t <= l) {
            return Err(bad(format!(
                "not after the previous one ({})",
                format_ms(last)
            )));
        }
        if t < self.next || t >= self.end {
            return Err(bad(format!(
                "outside the range asked for ({} to {})",
                format_ms(self.next),
                format_ms(self.end)
            )));
        }
        if self.on_grid && !grid::is_open_time(self.interval, t) {
            return Err(bad(format!("not on the {} grid", self.interval)));
        }
        Ok(())
    }
}

impl<D: super::Destination> Connection<D> {
    /// Routes every closed candle of `id` after the last one routed and
    /// before `until` (exclusive; `None`: up to now).
    pub(super) async fn backfill(
        &mut self,
        id: StreamId,
        until: Option<i64>,
    ) -> Result<(), IngestError> {
        let key = self.router.table().key(id).clone();
        let from = match self.last[id.0 as usize] {
            Some(last) => last + 1,
            None => match self.config.start_from {
                Some(t) => t,
                // Nothing applied yet: start at the live stream.
                None => return Ok(()),
            },
        };
        let now = wall_ms();
        let end = until.unwrap_or(now + 1);
        let mut pager = KlinePager::new(key.symbol.as_str(), key.interval, from, end);
        // Pages of history are a burst: queued for the shard workers.
        let live = std::mem::replace(&mut self.burst, true);
        while let Some(page) = pager.next_page(&mut self.rest).await? {
            self.metrics()
                .add(&self.metrics().counters.backfill_requests, 1);
            for k in page {
                // The last row may be the kline still forming: not ours yet.
                if k.close_time >= now
                    || self.last[id.0 as usize].is_some_and(|l| k.candle.open_time <= l)
                {
                    continue;
                }
                let ingest_ns = self.clock.now_ns();
                self.route(id, k.candle, ingest_ns).await?;
                self.metrics()
                    .add(&self.metrics().counters.backfill_candles, 1);
            }
        }
        self.burst = live;
        Ok(())
    }
}

pub(super) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_rest_row() {
        let row: serde_json::Value = serde_json::from_str(
            r#"[1700000000000,"1.5","2.0","1.0","1.75","100",1700000059999,"175.5",12,"40","70.25","0"]"#,
        )
        .unwrap();
        let k = Kline::from_row(&row).unwrap();
        assert_eq!(
            (k.candle.open_time, k.candle.close, k.close_time),
            (1_700_000_000_000, 1.75, 1_700_000_059_999)
        );
        assert_eq!(
            (
                k.quote_volume,
                k.trades,
                k.taker_buy_volume,
                k.taker_buy_quote_volume
            ),
            (175.5, 12, 40.0, 70.25)
        );
    }

    #[test]
    fn refuses_bad_rows_naming_the_column() {
        let parse = |text: &str| Kline::from_row(&serde_json::from_str(text).unwrap());
        assert!(parse(r#"[1,"x","2","1","1.5","1",2]"#)
            .unwrap_err()
            .contains("column 2"));
        assert!(parse(r#"[1,"1","2","1.2","1.5","1",2]"#)
            .unwrap_err()
            .contains("low"));
        assert!(parse(r#"[1,"1","2","1","1.5","-1",2]"#)
            .unwrap_err()
            .contains("negative"));
        assert!(parse(r#"{"code":-1}"#).is_err());
    }

    #[test]
    fn reads_the_exchange_message() {
        assert_eq!(
            exchange_message(r#"{"code":-1121,"msg":"Invalid symbol."}"#),
            "Invalid symbol. (code -1121)"
        );
        assert_eq!(exchange_message("<html>"), "<html>");
    }
}
