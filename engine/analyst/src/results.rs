//! [`Results`]: the analyses, kept in RocksDB (`state.path/analyst`),
//! keyed by symbol and time, with retention by age and count.
//!
//! Keys (one column family, the default):
//! - `v`: the format version ([`RESULTS_VERSION`]);
//! - `r/SYMBOL/TIME`: one [`Record`] as JSON, `TIME` its ms since the
//!   epoch, zero-padded so that keys sort by time within a symbol;
//! - `s/DAY`: USD spent on UTC day `DAY` (days since the epoch), so that
//!   a restart does not reset the daily budget.

use std::path::{Path, PathBuf};

use rocksdb::{Direction, IteratorMode, Options, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use crate::{Analysis, AnalystError, Cause};

/// The format of this build's records; another is refused.
pub const RESULTS_VERSION: u32 = 1;

const VERSION_KEY: &[u8] = b"v";

/// One analysis, done or failed. A failed one has no `analysis`, only its
/// `cause` and `error`: nothing stands in for the answer it did not get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub symbol: String,
    /// When it was asked for, ms since the Unix epoch.
    pub time: i64,
    pub model: String,
    /// `schedule`, `signal:STRATEGY`, `prediction:MODEL` or `manual`.
    pub trigger: String,
    pub analysis: Option<Analysis>,
    pub cause: Option<Cause>,
    pub error: Option<String>,
    /// Requests sent for it (retries included).
    pub attempts: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// At the configured price; 0 without one.
    pub cost_usd: f64,
    /// From the first request to the last answer.
    pub latency_ms: u64,
    /// What the model was shown.
    pub context: serde_json::Value,
}

impl Record {
    pub fn is_ok(&self) -> bool {
        self.analysis.is_some()
    }
}

/// The analyst's store.
pub struct Results {
    db: DB,
    path: PathBuf,
    write: WriteOptions,
    writable: bool,
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results").field("path", &self.path).finish()
    }
}

fn record_key(symbol: &str, time: i64) -> Vec<u8> {
    format!("r/{symbol}/{:020}", time.max(0)).into_bytes()
}

fn spend_key(day: i64) -> Vec<u8> {
    format!("s/{day}").into_bytes()
}

impl Results {
    /// Opens (creating) the store at `path`; `sync` fsyncs each write.
    ///
    /// # Errors
    /// [`AnalystError::Rocks`]; [`AnalystError::Corrupt`] for another
    /// format version.
    pub fn open(path: impl AsRef<Path>, sync: bool) -> Result<Results, AnalystError> {
        let path = path.as_ref().to_path_buf();
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, &path).map_err(|source| AnalystError::Rocks {
            path: path.clone(),
            source,
        })?;
        let mut write = WriteOptions::default();
        write.set_sync(sync);
        let results = Results {
            db,
            path,
            write,
            writable: true,
        };
        results.check_version(true)?;
        Ok(results)
    }

    /// Opens an existing store to read, while the engine may hold it.
    ///
    /// # Errors
    /// As [`Results::open`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Results, AnalystError> {
        let path = path.as_ref().to_path_buf();
        let db = DB::open_for_read_only(&Options::default(), &path, false).map_err(|source| {
            AnalystError::Rocks {
                path: path.clone(),
                source,
            }
        })?;
        let results = Results {
            db,
            path,
            write: WriteOptions::default(),
            writable: false,
        };
        results.check_version(false)?;
        Ok(results)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this handle may write ([`Results::open`]), not only read.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn rocks(&self, source: rocksdb::Error) -> AnalystError {
        AnalystError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> AnalystError {
        AnalystError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn check_version(&self, writable: bool) -> Result<(), AnalystError> {
        match self.db.get(VERSION_KEY).map_err(|e| self.rocks(e))? {
            Some(v) if v == RESULTS_VERSION.to_le_bytes() => Ok(()),
            Some(v) => Err(self.corrupt(format!(
                "format version {v:?}, this build reads {RESULTS_VERSION}"
            ))),
            None if writable => self
                .db
                .put_opt(VERSION_KEY, RESULTS_VERSION.to_le_bytes(), &self.write)
                .map_err(|e| self.rocks(e)),
            None => Ok(()),
        }
    }

    /// Stores `record` (one with the same symbol and time is replaced).
    ///
    /// # Errors
    /// [`AnalystError::Rocks`].
    pub fn put(&self, record: &Record) -> Result<(), AnalystError> {
        let value = serde_json::to_vec(record)
            .map_err(|e| self.corrupt(format!("cannot encode a record: {e}")))?;
        self.db
            .put_opt(record_key(&record.symbol, record.time), value, &self.write)
            .map_err(|e| self.rocks(e))
    }

    /// The records of `symbol` with `from <= time <= to`, oldest first,
    /// the newest `limit` of them.
    ///
    /// # Errors
    /// [`AnalystError::Rocks`]; [`AnalystError::Corrupt`] for a record
    /// that does not decode.
    pub fn range(
        &self,
        symbol: &str,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Record>, AnalystError> {
        let start = record_key(symbol, from);
        let end = record_key(symbol, to);
        let mut out = std::collections::VecDeque::new();
        for item in self
            .db
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item.map_err(|e| self.rocks(e))?;
            if *k > *end {
                break;
            }
            let record: Record = serde_json::from_slice(&v).map_err(|e| {
                self.corrupt(format!("record {}: {e}", String::from_utf8_lossy(&k)))
            })?;
            out.push_back(record);
            if out.len() > limit {
                out.pop_front();
            }
        }
        Ok(out.into())
    }

    /// Every symbol with records, sorted.
    ///
    /// # Errors
    /// [`AnalystError::Rocks`].
    pub fn symbols(&self) -> Result<Vec<String>, AnalystError> {
        let mut out: Vec<String> = Vec::new();
        self.each_record_key(|_, symbol, _| {
            if out.last().map(String::as_bytes) != Some(symbol) {
                out.push(String::from_utf8_lossy(symbol).into_owned());
            }
        })?;
        Ok(out)
    }

    /// Walks every record's key, in key order (by symbol, then time): the
    /// key, its symbol and its time (0 if unreadable).
    fn each_record_key(
        &self,
        mut f: impl FnMut(Box<[u8]>, &[u8], i64),
    ) -> Result<(), AnalystError> {
        for item in self
            .db
            .iterator(IteratorMode::From(b"r/", Direction::Forward))
        {
            let (k, _) = item.map_err(|e| self.rocks(e))?;
            let Some(rest) = k.strip_prefix(b"r/") else {
                break;
            };
            let mut parts = rest.rsplitn(2, |b| *b == b'/');
            let time = parts
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0);
            let symbol = parts.next().unwrap_or_default().to_vec();
            f(k, &symbol, time);
        }
        Ok(())
    }

    /// Deletes records older than `max_age_ms` before `now_ms`, and beyond
    /// the newest `per_symbol` of each symbol. Returns how many went.
    ///
    /// # Errors
    /// [`AnalystError::Rocks`].
    pub fn prune(
        &self,
        now_ms: i64,
        max_age_ms: i64,
        per_symbol: usize,
    ) -> Result<usize, AnalystError> {
        let cutoff = now_ms.saturating_sub(max_age_ms);
        let mut doomed: Vec<Box<[u8]>> = Vec::new();
        let mut current: Vec<(Box<[u8]>, i64)> = Vec::new();
        let mut symbol: Vec<u8> = Vec::new();
        let flush = |current: &mut Vec<(Box<[u8]>, i64)>, doomed: &mut Vec<Box<[u8]>>| {
            let n = current.len();
            for (i, (k, t)) in current.drain(..).enumerate() {
                if t < cutoff || i + per_symbol < n {
                    doomed.push(k);
                }
            }
        };
        self.each_record_key(|k, sym, time| {
            if sym != symbol.as_slice() {
                flush(&mut current, &mut doomed);
                symbol = sym.to_vec();
            }
            current.push((k, time));
        })?;
        flush(&mut current, &mut doomed);
        for k in &doomed {
            self.db
                .delete_opt(k, &self.write)
                .map_err(|e| self.rocks(e))?;
        }
        Ok(doomed.len())
    }

    /// USD spent on UTC day `day`.
    ///
    /// # Errors
    /// [`AnalystError::Rocks`].
    pub fn spent(&self, day: i64) -> Result<f64, AnalystError> {
        Ok(
            match self.db.get(spend_key(day)).map_err(|e| self.rocks(e))? {
                Some(v) => f64::from_le_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| self.corrupt(format!("spend of day {day} is not 8 bytes")))?,
                ),
                None => 0.0,
            },
        )
    }

    /// Sets the USD spent on UTC day `day`; does nothing on a read-only
    /// handle (the process that holds the store keeps its own count).
    ///
    /// # Errors
    /// [`AnalystError::Rocks`].
    pub fn set_spent(&self, day: i64, usd: f64) -> Result<(), AnalystError> {
        if !self.writable {
            return Ok(());
        }
        self.db
            .put_opt(spend_key(day), usd.to_le_bytes(), &self.write)
            .map_err(|e| self.rocks(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(symbol: &str, time: i64) -> Record {
        Record {
            symbol: symbol.into(),
            time,
            model: "m".into(),
            trigger: "manual".into(),
            analysis: None,
            cause: Some(Cause::Invalid),
            error: Some("x".into()),
            attempts: 2,
            tokens_in: 1,
            tokens_out: 2,
            cost_usd: 0.0,
            latency_ms: 3,
            context: serde_json::json!({}),
        }
    }

    #[test]
    fn records_are_found_by_symbol_and_time_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = Results::open(dir.path(), false).unwrap();
            for t in [1_000, 2_000, 3_000] {
                r.put(&record("BTC", t)).unwrap();
                r.put(&record("BTCUSDT", t)).unwrap();
            }
            r.set_spent(5, 0.25).unwrap();
        }
        let r = Results::open_read_only(dir.path()).unwrap();
        let got: Vec<i64> = r
            .range("BTC", 1_500, 3_000, 10)
            .unwrap()
            .iter()
            .map(|r| r.time)
            .collect();
        assert_eq!(got, [2_000, 3_000]);
        let newest: Vec<i64> = r
            .range("BTCUSDT", 0, i64::MAX, 1)
            .unwrap()
            .iter()
            .map(|r| r.time)
            .collect();
        assert_eq!(newest, [3_000]);
        assert_eq!(r.symbols().unwrap(), ["BTC", "BTCUSDT"]);
        assert_eq!((r.spent(5).unwrap(), r.spent(6).unwrap()), (0.25, 0.0));
    }

    #[test]
    fn retention_drops_old_records_and_keeps_the_newest_per_symbol() {
        let dir = tempfile::tempdir().unwrap();
        let r = Results::open(dir.path(), false).unwrap();
        for t in 1..=5 {
            r.put(&record("A", t * 1000)).unwrap();
            r.put(&record("B", t * 1000)).unwrap();
        }
        // Older than 2.5 s before 6 s goes (1, 2, 3); then 1 per symbol.
        assert_eq!(r.prune(6_000, 2_500, 10).unwrap(), 6);
        assert_eq!(r.prune(6_000, 10_000, 1).unwrap(), 2);
        for s in ["A", "B"] {
            let left: Vec<i64> = r
                .range(s, 0, i64::MAX, 10)
                .unwrap()
                .iter()
                .map(|r| r.time)
                .collect();
            assert_eq!(left, [5_000]);
        }
    }
}
