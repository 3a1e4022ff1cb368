//! `candlewick plugin new NAME`, `candlewick plugin build PATH` and
//! `candlewick plugin check FILE.wasm` (in `plugin_check.rs`).
//!
//! `new` scaffolds a strategy crate that builds from any folder. It depends
//! on the SDK of this checkout by absolute path (known at compile time from
//! `CARGO_MANIFEST_DIR`): the SDK is not published, and a path dependency
//! keeps the author on exactly the ABI this engine speaks, and picks up SDK
//! fixes on the next build. When the binary runs where that checkout is not
//! (an installed copy), the SDK sources embedded in the binary are vendored
//! into the new crate instead (`vendor/candlewick-sdk`), so the scaffold
//! still builds, offline, against the same ABI.
//!
//! `build` compiles a plugin crate to `wasm32-unknown-unknown` (release; the
//! scaffold's profile optimises for size), then loads it the way the engine
//! does (manifest, imports, ABI version, init with default parameters) and
//! prints its size and manifest.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use candlewick_plugins::{HostConfig, Limits, PluginHost, PluginRunner, RestartPolicy};

#[path = "plugin_check.rs"]
mod check;
#[path = "plugin_lang.rs"]
mod lang;

/// Plugin authoring commands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Create a ready-to-build strategy project NAME in DIR, with a test.
    New {
        /// Plugin name: lower case letters, digits and `_`.
        name: String,
        /// Folder to create the project in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Language of the project (its SDK is copied in, except Rust's).
        #[arg(long, value_enum, default_value = "rust")]
        lang: lang::Lang,
    },
    /// Build a plugin to wasm (Rust crate, or C, Zig or AssemblyScript
    /// sources); print its size and manifest.
    Build {
        /// A Rust crate's folder (or its Cargo.toml), a C/Zig/AssemblyScript
        /// source file, or a folder of sources of one language.
        path: PathBuf,
        /// Where to write the module (one source file only); default:
        /// beside the source, NAME.wasm.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check that a module (from any language) conforms to the plugin ABI:
    /// exports, manifest, init, batches, output, snapshot, determinism,
    /// memory and time. Exits non-zero naming each failed check.
    Check(check::CheckArgs),
}

pub fn run(cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::New { name, dir, lang } => new(&name, &dir, lang),
        PluginCommand::Build { path, out } => match lang::detect(&path)? {
            Some((language, sources)) => {
                for wasm in lang::build(language, &sources, out.as_deref())? {
                    report(&wasm)?;
                }
                Ok(())
            }
            None if out.is_some() => bail!("--out is for C, Zig and AssemblyScript sources"),
            None => build(&path),
        },
        PluginCommand::Check(args) => check::run(args),
    }
}

const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

/// The SDK's sources, for vendoring when `SDK_DIR` is not on this machine.
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../sdk/src/lib.rs")),
    ("src/abi.rs", include_str!("../../sdk/src/abi.rs")),
    ("src/bar.rs", include_str!("../../sdk/src/bar.rs")),
    ("src/guest.rs", include_str!("../../sdk/src/guest.rs")),
    ("src/host.rs", include_str!("../../sdk/src/host.rs")),
    ("src/macros.rs", include_str!("../../sdk/src/macros.rs")),
    ("src/manifest.rs", include_str!("../../sdk/src/manifest.rs")),
    ("src/params.rs", include_str!("../../sdk/src/params.rs")),
    ("src/rt.rs", include_str!("../../sdk/src/rt.rs")),
    ("src/signal.rs", include_str!("../../sdk/src/signal.rs")),
    ("src/strategy.rs", include_str!("../../sdk/src/strategy.rs")),
    ("src/testing.rs", include_str!("../../sdk/src/testing.rs")),
    ("ABI.md", include_str!("../../sdk/ABI.md")),
];

const VENDORED_SDK_TOML: &str = r#"[package]
name = "candlewick-sdk"
version = "0.1.0"
edition = "2021"
license = "Apache-2.0"
description = "Candlewick strategy SDK (vendored by `candlewick plugin new`)"

[features]
default = ["guest"]
guest = ["dep:dlmalloc"]

[target.'cfg(target_arch = "wasm32")'.dependencies]
dlmalloc = { version = "0.2", default-features = false, features = ["global"], optional = true }
"#;

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn new(name: &str, dir: &Path, language: lang::Lang) -> Result<()> {
    if !valid_name(name) {
        bail!(
            "plugin name {name:?}: use lower case letters, digits and `_`, starting with a letter"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{}: already exists", root.display());
    }
    if language != lang::Lang::Rust {
        return lang::new(name, &root, language);
    }
    let sdk = if Path::new(SDK_DIR).join("Cargo.toml").is_file() {
        format!("{{ path = {:?} }}", SDK_DIR)
    } else {
        for (file, text) in SDK_FILES {
            write(&root.join("vendor/candlewick-sdk").join(file), text)?;
        }
        write(
            &root.join("vendor/candlewick-sdk/Cargo.toml"),
            VENDORED_SDK_TOML,
        )?;
        r#"{ path = "vendor/candlewick-sdk" }"#.to_string()
    };
    write(
        &root.join("Cargo.toml"),
        &CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk),
    )?;
    write(&root.join("src/lib.rs"), &LIB_RS.replace("{name}", name))?;
    write(&root.join(".gitignore"), "/target\n")?;
    write(&root.join("README.md"), &README.replace("{name}", name))?;
    println!("created {}", root.display());
    println!(
        "next:  cd {} && cargo test && candlewick plugin build .",
        root.display()
    );
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if let Ok(out) = installed {
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-unknown-unknown")
        {
            return Ok(());
        }
        let status = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()?;
        if !status.success() {
            bail!("rustup target add wasm32-unknown-unknown failed");
        }
    }
    Ok(())
}

fn build(path: &Path) -> Result<()> {
    let manifest_path = if path.is_dir() {
        path.join("Cargo.toml")
    } else {
        path.to_path_buf()
    };
    if !manifest_path.is_file() {
        bail!("{}: no Cargo.toml there", manifest_path.display());
    }
    ensure_wasm_target()?;
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest_path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("{}: cargo build failed", manifest_path.display());
    }
    let wasm = wasm_artifacts(&String::from_utf8_lossy(&output.stdout));
    let [wasm] = wasm.as_slice() else {
        bail!(
            "{}: expected one .wasm artifact (is crate-type = [\"cdylib\"]?), found {}",
            manifest_path.display(),
            wasm.len()
        );
    };
    report(wasm)
}

/// The `.wasm` files named in cargo's JSON messages.
fn wasm_artifacts(json_lines: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for line in json_lines
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
    {
        let mut rest = line;
        while let Some(end) = rest.find(".wasm\"") {
            let start = rest[..end].rfind('"').map_or(0, |i| i + 1);
            found.push(PathBuf::from(&rest[start..end + 5]));
            rest = &rest[end + 6..];
        }
    }
    found.dedup();
    found
}

fn report(wasm: &Path) -> Result<()> {
    let host = PluginHost::new(HostConfig::default()).context("starting the plugin host")?;
    let module = host
        .load_file(wasm)
        .with_context(|| format!("{}", wasm.display()))?;
    // Instantiating with the defaults runs every check the engine will run.
    PluginRunner::new(
        &host,
        module.clone(),
        &[] as &[(&str, &str)],
        Limits::default(),
        RestartPolicy::default(),
    )
    .with_context(|| format!("{}: with default parameters", wasm.display()))?;
    let m = module.manifest();
    println!("{}", wasm.display());
    println!(
        "  size        {} bytes ({:.1} KiB)",
        module.size(),
        module.size() as f64 / 1024.0
    );
    println!("  sha256      {}", module.hash_hex());
    println!("  plugin      {} {}", m.name, m.version);
    if !m.description.is_empty() {
        println!("  description {}", m.description);
    }
    for p in &m.params {
        let range = match (p.min, p.max) {
            (None, None) => String::new(),
            (lo, hi) => format!(
                " in [{}, {}]",
                lo.map_or("-inf".into(), |v| v.to_string()),
                hi.map_or("+inf".into(), |v| v.to_string())
            ),
        };
        println!(
            "  param       {}: {:?} = {}{}  {}",
            p.name, p.kind, p.default, range, p.doc
        );
    }
    println!(
        "  indicators  {}",
        if m.indicators.is_empty() {
            "-".into()
        } else {
            m.indicators.join(" ")
        }
    );
    println!(
        "  models      {}",
        if m.models.is_empty() {
            "-".into()
        } else {
            m.models.join(" ")
        }
    );
    Ok(())
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
candlewick-sdk = {sdk}

# A crate of its own, even when created inside another workspace.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#;

const LIB_RS: &str = r#"//! `{name}`: a Candlewick strategy.
//!
//! Buys when the close crosses above its SMA and sells when it crosses
//! below. Replace the logic in `on_bar`; declare what you need in
//! `export_strategy!` at the bottom. `cargo test` runs the tests natively;
//! `candlewick plugin build .` makes the .wasm.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, RestoreError, Signal, Strategy};

pub struct Plugin {
    /// Whether the last close was above the SMA; `None` until known.
    above: Option<bool>,
}

impl Strategy for Plugin {
    fn init(params: &Params<'_>) -> Result<Self, InitError> {
        let _period = params.int("period")?; // checked by the host against 2..=1000
        Ok(Plugin { above: None })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let sma = bar.indicator(0)?; // None while the SMA warms up
        let above = bar.close() > sma;
        match self.above.replace(above) {
            Some(false) if above => Some(Signal::buy(1.0)),
            Some(true) if !above => Some(Signal::sell(1.0)),
            _ => None,
        }
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(vec![match self.above { None => 0, Some(false) => 1, Some(true) => 2 }])
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.above = match bytes {
            [0] => None,
            [1] => Some(false),
            [2] => Some(true),
            _ => return Err(RestoreError::Incompatible),
        };
        Ok(())
    }
}

export_strategy! {
    strategy: Plugin,
    name: "{name}",
    version: "0.1.0",
    description: "Close crosses its SMA",
    params: {
        period: int = 20 in 2..=1000, "SMA period (bars)";
    },
    indicators: ["sma({period})"],
    models: [],
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_sdk::testing::{Harness, TestBar};
    use candlewick_sdk::Action;

    #[test]
    fn buys_the_cross_up_and_sells_the_cross_down() {
        let mut h = Harness::<Plugin>::new(&CW_MANIFEST, &[("period", 5.0)], 1).unwrap();
        assert_eq!(h.bar(&TestBar::close(0, 10.0), &[f64::NAN]), None, "warming up");
        assert_eq!(h.bar(&TestBar::close(1, 9.0), &[10.0]), None, "first side is not a cross");
        assert_eq!(h.bar(&TestBar::close(2, 11.0), &[10.0]).map(|s| s.action), Some(Action::Buy));
        assert_eq!(h.bar(&TestBar::close(3, 9.0), &[10.0]).map(|s| s.action), Some(Action::Sell));
    }
}
"#;

const README: &str = r#"# {name}

A Candlewick strategy plugin.

    cargo test                        # run the strategy's tests natively
    candlewick plugin build .         # build target/wasm32-unknown-unknown/release/{name}.wasm
    candlewick backtest --data FILE --strategy target/wasm32-unknown-unknown/release/{name}.wasm --out report

The ABI is described in the SDK's ABI.md; with the SDK you never need it.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_plugin_safe() {
        assert!(valid_name("my_strategy2"));
        for bad in ["", "My", "2x", "a-b", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_wasm_artifact_in_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","filenames":["/x/target/wasm32-unknown-unknown/release/p.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artifacts(json),
            [PathBuf::from(
                "/x/target/wasm32-unknown-unknown/release/p.wasm"
            )]
        );
    }
}
