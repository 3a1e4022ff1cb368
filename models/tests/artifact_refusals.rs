//! Every refusal of DESIGN §9, one test each: a tampered weights file, a
//! wrong hash, an unknown version, a feature spec the engine does not
//! compute, and the rest of the load checks.

mod common;

use candle_core::Device;
use candlewick_models::{ArchKind, Artifact, Refusal};
use common::{edit_manifest, write_tiny, SPEC};

#[test]
fn intact_artifact_loads_and_matches_its_manifest() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    let a = Artifact::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(a.features().text(), SPEC);
    assert_eq!(a.window(), 12);
    assert_eq!(a.manifest().weights.sha256.len(), 64);
    Artifact::load_for(&dir, &Device::Cpu, "logret  range rsi( 14 )").unwrap();
}

#[test]
fn tampered_weights_are_refused_by_hash() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() - 40;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::HashMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("weights hash mismatch"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
}

#[test]
fn wrong_hash_in_manifest_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    let wrong = "0".repeat(64);
    edit_manifest(&dir, |m| m["weights"]["sha256"] = wrong.clone().into());
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    match err.kind() {
        Refusal::HashMismatch { expected, actual } => {
            assert_eq!(expected, &wrong);
            assert_ne!(actual, &wrong);
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
}

#[test]
fn unknown_version_is_refused_before_the_schema() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    // A future version may change any field: the version check must come
    // first, so the message says "version", not "malformed".
    edit_manifest(&dir, |m| {
        m["version"] = 2.into();
        m["arch"] = "something new".into();
    });
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(err.kind(), Refusal::UnknownVersion { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown artifact version 2"),
        "{err}"
    );
}

#[test]
fn not_an_artifact_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    edit_manifest(&dir, |m| m["format"] = "onnx".into());
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::NotAnArtifact { .. }), "{err}");
}

#[test]
fn engine_spec_that_differs_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    let err = Artifact::load_for(&dir, &Device::Cpu, "logret range rsi(21)").unwrap_err();
    assert!(matches!(err.kind(), Refusal::FeatureMismatch(_)), "{err}");
    assert!(err.to_string().contains("rsi(21)"), "{err}");
}

#[test]
fn manifest_columns_that_differ_from_the_engine_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    edit_manifest(&dir, |m| {
        m["features"]["columns"][2] = "rsi(14).value".into()
    });
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::FeatureMismatch(_)), "{err}");
}

#[test]
fn engine_that_computes_other_numbers_is_refused() {
    // Simulates an indicator whose meaning changed since training: the
    // recorded probe values no longer match what this engine computes.
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    edit_manifest(&dir, |m| {
        let v = m["features"]["probe"][2].as_f64().unwrap();
        m["features"]["probe"][2] = (v * 1.001).into();
    });
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::FeatureMismatch(_)), "{err}");
    assert!(err.to_string().contains("column rsi(14)"), "{err}");
}

#[test]
fn scaler_edited_in_the_manifest_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    edit_manifest(&dir, |m| m["scaler"]["mean"][0] = 0.5.into());
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::Scaler(_)), "{err}");
}

#[test]
fn missing_files_and_garbage_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    std::fs::write(dir.join("manifest.json"), "{ not json").unwrap();
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::ManifestMalformed(_)), "{err}");
    let err = Artifact::load(&root.path().join("nope"), &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::Unreadable { .. }), "{err}");
}

#[test]
fn rehashed_weights_missing_a_tensor_are_refused() {
    // Someone "fixes" the hash after editing the weights: the structural
    // checks still catch a network that is not the manifest's.
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), ArchKind::Lstm);
    let path = dir.join("model.safetensors");
    let mut ts = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    ts.remove("head.bias");
    candle_core::safetensors::save(&ts, &path).unwrap();
    let sha = candlewick_models::artifact::sha256_hex(&std::fs::read(&path).unwrap());
    edit_manifest(&dir, |m| m["weights"]["sha256"] = sha.into());
    let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
    assert!(matches!(err.kind(), Refusal::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains("head.bias"), "{err}");
}

#[test]
fn oversized_architectures_are_refused_before_the_weights_are_read() {
    let root = tempfile::tempdir().unwrap();
    let cases: [(ArchKind, &str, serde_json::Value, &str); 4] = [
        (ArchKind::Lstm, "layers", 1000.into(), "arch.layers 1000"),
        (ArchKind::Lstm, "hidden", 60000.into(), "arch.hidden 60000"),
        (ArchKind::Gru, "window", 65536.into(), "arch.window 65536"),
        // Within each bound, too much together: 4096² x 64 heads.
        (ArchKind::Transformer, "heads", 64.into(), "window² x heads"),
    ];
    for (i, (kind, field, value, expected)) in cases.into_iter().enumerate() {
        let dir = write_tiny(&root.path().join(i.to_string()), kind);
        // The weights would not match anyway: the refusal must come first.
        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        edit_manifest(&dir, |m| {
            m["arch"][field] = value.clone();
            if kind == ArchKind::Transformer {
                m["arch"]["window"] = 4096.into();
                m["arch"]["hidden"] = 4096.into();
                m["window"] = 4096.into();
            }
            if field == "window" {
                m["window"] = value.clone();
            }
        });
        let err = Artifact::load(&dir, &Device::Cpu).unwrap_err();
        assert!(
            matches!(err.kind(), Refusal::ManifestMalformed(_)),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(expected), "{field}: {err}");
    }
}
