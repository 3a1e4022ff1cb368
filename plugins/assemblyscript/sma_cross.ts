// sma_cross in AssemblyScript: buy when the fast SMA crosses above the slow
// one, sell when it crosses below. The same strategy, parameters and
// manifest (sma_cross.manifest.json) as plugins/sma_cross (Rust);
// tests/sdk_languages.rs checks that a backtest gives the same trades.
//
// Says nothing until both SMAs are warm and one cross has been seen (the
// first bar only establishes which side the fast average is on). A tie
// keeps the previous side. The side is snapshotted.
import { Bar, LOG_ERROR, Params, Signal, Strategy, log, register } from "../../sdk/assemblyscript/assembly/index";
export * from "../../sdk/assemblyscript/assembly/exports";

const FAST = 0;
const SLOW = 1;
const UNKNOWN: u8 = 0;
const BELOW: u8 = 1;
const ABOVE: u8 = 2;

class SmaCross extends Strategy {
  side: u8 = UNKNOWN;

  onBar(bar: Bar, out: Signal): bool {
    const fast = bar.indicator(0);
    const slow = bar.indicator(1);
    if (isNaN(fast) || isNaN(slow) || fast == slow) return false;
    const now = fast > slow ? ABOVE : BELOW;
    const before = this.side;
    this.side = now;
    if (before == BELOW && now == ABOVE) {
      out.buy(1.0);
      return true;
    }
    if (before == ABOVE && now == BELOW) {
      out.sell(1.0);
      return true;
    }
    return false;
  }

  snapshot(buf: usize, cap: i32): i32 {
    store<u8>(buf, this.side);
    return 1;
  }

  restore(buf: usize, len: i32): bool {
    const side = load<u8>(buf);
    if (len != 1 || side > ABOVE) return false;
    this.side = side;
    return true;
  }
}

register((p: Params): Strategy | null => {
  if (p.int(FAST) >= p.int(SLOW)) {
    log(LOG_ERROR, "fast must be shorter than slow");
    return null;
  }
  return new SmaCross();
});
