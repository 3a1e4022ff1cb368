//! A CPU forward without candle: the same networks on weights packed once
//! at load, in preallocated buffers, with no allocation per step or per
//! call once the buffers have grown to the largest batch seen.
//!
//! candle stays the reference (and the training and GPU path): its
//! [`Network::forward`](super::Network::forward) spends most of a small
//! batch in per-op dispatch and allocation (an LSTM step is a matmul, two
//! narrows and a custom op, each a new tensor), which is why batch 1 was
//! 22x slower than ONNX Runtime. Here a recurrent layer is one product for
//! every step's input projection, then per step one `h x W_hh` product
//! over all gates ([`gemm`]) and the fused cell; the Transformer runs each
//! projection over every position of the chunk at once.
//!
//! SIMD comes from `pulp`'s run-time dispatch (AVX-512 where the CPU has
//! it, else AVX2 and FMA, else SSE), so one binary uses what the machine
//! offers; a recurrent net's small chunks stay on AVX2 (see
//! [`WIDE_FROM`]).
//! Batches of [`PARALLEL_FROM`] rows or more are split into chunks of at
//! most [`CHUNK`] rows that run on rayon's pool (or all on the calling
//! thread, [`CpuNet::set_parallel`]); a row's result does not
//! depend on the chunking (each row is computed by the same kernel
//! sequence whatever the batch), only the f32 rounding of the
//! multiply-adds may differ from candle's, which the tests bound.

mod gemm;
mod recurrent;
mod transformer;
mod vmath;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use pulp::{Arch, Simd, WithSimd};

use super::Network;
use crate::{ArchConfig, ArchKind, ModelError};
use gemm::Packed;
use recurrent::{Cell, Layer, Stack};
use transformer::{Block, Encoder, Lin, Norm};

/// Batches from this many rows up run in parallel chunks.
pub const PARALLEL_FROM: usize = 16;
/// Most rows a chunk holds (keeps its buffers within a core's L2).
pub const CHUNK: usize = 32;

#[derive(Debug, Clone)]
enum Body {
    Recurrent(Stack),
    Transformer(Encoder),
}

/// A [`Network`]'s weights packed for the CPU path (see the module docs).
#[derive(Debug, Clone)]
pub struct CpuNet {
    config: ArchConfig,
    body: Body,
    /// `(classes, H)` row-major.
    head_w: Vec<f32>,
    head_b: Vec<f32>,
    arch: Arch,
    /// AVX2 for a recurrent net's chunks of fewer than [`WIDE_FROM`] rows
    /// on a CPU with AVX-512 (see [`WIDE_FROM`]); `None` elsewhere.
    narrow: Narrow,
    /// Whether batches of [`PARALLEL_FROM`] rows or more use rayon's pool
    /// (see [`CpuNet::set_parallel`]).
    parallel: bool,
}

#[cfg(target_arch = "x86_64")]
type Narrow = Option<pulp::x86::V3>;
#[cfg(not(target_arch = "x86_64"))]
type Narrow = Option<std::convert::Infallible>;

/// Rows from which a recurrent net's chunk runs AVX-512 where the CPU has
/// it. Below, each step multiplies so few rows that the 512-bit kernels
/// were 3-4x slower than AVX2 here (batch 1: 0.41-0.55 ms against 0.12
/// ms for the LSTM), while from 32 rows they are 1.4-1.5x faster. The two
/// give the same bits (every kernel sums a row's products in the same
/// order), so the choice never changes a prediction.
pub const WIDE_FROM: usize = 8;

/// Working memory of [`CpuNet::forward`]; keep one per caller and reuse it.
#[derive(Debug, Default)]
pub struct CpuScratch {
    chunks: Vec<ChunkBuffers>,
}

#[derive(Debug, Default)]
struct ChunkBuffers {
    rec: recurrent::Buffers,
    tf: transformer::Buffers,
    top: Vec<f32>,
}

fn values(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

struct Params<'a>(&'a HashMap<String, Tensor>);

impl Params<'_> {
    fn vec(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self
            .0
            .get(name)
            .ok_or_else(|| ModelError::config("weights", format!("missing tensor {name}")))?;
        values(t)
    }

    /// A `(out, in)` matrix, packed.
    fn packed(&self, name: &str, out: usize, inp: usize) -> Result<Packed, ModelError> {
        let v = self.vec(name)?;
        if v.len() != out * inp {
            return Err(ModelError::config(
                "weights",
                format!("{name} has {} values, expected {out}x{inp}", v.len()),
            ));
        }
        Ok(Packed::from_out_in(&v, out, inp))
    }

    fn lin(&self, name: &str, out: usize, inp: usize) -> Result<Lin, ModelError> {
        self.lin_rows(name, 0..out, out, inp)
    }

    /// Output rows `keep` of the `(out, inp)` linear layer `name`.
    fn lin_rows(
        &self,
        name: &str,
        keep: std::ops::Range<usize>,
        out: usize,
        inp: usize,
    ) -> Result<Lin, ModelError> {
        let w = self.vec(&format!("{name}.weight"))?;
        let b = self.vec(&format!("{name}.bias"))?;
        if w.len() != out * inp || b.len() != out || keep.end > out {
            return Err(ModelError::config(
                "weights",
                format!(
                    "{name} has {} weights and {} biases, expected {out}x{inp}",
                    w.len(),
                    b.len()
                ),
            ));
        }
        let n = keep.len();
        let packed = Packed::from_out_in(&w[keep.start * inp..keep.end * inp], n, inp);
        Ok(Lin {
            w: packed.with_bias(&b[keep]),
        })
    }

    fn norm(&self, name: &str) -> Result<Norm, ModelError> {
        Ok(Norm {
            w: self.vec(&format!("{name}.weight"))?,
            b: self.vec(&format!("{name}.bias"))?,
        })
    }
}

impl CpuNet {
    /// Packs `network`'s weights.
    ///
    /// # Errors
    /// [`ModelError::Tensor`] when a weight cannot be read back from its
    /// device, [`ModelError::Config`] for a misshapen one.
    pub fn new(network: &Network) -> Result<Self, ModelError> {
        let cfg = network.config().clone();
        let p = Params(network.params());
        let h = cfg.hidden;
        let body = match cfg.kind {
            ArchKind::Lstm | ArchKind::Gru => {
                let (cell, gates, prefix) = match cfg.kind {
                    ArchKind::Lstm => (Cell::Lstm, 4, "lstm"),
                    _ => (Cell::Gru, 3, "gru"),
                };
                let layers = (0..cfg.layers)
                    .map(|l| {
                        let inp = if l == 0 { cfg.features } else { h };
                        let (b_ih, b_hh) = match cell {
                            Cell::Lstm => (p.vec(&format!("lstm.{l}.bias"))?, Vec::new()),
                            Cell::Gru => (
                                p.vec(&format!("gru.{l}.b_ih"))?,
                                p.vec(&format!("gru.{l}.b_hh"))?,
                            ),
                        };
                        Ok(Layer {
                            w_ih: p
                                .packed(&format!("{prefix}.{l}.w_ih"), gates * h, inp)?
                                .with_bias(&b_ih),
                            w_hh: p
                                .packed(&format!("{prefix}.{l}.w_hh"), gates * h, h)?
                                .with_bias(&b_hh),
                        })
                    })
                    .collect::<Result<_, ModelError>>()?;
                Body::Recurrent(Stack {
                    cell,
                    hidden: h,
                    layers,
                })
            }
            ArchKind::Transformer => {
                let blocks = (0..cfg.layers)
                    .map(|l| {
                        Ok(Block {
                            ln1: p.norm(&format!("tf.{l}.ln1"))?,
                            q: p.lin_rows(&format!("tf.{l}.qkv"), 0..h, 3 * h, h)?,
                            kv: p.lin_rows(&format!("tf.{l}.qkv"), h..3 * h, 3 * h, h)?,
                            out: p.lin(&format!("tf.{l}.out"), h, h)?,
                            ln2: p.norm(&format!("tf.{l}.ln2"))?,
                            ff1: p.lin(&format!("tf.{l}.ff1"), cfg.ff, h)?,
                            ff2: p.lin(&format!("tf.{l}.ff2"), h, cfg.ff)?,
                        })
                    })
                    .collect::<Result<_, ModelError>>()?;
                Body::Transformer(Encoder {
                    proj: p.lin("tf.proj", h, cfg.features)?,
                    pos: p.vec("tf.pos")?,
                    blocks,
                    ln_f: p.norm("tf.ln_f")?,
                    heads: cfg.heads,
                    width: h,
                    ff: cfg.ff,
                })
            }
        };
        Ok(CpuNet {
            head_w: p.vec("head.weight")?,
            head_b: p.vec("head.bias")?,
            config: cfg,
            narrow: narrow(&body),
            body,
            arch: Arch::new(),
            parallel: true,
        })
    }

    /// Whether large batches run their chunks on rayon's pool (the
    /// default) or all on the calling thread. A row's result is the same
    /// either way; only who computes it changes.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }

    pub fn config(&self) -> &ArchConfig {
        &self.config
    }

    /// Logits for `b` windows: `x` is `(b, t, features)` row-major, `t`
    /// the config's window for the Transformer (any `t >= 1` for the
    /// recurrent nets); `logits` receives `(b, classes)`.
    ///
    /// # Errors
    /// [`ModelError::Config`] when `x` or `logits` does not have that
    /// shape; nothing is written then.
    pub fn forward(
        &self,
        x: &[f32],
        b: usize,
        t: usize,
        scratch: &mut CpuScratch,
        logits: &mut [f32],
    ) -> Result<(), ModelError> {
        let (f, c) = (self.config.features, self.config.classes);
        let t_ok = match self.body {
            Body::Transformer(_) => t == self.config.window,
            Body::Recurrent(_) => t >= 1,
        };
        if !t_ok || x.len() != b * t * f || logits.len() != b * c {
            return Err(ModelError::config(
                "input",
                format!(
                    "{} values for {b} windows of {t} x {f} (window {}), {} logits for {b} x {c}",
                    x.len(),
                    self.config.window,
                    logits.len()
                ),
            ));
        }
        if b == 0 {
            return Ok(());
        }
        let rows = if !self.parallel {
            b.min(CHUNK)
        } else if b < PARALLEL_FROM {
            b
        } else {
            b.div_ceil(rayon::current_num_threads()).clamp(1, CHUNK)
        };
        let chunks = b.div_ceil(rows);
        if scratch.chunks.len() < chunks {
            scratch.chunks.resize_with(chunks, ChunkBuffers::default);
        }
        let run = |((x, out), buf): ((&[f32], &mut [f32]), &mut ChunkBuffers)| {
            let chunk = Chunk {
                net: self,
                x,
                m: out.len() / c,
                t,
                buf,
                logits: out,
            };
            match self.narrow {
                #[cfg(target_arch = "x86_64")]
                Some(v3) if chunk.m < WIDE_FROM => Simd::vectorize(v3, chunk),
                _ => self.arch.dispatch(chunk),
            }
        };
        let mut jobs = x
            .chunks(rows * t * f)
            .zip(logits.chunks_mut(rows * c))
            .zip(scratch.chunks.iter_mut());
        let first = jobs.next();
        if chunks == 1 || !self.parallel {
            // The latency case (fewer than PARALLEL_FROM windows), or no
            // pool wanted: every chunk on this thread.
            first.into_iter().chain(jobs).for_each(run);
            return Ok(());
        }
        // The calling thread runs the first chunk itself while the pool
        // takes the others: one worker woken fewer, and no wait for a
        // parked caller to wake, which costs a VM tens of microseconds.
        rayon::in_place_scope(|scope| {
            for job in jobs {
                scope.spawn(move |_| run(job));
            }
            if let Some(job) = first {
                run(job);
            }
        });
        Ok(())
    }
}

/// AVX2 for small chunks of a recurrent net when the CPU also has AVX-512
/// (see [`WIDE_FROM`]).
fn narrow(body: &Body) -> Narrow {
    #[cfg(target_arch = "x86_64")]
    if matches!(body, Body::Recurrent(_)) && pulp::x86::V4::try_new().is_some() {
        return pulp::x86::V3::try_new();
    }
    let _ = body;
    None
}

/// One chunk's forward under the CPU's best instruction set.
struct Chunk<'a> {
    net: &'a CpuNet,
    x: &'a [f32],
    m: usize,
    t: usize,
    buf: &'a mut ChunkBuffers,
    logits: &'a mut [f32],
}

impl WithSimd for Chunk<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Chunk {
            net,
            x,
            m,
            t,
            buf,
            logits,
        } = self;
        let h = net.config.hidden;
        if buf.top.len() < m * h {
            buf.top.resize(m * h, 0.0);
        }
        match &net.body {
            Body::Recurrent(stack) => stack.forward(s, x, m, t, &mut buf.rec, &mut buf.top),
            Body::Transformer(enc) => enc.forward(s, x, m, t, &mut buf.tf, &mut buf.top),
        }
        let c = net.config.classes;
        for r in 0..m {
            let top = &buf.top[r * h..(r + 1) * h];
            for k in 0..c {
                let w = &net.head_w[k * h..(k + 1) * h];
                logits[r * c + k] =
                    net.head_b[k] + top.iter().zip(w).map(|(a, b)| a * b).sum::<f32>();
            }
        }
    }
}
