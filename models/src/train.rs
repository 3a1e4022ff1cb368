//! Training: features -> labelled windows -> AdamW with early stopping ->
//! an artifact whose manifest reports the model beside its baselines.
//!
//! Deterministic for a seed on one machine: weights are drawn from
//! [`SplitMix64`](crate::rng::SplitMix64), batches shuffled from it, and
//! nothing else is random (no dropout).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use candlewick_market::Candle;

use crate::arch::{init_params, Network};
use crate::artifact::{
    self, DataRange, FeaturesEntry, LabelsEntry, Manifest, Metrics, Span, TrainingEntry,
    WeightsEntry, FORMAT, VERSION,
};
use crate::dataset::{Dataset, LabelRule, CLASS_NAMES};
use crate::rng::SplitMix64;
use crate::{ArchConfig, ArchKind, FeatureSpec, ModelError};

/// Everything a training run needs besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub arch: ArchKind,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    /// Bars per input window.
    pub window: usize,
    pub labels: LabelRule,
    /// Fraction of samples (the most recent) held out for validation.
    pub val_fraction: f64,
    /// Upper bound on epochs.
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    /// LSTM, hidden 64, 2 layers, window 60, horizon 1, +/-0.5%
    /// thresholds, 20% validation, 30 epochs, batch 64, lr 1e-3, weight
    /// decay 1e-2, patience 5, seed 42.
    fn default() -> Self {
        TrainConfig {
            arch: ArchKind::Lstm,
            hidden: 64,
            layers: 2,
            heads: 4,
            ff: 128,
            window: 60,
            labels: LabelRule {
                horizon: 1,
                up: 0.005,
                down: 0.005,
            },
            val_fraction: 0.2,
            epochs: 30,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            patience: 5,
            seed: 42,
        }
    }
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// Before training: the split and its label counts.
    Start {
        train_samples: usize,
        val_samples: usize,
        train_counts: [usize; 3],
        val_counts: [usize; 3],
        batches_per_epoch: usize,
    },
    /// After each optimiser step, with the running mean loss of the epoch.
    Batch {
        epoch: usize,
        batch: usize,
        loss: f64,
    },
    /// After each epoch's validation.
    Epoch {
        epoch: usize,
        train_loss: f64,
        val_loss: f64,
        val_accuracy: f64,
        improved: bool,
    },
}

/// A trained model, not yet written.
#[derive(Debug)]
pub struct Trained {
    /// Complete but for `weights` (filled by [`Trained::save`]).
    pub manifest: Manifest,
    pub weights: HashMap<String, Tensor>,
}

impl Trained {
    /// Writes the artifact directory; returns the final manifest.
    ///
    /// # Errors
    /// [`ModelError::Io`] or a tensor error.
    pub fn save(&self, dir: &Path) -> Result<Manifest, ModelError> {
        artifact::save(dir, self.manifest.clone(), &self.weights)
    }
}

/// Trains on `candles` (time-ordered, validated).
///
/// `source` names the data in the manifest (a file name, no directory);
/// `name` names the model.
///
/// # Errors
/// [`ModelError::Config`] for bad settings, [`ModelError::NotEnoughData`],
/// or a tensor error.
pub fn train(
    candles: &[Candle],
    source: &str,
    name: &str,
    spec: &FeatureSpec,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Trained, ModelError> {
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(ModelError::config(
            "batch size/epochs",
            "must be at least 1",
        ));
    }
    if !(cfg.learning_rate > 0.0 && cfg.learning_rate.is_finite()) {
        return Err(ModelError::config("learning rate", "must be positive"));
    }
    let arch = ArchConfig {
        kind: cfg.arch,
        features: spec.width(),
        window: cfg.window,
        hidden: cfg.hidden,
        layers: cfg.layers,
        heads: cfg.heads,
        ff: cfg.ff,
        classes: 3,
    };
    arch.validate()?;
    let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
        return Err(ModelError::NotEnoughData("no candles".into()));
    };
    let rows = spec.compute(candles)?;
    let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
    let ds = Dataset::build(
        rows,
        spec.width(),
        &closes,
        spec.lookback(),
        cfg.window,
        cfg.labels,
        cfg.val_fraction,
    )?;
    let train_counts = ds.class_counts(&ds.train);
    let val_counts = ds.class_counts(&ds.val);
    let batches = ds.train.len().div_ceil(cfg.batch_size);
    progress(Progress::Start {
        train_samples: ds.train.len(),
        val_samples: ds.val.len(),
        train_counts,
        val_counts,
        batches_per_epoch: batches,
    });

    let device = Device::Cpu;
    let specs = Network::param_specs(&arch);
    let init = init_params(&specs, cfg.seed, &device)?;
    let mut vars: Vec<(String, Var)> = Vec::with_capacity(specs.len());
    for s in &specs {
        let t = init
            .get(&s.name)
            .ok_or_else(|| ModelError::config("weights", format!("no init for {}", s.name)))?;
        vars.push((s.name.clone(), Var::from_tensor(t)?));
    }
    let live: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let net = Network::from_weights(&arch, &live)?;
    let mut opt = AdamW::new(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let mut rng = SplitMix64::new(cfg.seed ^ 0x005E_ED0F_BA7C);
    let mut order = ds.train.clone();
    let mut best: Option<Best> = None;
    let mut since_best = 0;
    let mut epochs_run = 0;
    for epoch in 1..=cfg.epochs {
        epochs_run = epoch;
        rng.shuffle(&mut order);
        let mut sum = 0.0;
        for (k, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let (x, y) = batch(&ds, chunk, &device)?;
            let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
            opt.backward_step(&loss)?;
            sum += f64::from(loss.to_scalar::<f32>()?);
            progress(Progress::Batch {
                epoch,
                batch: k + 1,
                loss: sum / (k + 1) as f64,
            });
        }
        let train_loss = sum / batches as f64;
        let eval = evaluate(&net, &ds, &ds.val, &device)?;
        let improved = best.as_ref().is_none_or(|b| eval.loss < b.eval.loss - 1e-6);
        progress(Progress::Epoch {
            epoch,
            train_loss,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            improved,
        });
        if improved {
            let snapshot = vars
                .iter()
                .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
                .collect::<Result<_, candle_core::Error>>()?;
            best = Some(Best {
                epoch,
                weights: snapshot,
                eval,
                train_loss,
            });
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= cfg.patience {
                break;
            }
        }
    }
    let Some(Best {
        epoch: best_epoch,
        weights,
        eval,
        train_loss,
    }) = best
    else {
        return Err(ModelError::NotEnoughData("no epoch completed".into()));
    };

    let majority = (0..3)
        .max_by_key(|&c| (train_counts[c], 3 - c))
        .unwrap_or(1);
    let n_val = ds.val.len() as f64;
    let n_train: usize = train_counts.iter().sum();
    // Laplace-smoothed training frequencies: the best constant answer.
    let prior: Vec<f64> = train_counts
        .iter()
        .map(|&c| (c as f64 + 1.0) / (n_train as f64 + 3.0))
        .collect();
    let baseline_loss = ds
        .val
        .iter()
        .map(|&t| -prior[ds.label(t)].ln())
        .sum::<f64>()
        / n_val;
    let time = |t: usize| candles[t].open_time;
    let span = |ends: &[usize]| Span {
        from: ends.first().map_or(0, |&t| time(t)),
        to: ends.last().map_or(0, |&t| time(t)),
        samples: ends.len(),
    };
    let probe = spec.probe()?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        name: name.into(),
        arch,
        features: FeaturesEntry {
            spec: spec.text().into(),
            columns: spec.columns().to_vec(),
            probe: probe.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        },
        window: cfg.window,
        labels: LabelsEntry {
            rule: cfg.labels,
            classes: CLASS_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        },
        scaler: ds.scaler.clone(),
        data: DataRange {
            source: source.into(),
            bars: candles.len(),
            first_time: first.open_time,
            last_time: last.open_time,
            train: span(&ds.train),
            validation: span(&ds.val),
        },
        metrics: Metrics {
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            baseline_accuracy: val_counts[majority] as f64 / n_val,
            baseline_class: CLASS_NAMES[majority].into(),
            baseline_loss,
            train_loss,
            best_epoch,
            epochs_run,
            train_counts,
            val_counts,
            val_predicted: eval.predicted,
        },
        training: TrainingEntry {
            seed: cfg.seed,
            epochs: cfg.epochs,
            batch_size: cfg.batch_size,
            learning_rate: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            patience: cfg.patience,
            val_fraction: cfg.val_fraction,
        },
        weights: WeightsEntry {
            file: artifact::WEIGHTS_FILE.into(),
            sha256: String::new(),
        },
        created_by: concat!("candlewick-models ", env!("CARGO_PKG_VERSION")).into(),
    };
    Ok(Trained { manifest, weights })
}

fn batch(ds: &Dataset, ends: &[usize], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let x = Tensor::from_vec(ds.pack(ends), (ends.len(), ds.window, ds.width), device)?;
    let y: Vec<u32> = ends.iter().map(|&t| ds.label(t) as u32).collect();
    let y = Tensor::from_vec(y, ends.len(), device)?;
    Ok((x, y))
}

/// The best epoch so far and a copy of its weights.
struct Best {
    epoch: usize,
    weights: HashMap<String, Tensor>,
    eval: Eval,
    train_loss: f64,
}

/// Validation result of one epoch.
#[derive(Debug, Clone, Copy)]
struct Eval {
    loss: f64,
    accuracy: f64,
    predicted: [usize; 3],
}

fn evaluate(
    net: &Network,
    ds: &Dataset,
    ends: &[usize],
    device: &Device,
) -> candle_core::Result<Eval> {
    let mut loss = 0.0;
    let mut correct = 0usize;
    let mut predicted = [0usize; 3];
    for chunk in ends.chunks(512) {
        let (x, y) = batch(ds, chunk, device)?;
        let logits = net.forward(&x)?.detach();
        let l = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss += f64::from(l) * chunk.len() as f64;
        let guess = logits.argmax(1)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        for (g, &t) in guess.iter().zip(chunk) {
            predicted[*g as usize] += 1;
            if *g as usize == ds.label(t) {
                correct += 1;
            }
        }
    }
    let n = ends.len().max(1) as f64;
    Ok(Eval {
        loss: loss / n,
        accuracy: correct as f64 / n,
        predicted,
    })
}
