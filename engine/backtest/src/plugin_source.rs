//! [`PluginSource`]: a wasm strategy plugin as a [`SignalSource`], for the
//! direct backtest loop ([`run`](crate::run)) that sweeps and benchmarks
//! use; `candlewick backtest` runs plugins through the pipeline instead
//! ([`Replay`](crate::Replay)).

use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;
use candlewick_plugins::{BarBatch, LoadedModule, Plugin, PluginHost};

use crate::error::RunError;
use crate::signal::Signal;
use crate::source::{SignalSource, StrategyError};

/// Bars and the manifest's indicator values are packed into ABI records
/// and handed to the plugin in one call per batch.
pub struct PluginSource {
    plugin: Plugin,
    spec: String,
    batch: BarBatch,
}

impl PluginSource {
    /// Instantiates `module` with resolved parameter `values` (see
    /// [`Manifest::resolve_params`](candlewick_plugins::Manifest::resolve_params)).
    ///
    /// # Errors
    /// The manifest's indicators do not parse, or instantiation failed.
    pub fn new(host: &PluginHost, module: &LoadedModule, values: &[f64]) -> Result<Self, RunError> {
        let spec = module
            .manifest()
            .indicator_spec(values)
            .map_err(|e| RunError::Strategy(format!("indicators: {e}")))?;
        let width = if spec.trim().is_empty() {
            0
        } else {
            IndicatorSet::parse(&spec)
                .map_err(|source| RunError::Indicators {
                    spec: spec.clone(),
                    source,
                })?
                .width()
        };
        let plugin = host
            .instantiate(module, values, width)
            .map_err(|e| RunError::Strategy(e.to_string()))?;
        Ok(PluginSource {
            plugin,
            spec,
            batch: BarBatch::new(width),
        })
    }
}

impl SignalSource for PluginSource {
    fn indicator_spec(&self) -> String {
        self.spec.clone()
    }

    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        let width = self.batch.n_values();
        self.batch.clear();
        for (i, bar) in bars.iter().enumerate() {
            self.batch.push(bar, &values[i * width..(i + 1) * width]);
        }
        let now = bars.last().map_or(0, |b| b.open_time);
        let signals = self
            .plugin
            .run_batch(&self.batch, now)
            .map_err(|f| StrategyError(f.to_string()))?;
        out.extend(signals.iter().map(|s| {
            (
                s.bar,
                Signal {
                    action: s.action,
                    strength: s.strength,
                    stop_loss: s.stop_loss,
                    take_profit: s.take_profit,
                },
            )
        }));
        Ok(())
    }
}
