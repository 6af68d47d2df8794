//! Tests of the CNN: the backend forward pass against the reference, the backward pass
//! against finite differences, the padding geometry and the model files.

use super::*;
use ndarray::Array2;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;

pub(super) fn tiny() -> CnnSpec {
    CnnSpec {
        name: "tiny".into(),
        side: 7,
        kernel: 3,
        stride: 2,
        pad: 1,
        maps: 2,
        hidden: 4,
        classes: 3,
        activation: CnnActivation::Square,
        rank: None,
    }
}

/// The tiny network as FFConv: a rank-2 convolution mixed into 3 maps.
fn tiny_ff() -> CnnSpec {
    CnnSpec {
        maps: 3,
        rank: Some(2),
        ..tiny()
    }
}

fn images(n: usize, pixels: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, pixels), || rng.gen_range(0.0..1.0))
}

#[test]
fn cryptonets_geometry_matches_the_paper() {
    let s = CnnSpec::cryptonets();
    assert_eq!(s.out_side(), 13);
    assert_eq!(s.features(), 845);
    // Output (0, 0), tap (0, 0) reads the padding row; tap (1, 1) reads pixel (0, 0).
    assert_eq!(s.tap_source(0, 0), None);
    assert_eq!(s.tap_source(0, 6), Some(0));
    // The last output position's last tap reads pixel (27, 27).
    assert_eq!(s.tap_source(168, 24), Some(27 * 28 + 27));
}

#[test]
fn backend_forward_matches_the_reference() {
    let spec = CnnSpec::cryptonets();
    let model = CnnModel::init(spec, 7).unwrap();
    let x = images(5, 784, 1);
    let a = plain_logits(&model, &x).unwrap();
    let b = model.logits(x.view()).unwrap();
    let err = (&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-9, "max |Δlogit| = {err}");
}

fn mean_loss(m: &CnnModel, x: &Array2<f64>, labels: &[u8]) -> f64 {
    let z = m.logits(x.view()).unwrap();
    let p = crate::backend::softmax_rows(&z, crate::backend::SoftmaxKind::Exp);
    -labels
        .iter()
        .enumerate()
        .map(|(i, &l)| p[[i, usize::from(l)]].ln())
        .sum::<f64>()
        / labels.len() as f64
}

#[test]
fn sgd_step_moves_along_the_finite_difference_gradient() {
    check_gradient(tiny());
    check_gradient(tiny_ff());
}

fn check_gradient(spec: CnnSpec) {
    let model = CnnModel::init(spec.clone(), 3).unwrap();
    let x = images(4, spec.pixels(), 2);
    let labels = [0u8, 2, 1, 2];
    let y = one_hot(&labels, 3).unwrap();
    let hyper = CnnHyper {
        momentum: 0.0,
        weight_decay: 0.0,
        ..CnnHyper::default()
    };
    let maps = CnnBatchMaps::new(&spec, 4).unwrap();
    let mut state = SgdState::plain(&model);
    let mut be = crate::Plain::new();
    let fut = sgd_step(&mut be, &mut state, &maps, &x, &y, 1.0, &hyper);
    tokio_free_ready(fut).unwrap();
    let before = to_tensors(&model);
    for (i, (p0, p1)) in before.iter().zip(&state.params).enumerate() {
        for idx in [(0, 0), (p0.nrows() - 1, p0.ncols() - 1)] {
            let grad = p0[idx] - p1[idx]; // lr 1: the step is the mean gradient
            let h = 1e-6;
            let mut t = before.clone();
            t[i][idx] += h;
            let up = mean_loss(&from_tensors(&spec, &t), &x, &labels);
            t[i][idx] -= 2.0 * h;
            let down = mean_loss(&from_tensors(&spec, &t), &x, &labels);
            let fd = (up - down) / (2.0 * h);
            assert!(
                (grad - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "tensor {i} {idx:?}: step {grad} vs finite difference {fd}"
            );
        }
    }
}

fn tokio_free_ready<T>(fut: impl std::future::Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("plain backend waited"),
    }
}

#[test]
fn training_learns_a_separable_toy_task() {
    // Class = which third of the image is lit; 300 images, a few epochs.
    let spec = tiny();
    let mut x = images(300, spec.pixels(), 5).mapv(|v| 0.3 * v);
    let mut labels = Vec::new();
    for (i, mut row) in x.outer_iter_mut().enumerate() {
        let c = (i % 3) as u8;
        let lo = usize::from(c) * 16;
        for v in row.iter_mut().skip(lo).take(16) {
            *v = 1.0;
        }
        labels.push(c);
    }
    let hyper = CnnHyper {
        epochs: 8,
        batch: 10,
        lr: 0.005,
        ..CnnHyper::default()
    };
    let mut reports = Vec::new();
    let m = train_plain(&spec, &x, &labels, &hyper, |r| reports.push(*r)).unwrap();
    assert_eq!(reports.len(), 8);
    assert!(reports[7].loss < reports[0].loss, "{reports:?}");
    let acc = m.accuracy(x.view(), &labels).unwrap();
    assert!(acc > 0.9, "toy accuracy {acc}");
}

#[test]
fn ffconv_backend_forward_matches_the_reference_and_its_fold() {
    let spec = CnnSpec::ffconv(3, 8);
    let mut model = CnnModel::init(spec, 11).unwrap();
    assert_eq!(model.conv_w.dim(), (3, 25));
    // A dense mixing with a bias (the initial one is a selection).
    let mix = images(8, 3, 12).mapv(|v| v - 0.5);
    model.mix = Some((mix, ndarray::Array1::linspace(-0.2, 0.3, 8)));
    let x = images(4, 784, 2);
    let a = plain_logits(&model, &x).unwrap();
    let b = model.logits(x.view()).unwrap();
    let folded = model.folded();
    assert_eq!((folded.spec.maps, folded.spec.rank), (3, None));
    assert_eq!(folded.fc1_w.dim(), (100, 3 * 169));
    let c = folded.logits(x.view()).unwrap();
    let max = |d: ndarray::Array2<f64>| d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max(&a - &b) < 1e-9, "backend vs reference");
    assert!(max(&b - &c) < 1e-9, "folded vs FFConv");
}

#[test]
fn a_fixed_mask_keeps_pruned_weights_at_zero() {
    let spec = tiny_ff();
    let model = CnnModel::init(spec.clone(), 4).unwrap();
    let x = images(40, spec.pixels(), 6);
    let labels: Vec<u8> = (0..40).map(|i| (i % 3) as u8).collect();
    let mut mask: Vec<Array2<f64>> = to_tensors(&model)
        .iter()
        .map(|t| Array2::ones(t.dim()))
        .collect();
    let fc1 = 4; // conv w, b, mix w, b, then fc1 (features × hidden)
    for ((r, c), m) in mask[fc1].indexed_iter_mut() {
        *m = f64::from(u8::from((r + c) % 3 != 0));
    }
    let hyper = CnnHyper {
        epochs: 2,
        batch: 8,
        lr: 0.01,
        ..CnnHyper::default()
    };
    let tuned = fine_tune_plain(&model, Some(&mask), &x, &labels, &hyper, |_| {}).unwrap();
    let t = to_tensors(&tuned);
    for ((idx, &m), &w) in mask[fc1].indexed_iter().zip(t[fc1].iter()) {
        assert!(m == 1.0 || w == 0.0, "{idx:?} pruned but {w}");
    }
    assert!(t[fc1].iter().any(|&w| w != 0.0) && t[fc1] != to_tensors(&model)[fc1]);
    let mut bad = mask.clone();
    bad.pop();
    assert!(fine_tune_plain(&model, Some(&bad), &x, &labels, &hyper, |_| {}).is_err());
}

#[test]
fn files_round_trip_exactly_and_refuse_wrong_shapes() {
    let ff = CnnModel::init(tiny_ff(), 9).unwrap();
    let bytes = ff.to_safetensors_bytes().unwrap();
    assert_eq!(
        CnnModel::from_json_and_safetensors(&ff.spec_json(), &bytes).unwrap(),
        ff
    );
    let m = CnnModel::init(tiny(), 9).unwrap();
    let bytes = m.to_safetensors_bytes().unwrap();
    let back = CnnModel::from_json_and_safetensors(&m.spec_json(), &bytes).unwrap();
    assert_eq!(back, m);
    let mut other = tiny();
    other.maps = 3;
    let json = serde_json::to_string(&other).unwrap();
    let err = CnnModel::from_json_and_safetensors(&json, &bytes).unwrap_err();
    assert!(err.to_string().contains("conv.weight"), "{err}");
}

#[test]
fn bad_labels_and_images_are_refused_with_their_position() {
    let err = one_hot(&[1, 12], 10).unwrap_err().to_string();
    assert!(err.contains("index 1") && err.contains("12"), "{err}");
    let m = CnnModel::init(tiny(), 1).unwrap();
    assert!(m.logits(Array2::zeros((2, 50)).view()).is_err());
}
