//! Batched inference: invalid inputs give "no prediction" (counted), valid
//! ones get the same answer batched as alone.

mod common;

use candle_core::Device;
use candlewick_models::{ArchKind, Artifact, FeatureWindow, NoPrediction, Predictor};
use common::{candles, write_tiny};

fn setup(arch: ArchKind) -> (tempfile::TempDir, Artifact) {
    let root = tempfile::tempdir().unwrap();
    let dir = write_tiny(root.path(), arch);
    let a = Artifact::load(&dir, &Device::Cpu).unwrap();
    (root, a)
}

/// Feature windows of three "symbols" fed different slices of history.
fn windows(a: &Artifact) -> Vec<FeatureWindow> {
    let data = candles(500);
    [100usize, 200, 300]
        .iter()
        .map(|&n| {
            let mut w = FeatureWindow::new(a.features(), a.window()).unwrap();
            for c in &data[..n] {
                w.push(c);
            }
            w
        })
        .collect()
}

#[test]
fn nan_input_gives_no_prediction() {
    let (_root, a) = setup(ArchKind::Lstm);
    let mut p = Predictor::new(&a, Device::Cpu).unwrap();
    let ws = windows(&a);
    let mut bad = ws[0].rows().to_vec();
    let f = p.width();
    bad[5 * f + 1] = f64::NAN;
    let out = p.predict(&[&bad]).unwrap();
    assert_eq!(out, [Err(NoPrediction::NonFinite { row: 5, column: 1 })]);
    bad[5 * f + 1] = f64::INFINITY;
    assert!(p.predict(&[&bad]).unwrap()[0].is_err());
    assert_eq!(p.stats().non_finite, 2);
    assert_eq!(
        p.stats().batches,
        0,
        "no forward runs for an all-invalid batch"
    );
}

#[test]
fn short_history_gives_no_prediction() {
    let (_root, a) = setup(ArchKind::Lstm);
    let mut p = Predictor::new(&a, Device::Cpu).unwrap();
    // rsi(14) warms up over 14 bars: after 20 candles the window of 12 is
    // full of rows but its oldest rows are still NaN; after 5, too short.
    let data = candles(20);
    let mut w = FeatureWindow::new(a.features(), a.window()).unwrap();
    for c in &data[..5] {
        w.push(c);
    }
    assert_eq!(
        p.predict(&[w.rows()]).unwrap(),
        [Err(NoPrediction::ShortHistory { have: 5, need: 12 })]
    );
    for c in &data[5..] {
        w.push(c);
    }
    assert!(matches!(
        p.predict(&[w.rows()]).unwrap()[0],
        Err(NoPrediction::NonFinite { .. })
    ));
    assert_eq!(p.stats().short_history, 1);
    assert_eq!(p.stats().non_finite, 1);
}

#[test]
fn shape_mismatch_gives_no_prediction() {
    let (_root, a) = setup(ArchKind::Lstm);
    let mut p = Predictor::new(&a, Device::Cpu).unwrap();
    let rows = vec![0.0; p.window() * p.width() + 1];
    assert!(matches!(
        p.predict(&[&rows]).unwrap()[0],
        Err(NoPrediction::ShapeMismatch { .. })
    ));
    assert_eq!(p.stats().shape_mismatch, 1);
}

#[test]
fn one_batch_answers_each_symbol_as_alone() {
    for arch in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let (_root, a) = setup(arch);
        let mut p = Predictor::new(&a, Device::Cpu).unwrap();
        let ws = windows(&a);
        let nan = vec![f64::NAN; p.window() * p.width()];
        let inputs: Vec<&[f64]> = vec![ws[0].rows(), &nan, ws[1].rows(), ws[2].rows()];
        let batched = p.predict(&inputs).unwrap();
        assert!(batched[1].is_err());
        for (i, input) in inputs.iter().enumerate().filter(|(i, _)| *i != 1) {
            let alone = p.predict(&[input]).unwrap()[0].unwrap();
            let b = batched[i].unwrap();
            for (x, y) in alone.probs.iter().zip(b.probs) {
                assert!((x - y).abs() < 1e-5, "{arch}: {alone:?} vs {b:?}");
            }
            assert!((b.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        assert_eq!(p.stats().batches, 4);
        assert_eq!(p.stats().predicted, 6);
        assert_eq!(p.stats().non_finite, 1);
    }
}
