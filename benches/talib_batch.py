#!/usr/bin/env python3
"""Time TA-Lib's batch functions over synthetic bars (ns per bar).

Reference point for Candlewick's Rust benches. Pinned like the golden
fixtures: TA-Lib==0.6.8 (bundles TA-Lib C 0.6.4), numpy==2.4.6
(pip install -r tests/golden/requirements.txt).

    python3 benches/talib_batch.py [--bars 1000000] [--runs 5] [--verify N]

Indicator set: sma(20) ema(20) rsi(14) macd(12,26,9) bbands(20,2) atr(14)
stoch(14,3,3) obv adx(14) cci(20), every parameter passed explicitly.
Reports best-of-RUNS wall time per indicator and for the whole set (each set
run calls all ten back to back), divided by the bar count. Only the TA-Lib
calls are timed; bar generation is not.

Synthetic bars (a Rust bench replicates this bit for bit):
    splitmix64, state = 0x5EED, u64 arithmetic mod 2^64
      next(): state += 0x9E3779B97F4A7C15; z = state
              z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
              z = (z ^ (z >> 27)) * 0x94D049BB133111EB
              return z ^ (z >> 31)
      unit(): (next() >> 11) as f64 * 2^-53
    prev_close = 100.0
    for i in 0..n:
      u1, u2, u3, u4 = unit(), unit(), unit(), unit()
      ret = (u1 - 0.5) * 0.002
      open = prev_close; close = prev_close * (1.0 + ret)
      high = max(open, close) * (1.0 + u2 * 0.001)
      low = min(open, close) * (1.0 - u3 * 0.001)
      volume = 100.0 + u4 * 1000.0
      time_ms = 1_600_000_000_000 + i * 60_000
      prev_close = close
"""

import argparse
import os
import platform
import sys
import time

import numpy as np
import talib

SEED = 0x5EED
GAMMA = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
MASK = (1 << 64) - 1
TWO_M53 = 2.0 ** -53


# ---------------------------------------------------------------- scalar reference
class SplitMix64:
    def __init__(self, state=SEED):
        self.state = state

    def next(self):
        self.state = (self.state + GAMMA) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * M1) & MASK
        z = ((z ^ (z >> 27)) * M2) & MASK
        return z ^ (z >> 31)

    def unit(self):
        return float(self.next() >> 11) * TWO_M53


def gen_bars_scalar(n):
    rng = SplitMix64()
    t, o, h, l, c, v = [], [], [], [], [], []
    prev_close = 100.0
    for i in range(n):
        u1, u2, u3, u4 = rng.unit(), rng.unit(), rng.unit(), rng.unit()
        ret = (u1 - 0.5) * 0.002
        op = prev_close
        cl = prev_close * (1.0 + ret)
        t.append(1_600_000_000_000 + i * 60_000)
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) * (1.0 + u2 * 0.001))
        l.append(min(op, cl) * (1.0 - u3 * 0.001))
        v.append(100.0 + u4 * 1000.0)
        prev_close = cl
    return t, o, h, l, c, v


# ---------------------------------------------------------------- vectorised
def gen_bars(n):
    """Bit-identical to gen_bars_scalar, vectorised with numpy uint64."""
    with np.errstate(over="ignore"):
        k = np.arange(1, 4 * n + 1, dtype=np.uint64)
        z = np.uint64(SEED) + k * np.uint64(GAMMA)          # state after k next() calls
        z = (z ^ (z >> np.uint64(30))) * np.uint64(M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(M2)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * TWO_M53  # exact: value < 2^53
    u = u.reshape(n, 4)
    u1, u2, u3, u4 = u[:, 0], u[:, 1], u[:, 2], u[:, 3]
    ret = (u1 - 0.5) * 0.002
    # close[i] = close[i-1] * (1 + ret[i]); multiply.accumulate is a strict
    # left-to-right running product, i.e. the same roundings as the loop.
    factors = np.empty(n + 1)
    factors[0] = 100.0
    factors[1:] = 1.0 + ret
    closes = np.multiply.accumulate(factors)
    open_ = np.ascontiguousarray(closes[:-1])
    close = np.ascontiguousarray(closes[1:])
    high = np.maximum(open_, close) * (1.0 + u2 * 0.001)
    low = np.minimum(open_, close) * (1.0 - u3 * 0.001)
    volume = 100.0 + u4 * 1000.0
    time_ms = 1_600_000_000_000 + np.arange(n, dtype=np.int64) * 60_000
    return time_ms, open_, high, low, close, np.ascontiguousarray(volume)


def verify(n, bars):
    ref = gen_bars_scalar(n)
    for name, a, b in zip(("time", "open", "high", "low", "close", "volume"), ref, bars):
        b = b[:n]
        if name == "time":
            ok = list(map(int, b)) == a
        else:
            ok = np.array_equal(np.array(a, dtype=np.float64).view(np.uint64), b.view(np.uint64))
        if not ok:
            sys.exit(f"vectorised generator differs from scalar reference in {name!r}")


# ---------------------------------------------------------------- benchmark
def indicator_set(h, l, c, v):
    return [
        ("sma(20)", lambda: talib.SMA(c, timeperiod=20)),
        ("ema(20)", lambda: talib.EMA(c, timeperiod=20)),
        ("rsi(14)", lambda: talib.RSI(c, timeperiod=14)),
        ("macd(12,26,9)", lambda: talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)),
        ("bbands(20,2)", lambda: talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)),
        ("atr(14)", lambda: talib.ATR(h, l, c, timeperiod=14)),
        ("stoch(14,3,3)", lambda: talib.STOCH(h, l, c, fastk_period=14, slowk_period=3, slowk_matype=0,
                                              slowd_period=3, slowd_matype=0)),
        ("obv", lambda: talib.OBV(c, v)),
        ("adx(14)", lambda: talib.ADX(h, l, c, timeperiod=14)),
        ("cci(20)", lambda: talib.CCI(h, l, c, timeperiod=20)),
    ]


def main():
    ap = argparse.ArgumentParser(description="TA-Lib batch throughput, ns per bar")
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5, help="best of this many runs (default 5)")
    ap.add_argument("--verify", type=int, default=1000,
                    help="check the first N bars against the scalar generator (default 1000; 0 = skip)")
    args = ap.parse_args()
    n = args.bars
    if n < 100:
        sys.exit("--bars must be at least 100")

    print(f"TA-Lib {talib.__version__} (C library {talib.__ta_version__.decode()}), numpy {np.__version__}, "
          f"Python {platform.python_version()}")
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"machine: {cpu} ({os.cpu_count()} logical CPUs), {platform.system()} {platform.machine()}")

    t0 = time.perf_counter()
    bars = gen_bars(n)
    gen_s = time.perf_counter() - t0
    if args.verify:
        verify(min(args.verify, n), bars)
        print(f"generator: {n} bars in {gen_s:.3f} s; first {min(args.verify, n)} bars bit-identical "
              f"to the scalar reference")
    time_ms, o, h, l, c, v = bars
    print(f"first bar: time_ms={int(time_ms[0])} open={float(o[0])!r} high={float(h[0])!r} "
          f"low={float(l[0])!r} close={float(c[0])!r} volume={float(v[0])!r}")
    print(f"last bar:  close={float(c[-1])!r}")

    inds = indicator_set(h, l, c, v)
    for _, f in inds:  # warm-up (page faults, lazy init)
        f()
    per = {name: float("inf") for name, _ in inds}
    total = float("inf")
    for _ in range(args.runs):
        set_ns = 0
        for name, f in inds:
            s = time.perf_counter_ns()
            f()
            d = time.perf_counter_ns() - s
            set_ns += d
            per[name] = min(per[name], d)
        total = min(total, set_ns)

    print(f"\n{n} bars, best of {args.runs} runs, ns per bar (TA-Lib calls only):")
    for name, _ in inds:
        print(f"  {name:15s} {per[name] / n:8.3f}")
    print(f"  {'sum of bests':15s} {sum(per.values()) / n:8.3f}")
    print(f"  {'TOTAL (set)':15s} {total / n:8.3f}   <- best whole-set run")


if __name__ == "__main__":
    main()
