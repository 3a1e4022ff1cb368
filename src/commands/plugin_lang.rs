//! `plugin new --lang c|zig|assemblyscript` and `plugin build` of C, Zig
//! and AssemblyScript sources (the Rust path is in `plugin.rs`).
//!
//! A scaffold is self-contained: the SDK (one file for C and Zig, a small
//! npm package for AssemblyScript) is copied into it from the copy embedded
//! in this binary, so it builds without this checkout. `build` finds the
//! SDK beside the sources first, then in this checkout (`sdk/`), and
//! installs the toolchain with `scripts/install-toolchains` when the
//! checkout is there (it says what it installs); otherwise it says what to
//! install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A strategy language other than Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    C,
    Zig,
    #[value(name = "assemblyscript", alias = "as")]
    AssemblyScript,
}

impl Lang {
    fn extension(self) -> &'static str {
        match self {
            Lang::Rust => "rs",
            Lang::C => "c",
            Lang::Zig => "zig",
            Lang::AssemblyScript => "ts",
        }
    }

    /// The argument of `scripts/install-toolchains`.
    fn toolchain(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Zig => "zig",
            Lang::AssemblyScript => "as",
        }
    }
}

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const ZIG_VERSION: &str = "0.14.1";

const C_HEADER: &str = include_str!("../../sdk/c/candlewick.h");
const ZIG_SDK: &str = include_str!("../../sdk/zig/candlewick.zig");
const AS_SDK: &[(&str, &str)] = &[
    (
        "assembly/index.ts",
        include_str!("../../sdk/assemblyscript/assembly/index.ts"),
    ),
    (
        "assembly/exports.ts",
        include_str!("../../sdk/assemblyscript/assembly/exports.ts"),
    ),
    (
        "bin/cw-build.js",
        include_str!("../../sdk/assemblyscript/bin/cw-build.js"),
    ),
    (
        "package.json",
        include_str!("../../sdk/assemblyscript/package.json"),
    ),
    (
        "package-lock.json",
        include_str!("../../sdk/assemblyscript/package-lock.json"),
    ),
    ("../.gitignore", "*.wasm\ncandlewick-sdk/node_modules/\n"),
];

/// The manifest every scaffold starts with.
fn manifest_json(name: &str) -> String {
    format!(
        r#"{{"abi": 1, "name": "{name}", "version": "0.1.0",
 "description": "Close crosses its SMA",
 "params": [{{"name": "period", "type": "int", "default": 20, "min": 2, "max": 1000, "doc": "SMA period (bars)"}}],
 "indicators": ["sma({{period}})"],
 "models": []}}"#
    )
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Scaffolds `root` (which must not exist) for `lang`.
pub fn new(name: &str, root: &Path, lang: Lang) -> Result<()> {
    let manifest = manifest_json(name);
    match lang {
        Lang::Rust => unreachable!("the Rust scaffold is plugin.rs's"),
        Lang::C => {
            write(&root.join("candlewick.h"), C_HEADER)?;
            let body = C_TEMPLATE.replace("{manifest}", &manifest.replace('\n', "\n    "));
            write(
                &root.join(format!("{name}.c")),
                &body.replace("{name}", name),
            )?;
            write(&root.join(".gitignore"), "*.wasm\n")?;
        }
        Lang::Zig => {
            write(&root.join("candlewick.zig"), ZIG_SDK)?;
            let lines: Vec<String> = manifest
                .lines()
                .map(|l| format!("        \\\\{l}"))
                .collect();
            let body = ZIG_TEMPLATE.replace("{manifest}", &lines.join("\n"));
            write(
                &root.join(format!("{name}.zig")),
                &body.replace("{name}", name),
            )?;
            write(&root.join(".gitignore"), "*.wasm\n.zig-cache/\n")?;
        }
        Lang::AssemblyScript => {
            for (file, text) in AS_SDK {
                write(&root.join("candlewick-sdk").join(file), text)?;
            }
            write(&root.join(format!("{name}.manifest.json")), &manifest)?;
            write(
                &root.join(format!("{name}.ts")),
                &AS_TEMPLATE.replace("{name}", name),
            )?;
        }
    }
    write(
        &root.join("test.sh"),
        &TEST_SH
            .replace("{name}", name)
            .replace("{ext}", lang.extension()),
    )?;
    set_executable(&root.join("test.sh"))?;
    write(
        &root.join("README.md"),
        &LANG_README
            .replace("{name}", name)
            .replace("{ext}", lang.extension()),
    )?;
    println!("created {}", root.display());
    println!(
        "next:  cd {} && ./test.sh   (builds, checks ABI conformance, backtests)",
        root.display()
    );
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<()> {
    Ok(())
}

/// The language of `path` (a source file, or a folder holding sources),
/// and the sources to build.
pub fn detect(path: &Path) -> Result<Option<(Lang, Vec<PathBuf>)>> {
    let lang_of = |p: &Path| match p.extension().and_then(|e| e.to_str()) {
        Some("c") => Some(Lang::C),
        Some("zig") if p.file_name().is_some_and(|n| n != "candlewick.zig") => Some(Lang::Zig),
        Some("ts") => Some(Lang::AssemblyScript),
        _ => None,
    };
    if path.is_file() {
        return Ok(lang_of(path).map(|l| (l, vec![path.to_path_buf()])));
    }
    if !path.is_dir() || path.join("Cargo.toml").is_file() {
        return Ok(None);
    }
    let mut found: Vec<(Lang, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
        let p = entry?.path();
        if let Some(l) = lang_of(&p) {
            found.push((l, p));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let Some(&(lang, _)) = found.first() else {
        return Ok(None);
    };
    if found.iter().any(|(l, _)| *l != lang) {
        bail!(
            "{}: sources of more than one language; build one file at a time",
            path.display()
        );
    }
    Ok(Some((lang, found.into_iter().map(|(_, p)| p).collect())))
}

/// Builds each of `sources` to a `.wasm` beside it (or to `out` for a
/// single source); returns the modules.
pub fn build(lang: Lang, sources: &[PathBuf], out: Option<&Path>) -> Result<Vec<PathBuf>> {
    if out.is_some() && sources.len() != 1 {
        bail!("--out needs a single source file");
    }
    install_toolchain(lang)?;
    let mut built = Vec::new();
    for src in sources {
        let wasm = match out {
            Some(o) => o.to_path_buf(),
            None => src.with_extension("wasm"),
        };
        let dir = src.parent().unwrap_or(Path::new("."));
        let mut cmd = match lang {
            Lang::Rust => unreachable!("Rust builds with cargo in plugin.rs"),
            Lang::C => c_command(src, dir, &wasm),
            Lang::Zig => zig_command(src, dir, &wasm)?,
            Lang::AssemblyScript => as_command(src, dir, &wasm)?,
        };
        let status = cmd
            .status()
            .with_context(|| format!("running {:?}", cmd.get_program()))?;
        if !status.success() {
            bail!("{}: build failed ({status})", src.display());
        }
        built.push(wasm);
    }
    Ok(built)
}

fn c_command(src: &Path, dir: &Path, wasm: &Path) -> Command {
    let mut cmd = Command::new("clang");
    cmd.args(["--target=wasm32", "-nostdlib", "-O2", "-mbulk-memory"])
        .args(["-Wall", "-Wextra", "-Wl,--no-entry", "-Wl,--strip-all"])
        .arg("-I")
        .arg(dir)
        .arg("-I")
        .arg(Path::new(REPO).join("sdk/c"))
        .arg("-o")
        .arg(wasm)
        .arg(src);
    cmd
}

fn zig_command(src: &Path, dir: &Path, wasm: &Path) -> Result<Command> {
    let sdk = [
        dir.join("candlewick.zig"),
        Path::new(REPO).join("sdk/zig/candlewick.zig"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .context("no candlewick.zig beside the source or in this checkout's sdk/zig")?;
    let venv_python = toolchains_dir().join("zig-venv/bin/python");
    let mut cmd = if venv_python.is_file() {
        let mut c = Command::new(venv_python);
        c.args(["-m", "ziglang"]);
        c
    } else {
        Command::new("zig")
    };
    cmd.args([
        "build-exe",
        "-target",
        "wasm32-freestanding",
        "-O",
        "ReleaseSmall",
    ])
    .args(["-fno-entry", "-rdynamic"])
    .arg("--cache-dir")
    .arg(dir.join(".zig-cache"))
    .arg("--global-cache-dir")
    .arg(toolchains_dir().join("zig-cache"))
    .args(["--dep", "candlewick"])
    .arg(format!("-Mroot={}", src.display()))
    .arg(format!("-Mcandlewick={}", sdk.display()))
    .arg(format!("-femit-bin={}", wasm.display()));
    Ok(cmd)
}

fn as_command(src: &Path, dir: &Path, wasm: &Path) -> Result<Command> {
    let sdk = [
        dir.join("candlewick-sdk"),
        Path::new(REPO).join("sdk/assemblyscript"),
    ]
    .into_iter()
    .find(|p| p.join("bin/cw-build.js").is_file())
    .context("no candlewick-sdk/ beside the source or sdk/assemblyscript in this checkout")?;
    if !sdk.join("node_modules/.bin/asc").exists() {
        eprintln!(
            "plugin build: installing AssemblyScript into {} (npm ci, pinned by its package-lock.json)",
            sdk.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&sdk)
            .status()
            .context("running npm (install node and npm)")?;
        if !status.success() {
            bail!("{}: npm ci failed ({status})", sdk.display());
        }
    }
    let mut cmd = Command::new("node");
    cmd.arg(sdk.join("bin/cw-build.js"))
        .arg(src)
        .arg("-o")
        .arg(wasm);
    Ok(cmd)
}

fn toolchains_dir() -> PathBuf {
    std::env::var_os("CANDLEWICK_TOOLCHAINS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/candlewick/toolchains"))
        })
        .unwrap_or_else(|| PathBuf::from(".candlewick-toolchains"))
}

/// Installs the toolchain with this checkout's script (idempotent; it says
/// what it installs), or checks it is there and says what to install.
fn install_toolchain(lang: Lang) -> Result<()> {
    let script = Path::new(REPO).join("scripts/install-toolchains");
    if script.is_file() {
        let status = Command::new(&script)
            .arg(lang.toolchain())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!(
                "{} {} failed ({status})",
                script.display(),
                lang.toolchain()
            );
        }
        return Ok(());
    }
    let (program, hint) = match lang {
        Lang::C => (
            "clang",
            "install clang and lld (Debian: apt-get install clang lld)",
        ),
        Lang::Zig => (
            "zig",
            "install Zig (e.g. pip install ziglang==0.14.1, run as python -m ziglang)",
        ),
        Lang::AssemblyScript => ("node", "install node and npm"),
        Lang::Rust => return Ok(()),
    };
    let venv = toolchains_dir().join("zig-venv/bin/python");
    let found = Command::new(program).arg("--version").output().is_ok()
        || (lang == Lang::Zig && venv.is_file());
    if !found {
        bail!("{program} not found: {hint} (Zig {ZIG_VERSION} is the tested version)");
    }
    Ok(())
}

const C_TEMPLATE: &str = r#"/*
 * {name}: a Candlewick strategy in C. Buys when the close crosses above its
 * SMA and sells when it crosses below. Replace the logic in on_bar; declare
 * what you need in CW_MANIFEST. The SDK is candlewick.h (beside this file).
 */
#include "candlewick.h"

CW_MANIFEST({manifest});

enum { P_PERIOD };

static int above; /* -1 unknown, 0 below, 1 above */

static int strategy_init(const cw_params *p) {
    if (cw_param_int(p, P_PERIOD) < 2) {
        cw_log(CW_LOG_ERROR, "period must be at least 2");
        return CW_ERR_INIT_FAILED;
    }
    above = -1;
    return CW_OK;
}

static int strategy_on_bar(const cw_bar *bar, cw_signal *out) {
    double sma = cw_indicator(bar, 0);
    if (cw_is_nan(sma)) return 0; /* warming up */
    int now = cw_close(bar) > sma;
    int before = above;
    above = now;
    if (before == 0 && now == 1) { *out = cw_buy(1.0); return 1; }
    if (before == 1 && now == 0) { *out = cw_sell(1.0); return 1; }
    return 0;
}

static int32_t strategy_snapshot(uint8_t *buf, uint32_t cap) {
    if (cap < 1) return -1;
    buf[0] = (uint8_t)(above + 1);
    return 1;
}

static int strategy_restore(const uint8_t *buf, uint32_t len) {
    if (len != 1 || buf[0] > 2) return CW_ERR_RESTORE_REJECTED;
    above = (int)buf[0] - 1;
    return CW_OK;
}

CW_EXPORT_STRATEGY(strategy_init, strategy_on_bar, strategy_snapshot, strategy_restore)
"#;

const ZIG_TEMPLATE: &str = r#"//! {name}: a Candlewick strategy in Zig. Buys when the close crosses above
//! its SMA and sells when it crosses below. Replace the logic in onBar;
//! declare what you need in the manifest below. The SDK is candlewick.zig.
const cw = @import("candlewick");

const Plugin = struct {
    /// Whether the last close was above the SMA; null until known.
    above: ?bool = null,

    pub fn init(p: cw.Params) cw.InitResult(Plugin) {
        if (p.int(0) < 2) return .{ .err = "period must be at least 2" };
        return .{ .ok = .{} };
    }

    pub fn onBar(self: *Plugin, bar: cw.Bar) ?cw.Signal {
        const sma = bar.indicator(0) orelse return null; // warming up
        const now = bar.close() > sma;
        const before = self.above;
        self.above = now;
        const was = before orelse return null;
        if (!was and now) return cw.Signal.buy(1.0);
        if (was and !now) return cw.Signal.sell(1.0);
        return null;
    }

    pub fn snapshot(self: *const Plugin, buf: []u8) ?usize {
        buf[0] = if (self.above) |a| (if (a) 2 else 1) else 0;
        return 1;
    }

    pub fn restore(self: *Plugin, bytes: []const u8) bool {
        if (bytes.len != 1 or bytes[0] > 2) return false;
        self.above = if (bytes[0] == 0) null else bytes[0] == 2;
        return true;
    }
};

comptime {
    cw.exportStrategy(Plugin);
    asm (cw.manifestSection(
{manifest}
    ));
}
"#;

const AS_TEMPLATE: &str = r#"// {name}: a Candlewick strategy in AssemblyScript. Buys when the close
// crosses above its SMA and sells when it crosses below. Replace the logic
// in onBar; declare what you need in {name}.manifest.json.
import { Bar, LOG_ERROR, Params, Signal, Strategy, log, register } from "./candlewick-sdk/assembly/index";
export * from "./candlewick-sdk/assembly/exports";

class Plugin extends Strategy {
  /** -1 unknown, 0 below, 1 above. */
  above: i32 = -1;

  onBar(bar: Bar, out: Signal): bool {
    const sma = bar.indicator(0);
    if (isNaN(sma)) return false; // warming up
    const now: i32 = bar.close > sma ? 1 : 0;
    const before = this.above;
    this.above = now;
    if (before == 0 && now == 1) { out.buy(1.0); return true; }
    if (before == 1 && now == 0) { out.sell(1.0); return true; }
    return false;
  }

  snapshot(buf: usize, cap: i32): i32 {
    store<u8>(buf, <u8>(this.above + 1));
    return 1;
  }

  restore(buf: usize, len: i32): bool {
    const v = load<u8>(buf);
    if (len != 1 || v > 2) return false;
    this.above = <i32>v - 1;
    return true;
  }
}

register((p: Params): Strategy | null => {
  if (p.int(0) < 2) {
    log(LOG_ERROR, "period must be at least 2");
    return null;
  }
  return new Plugin();
});
"#;

const TEST_SH: &str = r#"#!/usr/bin/env bash
# Builds {name}.wasm, checks it against the plugin ABI (every check of
# `candlewick plugin check`), and backtests it on the data given (or, with
# no argument, on synthetic bars only).
#   ./test.sh [CANDLES.csv]
set -euo pipefail
cd "$(dirname "$0")"
candlewick plugin build {name}.{ext}
if [ $# -gt 0 ]; then
    candlewick plugin check {name}.wasm --data "$1"
    candlewick backtest --data "$1" --strategy {name}.wasm --out backtest
else
    candlewick plugin check {name}.wasm
fi
"#;

const LANG_README: &str = r#"# {name}

A Candlewick strategy plugin.

    ./test.sh CANDLES.csv                 # build, check the ABI, backtest
    candlewick plugin build {name}.{ext}     # build {name}.wasm
    candlewick plugin check {name}.wasm      # ABI conformance
    candlewick backtest --data FILE --strategy {name}.wasm --out report

The SDK is in this folder; its chapter in the engine's sdk/ABI.md explains it.
"#;
