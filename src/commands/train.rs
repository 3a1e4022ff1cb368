//! `candlewick train`: fit a model on a candle file and write a verified
//! artifact (DESIGN §9).

use std::path::PathBuf;

use anyhow::Context;
use candlewick_market::CsvReader;
use candlewick_models::artifact::Manifest;
use candlewick_models::{train, ArchKind, Artifact, FeatureSpec, LabelRule, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

/// Network kinds on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ArchArg {
    Lstm,
    Gru,
    Transformer,
}

impl From<ArchArg> for ArchKind {
    fn from(a: ArchArg) -> Self {
        match a {
            ArchArg::Lstm => ArchKind::Lstm,
            ArchArg::Gru => ArchKind::Gru,
            ArchArg::Transformer => ArchKind::Transformer,
        }
    }
}

/// Train a down/flat/up classifier on a candle file and write a verified
/// model artifact (model.safetensors + manifest.json).
///
/// Labels come from the return `horizon` bars ahead: up above `--up`,
/// down below `-down`, flat between. The most recent `--val-fraction` of
/// samples is held out (time-ordered, the horizon purged); the scaler is
/// fitted on the training part only. Training stops early when the
/// validation loss has not improved for `--patience` epochs and keeps the
/// best epoch. The report sets the model's validation accuracy beside the
/// majority-class baseline: a model that does not beat it is useless.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Example (the shipped artifact):\n  candlewick train --data data/EURUSD-1h.csv --arch lstm --window 60 --horizon 1 \\\n    --up 0.0005 --down 0.0005 --out models/artifacts/eurusd-1h-lstm"
)]
pub struct TrainArgs {
    /// Candle CSV (either dialect of `candlewick indicators`).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value_t = ArchArg::Lstm)]
    pub arch: ArchArg,
    /// Artifact directory to write (created; files replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Feature spec: indicator items plus logret, range, body, logvol.
    #[arg(long, value_name = "SPEC", default_value = candlewick_models::features::DEFAULT_SPEC)]
    pub features: String,
    /// Bars per input window.
    #[arg(long, default_value_t = 60)]
    pub window: usize,
    /// Bars ahead of the label's return.
    #[arg(long, default_value_t = 1)]
    pub horizon: usize,
    /// "up" when the future return is above this (0.005 = +0.5%).
    #[arg(long, default_value_t = 0.005)]
    pub up: f64,
    /// "down" when the future return is below minus this [default: --up].
    #[arg(long)]
    pub down: Option<f64>,
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Attention heads (transformer).
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-2)]
    pub weight_decay: f64,
    /// Epochs without improvement before stopping.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Fraction of the most recent samples held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Model name in the manifest [default: the --out directory's name].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let spec = FeatureSpec::parse(&args.features).context("--features")?;
    let candles = CsvReader::open(&args.data)?.collect::<Result<Vec<_>, _>>()?;
    let cfg = TrainConfig {
        arch: args.arch.into(),
        hidden: args.hidden,
        layers: args.layers,
        heads: args.heads,
        ff: 2 * args.hidden,
        window: args.window,
        labels: LabelRule {
            horizon: args.horizon,
            up: args.up,
            down: args.down.unwrap_or(args.up),
        },
        val_fraction: args.val_fraction,
        epochs: args.epochs,
        batch_size: args.batch,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        patience: args.patience,
        seed: args.seed,
    };
    let source = args.data.file_name().map_or_else(
        || args.data.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_name()
            .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix:>3} {bar:30} {pos}/{len} batches  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut on_progress = |p: Progress| match p {
        Progress::Start {
            train_samples,
            val_samples,
            train_counts,
            val_counts,
            batches_per_epoch,
        } => {
            bar.set_length(batches_per_epoch as u64);
            bar.println(format!(
                "samples: train {train_samples} [down {} flat {} up {}], validation {val_samples} [down {} flat {} up {}]",
                train_counts[0], train_counts[1], train_counts[2], val_counts[0], val_counts[1], val_counts[2]
            ));
            let max = *train_counts.iter().max().unwrap_or(&0) as f64;
            if train_samples > 0 && max / train_samples as f64 > 0.9 {
                bar.println("warning: one class holds over 90% of the labels; consider other --up/--down thresholds");
            }
        }
        Progress::Batch { epoch, batch, loss } => {
            bar.set_prefix(epoch.to_string());
            bar.set_position(batch as u64);
            bar.set_message(format!("loss {loss:.4}"));
        }
        Progress::Epoch {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
            improved,
        } => {
            bar.println(format!(
                "epoch {epoch:>3}  train loss {train_loss:.4}  val loss {val_loss:.4}  val acc {:.2}%{}",
                100.0 * val_accuracy,
                if improved { "  *" } else { "" }
            ));
        }
        _ => {}
    };
    let trained = train::train(&candles, &source, &name, &spec, &cfg, &mut on_progress)?;
    bar.finish_and_clear();
    let manifest = trained.save(&args.out)?;
    // Prove the artifact loads exactly as inference will load it.
    Artifact::load(&args.out, &candlewick_models::Device::Cpu)?;
    println!("{}", report(&manifest));
    println!(
        "wrote {} (sha256 {})",
        args.out.display(),
        manifest.weights.sha256
    );
    Ok(())
}

/// The honest summary: the model beside the constant baselines.
pub fn report(m: &Manifest) -> String {
    let x = &m.metrics;
    let verdict = if x.val_accuracy > x.baseline_accuracy && x.val_loss < x.baseline_loss {
        "beats both baselines on validation"
    } else if x.val_loss < x.baseline_loss {
        "beats the prior's loss but NOT the majority-class accuracy"
    } else {
        "does NOT beat the baselines: no better than a constant answer"
    };
    format!(
        "{name}: {arch} hidden {h} x{l}, window {w}, {f} features, best epoch {be}/{er}\n\
         validation ({vs} samples):   loss {vl:.4}   accuracy {va:.2}%\n\
         baseline (always {bc:>4}):    loss {bl:.4}   accuracy {ba:.2}%   (loss: training class frequencies)\n\
         predicted on validation: down {p0} flat {p1} up {p2}; actual: down {a0} flat {a1} up {a2}\n\
         verdict: the model {verdict}",
        name = m.name,
        arch = m.arch.kind,
        h = m.arch.hidden,
        l = m.arch.layers,
        w = m.window,
        f = m.arch.features,
        be = x.best_epoch,
        er = x.epochs_run,
        vs = m.data.validation.samples,
        vl = x.val_loss,
        va = 100.0 * x.val_accuracy,
        bc = x.baseline_class,
        bl = x.baseline_loss,
        ba = 100.0 * x.baseline_accuracy,
        p0 = x.val_predicted[0],
        p1 = x.val_predicted[1],
        p2 = x.val_predicted[2],
        a0 = x.val_counts[0],
        a1 = x.val_counts[1],
        a2 = x.val_counts[2],
    )
}
