//! The inference stage on real data: warm-up, batching, references,
//! refusals and restart.

mod common;

use candlewick_inference::{
    models_from_args, InferenceError, InferenceStage, ModelFeed, NamedModel, OutputRef,
};
use candlewick_models::{ArchKind, Device, FeatureWindow, Predictor, Refusal};
use common::{candles, write_tiny, WINDOW};

fn model(arch: ArchKind) -> (tempfile::TempDir, NamedModel) {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), "tiny", arch);
    let m = NamedModel::load(Some("prediction"), &dir).unwrap();
    (root, m)
}

/// Every bar's p(up) over `bars`, one stage per call, one push per batch.
fn one_by_one(
    stage: &mut InferenceStage,
    stream: usize,
    bars: &[candlewick_market::Candle],
) -> Vec<f64> {
    let need = stage.resolve(&["prediction".to_owned()]).unwrap()[0];
    bars.iter()
        .map(|c| {
            let t = stage.push(stream, c).unwrap();
            stage.run_batch().unwrap();
            stage.value(t, need)
        })
        .collect()
}

#[test]
fn warm_up_reads_nan_then_predictions_equal_the_predictor_bit_for_bit() {
    let (_root, m) = model(ArchKind::Lstm);
    let data = candles(200);
    let mut stage = InferenceStage::new(std::slice::from_ref(&m), 1).unwrap();
    let got = one_by_one(&mut stage, 0, &data);

    // The reference: the models crate alone, window by window.
    let a = m.artifact();
    let mut p = Predictor::new(a, Device::Cpu).unwrap();
    let mut w = FeatureWindow::new(a.features(), a.window()).unwrap();
    let mut first = None;
    for (i, c) in data.iter().enumerate() {
        w.push(c);
        let expected = p.predict(&[w.rows()]).unwrap()[0].map(|x| f64::from(x.probs[2]));
        match expected {
            Ok(v) => {
                first.get_or_insert(i);
                assert_eq!(got[i].to_bits(), v.to_bits(), "bar {i}");
            }
            Err(_) => assert!(got[i].is_nan(), "bar {i}: {}", got[i]),
        }
    }
    // rsi(14) has its first value at bar 14; the window of 12 is all
    // finite from bar 14 + 11.
    assert_eq!(first, Some(14 + WINDOW - 1));
    let s = stage.stats();
    assert_eq!(s.predicted, (200 - 25) as u64);
    assert_eq!(s.short_history, (WINDOW - 1) as u64);
    assert_eq!(s.non_finite_input, (25 - (WINDOW - 1)) as u64);
    // Predictions move with the data: the strategy has something to follow.
    let distinct: std::collections::BTreeSet<u64> = got[25..].iter().map(|v| v.to_bits()).collect();
    assert!(distinct.len() > 50, "{}", distinct.len());
}

#[test]
fn one_batch_over_n_streams_equals_n_single_stream_runs() {
    for arch in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let (_root, m) = model(arch);
        let data = candles(600);
        let n = 8;
        // Stream s sees the data from bar 37 * s on.
        let slices: Vec<&[candlewick_market::Candle]> =
            (0..n).map(|s| &data[37 * s..37 * s + 300]).collect();
        let need = OutputRef::resolve("prediction.score", std::slice::from_ref(&m)).unwrap();
        let mut batched = InferenceStage::new(std::slice::from_ref(&m), n).unwrap();
        let mut got = vec![Vec::new(); n];
        for i in 0..300 {
            let tickets: Vec<_> = slices
                .iter()
                .enumerate()
                .map(|(s, slice)| batched.push(s, &slice[i]).unwrap())
                .collect();
            batched.run_batch().unwrap();
            for (s, t) in tickets.into_iter().enumerate() {
                got[s].push(batched.value(t, need));
            }
        }
        assert_eq!(
            batched.stats().forwards,
            (300 - 25) as u64,
            "{arch}: one forward per batch"
        );
        let mut worst = 0f64;
        let mut exact = true;
        for (s, slice) in slices.iter().enumerate() {
            let mut alone = InferenceStage::new(std::slice::from_ref(&m), 1).unwrap();
            for (i, c) in slice.iter().enumerate() {
                let t = alone.push(0, c).unwrap();
                alone.run_batch().unwrap();
                let (a, b) = (alone.value(t, need), got[s][i]);
                assert_eq!(a.is_nan(), b.is_nan(), "{arch} stream {s} bar {i}");
                if a.is_finite() {
                    worst = worst.max((a - b).abs());
                    exact &= a.to_bits() == b.to_bits();
                }
            }
        }
        assert!(
            worst <= 1e-6,
            "{arch}: batched differs from single by {worst}"
        );
        // The recurrent nets' fused cells compute each row alone: exact.
        // The Transformer's attention matmuls block by batch size: 1e-7.
        if arch != ArchKind::Transformer {
            assert!(exact, "{arch}: batched differs from single by {worst}");
        }
    }
}

#[test]
fn a_burst_of_bars_of_one_stream_gets_each_bars_own_window() {
    let (_root, m) = model(ArchKind::Gru);
    let data = candles(150);
    let mut one = InferenceStage::new(std::slice::from_ref(&m), 1).unwrap();
    let reference = one_by_one(&mut one, 0, &data);
    let mut feed = ModelFeed::new(std::slice::from_ref(&m), &["prediction".to_owned()]).unwrap();
    let mut got = Vec::new();
    for chunk in data.chunks(64) {
        feed.run(chunk).unwrap();
        got.extend((0..chunk.len()).map(|i| feed.row(i)[0]));
    }
    for (i, (a, b)) in reference.iter().zip(&got).enumerate() {
        assert_eq!(a.is_nan(), b.is_nan(), "bar {i}");
        assert!(a.is_nan() || (a - b).abs() <= 1e-6, "bar {i}: {a} vs {b}");
    }
}

#[test]
fn a_missing_model_or_output_is_refused_naming_both() {
    let (_root, m) = model(ArchKind::Lstm);
    let e = OutputRef::resolve("trend", std::slice::from_ref(&m)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, InferenceError::MissingModel { .. }));
    assert!(
        text.contains("\"trend\"") && text.contains("prediction"),
        "{text}"
    );
    let e = ModelFeed::new(&[], &["trend".to_owned()]).unwrap_err();
    assert!(e.to_string().contains("no models are configured"), "{e}");
    let e = OutputRef::resolve("prediction.p_sideways", std::slice::from_ref(&m)).unwrap_err();
    assert!(
        e.to_string().contains("p_sideways") && e.to_string().contains("p_up"),
        "{e}"
    );
    assert!(matches!(
        InferenceStage::new(&[m.clone(), m], 1).unwrap_err(),
        InferenceError::Duplicate(_)
    ));
}

#[test]
fn a_corrupted_artifact_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), "tiny", ArchKind::Lstm);
    let weights = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x40;
    std::fs::write(&weights, bytes).unwrap();
    let e = NamedModel::load(None, &dir).unwrap_err();
    match &e {
        InferenceError::Artifact(a) => assert!(matches!(a.kind(), Refusal::HashMismatch { .. })),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("hash mismatch"), "{e}");
    let arg = dir.display().to_string();
    assert!(models_from_args(&[arg], &["prediction".to_owned()]).is_err());
    assert!(matches!(
        NamedModel::load(Some("has space"), &root.path().join("missing")).unwrap_err(),
        InferenceError::Artifact(_)
    ));
}

#[test]
fn restart_from_a_saved_window_continues_bit_for_bit() {
    let (_root, m) = model(ArchKind::Lstm);
    let data = candles(300);
    let mut uninterrupted = InferenceStage::new(std::slice::from_ref(&m), 2).unwrap();
    let reference = one_by_one(&mut uninterrupted, 1, &data);

    let cut = 140;
    let mut before = InferenceStage::new(std::slice::from_ref(&m), 2).unwrap();
    one_by_one(&mut before, 1, &data[..cut]);
    let saved = before.save(0, 1).unwrap();
    drop(before);
    let mut after = InferenceStage::new(std::slice::from_ref(&m), 2).unwrap();
    after.restore(0, 1, &saved).unwrap();
    let resumed = one_by_one(&mut after, 1, &data[cut..]);
    for (i, (a, b)) in reference[cut..].iter().zip(&resumed).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "bar {}", cut + i);
    }

    // The tail fallback: rsi's Wilder smoothing is recursive, so a window
    // rebuilt from 100 candles is close, not exact.
    let mut warmed = InferenceStage::new(std::slice::from_ref(&m), 2).unwrap();
    warmed.warm(0, 1, &data[cut - 100..cut]).unwrap();
    let rebuilt = one_by_one(&mut warmed, 1, &data[cut..]);
    let diff = reference[cut..]
        .iter()
        .zip(&rebuilt)
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max);
    assert!(diff < 1e-3, "{diff}");

    // A window saved for other weights is refused, and garbage too.
    let (_other_root, other) = model(ArchKind::Gru);
    let mut stage = InferenceStage::new(&[other], 2).unwrap();
    let e = stage.restore(0, 1, &saved).unwrap_err();
    assert!(e.to_string().contains("saved for weights"), "{e}");
    assert!(stage.restore(0, 1, &[1, 2, 3]).is_err());
    assert!(stage.restore(0, 5, &saved).is_err());
}
