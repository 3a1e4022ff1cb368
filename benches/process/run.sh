#!/usr/bin/env bash
# Whole processes, side by side: `candlewick backtest` (from CSV and from
# Parquet), backtesting.py and vectorbt, on the same synthetic one-minute
# bars, SMA(10/20) always in the market, fee 10 bps. hyperfine times each
# (one warm-up run: caches warm, numba's compiled code on disk).
#
#   python -m venv /tmp/bt && /tmp/bt/bin/pip install backtesting==0.6.6 vectorbt==1.2.0
#   PY=/tmp/bt/bin/python benches/process/run.sh [1000000 3000000]
#
# Each run starts ISOLATE seconds (default 3) after the one before, as a
# user's runs do: on a VM whose host reclaims the memory a guest frees,
# back-to-back runs reuse warm memory a lone run does not get (see
# benches/README.md, "Whole processes"). ISOLATE=0 runs them back to back.
#
# Needs hyperfine (apt-get install hyperfine), the release binary
# (`cargo build --release`) and the plugins (scripts/build-plugins).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
py="${PY:-/tmp/bt/bin/python}"
bin="$CARGO_TARGET_DIR/release/candlewick"
plugin="target/wasm/wasm32-unknown-unknown/release/sma_cross.wasm"
work="${WORK:-/tmp/candlewick-process-bench}"
runs="${RUNS:-3}"
isolate="${ISOLATE:-3}"
mkdir -p "$work"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 3000000)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${sizes[@]}"; do
    csv="$work/bars-$n.csv"
    pq="$work/bars-$n.parquet"
    [ -f "$csv" ] || "$py" benches/process/make_bars.py "$n" "$csv"
    [ -f "$pq" ] || "$bin" import --data "$csv" --out "$pq" >/dev/null
    common="--strategy $plugin --lot-size 1 --fee-bps 10 --end-at open"
    hyperfine --warmup 1 --runs "$runs" --style basic --prepare "sleep $isolate" \
        --export-markdown "$work/result-$n.md" \
        -n "candlewick csv" "$bin backtest --data $csv $common --out $work/out-csv" \
        -n "candlewick parquet" "$bin backtest --data $pq $common --out $work/out-pq" \
        -n "candlewick parquet, equity.csv" "$bin backtest --data $pq $common --equity-format csv --out $work/out-pq-csv" \
        -n "backtesting.py" "$py benches/process/backtesting_py_process.py $csv" \
        -n "vectorbt" "$py benches/process/vectorbt_process.py $csv"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    ls -l "$work"/out-pq/ "$work"/out-pq-csv/equity.csv
done
