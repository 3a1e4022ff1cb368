//! The run fingerprint: one hash that changes when anything that decides a
//! result changes, and only then.
//!
//! It is the SHA-256 of, in order: a format tag; the data's SHA-256; the
//! strategy's identity (its module hash); its parameters, sorted by name;
//! the broker settings and gap policy; and every trade, with each float as
//! its exact bit pattern (so two runs agree to the last bit, or differ).
//! Wall-clock time, paths and the machine do not enter it.

mod digests;

pub use digests::DigestCache;

use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::result::RunOptions;
use crate::trade::Trade;

/// Format tag; bump when the hashed layout changes.
const TAG: &[u8] = b"candlewick-backtest-fingerprint-v1\n";

/// What a run was given, beyond its settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Inputs {
    /// SHA-256 (hex) of the data file's bytes.
    pub data_sha256: String,
    /// The strategy's name and the SHA-256 (hex) of its code, and the same
    /// for each model it reads (`candlewick backtest --model`),
    /// e.g. `sma_cross@9f2c...`.
    pub strategy: String,
    /// Parameter values as the strategy received them.
    pub params: Vec<(String, f64)>,
}

/// The fingerprint, as 64 hex digits.
pub fn fingerprint(inputs: &Inputs, options: &RunOptions, trades: &[Trade]) -> String {
    let mut h = Sha256::new();
    h.update(TAG);
    field(&mut h, inputs.data_sha256.as_bytes());
    field(&mut h, inputs.strategy.as_bytes());
    let mut params = inputs.params.clone();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in &params {
        field(&mut h, name.as_bytes());
        h.update(value.to_bits().to_le_bytes());
    }
    let b = &options.broker;
    for v in [
        b.cash,
        b.fee_bps,
        b.slippage_bps,
        b.lot_size.unwrap_or(0.0),
        b.max_fraction,
    ] {
        h.update(v.to_bits().to_le_bytes());
    }
    field(
        &mut h,
        format!("{:?} {:?}", b.end_of_data, options.gaps).as_bytes(),
    );
    h.update((trades.len() as u64).to_le_bytes());
    for t in trades {
        for n in [t.entry_bar as u64, t.exit_bar as u64] {
            h.update(n.to_le_bytes());
        }
        for v in [t.size, t.entry_price, t.exit_price, t.pnl, t.fees] {
            h.update(v.to_bits().to_le_bytes());
        }
        field(&mut h, t.exit_reason.as_str().as_bytes());
    }
    hex(&h.finalize())
}

/// SHA-256 (hex) of a file: hashed where it lies in the page cache when it
/// can be mapped ([`candlewick_history::map_file`]), else read in 64 KiB
/// chunks.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    if let Some(bytes) = candlewick_history::map_file(path) {
        return Ok(hex(&Sha256::digest(&bytes)));
    }
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// A file's SHA-256 (hex), computed on a thread of its own: hashing a
/// large input (a 40 MB Parquet file of 1M bars takes about 25 ms) then
/// overlaps the replay instead of preceding it, and with a
/// [`DigestCache`] a file hashed by an earlier run is not hashed again.
/// [`PendingSha256::wait`] joins the thread; every caller gets the same
/// answer. A digest nobody waits for (a run that failed first) is left to
/// finish on its own: it only reads the file.
#[derive(Debug)]
pub struct PendingSha256 {
    thread: Mutex<Option<JoinHandle<std::io::Result<String>>>>,
    done: OnceLock<Result<String, (std::io::ErrorKind, String)>>,
}

impl PendingSha256 {
    /// Starts hashing `path`, or looking it up in `cache`.
    pub fn spawn(path: &Path, cache: Option<DigestCache>) -> PendingSha256 {
        let path = path.to_path_buf();
        let hash = move || match cache {
            Some(cache) => cache.sha256(&path),
            None => sha256_file(&path),
        };
        PendingSha256 {
            thread: Mutex::new(Some(std::thread::spawn(hash))),
            done: OnceLock::new(),
        }
    }

    /// The digest, once the thread is done.
    ///
    /// # Errors
    /// The file could not be read.
    pub fn wait(&self) -> std::io::Result<String> {
        let done = self.done.get_or_init(|| {
            let thread = self
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let hashed = match thread {
                Some(t) => t
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread panicked"))),
                None => Err(std::io::Error::other("the hashing thread is gone")),
            };
            hashed.map_err(|e| (e.kind(), e.to_string()))
        });
        done.clone()
            .map_err(|(kind, text)| std::io::Error::new(kind, text))
    }
}

/// SHA-256 (hex) of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Length-prefixed, so that `("ab", "c")` and `("a", "bc")` differ.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
