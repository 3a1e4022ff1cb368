#!/usr/bin/env python3
"""Candlewick's forward (candle and the CPU path) beside ONNX Runtime's CPU
provider, same weights, for the LSTM, the GRU and the Transformer.

    cargo run --release -p candlewick-models --example export_models -- DIR
    python3 benches/onnx_models.py DIR [--iters 50]

DIR/KIND (lstm, gru, transformer) comes from the example: the weights, candle's
logits for batch 1, 32 and 256, and the medians of candle's forward and of
the CPU path (`CpuNet`) measured in that run. This script builds each network
as an ONNX graph with onnx.helper only (no exporter, no torch): LSTM and GRU
ops for the recurrent nets, MatMul/LayerNormalization/Softmax for the
Transformer. It checks ORT's logits against candle's to 1e-4, times ORT the
same way (median of N runs after 3 warm-ups, ORT's default thread pool) and
prints the side-by-side table with the load average at each timing.
Needs `pip install onnxruntime onnx numpy` (measured with onnxruntime 1.32.0, onnx 1.23.2, numpy 2.4.6).
"""
import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

BATCHES = [1, 32, 256]
T, F, H, LAYERS, HEADS, FF, CLASSES = 60, 16, 64, 2, 4, 128, 3
TOL = 1e-4


def load_safetensors(path):
    """Minimal reader (header length, JSON header, raw little-endian data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        assert meta["dtype"] == "F32", name
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(meta["shape"]).copy()
    return out


def make_input(b):
    """The example's input: element i = (i*2654435761 % 4096)/1024 - 2."""
    i = np.arange(b * T * F, dtype=np.uint64)
    x = ((i * np.uint64(2654435761)) % np.uint64(4096)).astype(np.float32) / np.float32(1024.0)
    return (x - np.float32(2.0)).reshape(b, T, F)


def regate(w, ours, theirs):
    """Reorders the gate blocks of axis 0 from `ours` to `theirs`."""
    blocks = dict(zip(ours, np.split(w, len(ours), axis=0)))
    return np.concatenate([blocks[g] for g in theirs], axis=0)


class Graph:
    def __init__(self):
        from onnx import numpy_helper

        self.nh = numpy_helper
        self.inits, self.nodes, self.n = [], [], 0

    def const(self, arr, dtype=np.float32):
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(self.nh.from_array(np.asarray(arr, dtype=dtype), name))
        return name

    def op(self, kind, inputs, n_out=1, **attrs):
        from onnx import helper

        self.n += 1
        outs = [f"t{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(kind, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, out):
        import onnx
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [out], ["logits"]))
        graph = helper.make_graph(
            self.nodes,
            "candlewick",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", T, F])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", CLASSES])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(m)
        return m


def head(g, w, h):
    return g.op("Gemm", [h, g.const(w["head.weight"]), g.const(w["head.bias"])], transB=1)


def build_recurrent(w, kind):
    g = Graph()
    inp = g.op("Transpose", ["x"], perm=[1, 0, 2])  # (T, B, F)
    for l in range(LAYERS):
        if kind == "lstm":  # ours i,f,o,g; ONNX i,o,f,c; one bias on the input side
            W = regate(w[f"lstm.{l}.w_ih"], "ifog", "iofg")[None]
            R = regate(w[f"lstm.{l}.w_hh"], "ifog", "iofg")[None]
            Bw = regate(w[f"lstm.{l}.bias"], "ifog", "iofg")
            B = np.concatenate([Bw, np.zeros_like(Bw)])[None]
            outs = g.op("LSTM", [inp, g.const(W), g.const(R), g.const(B)], n_out=2, hidden_size=H)
        else:  # ours r,z,n; ONNX z,r,h; PyTorch's reset placement
            W = regate(w[f"gru.{l}.w_ih"], "rzn", "zrn")[None]
            R = regate(w[f"gru.{l}.w_hh"], "rzn", "zrn")[None]
            B = np.concatenate([regate(w[f"gru.{l}.b_ih"], "rzn", "zrn"),
                                regate(w[f"gru.{l}.b_hh"], "rzn", "zrn")])[None]
            outs = g.op("GRU", [inp, g.const(W), g.const(R), g.const(B)], n_out=2,
                        hidden_size=H, linear_before_reset=1)
        y, h_last = outs
        inp = g.op("Squeeze", [y, g.const([1], np.int64)])  # (T, B, H)
    h = g.op("Squeeze", [h_last, g.const([0], np.int64)])
    return g.model(head(g, w, h))


def build_transformer(w):
    g = Graph()
    D, dh = H, H // HEADS
    x = g.op("Add", [g.op("MatMul", ["x", g.const(w["tf.proj.weight"].T)]), g.const(w["tf.proj.bias"])])
    x = g.op("Add", [x, g.const(w["tf.pos"])])

    def lin(y, name):
        return g.op("Add", [g.op("MatMul", [y, g.const(w[f"{name}.weight"].T)]), g.const(w[f"{name}.bias"])])

    def ln(y, name):
        return g.op("LayerNormalization", [y, g.const(w[f"{name}.weight"]), g.const(w[f"{name}.bias"])],
                    axis=-1, epsilon=1e-5)

    def heads(t):  # (B, T', D) -> (B, nh, T', dh)
        return g.op("Transpose", [g.op("Reshape", [t, g.const([0, -1, HEADS, dh], np.int64)])], perm=[0, 2, 1, 3])

    last_pos = lambda t, axis: g.op("Slice", [t, g.const([T - 1], np.int64), g.const([T], np.int64),
                                              g.const([axis], np.int64)])
    for l in range(LAYERS):
        last = l == LAYERS - 1
        y = ln(x, f"tf.{l}.ln1")
        q, k, v = g.op("Split", [lin(y, f"tf.{l}.qkv"), g.const([D, D, D], np.int64)], n_out=3, axis=-1)
        if last:  # only the last position feeds the head
            q, x = last_pos(q, 1), last_pos(x, 1)
        q, k, v = heads(q), heads(k), heads(v)
        s = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]), g.const(1 / np.sqrt(dh))])
        att = g.op("MatMul", [g.op("Softmax", [s], axis=-1), v])
        att = g.op("Reshape", [g.op("Transpose", [att], perm=[0, 2, 1, 3]), g.const([0, -1, D], np.int64)])
        x = g.op("Add", [x, lin(att, f"tf.{l}.out")])
        y = g.op("Relu", [lin(ln(x, f"tf.{l}.ln2"), f"tf.{l}.ff1")])
        x = g.op("Add", [x, lin(y, f"tf.{l}.ff2")])
    h = g.op("Squeeze", [ln(x, "tf.ln_f"), g.const([1], np.int64)])
    return g.model(head(g, w, h))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}, {os.cpu_count()} CPUs")
    print(f"{'arch':>11} {'batch':>5} {'candle ms':>10} {'cpu ms':>9} {'ort ms':>9} {'cpu/ort':>8} "
          f"{'candle/ort':>10} {'|diff|':>8}  load (rust; ort)")
    failed = False
    for kind in ["lstm", "gru", "transformer"]:
        d = Path(args.dir) / kind
        w = load_safetensors(d / "weights.safetensors")
        timings = json.loads((d / "timings.json").read_text())
        model = build_transformer(w) if kind == "transformer" else build_recurrent(w, kind)
        (d / f"{kind}.onnx").write_bytes(model.SerializeToString())
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        load = Path("/proc/loadavg").read_text().split()[:3]
        for b in BATCHES:
            x = make_input(b)
            want = np.fromfile(d / f"candle_{b}.f32", dtype="<f4").reshape(b, CLASSES)
            got = sess.run(["logits"], {"x": x})[0]
            diff = float(np.max(np.abs(got - want)))
            failed |= not diff <= TOL
            for _ in range(3):
                sess.run(["logits"], {"x": x})
            ms = []
            for _ in range(args.iters):
                t = time.perf_counter()
                sess.run(["logits"], {"x": x})
                ms.append((time.perf_counter() - t) * 1e3)
            o = float(np.median(ms))
            c, p = timings["candle"][str(b)], timings["cpu"][str(b)]
            print(f"{kind:>11} {b:>5} {c:>10.3f} {p:>9.3f} {o:>9.3f} {p / o:>8.2f} {c / o:>10.2f} {diff:>8.1e}"
                  f"  {' '.join(timings['load'].split()[:3])}; {' '.join(load)}")
    if failed:
        print(f"ORT's logits differ from candle's by more than {TOL}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
