//! Hostile modules written against the raw ABI in WAT (not through the
//! SDK, which would never produce them): each is refused at load or
//! quarantined, and a healthy neighbour driven by the same loop keeps
//! producing exactly its signals.

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use candlewick_plugins::{
    Fault, Health, HostConfig, Limits, LoadError, PluginHost, PluginRunner, RestartPolicy,
};
use common::candles;

const MANIFEST: &str = r#"{"abi":1,"name":"raw","version":"1"}"#;

/// Where the default module keeps things.
const LAYOUT_AT: u32 = 1024;
const INPUT_AT: u32 = 4096;
const OUTPUT_AT: u32 = 8192;
const SCRATCH_AT: u32 = 16384;

/// The parts of a raw module a test changes.
struct Raw {
    pages: u32,
    /// `cw_io_layout`'s body (returns the layout's address).
    io_layout: String,
    /// The layout struct's six u32 fields.
    layout: [u32; 6],
    /// `cw_alloc`'s body (param 0: size).
    alloc: String,
    /// `cw_on_batch`'s body (param `$n`).
    on_batch: String,
    /// Signal records placed at the output buffer.
    records: Vec<Record>,
    /// Extra functions (e.g. `cw_snapshot`).
    extra: String,
}

#[derive(Clone, Copy)]
struct Record {
    bar: u32,
    action: u32,
    strength: f64,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            pages: 1,
            io_layout: format!("i32.const {LAYOUT_AT}"),
            layout: [1, 48, INPUT_AT, 64, OUTPUT_AT, 64],
            alloc: format!("i32.const {SCRATCH_AT}"),
            on_batch: "i32.const 0".into(),
            records: Vec::new(),
            extra: String::new(),
        }
    }
}

/// Bytes as a WAT string literal's escapes.
fn escaped(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes {
        write!(s, "\\{b:02x}").unwrap();
    }
    s
}

impl Raw {
    fn wasm(&self) -> Vec<u8> {
        let layout: Vec<u8> = self.layout.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut records = Vec::new();
        for r in &self.records {
            records.extend_from_slice(&r.bar.to_le_bytes());
            records.extend_from_slice(&r.action.to_le_bytes());
            records.extend_from_slice(&r.strength.to_le_bytes());
            records.extend_from_slice(&f64::NAN.to_le_bytes());
            records.extend_from_slice(&f64::NAN.to_le_bytes());
            records.extend_from_slice(&[0; 8]);
        }
        let text = format!(
            r#"(module
  (@custom "cw_manifest" "{manifest}")
  (memory (export "memory") {pages})
  (global $calls (mut i32) (i32.const 0))
  (func (export "cw_abi_version") (result i32) i32.const 1)
  (func (export "cw_alloc") (param i32) (result i32) {alloc})
  (func (export "cw_init") (param i32 i32) (result i32) i32.const 0)
  (func (export "cw_io_layout") (result i32) {io_layout})
  (func (export "cw_on_batch") (param $n i32) (result i32) {on_batch})
  {extra}
  (data (i32.const {LAYOUT_AT}) "{layout}")
  (data (i32.const {OUTPUT_AT}) "{records}")
)"#,
            manifest = escaped(MANIFEST.as_bytes()),
            pages = self.pages,
            alloc = self.alloc,
            io_layout = self.io_layout,
            on_batch = self.on_batch,
            extra = self.extra,
            layout = escaped(&layout),
            records = escaped(&records),
        );
        wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }
}

/// A well-behaved raw module: a buy on the first bar of every batch.
fn healthy() -> Raw {
    Raw {
        on_batch: "local.get $n i32.const 0 i32.gt_s".into(),
        records: vec![Record {
            bar: 0,
            action: 1,
            strength: 1.0,
        }],
        ..Raw::default()
    }
}

fn limits() -> Limits {
    Limits {
        // Generous: these tests are about output and memory, not time.
        deadline: Duration::from_millis(500),
        memory_bytes: 32 << 20,
        ..Limits::default()
    }
}

fn slow_restarts() -> RestartPolicy {
    RestartPolicy {
        backoff_initial: Duration::from_secs(3600),
        backoff_max: Duration::from_secs(3600),
        ..RestartPolicy::default()
    }
}

fn runner(host: &PluginHost, raw: &Raw) -> Result<PluginRunner, LoadError> {
    let module = host.load(&raw.wasm())?;
    PluginRunner::new(
        host,
        module,
        &[] as &[(&str, &str)],
        limits(),
        slow_restarts(),
    )
}

/// Drives `hostile` beside the healthy module for 30 batches of 4 bars;
/// asserts the neighbour's signals are one per batch and it never faults.
/// `checkpoint` also snapshots both every batch. Returns the hostile
/// runner's health.
fn beside_a_neighbour(hostile: &Raw, checkpoint: bool) -> Health {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let mut bad = runner(&host, hostile).expect("the hostile module loads");
    let mut good = runner(&host, &healthy()).unwrap();
    let bars = candles(120);
    let mut signals = 0;
    for chunk in bars.chunks(4) {
        for c in chunk {
            bad.push(c, &[]);
            good.push(c, &[]);
        }
        let _ = bad.flush();
        let got = good.flush();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bar, 0);
        signals += got.len();
        if checkpoint {
            let _ = bad.checkpoint();
            let _ = good.checkpoint();
        }
    }
    assert_eq!(signals, 30);
    assert_eq!(good.stats().quarantines(), 0);
    bad.health().clone()
}

fn invalid_output(health: &Health) -> String {
    match health {
        Health::Quarantined {
            fault: Fault::InvalidOutput(why),
            ..
        } => why.clone(),
        other => panic!("expected an invalid-output quarantine, got {other:?}"),
    }
}

#[test]
fn the_healthy_raw_module_runs() {
    let h = beside_a_neighbour(&healthy(), true);
    assert_eq!(h, Health::Running);
}

/// A start function that never returns is stopped by the setup deadline
/// (not the per-call one), and the load error says where and which.
#[test]
fn a_start_function_that_never_returns_fails_the_load() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let hung = Raw {
        extra: "(func $spin (loop $l br $l)) (start $spin)".into(),
        ..healthy()
    };
    let module = host.load(&hung.wasm()).unwrap();
    let limits = Limits {
        deadline: Duration::from_millis(1),
        setup_deadline: Duration::from_millis(40),
        ..limits()
    };
    let Err(err) = PluginRunner::new(
        &host,
        module,
        &[] as &[(&str, &str)],
        limits,
        slow_restarts(),
    ) else {
        panic!("a hung start function fails the load");
    };
    match &err {
        LoadError::Faulted {
            stage: "start function",
            fault: Fault::Deadline(d),
        } => assert_eq!(*d, Duration::from_millis(40)),
        other => panic!("expected the setup deadline, got {other:?}"),
    }
    assert!(err.to_string().contains("start function"), "{err}");
}

#[test]
fn a_bad_io_layout_is_refused_at_load() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let cases = [
        // The layout's own address is outside memory.
        Raw {
            io_layout: "i32.const -16".into(),
            ..Raw::default()
        },
        // The input buffer runs past the end of memory.
        Raw {
            layout: [1, 48, 65536 - 64, 64, OUTPUT_AT, 64],
            ..Raw::default()
        },
        // A capacity whose byte size overflows 32 bits.
        Raw {
            layout: [1, 48, INPUT_AT, u32::MAX, OUTPUT_AT, 64],
            ..Raw::default()
        },
        // The output buffer past the end.
        Raw {
            layout: [1, 48, INPUT_AT, 64, OUTPUT_AT, u32::MAX / 40],
            ..Raw::default()
        },
        // Misaligned, wrong stride, wrong version, zero capacity.
        Raw {
            layout: [1, 48, INPUT_AT + 4, 64, OUTPUT_AT, 64],
            ..Raw::default()
        },
        Raw {
            layout: [1, 56, INPUT_AT, 64, OUTPUT_AT, 64],
            ..Raw::default()
        },
        Raw {
            layout: [2, 48, INPUT_AT, 64, OUTPUT_AT, 64],
            ..Raw::default()
        },
        Raw {
            layout: [1, 48, INPUT_AT, 0, OUTPUT_AT, 64],
            ..Raw::default()
        },
    ];
    for (i, raw) in cases.iter().enumerate() {
        match runner(&host, raw) {
            Err(LoadError::Layout(_)) => {}
            other => panic!("case {i}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn a_cw_alloc_pointer_out_of_bounds_is_refused() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    for alloc in [
        "i32.const -8",
        "i32.const 65528",
        "i32.const 0",
        "i32.const 17",
    ] {
        let raw = Raw {
            alloc: alloc.into(),
            ..Raw::default()
        };
        match runner(&host, &raw) {
            Err(LoadError::Faulted {
                stage: "cw_alloc",
                fault: Fault::InvalidOutput(_),
            }) => {}
            other => panic!("{alloc}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn more_signals_than_bars_is_quarantined() {
    let raw = Raw {
        on_batch: "local.get $n i32.const 1 i32.add".into(),
        records: (0..6)
            .map(|bar| Record {
                bar,
                action: 1,
                strength: 0.5,
            })
            .collect(),
        ..Raw::default()
    };
    let why = invalid_output(&beside_a_neighbour(&raw, false));
    assert!(why.contains("signals for"), "{why}");
    // Past the output buffer's capacity, too.
    let raw = Raw {
        on_batch: "i32.const 1000000".into(),
        ..Raw::default()
    };
    invalid_output(&beside_a_neighbour(&raw, false));
}

#[test]
fn records_out_of_order_are_quarantined() {
    let raw = Raw {
        on_batch: "i32.const 2".into(),
        records: vec![
            Record {
                bar: 1,
                action: 1,
                strength: 0.5,
            },
            Record {
                bar: 0,
                action: 2,
                strength: 0.5,
            },
        ],
        ..Raw::default()
    };
    let why = invalid_output(&beside_a_neighbour(&raw, false));
    assert!(why.contains("out of order"), "{why}");
    let repeated = Raw {
        records: vec![
            Record {
                bar: 1,
                action: 1,
                strength: 0.5,
            };
            2
        ],
        ..raw
    };
    invalid_output(&beside_a_neighbour(&repeated, false));
}

/// A module whose `cw_snapshot` answers `packed` (ptr | len << 32).
fn snapshotting(pages: u32, packed: i64) -> Raw {
    Raw {
        pages,
        extra: format!(r#"(func (export "cw_snapshot") (result i64) i64.const {packed})"#),
        ..healthy()
    }
}

#[test]
fn an_out_of_bounds_snapshot_is_quarantined() {
    let packed = (100i64 << 32) | 0xFFFF_0000;
    let why = invalid_output(&beside_a_neighbour(&snapshotting(1, packed), true));
    assert!(why.contains("outside memory"), "{why}");
}

#[test]
fn a_16_mib_snapshot_is_quarantined() {
    // 17 MiB of memory, a 16 MiB snapshot from address 0: in bounds, but
    // over the per-snapshot limit (every stream keeps one, and every
    // checkpoint writes it).
    let packed = (16i64 << 20) << 32;
    let why = invalid_output(&beside_a_neighbour(&snapshotting(272, packed), true));
    assert!(why.contains("over the limit"), "{why}");
}

#[test]
fn a_survived_memory_refusal_does_not_mislabel_a_later_trap() {
    // Call 1 asks for 1 GiB more memory, is refused (-1) and carries on;
    // call 2 traps for an unrelated reason: that is a trap, not the cap.
    let raw = Raw {
        on_batch: "global.get $calls
             (if (result i32)
               (then unreachable)
               (else
                 (drop (memory.grow (i32.const 16384)))
                 (global.set $calls (i32.const 1))
                 (i32.const 0)))"
            .into(),
        ..Raw::default()
    };
    match beside_a_neighbour(&raw, false) {
        Health::Quarantined {
            fault: Fault::Trap(why),
            ..
        } => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("{other:?}"),
    }
}
