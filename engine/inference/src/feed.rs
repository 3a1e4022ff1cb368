//! [`ModelFeed`]: the inference stage for one stream, as a backtest's
//! strategy adapter needs it.

use candlewick_market::Candle;

use crate::model::{NamedModel, OutputRef};
use crate::stage::{InferenceStage, Ticket};
use crate::InferenceError;

/// Model outputs for one stream's bars, in the order a plugin manifest
/// declared them: the same [`InferenceStage`] a shard worker runs, over one
/// stream, so a backtest sees exactly what the live engine computes.
#[derive(Debug)]
pub struct ModelFeed {
    stage: InferenceStage,
    needs: Vec<OutputRef>,
    tickets: Vec<Ticket>,
    /// `tickets.len()` rows of `needs.len()` outputs.
    rows: Vec<f64>,
}

impl ModelFeed {
    /// A feed of the outputs `wanted` (a plugin manifest's `models`) from
    /// `models`; only the models read are run.
    ///
    /// # Errors
    /// A name that does not resolve ([`InferenceError::MissingModel`] names
    /// the model and the configured ones), or a stage that cannot be built.
    pub fn new(models: &[NamedModel], wanted: &[String]) -> Result<Self, InferenceError> {
        crate::model::check_unique(models)?;
        // Resolve against every configured model first, so the error lists them all.
        OutputRef::resolve_all(wanted, models)?;
        let used = crate::model::used_models(models, wanted);
        let stage = InferenceStage::new(&used, 1)?;
        let needs = stage.resolve(wanted)?;
        Ok(ModelFeed {
            stage,
            needs,
            tickets: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// Outputs per bar.
    pub fn width(&self) -> usize {
        self.needs.len()
    }

    /// Pushes `bars` (the next closed candles, oldest first) and runs one
    /// forward per model over them; then [`ModelFeed::row`] `i` holds bar
    /// `i`'s outputs.
    ///
    /// # Errors
    /// A forward that failed.
    pub fn run(&mut self, bars: &[Candle]) -> Result<(), InferenceError> {
        self.tickets.clear();
        for bar in bars {
            self.tickets.push(self.stage.push(0, bar)?);
        }
        self.stage.run_batch()?;
        let w = self.needs.len();
        self.rows.clear();
        self.rows.resize(self.tickets.len() * w, f64::NAN);
        for (t, row) in self
            .tickets
            .iter()
            .zip(self.rows.chunks_exact_mut(w.max(1)))
        {
            self.stage.fill(*t, &self.needs, row);
        }
        Ok(())
    }

    /// Bar `i`'s outputs of the last [`ModelFeed::run`] (empty past its end).
    pub fn row(&self, i: usize) -> &[f64] {
        let w = self.needs.len();
        self.rows.get(i * w..(i + 1) * w).unwrap_or(&[])
    }

    pub fn stage(&self) -> &InferenceStage {
        &self.stage
    }
}

/// Models from command-line arguments `[NAME=]DIR`. An unnamed `DIR` is
/// named by its manifest, except that when it is the only model given and
/// the strategy reads exactly one model, it takes that model's name: so
/// `--model DIR` serves any one-model strategy.
///
/// # Errors
/// A refused artifact or a bad name.
pub fn models_from_args(
    args: &[String],
    wanted: &[String],
) -> Result<Vec<NamedModel>, InferenceError> {
    let mut sole: Vec<&str> = wanted
        .iter()
        .map(|w| w.split_once('.').map_or(w.as_str(), |(m, _)| m))
        .collect();
    sole.sort_unstable();
    sole.dedup();
    args.iter()
        .map(|arg| {
            let named = arg
                .split_once('=')
                .filter(|(name, _)| !name.is_empty() && !name.contains(['/', '\\']));
            match named {
                Some((name, dir)) => NamedModel::load(Some(name), dir.as_ref()),
                None if args.len() == 1 && sole.len() == 1 => {
                    NamedModel::load(Some(sole[0]), arg.as_ref())
                }
                None => NamedModel::load(None, arg.as_ref()),
            }
        })
        .collect()
}
