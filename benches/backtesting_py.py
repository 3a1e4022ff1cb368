#!/usr/bin/env python3
"""backtesting.py on the job `benches/backtest.rs` times, for the ratio.

Generates the same 300k synthetic 1-minute bars as `synthetic_bars` in
benches/lib.rs (splitmix64, seed 0x5EED) and runs backtesting.py 0.6.6's
SmaCross (SMA 10/20, close and reverse on a cross, commission 0.001,
whole units). Prints bars per second of `Backtest.run` (best of 3).

    /tmp/bt/bin/pip install backtesting==0.6.6
    /tmp/bt/bin/python benches/backtesting_py.py [N_BARS]
"""
import sys
import time
import warnings

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA

MASK = (1 << 64) - 1


def synthetic_bars(n):
    state = 0x5EED
    def nxt():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)
    unit = lambda: (nxt() >> 11) * (1.0 / (1 << 53))
    rows, prev = [], 100.0
    for _ in range(n):
        u1, u2, u3, u4 = unit(), unit(), unit(), unit()
        o = prev
        c = prev * (1.0 + (u1 - 0.5) * 0.002)
        prev = c
        rows.append((o, max(o, c) * (1.0 + u2 * 0.001), min(o, c) * (1.0 - u3 * 0.001), c, 100.0 + u4 * 1000.0))
    idx = pd.to_datetime(1_600_000_000_000 + np.arange(n, dtype=np.int64) * 60_000, unit="ms")
    return pd.DataFrame(rows, columns=["Open", "High", "Low", "Close", "Volume"], index=idx)


class SmaCross(Strategy):
    def init(self):
        self.a = self.I(SMA, self.data.Close, 10)
        self.b = self.I(SMA, self.data.Close, 20)

    def next(self):
        if crossover(self.a, self.b):
            self.position.close(); self.buy()
        elif crossover(self.b, self.a):
            self.position.close(); self.sell()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    data = synthetic_bars(n)
    best = float("inf")
    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(data, SmaCross, cash=10_000, commission=0.001, finalize_trades=True)
            t = time.perf_counter()
            stats = bt.run()
            best = min(best, time.perf_counter() - t)
    print(f"backtesting.py: {n} bars in {best:.3f} s = {n / best:,.0f} bars/s ({stats['# Trades']} trades)")


if __name__ == "__main__":
    main()
