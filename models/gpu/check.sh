#!/usr/bin/env bash
# GPU check for the models crate, for a machine with CUDA, nvcc and PyTorch
# but no Rust toolchain. Run from the repository root:
#
#   bash models/gpu/check.sh [OUT_DIR]
#
# What it does:
#   1. reports the GPU, driver, nvcc and torch versions;
#   2. runs models/gpu/torch_lstm.py on models/gpu/fixture/ (the bench LSTM's
#      weights and candle's CPU logits and timings, exported on a Rust
#      machine by `cargo run --release -p candlewick-models --example
#      export_lstm -- models/gpu/fixture`): PyTorch's logits on the GPU and
#      CPU are compared with candle's, and the GPU forward is timed.
# What it cannot do: build or run candle's `cuda` feature. That needs cargo
# (absent on that box); on a machine with Rust and nvcc the command is
#   cargo test -p candlewick-models --features cuda --release
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-${OUT:-/tmp/candlewick-gpu}}"
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  nvcc --version | tail -n 2 || true
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} | tee "$OUT/env.txt"
if command -v cargo >/dev/null; then
  echo "cargo found: the candle CUDA path could be built here (not attempted by this script)"
else
  echo "no cargo on this machine: candle's CUDA build is not possible here; comparing PyTorch only"
fi
python3 models/gpu/torch_lstm.py models/gpu/fixture --out "$OUT/torch_lstm.json" | tee "$OUT/torch_lstm.txt"
