//! `candlewick model ...`: inspect model artifacts.

use std::path::PathBuf;

use candlewick_models::{Artifact, Device};

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Run every load check on an artifact directory; exit 0 only when it
    /// is intact and loadable (hash, version, tensors, scaler, features, a
    /// forward pass). Prints the reason on failure.
    Verify {
        /// Artifact directory (holds manifest.json and model.safetensors).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Verify { dir } => {
            let a = Artifact::load(&dir, &Device::Cpu)?;
            let m = a.manifest();
            println!("ok: {} verified", dir.display());
            println!("features: {}", m.features.spec);
            println!("weights sha256: {}", m.weights.sha256);
            println!(
                "trained on {} ({} bars), labels: horizon {} up > {} down < -{}",
                m.data.source,
                m.data.bars,
                m.labels.rule.horizon,
                m.labels.rule.up,
                m.labels.rule.down
            );
            println!("{}", super::train::report(m));
            Ok(())
        }
    }
}
