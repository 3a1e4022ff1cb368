//! What one plugin instance costs in memory, and where (Linux only).
//!
//! ```sh
//! scripts/build-plugins
//! cargo run --release -p candlewick-plugins --example instance_footprint -- \
//!     target/wasm/wasm32-unknown-unknown/release/sma_cross.wasm 2000
//! ```
//!
//! Instantiates the module N times (compact memories, as an engine past
//! `COMPACT_MEMORIES_ABOVE` instances does), or with a third argument
//! `runners` builds N plugin runners as an engine holds them; feeds each 60
//! bars with a snapshot every 10, and prints the anonymous resident memory and page
//! tables per instance, then, for a module laid out as Rust's toolchain
//! lays it out, which 4 KiB pages of one instance's linear memory are
//! resident (`/proc/self/pagemap`), by offset from its base.

use std::error::Error;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candlewick_market::Candle;
use candlewick_plugins::{
    BarBatch, HostConfig, Limits, LoadedModule, Plugin, PluginHost, PluginRunner, RestartPolicy,
};

const PAGE: u64 = 4096;

/// A `/proc/self/status` field in bytes (0 when the kernel does not give it).
fn status(field: &str) -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024))
}

/// Resident pages of the first linear memory found: the 1 MiB stack
/// mapping that the module's data image follows.
fn resident_pages() -> Option<(u64, Vec<u64>)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lines: Vec<&str> = maps.lines().collect();
    let base = lines.windows(2).find_map(|w| {
        let range = w[0].split_whitespace().next()?;
        let (start, end) = range.split_once('-')?;
        let (start, end) = (
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
        );
        (end - start == 1 << 20 && w[1].contains("wasm-memory-image")).then_some(start)
    })?;
    let mut pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    let mut present = Vec::new();
    for page in 0..(2 << 20) / PAGE {
        let mut entry = [0u8; 8];
        pagemap
            .seek(SeekFrom::Start((base / PAGE + page) * 8))
            .ok()?;
        pagemap.read_exact(&mut entry).ok()?;
        if u64::from_le_bytes(entry) >> 63 == 1 {
            present.push(page * PAGE);
        }
    }
    Some((base, present))
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), n, mode) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: instance_footprint PLUGIN.wasm [INSTANCES] [runners]");
        std::process::exit(2);
    };
    let n: usize = n.and_then(|n| n.parse().ok()).unwrap_or(2000).max(1);
    let runners = mode.as_deref() == Some("runners");
    let host = PluginHost::new(HostConfig {
        compact_memories: true,
        ..HostConfig::default()
    })?;
    let module = host.load_file(Path::new(&path))?;
    let (anon, tables) = (status("RssAnon:")?, status("VmPTE:")?);
    let (kept_plugins, kept_runners) = if runners {
        (Vec::new(), runners_fed(&host, &module, n)?)
    } else {
        (plugins_fed(&host, &module, n)?, Vec::new())
    };
    let per = |after: u64, before: u64| after.saturating_sub(before) / n as u64;
    println!(
        "{n} {} of {path}: {} B anonymous resident and {} B of page tables each",
        if runners { "runners" } else { "instances" },
        per(status("RssAnon:")?, anon),
        per(status("VmPTE:")?, tables)
    );
    match resident_pages() {
        Some((base, pages)) => println!(
            "one linear memory (at {base:#x}): {} resident pages, at offsets {pages:x?}",
            pages.len()
        ),
        None => println!("no linear memory laid out as Rust's (1 MiB stack, then the data image)"),
    }
    std::hint::black_box((&kept_plugins, &kept_runners));
    Ok(())
}

/// Sixty one-minute bars.
fn bars() -> impl Iterator<Item = Candle> {
    (0..60).map(|i| {
        let p = 100.0 + (f64::from(i) / 3.0).sin();
        Candle {
            open_time: i64::from(i) * 60_000,
            open: p,
            high: p + 1.0,
            low: p - 1.0,
            close: p,
            volume: 1.0,
        }
    })
}

/// Bare instances, each fed the bars one at a time with a snapshot every 10.
fn plugins_fed(
    host: &PluginHost,
    module: &LoadedModule,
    n: usize,
) -> Result<Vec<Plugin>, Box<dyn Error>> {
    let params = module.manifest().resolve_params::<&str, &str>(&[])?;
    let n_values = module.manifest().indicators.len();
    let mut batch = BarBatch::new(n_values);
    (0..n)
        .map(|_| {
            let mut plugin = host.instantiate(module, &params, n_values)?;
            for (i, bar) in bars().enumerate() {
                batch.clear();
                batch.push(&bar, &vec![bar.close; n_values]);
                plugin.run_batch(&batch, 0)?;
                if i % 10 == 0 {
                    plugin.snapshot()?;
                }
            }
            Ok(plugin)
        })
        .collect()
}

/// Runners as an engine holds them (indicators, bars, last snapshot), fed
/// the same way, with a checkpoint every 10 bars.
fn runners_fed(
    host: &PluginHost,
    module: &LoadedModule,
    n: usize,
) -> Result<Vec<PluginRunner>, Box<dyn Error>> {
    let overrides: [(&str, &str); 0] = [];
    (0..n)
        .map(|_| {
            let mut runner = PluginRunner::new(
                host,
                module.clone(),
                &overrides,
                Limits::default(),
                RestartPolicy::default(),
            )?;
            for (i, bar) in bars().enumerate() {
                runner.push(&bar, &[]);
                runner.flush();
                if i % 10 == 0 {
                    runner.checkpoint();
                }
            }
            Ok(runner)
        })
        .collect()
}
