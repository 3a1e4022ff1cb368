#!/usr/bin/env python3
"""The candle LSTM beside ONNX Runtime's CPU provider, same weights.

    cargo run --release -p candlewick-models --example export_lstm -- DIR
    python3 benches/onnx_lstm.py DIR [--iters 30]

DIR comes from the example: the network's weights (gate order i,f,o,g),
candle's logits for batch 1, 32, 256 and 1024, and candle's median forward
times measured in that run on this machine. This script builds the same
network as an ONNX graph with onnx.helper (Transpose -> LSTM -> Squeeze ->
LSTM -> Squeeze -> Gemm), checks ORT's logits against candle's to 1e-5, times
ORT the same way (median of N runs after 3 warm-ups, default thread pool:
all cores), and prints candle/ORT per batch size. Needs
`pip install onnxruntime onnx numpy`.
"""
import argparse
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

BATCHES = [1, 32, 256, 1024]
T, F, H, LAYERS, CLASSES = 60, 16, 64, 2, 3
TOL = 1e-5


def load_safetensors(path):
    """Minimal reader (header length, JSON header, raw little-endian data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    dtypes = {"F32": np.float32, "F64": np.float64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        arr = np.frombuffer(body[a:b], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
        out[name] = arr.copy()
    return out


def make_input(b):
    """The example's deterministic input, element i = (i*2654435761 % 4096)/1024 - 2."""
    i = np.arange(b * T * F, dtype=np.uint64)
    x = ((i * np.uint64(2654435761)) % np.uint64(4096)).astype(np.float32) / np.float32(1024.0)
    return (x - np.float32(2.0)).reshape(b, T, F)


def regate(w, order):
    """Reorders the 4 gate blocks of axis 0 from our i,f,o,g to `order`."""
    blocks = dict(zip("ifog", np.split(w, 4, axis=0)))
    return np.concatenate([blocks[g] for g in order], axis=0)


def build_onnx(w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    nodes.append(helper.make_node("Transpose", ["x"], ["x_tbf"], perm=[1, 0, 2]))
    inp = "x_tbf"
    for l in range(LAYERS):
        W = regate(w[f"lstm.{l}.w_ih"], "iofg")[None]  # ONNX: i, o, f, c
        R = regate(w[f"lstm.{l}.w_hh"], "iofg")[None]
        Bw = regate(w[f"lstm.{l}.bias"], "iofg")
        B = np.concatenate([Bw, np.zeros_like(Bw)])[None]
        for name, arr in [(f"W{l}", W), (f"R{l}", R), (f"B{l}", B)]:
            inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        last = l == LAYERS - 1
        outs = ["", f"h{l}"] if last else [f"y{l}"]
        nodes.append(helper.make_node("LSTM", [inp, f"W{l}", f"R{l}", f"B{l}"], outs, hidden_size=H))
        if not last:
            nodes.append(helper.make_node("Squeeze", [f"y{l}", "ax1"], [f"s{l}"]))
            inp = f"s{l}"
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"))
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0"))
    inits.append(numpy_helper.from_array(w["head.weight"].astype(np.float32), "hw"))
    inits.append(numpy_helper.from_array(w["head.bias"].astype(np.float32), "hb"))
    nodes.append(helper.make_node("Squeeze", [f"h{LAYERS - 1}", "ax0"], ["h"]))
    nodes.append(helper.make_node("Gemm", ["h", "hw", "hb"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "candlewick_lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", T, F])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    import onnxruntime as ort

    d = Path(args.dir)
    w = load_safetensors(d / "weights.safetensors")
    candle_ms = {int(k): v for k, v in json.loads((d / "candle_timings.json").read_text()).items()}
    model = build_onnx(w)
    (d / "lstm.onnx").write_bytes(model.SerializeToString())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    print(f"onnxruntime {ort.__version__}, providers {sess.get_providers()}")
    print(f"{'batch':>5} {'candle ms':>10} {'ort ms':>10} {'candle/ort':>10} {'max |diff|':>11}  ok")
    failed = False
    for b in BATCHES:
        x = make_input(b)
        want = np.fromfile(d / f"candle_{b}.f32", dtype="<f4").reshape(b, CLASSES)
        got = sess.run(["logits"], {"x": x})[0]
        diff = float(np.max(np.abs(got - want)))
        ok = diff <= TOL
        failed |= not ok
        for _ in range(3):
            sess.run(["logits"], {"x": x})
        reps = max(1, args.iters // 3) if b >= 1024 else args.iters
        ms = []
        for _ in range(reps):
            t = time.perf_counter()
            sess.run(["logits"], {"x": x})
            ms.append((time.perf_counter() - t) * 1e3)
        ort_ms = float(np.median(ms))
        c = candle_ms[b]
        print(f"{b:>5} {c:>10.3f} {ort_ms:>10.3f} {c / ort_ms:>10.2f} {diff:>11.2e}  {'yes' if ok else 'NO'}")
    if failed:
        print(f"outputs differ by more than {TOL}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
