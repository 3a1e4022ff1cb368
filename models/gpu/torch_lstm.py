#!/usr/bin/env python3
"""The candle LSTM's weights in PyTorch on the GPU: outputs and timings.

    python3 models/gpu/torch_lstm.py DIR [--iters 50]

DIR is what `cargo run --release -p candlewick-models --example export_lstm
-- DIR` wrote on a machine with Rust (models/gpu/fixture/ is a committed
copy): the weights, candle's CPU logits for batch 1, 32, 256, 1024 and
candle's CPU median times. This script loads the same weights into
torch.nn.LSTM (gate order permuted from our i,f,o,g to PyTorch's i,f,g,o),
regenerates the same inputs, compares PyTorch's logits with candle's (on the
GPU with TF32 off, and on the CPU), and times the GPU forward with CUDA
events. It does NOT run candle on the GPU: that needs a Rust toolchain to
build the `cuda` feature, which the GPU box lacks.
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

BATCHES = [1, 32, 256, 1024]
T, F, H, LAYERS, CLASSES = 60, 16, 64, 2, 3
TOL_CPU, TOL_GPU = 1e-5, 1e-4


def load_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dt = {"F32": np.float32, "F64": np.float64}[meta["dtype"]]
        out[name] = np.frombuffer(body[a:b], dtype=dt).reshape(meta["shape"]).copy()
    return out


def make_input(b):
    i = np.arange(b * T * F, dtype=np.uint64)
    x = ((i * np.uint64(2654435761)) % np.uint64(4096)).astype(np.float32) / np.float32(1024.0)
    return (x - np.float32(2.0)).reshape(b, T, F)


def regate(w, order):
    blocks = dict(zip("ifog", np.split(w, 4, axis=0)))
    return np.concatenate([blocks[g] for g in order], axis=0)


class Net(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.lstm = torch.nn.LSTM(F, H, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(H, CLASSES)
        with torch.no_grad():
            for l in range(LAYERS):
                getattr(self.lstm, f"weight_ih_l{l}").copy_(torch.from_numpy(regate(w[f"lstm.{l}.w_ih"], "ifgo")))
                getattr(self.lstm, f"weight_hh_l{l}").copy_(torch.from_numpy(regate(w[f"lstm.{l}.w_hh"], "ifgo")))
                getattr(self.lstm, f"bias_ih_l{l}").copy_(torch.from_numpy(regate(w[f"lstm.{l}.bias"], "ifgo")))
                getattr(self.lstm, f"bias_hh_l{l}").zero_()
            self.head.weight.copy_(torch.from_numpy(w["head.weight"]))
            self.head.bias.copy_(torch.from_numpy(w["head.bias"]))

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--out", default=None, help="write results as JSON here")
    args = ap.parse_args()
    d = Path(args.dir)
    w = load_safetensors(d / "weights.safetensors")
    candle_ms = {int(k): v for k, v in json.loads((d / "candle_timings.json").read_text()).items()}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu = Net(w).eval()
    gpu = Net(w).eval().cuda() if torch.cuda.is_available() else None
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, device {torch.cuda.get_device_name(0) if gpu else 'none'}")
    print(f"{'batch':>5} {'|cpu-candle|':>12} {'|gpu-candle|':>12} {'gpu ms':>9} {'candle cpu ms':>13}")
    results, failed = [], False
    for b in BATCHES:
        x = make_input(b)
        want = np.fromfile(d / f"candle_{b}.f32", dtype="<f4").reshape(b, CLASSES)
        with torch.no_grad():
            d_cpu = float(np.max(np.abs(cpu(torch.from_numpy(x)).numpy() - want)))
            failed |= d_cpu > TOL_CPU
            row = {"batch": b, "cpu_diff": d_cpu, "candle_cpu_ms": candle_ms.get(b)}
            if gpu is not None:
                xg = torch.from_numpy(x).cuda()
                d_gpu = float(np.max(np.abs(gpu(xg).cpu().numpy() - want)))
                failed |= d_gpu > TOL_GPU
                for _ in range(5):
                    gpu(xg)
                torch.cuda.synchronize()
                times = []
                for _ in range(args.iters):
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    gpu(xg)
                    e.record()
                    torch.cuda.synchronize()
                    times.append(s.elapsed_time(e))
                row.update(gpu_diff=d_gpu, gpu_ms=float(np.median(times)))
        results.append(row)
        g = f"{row.get('gpu_diff', float('nan')):>12.2e} {row.get('gpu_ms', float('nan')):>9.3f}"
        print(f"{b:>5} {d_cpu:>12.2e} {g} {candle_ms.get(b, float('nan')):>13.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        print(f"outputs differ beyond tolerance (cpu {TOL_CPU}, gpu {TOL_GPU})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
