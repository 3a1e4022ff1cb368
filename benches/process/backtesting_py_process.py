#!/usr/bin/env python3
"""backtesting.py as a user runs it: read a CSV, backtest SmaCross (SMA
10/20, close and reverse on a cross, commission 0.001, whole units, the
last trade closed at the last open), print the statistics. Timed as a
whole process, imports included.

    python benches/process/backtesting_py_process.py DATA.csv
"""
import sys
import warnings

import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA


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
    data = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, SmaCross, cash=10_000, commission=0.001, finalize_trades=True)
        stats = bt.run()
    print(stats.drop(["_strategy", "_equity_curve", "_trades"]).to_string())


if __name__ == "__main__":
    main()
