//! REST backfill: `GET /api/v3/klines`, paged, obeying rate limits.

use std::time::Duration;

use candlewick_pipeline::StreamId;

use super::{frame, Connection};
use crate::IngestError;

/// Rows per request (Binance's maximum).
const PAGE: usize = 1000;
/// Retries of one page after 429/418 or a network error before giving up
/// (the session then reconnects and starts over).
const RETRIES: u32 = 5;

impl Connection {
    /// Routes every closed candle of `id` after the last one routed and
    /// before `until` (exclusive; `None`: up to now).
    pub(super) async fn backfill(
        &mut self,
        id: StreamId,
        until: Option<i64>,
    ) -> Result<(), IngestError> {
        let key = self.router.table().key(id).clone();
        let step = key.interval.nominal_ms();
        let mut url = self.config.rest_url.clone();
        url.set_path("/api/v3/klines");
        let mut from = match self.last[id.0 as usize] {
            Some(last) => last + 1,
            None => match self.config.start_from {
                Some(t) => t,
                // Nothing applied yet: start at the live stream.
                None => return Ok(()),
            },
        };
        loop {
            let now = wall_ms();
            let end = until.map_or(now, |u| u - 1);
            if from > end {
                return Ok(());
            }
            let rows = self
                .page(&url, key.symbol.as_str(), key.interval.as_str(), from, end)
                .await?;
            self.metrics()
                .add(&self.metrics().counters.backfill_requests, 1);
            let n = rows.len();
            let mut routed_any = false;
            for row in &rows {
                let (candle, close_time) =
                    frame::parse_rest_row(row).map_err(|m| IngestError::Rest {
                        url: url.to_string(),
                        message: format!("bad kline row: {m}"),
                    })?;
                // The last row may be the kline still forming: not ours yet.
                if close_time >= now
                    || self.last[id.0 as usize].is_some_and(|l| candle.open_time <= l)
                {
                    continue;
                }
                if until.is_some_and(|u| candle.open_time >= u) {
                    continue;
                }
                let ingest_ns = self.clock.now_ns();
                self.route(id, candle, ingest_ns)?;
                self.metrics()
                    .add(&self.metrics().counters.backfill_candles, 1);
                routed_any = true;
            }
            if n < PAGE || !routed_any {
                return Ok(());
            }
            from = self.last[id.0 as usize].map_or(from + step, |l| l + 1);
        }
    }

    async fn page(
        &self,
        url: &url::Url,
        symbol: &str,
        interval: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<serde_json::Value>, IngestError> {
        let err = |message: String| IngestError::Rest {
            url: url.to_string(),
            message,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self
                .http
                .get(url.clone())
                .query(&[
                    ("symbol", symbol),
                    ("interval", interval),
                    ("startTime", &from.to_string()),
                    ("endTime", &to.to_string()),
                    ("limit", &PAGE.to_string()),
                ])
                .send()
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e) if attempt < RETRIES => {
                    tracing::debug!(cause = %e, attempt, "backfill request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    continue;
                }
                Err(e) => return Err(err(e.to_string())),
            };
            let status = response.status().as_u16();
            if status == 429 || status == 418 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tracing::warn!(
                    status,
                    retry_after_s = wait,
                    "exchange rate limit; waiting as told"
                );
                if attempt >= RETRIES {
                    return Err(err(format!("HTTP {status} after {attempt} attempts")));
                }
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let body = response.text().await.map_err(|e| err(e.to_string()))?;
            if status != 200 {
                let text: String = body.chars().take(200).collect();
                return Err(err(format!("HTTP {status}: {text}")));
            }
            return serde_json::from_str(&body).map_err(|e| err(format!("bad JSON: {e}")));
        }
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
