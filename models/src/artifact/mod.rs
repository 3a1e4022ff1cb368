//! Model artifacts: a directory with `model.safetensors` and
//! `manifest.json` (DESIGN §9), and the verification every load runs.
//!
//! # Life of an artifact
//!
//! Training writes the weights and the scaler into `model.safetensors`,
//! hashes that file, and writes `manifest.json` last: an artifact without
//! a manifest is incomplete and never loads. [`Artifact::load`] then runs
//! these checks in order and refuses at the first failure with a
//! [`Refusal`] that names it:
//!
//! 1. the manifest reads, says `"format": "candlewick-model"`, and its
//!    `version` is one this build knows ([`VERSION`]), before its schema is
//!    trusted;
//! 2. the manifest parses (unknown fields refused);
//! 3. the sha256 of `model.safetensors` equals the manifest's;
//! 4. the weights file parses and holds exactly the tensors the
//!    architecture needs, in the right shapes, plus the scaler;
//! 5. the scaler in the weights equals the manifest's, and is usable;
//! 6. the feature spec parses with *this* engine, gives the same columns,
//!    and the engine's values on a fixed probe series equal those recorded
//!    at training ([`FeatureSpec::probe`]);
//! 7. the network builds and a forward on a zero window gives finite
//!    outputs.
//!
//! [`Artifact::load_for`] adds the engine side: the spec the engine is
//! configured to compute must be the model's.

mod error;
mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

pub use error::{ArtifactError, Refusal};
pub use manifest::{
    DataRange, FeaturesEntry, LabelsEntry, Manifest, Metrics, Span, TrainingEntry, WeightsEntry,
    FORMAT, MANIFEST_FILE, SCALER_MEAN, SCALER_STD, VERSION, WEIGHTS_FILE,
};

use crate::arch::Network;
use crate::{FeatureSpec, ModelError, Scaler};

/// Relative tolerance of the feature probe comparison.
const PROBE_RTOL: f64 = 1e-9;

/// A verified, loaded model.
#[derive(Debug, Clone)]
pub struct Artifact {
    dir: PathBuf,
    manifest: Manifest,
    network: Network,
    features: FeatureSpec,
}

impl Artifact {
    /// Loads `dir` on `device`, running every check in the module docs.
    ///
    /// # Errors
    /// [`ArtifactError`] naming the failed check.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ArtifactError> {
        let refuse = |kind| ArtifactError::new(dir, kind);
        let manifest = read_manifest(dir).map_err(refuse)?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|source| {
            refuse(Refusal::Unreadable {
                file: WEIGHTS_FILE.into(),
                source,
            })
        })?;
        let actual = sha256_hex(&bytes);
        if actual != manifest.weights.sha256 {
            return Err(refuse(Refusal::HashMismatch {
                expected: manifest.weights.sha256.clone(),
                actual,
            }));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| refuse(Refusal::WeightsMalformed(e.to_string())))?;
        check_tensors(&manifest, &tensors).map_err(refuse)?;
        check_scaler(&manifest, &tensors).map_err(refuse)?;
        let features = check_features(&manifest).map_err(refuse)?;
        let network = Network::from_weights(&manifest.arch, &tensors)
            .map_err(|e| refuse(Refusal::Unrunnable(e.to_string())))?;
        smoke_forward(&network, device).map_err(refuse)?;
        Ok(Artifact {
            dir: dir.to_path_buf(),
            manifest,
            network,
            features,
        })
    }

    /// [`Artifact::load`], then checks that `engine_spec` (what the engine
    /// is configured to compute) is the model's feature spec.
    ///
    /// # Errors
    /// As `load`, and [`Refusal::FeatureMismatch`] when the specs differ.
    pub fn load_for(dir: &Path, device: &Device, engine_spec: &str) -> Result<Self, ArtifactError> {
        let a = Self::load(dir, device)?;
        let engine = FeatureSpec::parse(engine_spec).map_err(|e| {
            ArtifactError::new(
                dir,
                Refusal::FeatureMismatch(format!(
                    "engine spec {engine_spec:?} does not parse: {e}"
                )),
            )
        })?;
        if engine.text() != a.features.text() {
            return Err(ArtifactError::new(
                dir,
                Refusal::FeatureMismatch(format!(
                    "engine computes {:?}, model expects {:?}",
                    engine.text(),
                    a.features.text()
                )),
            ));
        }
        Ok(a)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn features(&self) -> &FeatureSpec {
        &self.features
    }

    pub fn scaler(&self) -> &Scaler {
        &self.manifest.scaler
    }

    /// Bars per window (`T`).
    pub fn window(&self) -> usize {
        self.manifest.window
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Writes an artifact: weights and scaler first, manifest last, each via a
/// temporary file and a rename. `manifest.weights` is filled in here.
///
/// # Errors
/// [`ModelError::Io`] or a tensor error.
pub fn save(
    dir: &Path,
    mut manifest: Manifest,
    weights: &HashMap<String, Tensor>,
) -> Result<Manifest, ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut all: HashMap<String, Tensor> = weights
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<_, candle_core::Error>>()?;
    let cpu = Device::Cpu;
    all.insert(
        SCALER_MEAN.into(),
        Tensor::new(manifest.scaler.mean.as_slice(), &cpu)?,
    );
    all.insert(
        SCALER_STD.into(),
        Tensor::new(manifest.scaler.std.as_slice(), &cpu)?,
    );
    let tmp = dir.join(format!("{WEIGHTS_FILE}.tmp"));
    candle_core::safetensors::save(&all, &tmp)?;
    let bytes = std::fs::read(&tmp).map_err(io(&tmp))?;
    let final_weights = dir.join(WEIGHTS_FILE);
    std::fs::rename(&tmp, &final_weights).map_err(io(&final_weights))?;
    manifest.weights = WeightsEntry {
        file: WEIGHTS_FILE.into(),
        sha256: sha256_hex(&bytes),
    };
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| ModelError::config("manifest", e.to_string()))?;
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, json + "\n").map_err(io(&tmp))?;
    let final_manifest = dir.join(MANIFEST_FILE);
    std::fs::rename(&tmp, &final_manifest).map_err(io(&final_manifest))?;
    Ok(manifest)
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an artifact may ask the engine to allocate, checked before the
/// weights are read or anything is built: a manifest is untrusted input,
/// and a Transformer's attention alone takes `window² x heads` floats per
/// forward.
pub mod size_limits {
    pub const WINDOW: usize = 4096;
    pub const FEATURES: usize = 4096;
    pub const HIDDEN: usize = 4096;
    pub const LAYERS: usize = 16;
    pub const HEADS: usize = 64;
    pub const FF: usize = 16384;
    pub const CLASSES: usize = 64;
    /// `window² x heads` (attention scores per layer and sample): 2^26
    /// floats, 256 MiB.
    pub const ATTENTION: u64 = 1 << 26;
}

fn check_sizes(arch: &crate::ArchConfig) -> Result<(), String> {
    use size_limits as lim;
    for (field, v, max) in [
        ("window", arch.window, lim::WINDOW),
        ("features", arch.features, lim::FEATURES),
        ("hidden", arch.hidden, lim::HIDDEN),
        ("layers", arch.layers, lim::LAYERS),
        ("heads", arch.heads, lim::HEADS),
        ("ff", arch.ff, lim::FF),
        ("classes", arch.classes, lim::CLASSES),
    ] {
        if v > max {
            return Err(format!("arch.{field} {v} is over the limit of {max}"));
        }
    }
    let attention = (arch.window as u64)
        .saturating_mul(arch.window as u64)
        .saturating_mul(arch.heads.max(1) as u64);
    if arch.kind == crate::ArchKind::Transformer && attention > lim::ATTENTION {
        return Err(format!(
            "arch: window² x heads = {attention} is over the limit of {}",
            lim::ATTENTION
        ));
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest, Refusal> {
    let text =
        std::fs::read_to_string(dir.join(MANIFEST_FILE)).map_err(|source| Refusal::Unreadable {
            file: MANIFEST_FILE.into(),
            source,
        })?;
    parse_manifest(&text)
}

/// For the fuzz targets (`fuzz/`): every manifest check an artifact's
/// `manifest.json` text goes through before anything else is read.
#[doc(hidden)]
pub fn fuzz_manifest(text: &str) -> bool {
    parse_manifest(text).is_ok()
}

fn parse_manifest(text: &str) -> Result<Manifest, Refusal> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Refusal::ManifestMalformed(e.to_string()))?;
    let format = value.get("format").and_then(|v| v.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(Refusal::NotAnArtifact {
            found: format.to_owned(),
            expected: FORMAT,
        });
    }
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        _ => {
            return Err(Refusal::UnknownVersion {
                found: value
                    .get("version")
                    .map_or_else(|| "(missing)".to_owned(), ToString::to_string),
                supported: VERSION,
            })
        }
    }
    let m: Manifest =
        serde_json::from_value(value).map_err(|e| Refusal::ManifestMalformed(e.to_string()))?;
    if m.weights.file != WEIGHTS_FILE {
        return Err(Refusal::ManifestMalformed(format!(
            "weights.file is {:?}, must be {WEIGHTS_FILE:?}",
            m.weights.file
        )));
    }
    m.arch
        .validate()
        .map_err(|e| Refusal::ManifestMalformed(format!("arch: {e}")))?;
    check_sizes(&m.arch).map_err(Refusal::ManifestMalformed)?;
    if m.window != m.arch.window {
        return Err(Refusal::ManifestMalformed(format!(
            "window {} differs from arch.window {}",
            m.window, m.arch.window
        )));
    }
    Ok(m)
}

fn check_tensors(m: &Manifest, tensors: &HashMap<String, Tensor>) -> Result<(), Refusal> {
    let arch = format!(
        "{} (hidden {}, {} layers)",
        m.arch.kind, m.arch.hidden, m.arch.layers
    );
    let f = m.arch.features;
    let mut expected: Vec<(String, Vec<usize>, DType)> = Network::param_specs(&m.arch)
        .into_iter()
        .map(|s| (s.name, s.shape, DType::F32))
        .collect();
    expected.push((SCALER_MEAN.into(), vec![f], DType::F64));
    expected.push((SCALER_STD.into(), vec![f], DType::F64));
    for (name, shape, dtype) in &expected {
        let t = tensors.get(name).ok_or_else(|| Refusal::MissingTensor {
            name: name.clone(),
            arch: arch.clone(),
        })?;
        if t.dims() != shape.as_slice() || t.dtype() != *dtype {
            return Err(Refusal::TensorShape {
                name: name.clone(),
                found: format!("{:?} {:?}", t.dims(), t.dtype()),
                expected: format!("{shape:?} {dtype:?}"),
            });
        }
    }
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|k| !expected.iter().any(|(n, _, _)| n == *k))
        .collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(Refusal::UnexpectedTensor {
            name: (*name).clone(),
            arch,
        });
    }
    Ok(())
}

fn check_scaler(m: &Manifest, tensors: &HashMap<String, Tensor>) -> Result<(), Refusal> {
    let get = |name: &str| -> Result<Vec<f64>, Refusal> {
        tensors
            .get(name)
            .ok_or_else(|| Refusal::Scaler(format!("{name} missing")))?
            .to_vec1::<f64>()
            .map_err(|e| Refusal::Scaler(e.to_string()))
    };
    let (mean, std) = (get(SCALER_MEAN)?, get(SCALER_STD)?);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if bits(&mean) != bits(&m.scaler.mean) || bits(&std) != bits(&m.scaler.std) {
        return Err(Refusal::Scaler(
            "the scaler in manifest.json differs from the one in model.safetensors".into(),
        ));
    }
    if !m.scaler.is_valid() || m.scaler.width() != m.arch.features {
        return Err(Refusal::Scaler(format!(
            "needs {} finite means and positive finite stds",
            m.arch.features
        )));
    }
    Ok(())
}

fn check_features(m: &Manifest) -> Result<FeatureSpec, Refusal> {
    let spec = FeatureSpec::parse(&m.features.spec).map_err(|e| {
        Refusal::FeatureMismatch(format!(
            "this engine cannot compute {:?}: {e}",
            m.features.spec
        ))
    })?;
    if spec.text() != m.features.spec {
        return Err(Refusal::FeatureMismatch(format!(
            "the engine reads {:?} as {:?}",
            m.features.spec,
            spec.text()
        )));
    }
    if spec.columns() != m.features.columns.as_slice() {
        return Err(Refusal::FeatureMismatch(format!(
            "the engine computes columns {:?}, the model was trained on {:?}",
            spec.columns(),
            m.features.columns
        )));
    }
    if spec.width() != m.arch.features {
        return Err(Refusal::FeatureMismatch(format!(
            "{} columns but the network reads {}",
            spec.width(),
            m.arch.features
        )));
    }
    let probe = spec
        .probe()
        .map_err(|e| Refusal::FeatureMismatch(e.to_string()))?;
    if probe.len() != m.features.probe.len() {
        return Err(Refusal::FeatureMismatch("probe length differs".into()));
    }
    for ((col, now), then) in spec.columns().iter().zip(&probe).zip(&m.features.probe) {
        let same = match then {
            None => now.is_nan(),
            Some(t) => (now - t).abs() <= PROBE_RTOL * t.abs().max(1e-12),
        };
        if !same {
            return Err(Refusal::FeatureMismatch(format!(
                "column {col}: this engine gives {now} on the probe series, training gave {}",
                then.map_or("NaN".to_owned(), |t| t.to_string())
            )));
        }
    }
    Ok(spec)
}

fn smoke_forward(network: &Network, device: &Device) -> Result<(), Refusal> {
    let cfg = network.config();
    let run = || -> candle_core::Result<Vec<f32>> {
        let x = Tensor::zeros((1, cfg.window, cfg.features), DType::F32, device)?;
        network.forward(&x)?.flatten_all()?.to_vec1::<f32>()
    };
    let out = run().map_err(|e| Refusal::Unrunnable(e.to_string()))?;
    if out.len() != cfg.classes || !out.iter().all(|v| v.is_finite()) {
        return Err(Refusal::Unrunnable(format!(
            "forward on a zero window gave {out:?}"
        )));
    }
    Ok(())
}
