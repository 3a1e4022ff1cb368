#!/usr/bin/env python3
"""vectorbt as a user runs it on the same job: read a CSV, SMA(10/20)
crosses as long and short entries (always in the market after the first
cross), orders filled at the next bar's open, fee 0.001, print the
statistics. Timed as a whole process, imports and numba's compilation
(cached on disk after the first run) included. vectorbt sizes in
fractional units, so its trades differ from backtesting.py's in size, not
in timing.

    python benches/process/vectorbt_process.py DATA.csv
"""
import sys
import warnings

import numpy as np
import pandas as pd
import vectorbt as vbt


def main():
    data = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)
    close, open_ = data["Close"], data["Open"]
    fast = vbt.MA.run(close, 10)
    slow = vbt.MA.run(close, 20)
    up = fast.ma_crossed_above(slow)
    down = fast.ma_crossed_below(slow)
    # Decided on a bar's close, filled at the next bar's open.
    price = open_.shift(-1).fillna(close)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pf = vbt.Portfolio.from_signals(
            close, entries=up, short_entries=down, price=price,
            fees=0.001, init_cash=10_000, size=np.inf, freq="1min",
        )
        print(pf.stats().to_string())


if __name__ == "__main__":
    main()
