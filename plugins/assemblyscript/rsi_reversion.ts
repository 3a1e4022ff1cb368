// rsi_reversion in AssemblyScript: buy when RSI climbs back above the
// oversold line, sell when it falls back below the overbought line. The
// same strategy, parameters and manifest (rsi_reversion.manifest.json) as
// plugins/rsi_reversion (Rust).
//
// A signal fires on the bar where RSI crosses back into the middle band.
// Strength grows with how deep the extreme went, capped at 1. The state
// (previous RSI and the extreme seen since) is snapshotted.
import { Bar, LOG_ERROR, Params, Signal, Strategy, getF64, log, putF64, register } from "../../sdk/assemblyscript/assembly/index";
export * from "../../sdk/assemblyscript/assembly/exports";

const LOWER = 1;
const UPPER = 2;

/** The depth of the excursion, 0 when there was none (NaN). */
function depthOrZero(d: f64): f64 {
  return d > 0.0 ? d : 0.0;
}

/** Rust's f64::clamp: NaN stays NaN. */
function clamp01(v: f64): f64 {
  if (v < 0.0) v = 0.0;
  if (v > 1.0) v = 1.0;
  return v;
}

class RsiReversion extends Strategy {
  /** Previous RSI, NaN before the first. */
  prev: f64 = NaN;
  /** Most extreme RSI since it left the middle band, or NaN. */
  extreme: f64 = NaN;

  constructor(public lower: f64, public upper: f64) {
    super();
  }

  onBar(bar: Bar, out: Signal): bool {
    const rsi = bar.indicator(0);
    if (isNaN(rsi)) return false;
    const before = this.prev;
    this.prev = rsi;
    let fired = false;
    // The extreme is that of the excursion before this bar.
    if (!isNaN(before) && before < this.lower && rsi >= this.lower) {
      const depth = depthOrZero((this.lower - this.extreme) / (this.lower > 1.0 ? this.lower : 1.0));
      this.extreme = NaN;
      out.buy(clamp01(0.5 + depth));
      fired = true;
    } else if (!isNaN(before) && before > this.upper && rsi <= this.upper) {
      const room = 100.0 - this.upper;
      const depth = depthOrZero((this.extreme - this.upper) / (room > 1.0 ? room : 1.0));
      this.extreme = NaN;
      out.sell(clamp01(0.5 + depth));
      fired = true;
    }
    // Then this bar joins the current excursion.
    if (rsi < this.lower) {
      if (isNaN(this.extreme) || rsi < this.extreme) this.extreme = rsi;
    } else if (rsi > this.upper) {
      if (isNaN(this.extreme) || rsi > this.extreme) this.extreme = rsi;
    }
    return fired;
  }

  snapshot(buf: usize, cap: i32): i32 {
    putF64(buf, this.prev);
    putF64(buf + 8, this.extreme);
    return 16;
  }

  restore(buf: usize, len: i32): bool {
    if (len != 16) return false;
    this.prev = getF64(buf);
    this.extreme = getF64(buf + 8);
    return true;
  }
}

register((p: Params): Strategy | null => {
  const lower = p.float(LOWER);
  const upper = p.float(UPPER);
  if (!(lower < upper)) {
    log(LOG_ERROR, "lower must be below upper");
    return null;
  }
  return new RsiReversion(lower, upper);
});
