// The AssemblyScript SDK for Candlewick strategy plugins (ABI v1, ../ABI.md).
//
// A plugin's entry file re-exports the ABI functions and registers its
// strategy:
//
//   import { Bar, Params, Signal, Strategy, register } from "<sdk>/assembly/index";
//   export * from "<sdk>/assembly/exports";
//
//   class UpClose extends Strategy {
//     onBar(bar: Bar, out: Signal): bool {
//       if (bar.close <= bar.open) return false;
//       out.buy(1.0);
//       return true;
//     }
//   }
//   register((p: Params): Strategy | null => new UpClose());
//
// The manifest (../ABI.md §2) is a JSON file beside the source,
// NAME.manifest.json; `bin/cw-build.js` compiles with asc and appends it as
// the `cw_manifest` custom section (AssemblyScript has no custom sections).
//
// Nothing allocates per bar: the runtime is `stub` (a bump allocator that
// never frees), so the one Bar and one Signal below are reused for every
// bar, and the strategy is allocated once, at init. Buffers are static
// (memory.data).

// ---- Tunables --------------------------------------------------------------

/** Bars the input buffer holds (the host splits larger batches). */
export const BATCH_CAPACITY: i32 = 64;
/** Indicator columns + model outputs per bar this SDK accepts. */
export const MAX_VALUES: i32 = 16;
/** Parameters this SDK accepts. */
export const MAX_PARAMS: i32 = 32;
/** Largest snapshot, in bytes. */
export const SNAPSHOT_MAX: i32 = 1024;

// ---- Codes and actions --------------------------------------------------------

export const ABI_VERSION: i32 = 1;
export const OK: i32 = 0;
export const ERR_BAD_INPUT: i32 = -1;
export const ERR_INIT_FAILED: i32 = -2;
export const ERR_NOT_INITIALISED: i32 = -3;
export const ERR_BATCH_TOO_LARGE: i32 = -4;
export const ERR_RESTORE_REJECTED: i32 = -5;
export const ERR_NO_SNAPSHOT: i32 = -6;

export const HOLD: u32 = 0;
export const BUY: u32 = 1;
export const SELL: u32 = 2;
export const EXIT: u32 = 3;

// Record sizes (../ABI.md §3): init header 16, io layout 24, bar header 48,
// signal record 40 bytes; offsets are spelled out where they are read.
export const BAR_HEADER_SIZE: i32 = 48;
export const SIGNAL_RECORD_SIZE: i32 = 40;

// ---- Host imports -------------------------------------------------------------

@external("cw", "log")
declare function cw_log(level: i32, ptr: usize, len: i32): void;
@external("cw", "metric")
declare function cw_metric(ptr: usize, len: i32, value: f64): void;
@external("cw", "now_ms")
declare function cw_now_ms(): i64;

export const LOG_ERROR: i32 = 0;
export const LOG_WARN: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_DEBUG: i32 = 3;

/** One log line (allocates its UTF-8 copy: call it rarely, e.g. when init refuses). */
export function log(level: i32, text: string): void {
  const utf8 = String.UTF8.encode(text);
  cw_log(level, changetype<usize>(utf8), utf8.byteLength);
}

/** Sets the plugin's gauge `name` (allocates: call it rarely). */
export function metric(name: string, value: f64): void {
  const utf8 = String.UTF8.encode(name);
  cw_metric(changetype<usize>(utf8), utf8.byteLength, value);
}

/** Event time of the current call (the newest bar's open time), ms. */
export function nowMs(): i64 {
  return cw_now_ms();
}

// ---- What a strategy sees ---------------------------------------------------------

/** The checked parameter values, in manifest order (ints whole, bools 0 or 1). */
export class Params {
  constructor(public ptr: usize, public count: i32) {}

  float(i: i32): f64 {
    return i >= 0 && i < this.count ? load<f64>(this.ptr + (<usize>i << 3)) : NaN;
  }

  int(i: i32): i64 {
    const v = this.float(i);
    return isNaN(v) ? 0 : <i64>v;
  }

  bool(i: i32): bool {
    return this.float(i) != 0.0;
  }
}

/** One closed bar: OHLCV and its values (indicator columns, then model
 * outputs). NaN means "not available" (warming up, or no model output). */
export class Bar {
  ptr: usize = 0;
  index: i32 = 0;
  nValues: i32 = 0;
  nModels: i32 = 0;

  get time(): i64 { return load<i64>(this.ptr); }
  get open(): f64 { return load<f64>(this.ptr, 8); }
  get high(): f64 { return load<f64>(this.ptr, 16); }
  get low(): f64 { return load<f64>(this.ptr, 24); }
  get close(): f64 { return load<f64>(this.ptr, 32); }
  get volume(): f64 { return load<f64>(this.ptr, 40); }

  /** Indicator column `i`: NaN while warming up or past the end. */
  indicator(i: i32): f64 {
    return i >= 0 && i < this.nValues - this.nModels
      ? load<f64>(this.ptr + BAR_HEADER_SIZE + (<usize>i << 3))
      : NaN;
  }

  /** Model output `i`: NaN when absent. */
  model(i: i32): f64 {
    return i >= 0 && i < this.nModels
      ? load<f64>(this.ptr + BAR_HEADER_SIZE + (<usize>(this.nValues - this.nModels + i) << 3))
      : NaN;
  }
}

/** What a strategy says about a bar; filled by `onBar`. Strength finite in
 * [-1, 1]; stops NaN for none. */
export class Signal {
  action: u32 = HOLD;
  strength: f64 = 0.0;
  stopLoss: f64 = NaN;
  takeProfit: f64 = NaN;
  tag: u32 = 0;

  set(action: u32, strength: f64): Signal {
    this.action = action;
    this.strength = strength;
    this.stopLoss = NaN;
    this.takeProfit = NaN;
    this.tag = 0;
    return this;
  }
  buy(strength: f64): Signal { return this.set(BUY, strength); }
  sell(strength: f64): Signal { return this.set(SELL, strength); }
  exit(): Signal { return this.set(EXIT, 0.0); }
}

/** A strategy: state that sees closed bars in time order. Override
 * `onBar`; override `snapshot` and `restore` to keep state across a restart
 * or reload. */
export class Strategy {
  /** Looks at one bar; fills `out` and returns true to signal. */
  onBar(bar: Bar, out: Signal): bool {
    return false;
  }

  /** Writes the state at `buf` (at most `cap` bytes); returns its length,
   * or -1 to keep none. */
  snapshot(buf: usize, cap: i32): i32 {
    return -1;
  }

  /** Takes a state written by `snapshot` (maybe an older version's). */
  restore(buf: usize, len: i32): bool {
    return false;
  }
}

/** Makes the strategy from its parameters; null (after `log(LOG_ERROR, ..)`)
 * refuses them. */
export type Factory = (params: Params) => Strategy | null;

// ---- The runtime behind ./exports.ts ------------------------------------------------

const STRIDE_MAX: i32 = BAR_HEADER_SIZE + 8 * MAX_VALUES;
const SCRATCH_BYTES: i32 = 16 + 8 * MAX_PARAMS > SNAPSHOT_MAX ? 16 + 8 * MAX_PARAMS : SNAPSHOT_MAX;

export const scratch: usize = memory.data(SCRATCH_BYTES, 8);
export const scratchBytes: i32 = SCRATCH_BYTES;
export const params: usize = memory.data(8 * MAX_PARAMS, 8);
export const input: usize = memory.data(BATCH_CAPACITY * STRIDE_MAX, 8);
export const output: usize = memory.data(BATCH_CAPACITY * SIGNAL_RECORD_SIZE, 8);
export const snap: usize = memory.data(SNAPSHOT_MAX, 8);
export const layout: usize = memory.data(24, 8);

class State {
  factory: Factory | null = null;
  strategy: Strategy | null = null;
  bar: Bar = new Bar();
  signal: Signal = new Signal();
  stride: i32 = 0;
}

export const state = new State();

/** Registers the strategy's factory; call once, at the top level of the entry file. */
export function register(factory: Factory): void {
  state.factory = factory;
}

/** Little-endian helpers for snapshots. */
export function putF64(at: usize, v: f64): void { store<f64>(at, v); }
export function getF64(at: usize): f64 { return load<f64>(at); }
