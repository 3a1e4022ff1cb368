//! `candlewick fetch`: download klines from the exchange's REST API into a
//! candle file, resumably.
//!
//! Pages of klines come from [`KlinePager`] (the same client the live
//! adapter backfills with: weight budget, 429/418, retries) and are
//! validated there. Each page is appended to a journal,
//! `FILE.partial.csv` (Binance kline CSV), and synced before the next
//! request, so a failure loses at most the page in flight; a rerun reads
//! the journal back (validating it again) and asks for what comes after
//! its last kline. The journal's identity (symbol, interval) sits beside it
//! in `FILE.partial.json`, so a rerun with another symbol cannot append to
//! it. When the range is complete the journal becomes FILE: renamed for
//! CSV, converted for Arrow/Parquet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candlewick_history::{symbols, CandleReader, CandleWriter, Format, WriteOptions};
use candlewick_ingest::binance::{Kline, KlinePager, RestClient, RestOptions, RestStats};
use candlewick_ingest::grid::{self, Continuity, Gap};
use candlewick_ingest::Allowlist;
use candlewick_market::time::{format_ms, parse_timestamp};
use candlewick_market::{Candle, CsvDialect, CsvReader, Interval, Symbol};
use indicatif::{ProgressBar, ProgressStyle};

/// Binance's REST hosts for spot market data: the main one, its
/// alternates, and the market-data-only host.
const REST_HOSTS: [&str; 7] = [
    "api.binance.com",
    "api-gcp.binance.com",
    "api1.binance.com",
    "api2.binance.com",
    "api3.binance.com",
    "api4.binance.com",
    "data-api.binance.vision",
];

/// Download klines from Binance's REST API (`GET /api/v3/klines`) into a
/// candle file: .csv (Binance kline CSV), .arrow or .parquet.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct FetchArgs {
    /// Exchange symbol, e.g. BTCUSDT.
    #[arg(long, value_parser = |s: &str| Symbol::new(s))]
    pub symbol: Symbol,
    /// Kline interval: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.
    #[arg(long)]
    pub interval: Interval,
    /// Start of the range (included), UTC: YYYY-MM-DD[ HH:MM[:SS]] or epoch s/ms.
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp)]
    pub from: i64,
    /// End of the range (excluded), UTC, same forms as --from.
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp)]
    pub to: i64,
    /// Output, format by extension: .csv (Binance kline CSV, 12 columns, no
    /// header), .arrow (Arrow IPC) or .parquet.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Exchange REST base URL; must be on the allowlist (see below).
    #[arg(long, value_name = "URL", default_value = "https://api.binance.com")]
    pub base_url: String,
    /// Allow plain http to loopback (127.0.0.1, ::1, localhost): a local
    /// exchange simulator. Never needed for the real exchange.
    #[arg(long)]
    pub allow_insecure_loopback: bool,
    /// What a hole the exchange has no data for does: `report` it (stderr,
    /// summary) and go on, or `fail` the command.
    #[arg(long, value_enum, default_value_t = GapPolicy::Report)]
    pub gaps: GapPolicy,
    /// Pause when the exchange reports this much request weight used in the
    /// current minute (X-MBX-USED-WEIGHT-1M), until the next minute.
    #[arg(long, value_name = "WEIGHT", default_value_t = 4800,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub weight_budget: u32,
    /// Retries of a request after a network error or a 5xx answer, with
    /// exponential backoff, before the command stops (resumable).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
}

/// What a hole in the exchange's data does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GapPolicy {
    Report,
    Fail,
}

const AFTER_HELP: &str = "\
Examples:
  candlewick fetch --symbol BTCUSDT --interval 1m \\
      --from 2024-01-01 --to 2024-01-02 --out btc-1m.csv
  candlewick fetch --symbol ETHUSDT --interval 1h \\
      --from 2023-01-01 --to 2024-01-01 --out eth-1h.parquet
  candlewick backtest --data eth-1h.parquet --strategy sma_cross.wasm --out out/eth

Range: the klines whose open time is in [--from, --to), UTC. A --to in the
future stops at the last closed kline. Every kline is validated (numbers,
low <= open,close <= high, volume >= 0, open times strictly increasing and
on the interval's grid); a bad one stops the command, naming it.

Resuming: klines are appended to FILE.partial.csv page by page (its symbol
and interval in FILE.partial.json). If the command fails or is interrupted,
run the same command again: it continues after the last kline saved, with
no duplicate and no gap. An existing FILE is extended the same way (e.g. a
later --to). FILE appears only once the range is complete.

Gaps: a hole the exchange has no data for (a trading halt, a listing after
--from) is reported on stderr, one line per hole:
  gap: BTCUSDT 1m: no klines from T1 until T2 UTC (N missing; the exchange has none)
and counted in the summary line; FILE holds what the exchange has and the
exit status is 0. With --gaps fail a hole stops the command instead
(exit 1), keeping what came before it in FILE.partial.csv.

Rate limits: the request weight the exchange reports is read on every
answer; at --weight-budget the command pauses until the next minute. A 429
or 418 answer is waited out exactly as its Retry-After says (a wait over 5
minutes, a ban, stops the command). Network errors and 5xx answers are
retried --retries times with backoff.

URLs: --base-url must be https to a Binance REST host (api.binance.com,
api-gcp.binance.com, api1..api4.binance.com, data-api.binance.vision).
Plain http is allowed only to loopback, with --allow-insecure-loopback.";

/// The validated command.
struct Plan {
    symbol: Symbol,
    interval: Interval,
    /// First open time wanted (on the grid).
    start: i64,
    /// End of the range, exclusive: `--to`, or the forming kline's open.
    end: i64,
    /// Whether `end` was brought back from a `--to` in the future.
    clamped: bool,
    /// When the command started: klines closing later are still forming.
    now: i64,
    out: PathBuf,
    format: Format,
    journal: PathBuf,
    identity: PathBuf,
    client: RestClient,
    gaps: GapPolicy,
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let mut plan = Plan::new(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(download(&mut plan))?;
    println!("{}", outcome.summary(&plan));
    Ok(())
}

impl Plan {
    /// Checks every input before anything touches the network.
    fn new(args: FetchArgs) -> anyhow::Result<Plan> {
        let format = Format::from_path(&args.out)?;
        let allow = Allowlist::new(REST_HOSTS, args.allow_insecure_loopback);
        let base = allow.check(&args.base_url).context(
            "--base-url: must be https to a Binance REST host (plain http only to loopback, \
             with --allow-insecure-loopback)",
        )?;
        if args.from >= args.to {
            bail!(
                "--from {} is not before --to {}",
                format_ms(args.from),
                format_ms(args.to)
            );
        }
        let interval = args.interval;
        let start = grid::open_at_or_after(interval, args.from);
        let now = wall_ms();
        let forming = grid::open_at_or_before(interval, now);
        let end = args.to.min(forming);
        if start >= end {
            bail!(
                "no {interval} kline opens and closes between --from {} and --to {}",
                format_ms(args.from),
                format_ms(args.to)
            );
        }
        let client = RestClient::new(
            &base,
            RestOptions {
                weight_budget: args.weight_budget,
                retry: candlewick_pipeline::Backoff {
                    max_failures: args.retries.saturating_add(1),
                    ..RestOptions::default().retry
                },
                ..RestOptions::default()
            },
        )?;
        Ok(Plan {
            symbol: args.symbol,
            interval,
            start,
            end,
            clamped: end < args.to,
            now,
            journal: suffixed(&args.out, ".partial.csv"),
            identity: suffixed(&args.out, ".partial.json"),
            out: args.out,
            format,
            client,
            gaps: args.gaps,
        })
    }

    /// `BTCUSDT 1m`, for messages.
    fn series(&self) -> String {
        format!("{} {}", self.symbol, self.interval)
    }
}

/// What a run did, for the summary line.
struct Outcome {
    resumed: u64,
    downloaded: u64,
    first: i64,
    last: i64,
    gaps: Vec<Gap>,
    rest: RestStats,
}

impl Outcome {
    fn summary(&self, plan: &Plan) -> String {
        let mut line = format!(
            "fetched {}: {} klines from {} to {} UTC{} -> {} ({}); {} downloaded in {} request{}, {} resumed",
            plan.series(),
            self.resumed + self.downloaded,
            format_ms(self.first),
            format_ms(self.last),
            if plan.clamped { " (the last closed kline)" } else { "" },
            plan.out.display(),
            plan.format.as_str(),
            self.downloaded,
            self.rest.requests,
            if self.rest.requests == 1 { "" } else { "s" },
            self.resumed,
        );
        match self.gaps.len() {
            0 => line.push_str("; no gaps"),
            n => {
                let missing: u64 = self.gaps.iter().map(|g| g.missing).sum();
                line.push_str(&format!(
                    "; {n} gap{}, {missing} klines missing (listed above)",
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        if self.rest.rate_limited > 0 {
            line.push_str(&format!(
                "; waited out {} rate-limit answers",
                self.rest.rate_limited
            ));
        }
        if self.rest.paused > 0 {
            line.push_str(&format!(
                "; paused {} times for the weight budget",
                self.rest.paused
            ));
        }
        line
    }
}

/// Resumes or starts the journal, fills it to the end of the range, and
/// turns it into the output file.
async fn download(plan: &mut Plan) -> anyhow::Result<Outcome> {
    let bar = progress(grid::count(plan.interval, plan.start, plan.end));
    let mut tracker = Tracker {
        continuity: Continuity::new(plan.interval, plan.start),
        gaps: Vec::new(),
        first: None,
        last: None,
        rows: 0,
    };
    let mut journal = Journal::open(plan, &mut tracker, &bar)
        .with_context(|| format!("--out {}", plan.out.display()))?;
    let resumed = tracker.rows;
    bar.set_position(resumed);
    let from = tracker
        .last
        .map_or(plan.start, |t| grid::next_open(plan.interval, t));
    let mut pager = KlinePager::new(plan.symbol.as_str(), plan.interval, from, plan.end).on_grid();
    if let Err(e) = fill(plan, &mut pager, &mut tracker, &mut journal, &bar).await {
        if tracker.rows == 0 {
            drop(journal);
            remove_journal(plan);
        }
        return Err(e);
    }
    if let Some(gap) = tracker.continuity.finish(plan.end) {
        tracker.report(plan, gap, &bar)?;
    }
    bar.finish_and_clear();
    let (Some(first), Some(last)) = (tracker.first, tracker.last) else {
        drop(journal);
        remove_journal(plan);
        bail!(
            "no {} klines between {} and {} UTC: the exchange has none",
            plan.series(),
            format_ms(plan.start),
            format_ms(plan.end)
        );
    };
    journal.sync()?;
    drop(journal);
    publish(plan)?;
    Ok(Outcome {
        resumed,
        downloaded: tracker.rows - resumed,
        first,
        last,
        gaps: tracker.gaps,
        rest: plan.client.stats(),
    })
}

/// Appends every page of the range to the journal, syncing each.
///
/// # Errors
/// A request failed for good (saying what is kept), a hole under
/// `--gaps fail`, or the journal could not be written.
async fn fill(
    plan: &mut Plan,
    pager: &mut KlinePager,
    tracker: &mut Tracker,
    journal: &mut Journal,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    loop {
        let page = match pager.next_page(&mut plan.client).await {
            Ok(Some(page)) => page,
            Ok(None) => return Ok(()),
            Err(e) => return Err(interrupted(plan, tracker.rows, e)),
        };
        for k in &page {
            if k.close_time >= plan.now {
                // Still forming (only where the grid is unknown, 3d): the
                // range ends here.
                plan.end = k.candle.open_time;
                plan.clamped = true;
                journal.sync()?;
                return Ok(());
            }
            tracker.push(plan, k.candle.open_time, bar)?;
            journal.push(k)?;
        }
        journal.sync()?;
        bar.set_position(tracker.rows);
    }
}

/// A failed request, and what the next run will find.
fn interrupted(plan: &Plan, rows: u64, e: candlewick_ingest::IngestError) -> anyhow::Error {
    let what = if rows == 0 {
        "download failed; nothing was saved".to_owned()
    } else {
        format!(
            "download interrupted; {rows} klines are kept in {}: rerun the same command to resume",
            plan.journal.display()
        )
    };
    anyhow::Error::new(e).context(what)
}

/// Follows the series: range, order and holes of every kline kept.
struct Tracker {
    continuity: Continuity,
    gaps: Vec<Gap>,
    first: Option<i64>,
    last: Option<i64>,
    rows: u64,
}

impl Tracker {
    /// Takes the next kline's open time (already validated as in range and
    /// after the previous one); reports the hole before it.
    fn push(&mut self, plan: &Plan, t: i64, bar: &ProgressBar) -> anyhow::Result<()> {
        if let Some(gap) = self.continuity.push(t) {
            self.report(plan, gap, bar)?;
        }
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.rows += 1;
        Ok(())
    }

    fn report(&mut self, plan: &Plan, gap: Gap, bar: &ProgressBar) -> anyhow::Result<()> {
        let what = format!(
            "{}: no klines from {} until {} UTC ({} missing; the exchange has none)",
            plan.series(),
            format_ms(gap.from),
            format_ms(gap.to),
            gap.missing
        );
        if plan.gaps == GapPolicy::Fail {
            bail!(
                "gap: {what}; with --gaps fail this stops the download ({} klines before it are kept in {}; --gaps report accepts it)",
                self.rows,
                plan.journal.display()
            );
        }
        bar.suspend(|| eprintln!("gap: {what}"));
        self.gaps.push(gap);
        Ok(())
    }
}

/// The journal: Binance kline CSV rows appended as pages arrive.
struct Journal {
    out: BufWriter<File>,
    line: Vec<u8>,
}

impl Journal {
    /// Resumes the journal if there is one (else starts it from an existing
    /// output file, else empty), feeding every kline already saved to the
    /// tracker.
    fn open(plan: &Plan, tracker: &mut Tracker, bar: &ProgressBar) -> anyhow::Result<Journal> {
        if plan.journal.exists() {
            check_identity(plan)?;
            trim_torn_tail(&plan.journal)
                .with_context(|| format!("cannot repair {}", plan.journal.display()))?;
            if fs::metadata(&plan.journal)?.len() > 0 {
                let reader = CsvReader::open(&plan.journal)?;
                for candle in reader {
                    saved(plan, &plan.journal, &candle?, tracker, bar)?;
                }
            }
            return Journal::append(&plan.journal);
        }
        write_identity(plan)?;
        if plan.out.exists() {
            // Nothing but a copy of the output is in the new journal yet.
            return Journal::from_output(plan, tracker, bar).inspect_err(|_| remove_journal(plan));
        }
        Journal::append(&plan.journal)
    }

    /// Starts the journal with the klines of an existing output file.
    fn from_output(
        plan: &Plan,
        tracker: &mut Tracker,
        bar: &ProgressBar,
    ) -> anyhow::Result<Journal> {
        let own = symbols(&plan.out)?;
        if !own.is_empty() && own != [plan.symbol.as_str()] {
            bail!(
                "{} holds {}, not {}: choose another --out",
                plan.out.display(),
                own.join(", "),
                plan.symbol
            );
        }
        let reader = CandleReader::open(&plan.out)?;
        let verbatim = plan.format == Format::Csv
            && CsvReader::open(&plan.out).map(|r| r.dialect())? == CsvDialect::Binance;
        let mut journal = Journal::append(&plan.journal)?;
        for candle in reader {
            let candle = candle?;
            saved(plan, &plan.out, &candle, tracker, bar)?;
            if !verbatim {
                journal.push(&Kline {
                    candle,
                    close_time: grid::next_open(plan.interval, candle.open_time) - 1,
                    quote_volume: 0.0,
                    trades: 0,
                    taker_buy_volume: 0.0,
                    taker_buy_quote_volume: 0.0,
                })?;
            }
        }
        if verbatim {
            // Binance rows are kept as they are, all 12 columns.
            drop(journal);
            copy_lines(&plan.out, &plan.journal)?;
            journal = Journal::append(&plan.journal)?;
        }
        journal.sync()?;
        Ok(journal)
    }

    fn append(path: &Path) -> anyhow::Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Journal {
            out: BufWriter::with_capacity(1 << 16, file),
            line: Vec::with_capacity(256),
        })
    }

    /// Appends one row in Binance's 12-column layout (floats as the
    /// shortest text that reads back to the same value).
    fn push(&mut self, k: &Kline) -> io::Result<()> {
        let c = &k.candle;
        let mut float = ryu::Buffer::new();
        let mut int = itoa::Buffer::new();
        self.line.clear();
        self.line
            .extend_from_slice(int.format(c.open_time).as_bytes());
        for v in [c.open, c.high, c.low, c.close, c.volume] {
            self.line.push(b',');
            self.line.extend_from_slice(float.format(v).as_bytes());
        }
        self.line.push(b',');
        self.line
            .extend_from_slice(int.format(k.close_time).as_bytes());
        self.line.push(b',');
        self.line
            .extend_from_slice(float.format(k.quote_volume).as_bytes());
        self.line.push(b',');
        self.line.extend_from_slice(int.format(k.trades).as_bytes());
        for v in [k.taker_buy_volume, k.taker_buy_quote_volume] {
            self.line.push(b',');
            self.line.extend_from_slice(float.format(v).as_bytes());
        }
        self.line.extend_from_slice(b",0\n");
        self.out.write_all(&self.line)
    }

    /// Makes what was pushed durable: a failure after this loses nothing.
    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Checks a kline read back from `path` (journal or output) against the
/// range and the grid, and feeds it to the tracker.
fn saved(
    plan: &Plan,
    path: &Path,
    candle: &Candle,
    tracker: &mut Tracker,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let t = candle.open_time;
    if t < plan.start || t >= plan.end {
        bail!(
            "{}: holds a kline at {}, outside {} to {}: use the --from/--to it was made with, or another --out",
            path.display(),
            format_ms(t),
            format_ms(plan.start),
            format_ms(plan.end)
        );
    }
    if !grid::is_open_time(plan.interval, t) {
        bail!(
            "{}: kline at {} is not on the {} grid: is it another interval?",
            path.display(),
            format_ms(t),
            plan.interval
        );
    }
    tracker.push(plan, t, bar)
}

/// The identity file: which series the journal holds.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Identity {
    symbol: String,
    interval: String,
}

impl Identity {
    fn of(plan: &Plan) -> Identity {
        Identity {
            symbol: plan.symbol.as_str().to_owned(),
            interval: plan.interval.as_str().to_owned(),
        }
    }
}

fn write_identity(plan: &Plan) -> anyhow::Result<()> {
    let text = serde_json::to_string(&Identity::of(plan))?;
    if let Some(dir) = plan.identity.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(&plan.identity, text)
        .with_context(|| format!("cannot write {}", plan.identity.display()))
}

/// Refuses to resume a journal of another series.
fn check_identity(plan: &Plan) -> anyhow::Result<()> {
    let text = fs::read_to_string(&plan.identity).with_context(|| {
        format!(
            "{} has no readable {} beside it; delete it to start over",
            plan.journal.display(),
            plan.identity.display()
        )
    })?;
    let found: Identity = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a fetch identity", plan.identity.display()))?;
    if found != Identity::of(plan) {
        bail!(
            "{} is a download of {} {}, not {}: finish it with that command, or delete it and {}",
            plan.journal.display(),
            found.symbol,
            found.interval,
            plan.series(),
            plan.identity.display()
        );
    }
    Ok(())
}

/// Cuts a last line left unfinished by a crash mid-write: the kline it
/// held is fetched again.
fn trim_torn_tail(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        tracing::warn!(file = %path.display(), bytes = len - end, "dropping an unfinished last line (its kline is fetched again)");
        file.set_len(end)?;
    }
    Ok(())
}

/// Copies `from` to `to`, ending it with a newline if it lacks one.
fn copy_lines(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    let mut file = OpenOptions::new().read(true).append(true).open(to)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Turns the complete journal into the output file, atomically.
fn publish(plan: &Plan) -> anyhow::Result<()> {
    match plan.format {
        Format::Csv => fs::rename(&plan.journal, &plan.out).with_context(|| {
            format!(
                "cannot move {} to {}",
                plan.journal.display(),
                plan.out.display()
            )
        })?,
        Format::Arrow | Format::Parquet => {
            let names = [plan.symbol.as_str().to_owned()];
            let mut writer = CandleWriter::create(
                &plan.out,
                plan.format,
                Some(&names),
                WriteOptions::default(),
            )?;
            for candle in CsvReader::open(&plan.journal)? {
                writer.push(&candle?)?;
            }
            writer.finish()?;
            fs::remove_file(&plan.journal)
                .with_context(|| format!("cannot remove {}", plan.journal.display()))?;
        }
    }
    let _ = fs::remove_file(&plan.identity);
    Ok(())
}

/// Removes the journal and its identity (best effort: nothing worth
/// keeping is in them).
fn remove_journal(plan: &Plan) {
    let _ = fs::remove_file(&plan.journal);
    let _ = fs::remove_file(&plan.identity);
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A bar on stderr over the klines of the range (hidden when stderr is not
/// a terminal).
fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} klines {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
