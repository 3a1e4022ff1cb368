//! The fused inference path computes what the differentiable path computes,
//! and the LSTM equals a plain reference implementation of its equations.

use candle_core::{Device, Tensor};
use candlewick_models::arch::{init_params, Network};
use candlewick_models::{ArchConfig, ArchKind};

fn net(
    kind: ArchKind,
    f: usize,
    t: usize,
    h: usize,
    layers: usize,
) -> (Network, std::collections::HashMap<String, Tensor>) {
    let mut cfg = ArchConfig::new(kind, f, t);
    cfg.hidden = h;
    cfg.layers = layers;
    cfg.heads = 2;
    cfg.ff = 2 * h;
    let w = init_params(&Network::param_specs(&cfg), 3, &Device::Cpu).unwrap();
    (Network::from_weights(&cfg, &w).unwrap(), w)
}

fn input(b: usize, t: usize, f: usize) -> Tensor {
    let v: Vec<f32> = (0..b * t * f)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    Tensor::from_vec(v, (b, t, f), &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn fused_inference_equals_training_path() {
    for kind in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let (n, _) = net(kind, 5, 9, 8, 2);
        let x = input(3, 9, 5);
        let fast = n.forward(&x).unwrap();
        let slow = n.forward_t(&x, true).unwrap();
        assert_eq!(fast.dims(), [3, 3]);
        assert!(max_diff(&fast, &slow) < 1e-5, "{kind}");
    }
}

#[test]
fn lstm_matches_reference_equations() {
    let (f, t, h) = (3, 4, 5);
    let (n, w) = net(ArchKind::Lstm, f, t, h, 1);
    let x = input(1, t, f);
    let got = n
        .forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let m = |name: &str| w[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (wih, whh, b) = (m("lstm.0.w_ih"), m("lstm.0.w_hh"), m("lstm.0.bias"));
    let (hw, hb) = (m("head.weight"), m("head.bias"));
    let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
    let (mut hs, mut cs) = (vec![0f32; h], vec![0f32; h]);
    for s in 0..t {
        let mut g = vec![0f32; 4 * h];
        for (r, gr) in g.iter_mut().enumerate() {
            *gr = b[r];
            for k in 0..f {
                *gr += wih[r * f + k] * xs[s * f + k];
            }
            for k in 0..h {
                *gr += whh[r * h + k] * hs[k];
            }
        }
        // i, f, o, g
        for k in 0..h {
            cs[k] = sig(g[h + k]) * cs[k] + sig(g[k]) * g[3 * h + k].tanh();
            hs[k] = sig(g[2 * h + k]) * cs[k].tanh();
        }
    }
    for c in 0..3 {
        let want = hb[c] + (0..h).map(|k| hw[c * h + k] * hs[k]).sum::<f32>();
        assert!(
            (got[c] - want).abs() < 1e-5,
            "class {c}: {} vs {want}",
            got[c]
        );
    }
}

#[test]
fn wrong_feature_count_is_an_error_not_garbage() {
    let (n, _) = net(ArchKind::Gru, 4, 6, 8, 1);
    assert!(n.forward(&input(2, 6, 5)).is_err());
}
