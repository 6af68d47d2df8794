//! A multi-layer perceptron with ReLU hidden layers and a softmax output, trained by mini-batch
//! SGD on the cross-entropy loss (SecureML §IV-C / Table III: 784-128-128-10 on MNIST).
//!
//! Layers have no bias in SecureML's network; a layer may have one here ([`super::bias`]): its
//! weight matrix then has one row more than its input has columns, the bias last, and its input
//! gets a public column of ones (the first layer's through the data matrix, which the caller
//! builds with the ones column: [`init_weights_with_bias`] and [`predict`] follow the same
//! convention). Forward: `H_0 = X_B`, `Z_i = H_{i−1} W_i`,
//! `H_i = relu(Z_i)`, `P = softmax(Z_L)`. Backward: `G_L = P − Y_B` (the softmax–cross-entropy
//! gradient), `ΔW_i = H_{i−1}ᵀ G_i · α/|B|`, `G_{i−1} = relu'(Z_{i−1}) ⊙ (G_i W_iᵀ)`. The power of
//! two of α/|B| folds into the truncation of the `ΔW_i` product, any other factor is one public
//! fixed-point multiply of `ΔW_i` ([`StepSize`]). One ReLU
//! comparison per hidden unit serves both the activation and its derivative. The first layer
//! multiplies the masked data matrix (SecureML's reuse of E = X − U); all other products use fresh
//! matrix triples.

use crate::backend::{Backend, SoftmaxKind};
use crate::error::{MlError, Result};
use crate::models::bias;
use crate::models::linreg::{LinRegHyper, Progress, StepSize};
use crate::schedule::Schedule;
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Initial weights: He-uniform `U(−√(6/fan_in), √(6/fan_in))` from a public seed (the same for the
/// secure run and its twin).
pub fn init_weights(sizes: &[usize], seed: u64) -> Vec<Array2<f64>> {
    init_weights_with_bias(sizes, seed, false)
}

/// [`init_weights`], and with `bias` one more row per layer (the bias, starting at 0): the
/// weight rows above it are the same draws as without a bias.
pub fn init_weights_with_bias(sizes: &[usize], seed: u64, bias: bool) -> Vec<Array2<f64>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    sizes
        .windows(2)
        .map(|w| {
            let a = (6.0 / w[0] as f64).sqrt();
            let rows = w[0] + usize::from(bias);
            Array2::from_shape_fn((rows, w[1]), |(i, _)| {
                let v = rng.gen_range(-a..a);
                if i < w[0] {
                    v
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// What one SGD step computed on the way: the batch's output-layer pre-activations (logits) and
/// their softmax, for differential traces of a secure run against its twin.
#[derive(Debug, Clone)]
pub struct StepOutputs<T> {
    /// `Z_L`, the last layer's pre-activations (`|B| × classes`).
    pub logits: T,
    /// `P = softmax(Z_L)`.
    pub probs: T,
}

/// One SGD step on the batch `rows`: forward, backward and the update of `ws` in place. `lr` is
/// [`LinRegHyper::step_size`] (α/|B| = factor · 2^−shift). [`train`] is a loop over this.
#[allow(clippy::too_many_arguments)]
pub async fn step<B: Backend>(
    b: &mut B,
    x: &B::Data,
    y: &B::Tensor,
    ws: &mut [B::Tensor],
    rows: &[usize],
    lr: StepSize,
    softmax: SoftmaxKind,
) -> Result<StepOutputs<B::Tensor>> {
    let l = ws.len();
    if l == 0 {
        return Err(MlError::InvalidHyper {
            name: "layers",
            value: "0".into(),
            reason: "an MLP needs at least one weight matrix",
        });
    }
    // Forward.
    let mut hs: Vec<B::Tensor> = Vec::with_capacity(l);
    let mut ds: Vec<B::Bits> = Vec::with_capacity(l);
    let mut z = b.data_matmul(x, rows, false, &ws[0], 0).await?;
    let mut biased = Vec::with_capacity(l);
    for w in ws.iter().skip(1) {
        let (mut h, d) = b.relu(&z).await?;
        let has = bias::has_bias("mlp layer weights", B::dim(&h).1, B::dim(w).0)?;
        if has {
            h = bias::append_ones(b, &h)?;
        }
        z = b.matmul(&h, w, 0).await?;
        hs.push(h);
        ds.push(d);
        biased.push(has);
    }
    let p = b.softmax(&z, softmax).await?;
    // Backward.
    let mut g = b.sub(&p, &b.select_rows(y, rows))?;
    for j in (1..l).rev() {
        let h = &hs[j - 1];
        let dw = b.matmul(&b.transpose(h), &g, lr.shift).await?;
        let dw = lr.apply(b, dw).await?;
        let mut back = b.matmul(&g, &b.transpose(&ws[j]), 0).await?;
        if biased[j - 1] {
            back = bias::drop_last_column(b, &back)?;
        }
        g = b.select(&ds[j - 1], &back).await?;
        ws[j] = b.sub(&ws[j], &dw)?;
    }
    let dw0 = b.data_matmul(x, rows, true, &g, lr.shift).await?;
    let dw0 = lr.apply(b, dw0).await?;
    ws[0] = b.sub(&ws[0], &dw0)?;
    Ok(StepOutputs {
        logits: z,
        probs: p,
    })
}

/// Trains the weights `ws` (layer i: `sizes[i] × sizes[i+1]`) on data `x` and one-hot labels `y`.
#[allow(clippy::too_many_arguments)]
pub async fn train<B: Backend>(
    b: &mut B,
    x: &B::Data,
    y: &B::Tensor,
    mut ws: Vec<B::Tensor>,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    softmax: SoftmaxKind,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<B::Tensor>> {
    let k = hyper.step_size();
    if ws.is_empty() {
        return Err(MlError::InvalidHyper {
            name: "layers",
            value: "0".into(),
            reason: "an MLP needs at least one weight matrix",
        });
    }
    for (epoch, batches) in schedule.epochs.iter().enumerate() {
        for (i, rows) in batches.iter().enumerate() {
            step(b, x, y, &mut ws, rows, k, softmax).await?;
            progress(Progress {
                epoch,
                step: i + 1,
                steps: batches.len(),
            });
        }
    }
    Ok(ws)
}

/// The preprocessing a shared run of [`train`] consumes (the data matrix is mask #0).
pub async fn plan(
    sizes: &[usize],
    n: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    softmax: SoftmaxKind,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    plan_with_bias(sizes, n, schedule, hyper, softmax, false).await
}

/// [`plan`] for layers with biases when `bias` (the data matrix then has `sizes[0] + 1`
/// columns, the last one ones).
pub async fn plan_with_bias(
    sizes: &[usize],
    n: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    softmax: SoftmaxKind,
    bias: bool,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    let extra = usize::from(bias);
    let mut p = crate::backend::Plan::new();
    let x = p.data((n, sizes[0] + extra));
    let y = crate::backend::PlanTensor((n, *sizes.last().expect("sizes")));
    let ws = sizes
        .windows(2)
        .map(|w| crate::backend::PlanTensor((w[0] + extra, w[1])))
        .collect();
    train(&mut p, &x, &y, ws, schedule, hyper, softmax, &|_| {}).await?;
    Ok(p.into_requests())
}

/// Class predictions (argmax of the last layer's pre-activations) of plaintext weights on the
/// raw features `x`: a layer with a bias row gets its ones column here.
pub fn predict(ws: &[Array2<f64>], x: &Array2<f64>) -> Vec<usize> {
    let mut h = x.clone();
    for (i, w) in ws.iter().enumerate() {
        if w.nrows() == h.ncols() + 1 {
            h = bias::append_ones_plain(&h);
        }
        h = h.dot(w);
        if i + 1 < ws.len() {
            h.mapv_inplace(|v| v.max(0.0));
        }
    }
    argmax_rows(h.view())
}

/// Row-wise index of the largest value (the first one on ties; 0 for a row of NaNs): the class
/// each row of logits predicts.
pub fn argmax_rows(m: ArrayView2<'_, f64>) -> Vec<usize> {
    m.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}
