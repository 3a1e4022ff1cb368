#!/usr/bin/env python3
"""Reference numbers for Candlewick's backtest engine, from backtesting.py.

Runs backtesting.py's SmaCross example (the README strategy: SMA(10) and
SMA(20) of the close; on a cross, `position.close()` then `buy()`/`sell()`,
so always in the market after the first cross) on `data/EURUSD-1h.csv` and
writes what Candlewick must reproduce:

    fixtures/sma_cross_eurusd_trades.csv   one row per trade
    fixtures/sma_cross_eurusd_stats.json   the statistics, final equity included

With a data file and a name (`make_reference.py DATA.csv NAME`), the same
for that file as `fixtures/sma_cross_NAME_{trades.csv,stats.json}`, plus
`fixtures/sma_cross_NAME_equity.csv` (equity at every bar's close): the
NYSE daily file (`ACME-1d.csv`, holidays and half-days) is made so.

Settings: cash 10 000, commission 0.001 (= `--fee-bps 10`), no spread,
market orders filled at the next bar's open (`trade_on_close=False`),
whole units (backtesting.py's only mode; Candlewick's `--lot-size 1`),
default order size (`1 - sys.float_info.epsilon` of available margin in
0.6.x), and `finalize_trades=True` (the trade still open at the end is
closed by a market order filled at the *last bar's open*; Candlewick's
`EndOfData::CloseAtLastOpen`).

Usage (pinned version; reruns are byte-identical):

    python -m venv /tmp/bt && /tmp/bt/bin/pip install backtesting==0.6.6
    /tmp/bt/bin/python tests/backtest/make_reference.py [DATA.csv NAME [FAST SLOW]]
    /tmp/bt/bin/python tests/backtest/make_reference.py tests/backtest/fixtures/ACME-1d.csv nyse_daily 10 30

SMA(10/30) on the NYSE file: with cent prices, SMA(10) and SMA(20) are
exactly equal on one bar (2020-07-22), and backtesting.py's `crossover`
(`a[-2] < b[-2] and a[-1] > b[-1]`) does not count a cross that passes
through an exact tie, while the sma_cross plugin does; 10/30 has no tie.
"""
import json
import math
import sys
import warnings
from pathlib import Path

import pandas as pd
import backtesting
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA

PINNED = "0.6.6"
HERE = Path(__file__).resolve().parent
FEE = 0.001
CASH = 10_000


class SmaCross(Strategy):
    n1 = 10
    n2 = 20

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, self.n1)
        self.sma2 = self.I(SMA, close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


def plain(v):
    """A JSON value for one statistic: numbers as floats (NaN as null),
    timestamps and durations as pandas prints them."""
    if isinstance(v, (pd.Timestamp, pd.Timedelta)):
        return str(v)
    if isinstance(v, (int, float)) or hasattr(v, "item"):
        f = float(v)
        return None if math.isnan(f) else f
    return str(v)


def main():
    if backtesting.__version__ != PINNED:
        sys.exit(f"backtesting.py {PINNED} is pinned, found {backtesting.__version__}")
    root = HERE.parent.parent
    data_path = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else root / "data" / "EURUSD-1h.csv"
    name = sys.argv[2] if len(sys.argv) > 2 else "eurusd"
    if len(sys.argv) > 4:
        SmaCross.n1, SmaCross.n2 = int(sys.argv[3]), int(sys.argv[4])
    data = pd.read_csv(data_path, index_col=0, parse_dates=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(data, SmaCross, cash=CASH, commission=FEE, finalize_trades=True)
        stats = bt.run()

    out = HERE / "fixtures"
    out.mkdir(exist_ok=True)
    trades = stats["_trades"]
    cols = ["EntryBar", "ExitBar", "Size", "EntryPrice", "ExitPrice", "PnL", "Commission", "ReturnPct"]
    with open(out / f"sma_cross_{name}_trades.csv", "w") as f:
        f.write("entry_bar,exit_bar,size,entry_price,exit_price,pnl,commission,return_pct\n")
        for row in trades[cols].itertuples(index=False):
            f.write(",".join(repr(float(x)) if isinstance(x, float) else str(int(x)) for x in row) + "\n")

    skip = {"_strategy", "_equity_curve", "_trades"}
    doc = {
        "generator": f"backtesting.py {backtesting.__version__}, pandas {pd.__version__}",
        "data": str(data_path.relative_to(root)) if data_path.is_relative_to(root) else str(data_path),
        "settings": {"cash": CASH, "commission": FEE, "spread": 0.0, "finalize_trades": True,
                     "trade_on_close": False, "n1": SmaCross.n1, "n2": SmaCross.n2},
        "stats": {k: plain(v) for k, v in stats.items() if k not in skip},
    }
    with open(out / f"sma_cross_{name}_stats.json", "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    if name != "eurusd":
        with open(out / f"sma_cross_{name}_equity.csv", "w") as f:
            f.write("bar,equity\n")
            for i, e in enumerate(stats["_equity_curve"]["Equity"]):
                f.write(f"{i},{float(e)!r}\n")
    print(stats.drop(list(skip)).to_string())


if __name__ == "__main__":
    main()
