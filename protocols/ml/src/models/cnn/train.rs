//! Training a [`CnnModel`] on any [`Backend`]: the convolution as a public unfolding
//! ([`Backend::gather`], zero padding and stride in the map) and a matrix product, `x²`
//! activations as [`Backend::square`], the exp softmax with the cross-entropy gradient
//! `P − Y`, backward by hand, SGD with momentum (`v ← μ·v + g/|B| + wd·w`, `w ← w − lr·v`).
//! [`train_plain`] drives it on [`Plain`] over MNIST-shaped data.

use super::spec::{CnnActivation, CnnModel, CnnSpec};
use crate::backend::{Backend, IndexMap, Plain, SoftmaxKind};
use crate::error::{MlError, Result};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// Hyper-parameters of CNN training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnHyper {
    /// Passes over the training set.
    pub epochs: usize,
    /// Mini-batch size (the last partial batch of an epoch is dropped).
    pub batch: usize,
    /// Learning rate of the first epoch.
    pub lr: f64,
    /// Factor applied to the learning rate after every epoch.
    pub lr_decay: f64,
    /// Momentum `μ`.
    pub momentum: f64,
    /// Weight decay on weights (not biases).
    pub weight_decay: f64,
    /// Seed of the initial weights, the shuffling and the augmentation draws (none is
    /// secret).
    pub seed: u64,
    /// Data augmentation: each training image of a batch is translated by up to this many
    /// pixels in each direction, drawn per image and per epoch ([`super::augment`]); 0 (the
    /// default, and what older hyper-parameter files mean) trains on the images as given.
    #[serde(default)]
    pub max_shift: usize,
}

impl Default for CnnHyper {
    fn default() -> Self {
        Self {
            epochs: 15,
            batch: 64,
            lr: 0.02,
            lr_decay: 0.85,
            momentum: 0.9,
            weight_decay: 5e-5,
            seed: 1,
            max_shift: 0,
        }
    }
}

/// The public maps of one batch size.
struct Maps {
    unfold: IndexMap,
    flatten: IndexMap,
    /// Bias broadcasts: conv (`B·P × conv_maps`), mixing (`B·P × maps`, FFConv only), fc1,
    /// fc2.
    bias: [IndexMap; 4],
    /// Whether the parameters hold FFConv's mixing (indices 2 and 3).
    mix: bool,
}

impl Maps {
    fn new(spec: &CnnSpec, batch: usize) -> Result<Self> {
        let (np, nt) = (spec.positions(), spec.taps());
        let unfold = IndexMap::from_fn((batch, spec.pixels()), (batch * np, nt), |r, k| {
            spec.tap_source(r % np, k).map(|src| (r / np, src))
        })?;
        // (b·P + p, m) → (b, m·P + p)
        let flatten =
            IndexMap::from_fn((batch * np, spec.maps), (batch, spec.features()), |b, f| {
                Some((b * np + f % np, f / np))
            })?;
        let row = |rows, cols| IndexMap::from_fn((1, cols), (rows, cols), |_, c| Some((0, c)));
        Ok(Self {
            unfold,
            flatten,
            bias: [
                row(batch * np, spec.conv_maps())?,
                row(batch * np, spec.maps)?,
                row(batch, spec.hidden)?,
                row(batch, spec.classes)?,
            ],
            mix: spec.rank.is_some(),
        })
    }

    /// Index of fc1's weight in the parameters (fc1 bias, fc2 weight and bias follow).
    fn fc1(&self) -> usize {
        if self.mix {
            4
        } else {
            2
        }
    }
}

/// The parameters as the products use them (`X·W`): `[wc, bc, w1, b1, w2, b2]` with
/// `wc: taps × conv_maps`, `w1: features × hidden`, `w2: hidden × classes`, biases `1 × n`;
/// FFConv inserts the mixing `wm: rank × maps`, `bm` after `bc`.
pub type CnnTensors<T> = Vec<T>;

/// What the backward pass needs from the forward pass.
struct Cache<T> {
    u: T,
    z1: T,
    /// The activated conv maps, when FFConv mixes them (the mixing's input).
    a1: Option<T>,
    f: T,
    z2: T,
    a2: T,
}

/// `x·w + broadcast(b)`.
async fn affine<B: Backend>(
    be: &mut B,
    x: &B::Tensor,
    w: &B::Tensor,
    b: &B::Tensor,
    map: &IndexMap,
) -> Result<B::Tensor> {
    let z = be.matmul(x, w, 0).await?;
    be.add(&z, &be.gather(b, map)?)
}

async fn forward<B: Backend>(
    be: &mut B,
    p: &CnnTensors<B::Tensor>,
    maps: &Maps,
    x: &B::Tensor,
) -> Result<(Cache<B::Tensor>, B::Tensor)> {
    let u = be.gather(x, &maps.unfold)?;
    let z1 = affine(be, &u, &p[0], &p[1], &maps.bias[0]).await?;
    let a1 = be.square(&z1).await?;
    let (a1, mixed) = if maps.mix {
        let m = affine(be, &a1, &p[2], &p[3], &maps.bias[1]).await?;
        (Some(a1), m)
    } else {
        (None, a1)
    };
    let f = be.gather(&mixed, &maps.flatten)?;
    let i = maps.fc1();
    let z2 = affine(be, &f, &p[i], &p[i + 1], &maps.bias[2]).await?;
    let a2 = be.square(&z2).await?;
    let z3 = affine(be, &a2, &p[i + 2], &p[i + 3], &maps.bias[3]).await?;
    Ok((
        Cache {
            u,
            z1,
            a1,
            f,
            z2,
            a2,
        },
        z3,
    ))
}

/// `2·z ⊙ d`: the gradient through `x²`.
async fn through_square<B: Backend>(be: &mut B, z: &B::Tensor, d: &B::Tensor) -> Result<B::Tensor> {
    let m = be.mul(z, d, 0).await?;
    be.scale(&m, 2.0).await
}

async fn backward<B: Backend>(
    be: &mut B,
    p: &CnnTensors<B::Tensor>,
    maps: &Maps,
    c: &Cache<B::Tensor>,
    dz3: &B::Tensor,
) -> Result<CnnTensors<B::Tensor>> {
    let i = maps.fc1();
    let dw2 = be.matmul(&be.transpose(&c.a2), dz3, 0).await?;
    let db2 = be.scatter_add(dz3, &maps.bias[3])?;
    let da2 = be.matmul(dz3, &be.transpose(&p[i + 2]), 0).await?;
    let dz2 = through_square(be, &c.z2, &da2).await?;
    let dw1 = be.matmul(&be.transpose(&c.f), &dz2, 0).await?;
    let db1 = be.scatter_add(&dz2, &maps.bias[2])?;
    let df = be.matmul(&dz2, &be.transpose(&p[i]), 0).await?;
    let mut dmix = Vec::new();
    let mut da1 = be.scatter_add(&df, &maps.flatten)?;
    if let Some(a1) = &c.a1 {
        dmix.push(be.matmul(&be.transpose(a1), &da1, 0).await?);
        dmix.push(be.scatter_add(&da1, &maps.bias[1])?);
        da1 = be.matmul(&da1, &be.transpose(&p[2]), 0).await?;
    }
    let dz1 = through_square(be, &c.z1, &da1).await?;
    let dwc = be.matmul(&be.transpose(&c.u), &dz1, 0).await?;
    let dbc = be.scatter_add(&dz1, &maps.bias[0])?;
    let mut grads = vec![dwc, dbc];
    grads.extend(dmix);
    grads.extend([dw1, db1, dw2, db2]);
    Ok(grads)
}

/// One SGD step with momentum on the batch `x` (`B × pixels`) with one-hot labels `y`;
/// returns the softmax probabilities of the batch (before the step).
///
/// # Errors
/// Shape errors of the backend, or a protocol error on shares.
pub async fn sgd_step<B: Backend>(
    be: &mut B,
    state: &mut SgdState<B::Tensor>,
    spec_maps: &CnnBatchMaps,
    x: &B::Tensor,
    y: &B::Tensor,
    lr: f64,
    hyper: &CnnHyper,
) -> Result<B::Tensor> {
    let maps = &spec_maps.0;
    let SgdState { params, velocity } = state;
    let (cache, z3) = forward(be, params, maps, x).await?;
    let probs = be.softmax(&z3, SoftmaxKind::Exp).await?;
    let dz3 = be.sub(&probs, y)?;
    let grads = backward(be, params, maps, &cache, &dz3).await?;
    let inv_b = 1.0 / B::dim(x).0 as f64;
    for (i, g) in grads.iter().enumerate() {
        let mut step = be.scale(g, inv_b).await?;
        if i % 2 == 0 && hyper.weight_decay != 0.0 {
            let wd = be.scale(&params[i], hyper.weight_decay).await?;
            step = be.add(&step, &wd)?;
        }
        let mv = be.scale(&velocity[i], hyper.momentum).await?;
        velocity[i] = be.add(&mv, &step)?;
        let delta = be.scale(&velocity[i], lr).await?;
        params[i] = be.sub(&params[i], &delta)?;
    }
    Ok(probs)
}

/// Parameters and momentum buffers of SGD.
#[derive(Debug, Clone)]
pub struct SgdState<T> {
    /// The parameters.
    pub params: CnnTensors<T>,
    /// One momentum buffer per parameter.
    pub velocity: CnnTensors<T>,
}

impl SgdState<Array2<f64>> {
    /// The model's parameters with zero momentum.
    pub fn plain(model: &CnnModel) -> Self {
        let params = to_tensors(model);
        let velocity = params.iter().map(|t| Array2::zeros(t.dim())).collect();
        Self { params, velocity }
    }
}

/// The public unfolding, flattening and bias maps of one batch size (built once per run).
pub struct CnnBatchMaps(Maps);

impl std::fmt::Debug for CnnBatchMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CnnBatchMaps")
            .field("unfold", &self.0.unfold.out_dim())
            .finish()
    }
}

impl CnnBatchMaps {
    /// The maps of `spec` at batch size `batch`.
    ///
    /// # Errors
    /// A batch too large for 32-bit indices.
    pub fn new(spec: &CnnSpec, batch: usize) -> Result<Self> {
        Ok(Self(Maps::new(spec, batch)?))
    }
}

/// The model's parameters as [`CnnTensors`] of `f64` (transposed to `X·W` form).
pub fn to_tensors(m: &CnnModel) -> CnnTensors<Array2<f64>> {
    let row = |b: &Array1<f64>| b.clone().insert_axis(Axis(0));
    let mut t = vec![m.conv_w.t().to_owned(), row(&m.conv_b)];
    if let Some((w, b)) = &m.mix {
        t.extend([w.t().to_owned(), row(b)]);
    }
    t.extend([
        m.fc1_w.t().to_owned(),
        row(&m.fc1_b),
        m.fc2_w.t().to_owned(),
        row(&m.fc2_b),
    ]);
    t
}

/// The model with parameters `t` (the inverse of [`to_tensors`]).
pub fn from_tensors(spec: &CnnSpec, t: &CnnTensors<Array2<f64>>) -> CnnModel {
    let row = |b: &Array2<f64>| b.row(0).to_owned();
    let i = if spec.rank.is_some() { 4 } else { 2 };
    CnnModel {
        spec: spec.clone(),
        conv_w: t[0].t().to_owned(),
        conv_b: row(&t[1]),
        mix: spec.rank.map(|_| (t[2].t().to_owned(), row(&t[3]))),
        fc1_w: t[i].t().to_owned(),
        fc1_b: row(&t[i + 1]),
        fc2_w: t[i + 2].t().to_owned(),
        fc2_b: row(&t[i + 3]),
    }
}

/// Runs a future of the [`Plain`] backend, which never waits, to completion.
fn ready<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the plaintext backend never waits"),
    }
}

/// What [`train_plain`] reports after each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number from 1.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub loss: f64,
    /// Training accuracy over the epoch's batches (before each step).
    pub train_accuracy: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Trains `spec` from a fresh initialisation on `images` (`N × pixels`, values in `[0, 1]`)
/// and `labels` on the plaintext backend; `on_epoch` sees each epoch's report.
///
/// # Errors
/// Invalid spec or hyper-parameters, images of the wrong width, labels ≥ classes, or a
/// diverged run (a non-finite loss).
pub fn train_plain(
    spec: &CnnSpec,
    images: &Array2<f64>,
    labels: &[u8],
    hyper: &CnnHyper,
    on_epoch: impl FnMut(&EpochReport),
) -> Result<CnnModel> {
    let model = CnnModel::init(spec.clone(), hyper.seed)?;
    fine_tune_plain(&model, None, images, labels, hyper, on_epoch)
}

/// Trains on from `model` as [`train_plain`] does; with a `mask` (one 0/1 tensor per
/// parameter, shaped as [`to_tensors`] gives them) every weight whose mask is 0 is zeroed at
/// the start and after every step, with its momentum: fine-tuning with a fixed pruning mask.
///
/// # Errors
/// As [`train_plain`], and a mask whose shapes differ from the parameters'.
pub fn fine_tune_plain(
    model: &CnnModel,
    mask: Option<&CnnTensors<Array2<f64>>>,
    images: &Array2<f64>,
    labels: &[u8],
    hyper: &CnnHyper,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<CnnModel> {
    let spec = &model.spec;
    model.check_images(images.view())?;
    check_hyper(hyper, images.nrows())?;
    let onehot = one_hot(labels, spec.classes)?;
    let CnnActivation::Square = spec.activation;
    let maps = CnnBatchMaps::new(spec, hyper.batch)?;
    let mut be = Plain::new();
    let mut state = SgdState::plain(model);
    if let Some(mask) = mask {
        check_mask(&state.params, mask)?;
        state.apply_mask(mask);
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(hyper.seed ^ 0x5eed);
    // A stream of its own, so that turning augmentation on leaves the shuffling unchanged.
    let mut aug_rng = rand_chacha::ChaCha20Rng::seed_from_u64(hyper.seed ^ 0xa06);
    let mut order: Vec<usize> = (0..images.nrows()).collect();
    let mut lr = hyper.lr;
    for epoch in 1..=hyper.epochs {
        order.shuffle(&mut rng);
        let (mut loss, mut hits, mut seen) = (0.0, 0usize, 0usize);
        for rows in order.chunks_exact(hyper.batch) {
            let mut x = images.select(Axis(0), rows);
            super::augment::shift_batch(&mut x, spec.side, hyper.max_shift, &mut aug_rng);
            let y = onehot.select(Axis(0), rows);
            let probs = ready(sgd_step(&mut be, &mut state, &maps, &x, &y, lr, hyper))?;
            if let Some(mask) = mask {
                state.apply_mask(mask);
            }
            for (p, t) in probs.outer_iter().zip(rows) {
                let l = usize::from(labels[*t]);
                loss -= p[l].max(1e-300).ln();
                hits += usize::from(CnnModel::predictions(p.insert_axis(Axis(0)))[0] == l);
                seen += 1;
            }
        }
        let report = EpochReport {
            epoch,
            loss: loss / seen as f64,
            train_accuracy: hits as f64 / seen as f64,
            lr,
        };
        if !report.loss.is_finite() {
            return Err(MlError::InvalidHyper {
                name: "lr",
                value: lr.to_string(),
                reason: "training diverged (non-finite loss); lower the learning rate",
            });
        }
        on_epoch(&report);
        lr *= hyper.lr_decay;
    }
    Ok(from_tensors(spec, &state.params))
}

impl SgdState<Array2<f64>> {
    /// Zeroes the parameters and momenta whose mask entry is 0.
    fn apply_mask(&mut self, mask: &CnnTensors<Array2<f64>>) {
        for ((p, v), m) in self.params.iter_mut().zip(&mut self.velocity).zip(mask) {
            *p *= m;
            *v *= m;
        }
    }
}

fn check_mask(params: &CnnTensors<Array2<f64>>, mask: &CnnTensors<Array2<f64>>) -> Result<()> {
    let shapes = |t: &CnnTensors<Array2<f64>>| t.iter().map(|a| a.dim()).collect::<Vec<_>>();
    if shapes(params) != shapes(mask) {
        return Err(MlError::InvalidHyper {
            name: "mask",
            value: format!("{:?}", shapes(mask)),
            reason: "one tensor per parameter, shaped as the model's (to_tensors)",
        });
    }
    Ok(())
}

fn check_hyper(h: &CnnHyper, n: usize) -> Result<()> {
    let bad = |name, value: String, reason| {
        Err(MlError::InvalidHyper {
            name,
            value,
            reason,
        })
    };
    if h.batch == 0 || h.batch > n {
        return bad(
            "batch",
            h.batch.to_string(),
            "must be in 1..=number of images",
        );
    }
    if !(h.lr > 0.0 && h.lr.is_finite()) {
        return bad("lr", h.lr.to_string(), "must be positive and finite");
    }
    if !(0.0..1.0).contains(&h.momentum) {
        return bad("momentum", h.momentum.to_string(), "must be in [0, 1)");
    }
    if !(h.lr_decay > 0.0 && h.lr_decay <= 1.0) {
        return bad("lr_decay", h.lr_decay.to_string(), "must be in (0, 1]");
    }
    Ok(())
}

/// One-hot rows of `labels`.
///
/// # Errors
/// [`MlError::OutOfRange`] naming the first label ≥ `classes`.
pub fn one_hot(labels: &[u8], classes: usize) -> Result<Array2<f64>> {
    let mut y = Array2::zeros((labels.len(), classes));
    for (i, &l) in labels.iter().enumerate() {
        let l = usize::from(l);
        if l >= classes {
            return Err(MlError::OutOfRange {
                what: "CNN training label",
                index: i,
                value: l,
                limit: classes,
            });
        }
        y[[i, l]] = 1.0;
    }
    Ok(y)
}

/// The logits of `x` computed by the backend code that trains (for tests against the
/// reference forward pass).
///
/// # Errors
/// As [`sgd_step`].
pub async fn backend_logits<B: Backend>(
    be: &mut B,
    params: &CnnTensors<B::Tensor>,
    maps: &CnnBatchMaps,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    Ok(forward(be, params, &maps.0, x).await?.1)
}

/// [`backend_logits`] on the plaintext backend.
///
/// # Errors
/// As [`backend_logits`].
pub fn plain_logits(model: &CnnModel, x: &Array2<f64>) -> Result<Array2<f64>> {
    let maps = CnnBatchMaps::new(&model.spec, x.nrows())?;
    ready(backend_logits(
        &mut Plain::new(),
        &to_tensors(model),
        &maps,
        x,
    ))
}
