#!/usr/bin/env python3
"""Generate TA-Lib golden fixtures for Candlewick's parity tests.

Pinned versions (see tests/golden/requirements.txt):
    TA-Lib (PyPI wrapper) == 0.6.8   -- its manylinux wheel bundles the TA-Lib C library 0.6.4
    numpy                 == 2.4.6
    Python 3.11.7 was used to generate the committed fixtures.

Install:   pip install -r tests/golden/requirements.txt
Run (from the repository root):
    python3 tests/golden/make_golden.py
which is the same as
    python3 tests/golden/make_golden.py ../shared/data/EURUSD-1h.csv \
        --out tests/golden/EURUSD-1h.talib.csv \
        --micro-input-out tests/golden/EURUSD-1h-micro.csv \
        --micro-out tests/golden/EURUSD-1h-micro.talib.csv

Input CSV dialect: header ``,Open,High,Low,Close,Volume``; first column is a UTC
timestamp ``YYYY-MM-DD HH:MM:SS``.

Output CSV: header ``time,<col>,...``; ``time`` is epoch milliseconds UTC (integer).
One column per indicator output, named exactly by the spec item text (with a
``.field`` suffix for multi-output indicators, e.g. ``macd(12,26,9).signal``).
Column names containing commas are double-quoted per RFC 4180 (Python csv,
QUOTE_MINIMAL). Values use ``format(v, '.17g')``; NaN (TA-Lib warm-up) is an
empty cell. One output row per input row.

A second "low-priced asset" fixture scales open/high/low/close by 1e-6 (volume
unchanged) to guard TA-Lib's ~1e-14 zero threshold. The scaled input is written
too (prices via repr(), so it round-trips bit-exactly) and the fixture is
computed from that file as re-read, i.e. from exactly what a consumer parses.

Never uses talib.stream.* (it re-seeds recursive indicators).
"""

import argparse
import csv
import math
import os
import re
import sys
from datetime import datetime, timezone

import numpy as np
import talib

SPEC = (
    "sma(20) sma(5) ema(20) ema(50) wma(20) dema(20) tema(20) rsi(14) rsi(2) "
    "macd(12,26,9) macd(5,35,5) bbands(20,2) bbands(10,1.5) atr(14) natr(14) "
    "stoch(14,3,3) stochrsi(14,14,3) willr(14) cci(20) adx(14) plus_di(14) "
    "minus_di(14) obv mfi(14) roc(10) mom(10) stddev(20) stddev(10,2)"
)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
INPUT_HEADER = ["", "Open", "High", "Low", "Close", "Volume"]
MICRO_SCALE = 1e-6


def _int(s):
    v = float(s)
    if v != int(v):
        raise ValueError(f"expected an integer period, got {s!r}")
    return int(v)


def compute_item(item, o, h, l, c, v):
    """Return a list of (column_name, ndarray) for one spec item."""
    m = re.fullmatch(r"([a-z_]+)(?:\(([^)]*)\))?", item)
    if not m:
        raise ValueError(f"bad spec item {item!r}")
    name = m.group(1)
    args = [a.strip() for a in m.group(2).split(",")] if m.group(2) else []

    def one(arr):
        return [(item, arr)]

    def many(fields, arrs):
        return [(f"{item}.{f}", a) for f, a in zip(fields, arrs)]

    if name in ("sma", "ema", "wma", "dema", "tema"):
        (n,) = args
        fn = getattr(talib, name.upper())
        return one(fn(c, timeperiod=_int(n)))
    if name in ("rsi", "roc", "mom"):
        (n,) = args
        return one(getattr(talib, name.upper())(c, timeperiod=_int(n)))
    if name == "macd":
        f, s, g = args
        return many(("macd", "signal", "hist"),
                    talib.MACD(c, fastperiod=_int(f), slowperiod=_int(s), signalperiod=_int(g)))
    if name == "bbands":
        n, k = args
        k = float(k)
        return many(("upper", "middle", "lower"),
                    talib.BBANDS(c, timeperiod=_int(n), nbdevup=k, nbdevdn=k, matype=0))
    if name in ("atr", "natr", "willr", "cci", "adx", "plus_di", "minus_di"):
        (n,) = args
        return one(getattr(talib, name.upper())(h, l, c, timeperiod=_int(n)))
    if name == "stoch":
        fk, sk, sd = args
        return many(("k", "d"),
                    talib.STOCH(h, l, c, fastk_period=_int(fk), slowk_period=_int(sk), slowk_matype=0,
                                slowd_period=_int(sd), slowd_matype=0))
    if name == "stochrsi":
        n, fk, fd = args
        return many(("k", "d"),
                    talib.STOCHRSI(c, timeperiod=_int(n), fastk_period=_int(fk), fastd_period=_int(fd),
                                   fastd_matype=0))
    if name == "obv":
        assert not args
        return one(talib.OBV(c, v))
    if name == "mfi":
        (n,) = args
        return one(talib.MFI(h, l, c, v, timeperiod=_int(n)))
    if name == "stddev":
        n = args[0]
        k = float(args[1]) if len(args) > 1 else 1.0
        return one(talib.STDDEV(c, timeperiod=_int(n), nbdev=k))
    raise ValueError(f"unknown indicator {name!r}")


def parse_ts_ms(s):
    dt = datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000


def read_input(path):
    """Return (raw_rows, times_ms, o, h, l, c, v). raw_rows keeps the text cells."""
    with open(path, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        if [x.strip() for x in header] != INPUT_HEADER:
            raise ValueError(f"{path}: unexpected header {header!r}")
        raw = [row for row in rd if row]
    times = np.array([parse_ts_ms(r[0]) for r in raw], dtype=np.int64)
    cols = [np.array([float(r[i]) for r in raw], dtype=np.float64) for i in range(1, 6)]
    if not np.all(np.diff(times) > 0):
        raise ValueError(f"{path}: timestamps not strictly increasing")
    for a in cols:
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: non-finite input value")
    return (raw, times, *cols)


def fmt(x):
    return "" if math.isnan(x) else format(x, ".17g")


def write_fixture(path, times, o, h, l, c, v):
    columns = []
    for item in SPEC.split():
        columns.extend(compute_item(item, o, h, l, c, v))
    names = [n for n, _ in columns]
    assert len(set(names)) == len(names), "duplicate column names"
    for n, a in columns:
        assert len(a) == len(times), n
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time"] + names)
        for i in range(len(times)):
            w.writerow([str(int(times[i]))] + [fmt(float(a[i])) for _, a in columns])
    return columns


def write_micro_input(path, raw, o, h, l, c):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(INPUT_HEADER)
        for i, r in enumerate(raw):
            w.writerow([r[0],
                        repr(float(o[i]) * MICRO_SCALE), repr(float(h[i]) * MICRO_SCALE),
                        repr(float(l[i]) * MICRO_SCALE), repr(float(c[i]) * MICRO_SCALE),
                        r[5]])


def warmups(columns):
    out = []
    for n, a in columns:
        idx = np.flatnonzero(~np.isnan(a))
        first = int(idx[0]) if idx.size else None
        # No NaN may appear after the first value (the input is NaN-free).
        if first is not None:
            assert not np.isnan(a[first:]).any(), f"{n}: NaN after warm-up"
        out.append((n, first))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", default="../shared/data/EURUSD-1h.csv",
                    help="input OHLCV CSV (relative paths are relative to the repo root)")
    ap.add_argument("--out", default="tests/golden/EURUSD-1h.talib.csv")
    ap.add_argument("--micro-input-out", default="tests/golden/EURUSD-1h-micro.csv")
    ap.add_argument("--micro-out", default="tests/golden/EURUSD-1h-micro.talib.csv")
    ap.add_argument("--no-micro", action="store_true", help="skip the 1e-6 scaled fixture")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)

    def rp(p):
        return p if os.path.isabs(p) else os.path.join(REPO_ROOT, p)

    print(f"TA-Lib {talib.__version__} (C {talib.__ta_version__.decode()}), numpy {np.__version__}",
          file=sys.stderr)
    raw, t, o, h, l, c, v = read_input(rp(args.input))
    cols = write_fixture(rp(args.out), t, o, h, l, c, v)
    print(f"wrote {args.out}: {len(t)} rows, {len(cols)} columns", file=sys.stderr)
    if not args.quiet:
        for n, first in warmups(cols):
            print(f"  {n:28s} first value at index {first}", file=sys.stderr)

    if not args.no_micro:
        write_micro_input(rp(args.micro_input_out), raw, o, h, l, c)
        raw_m, t_m, o_m, h_m, l_m, c_m, v_m = read_input(rp(args.micro_input_out))
        assert np.array_equal(t_m, t) and np.array_equal(v_m, v)
        assert np.array_equal(c_m, c * MICRO_SCALE) and np.array_equal(h_m, h * MICRO_SCALE)
        cols_m = write_fixture(rp(args.micro_out), t_m, o_m, h_m, l_m, c_m, v_m)
        print(f"wrote {args.micro_input_out} and {args.micro_out}: {len(t_m)} rows, {len(cols_m)} columns",
              file=sys.stderr)
        if not args.quiet:
            wa, wb = dict(warmups(cols)), dict(warmups(cols_m))
            for n in wa:
                if wa[n] != wb[n]:
                    print(f"  micro warm-up differs: {n}: {wa[n]} vs {wb[n]}", file=sys.stderr)


if __name__ == "__main__":
    main()
