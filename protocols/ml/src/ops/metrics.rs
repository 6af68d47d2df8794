//! Evaluation of a trained linear model or MLP on a test table, on any backend: the model's
//! outputs ([`linear_outputs`], [`mlp_logits`]) and the metrics the owner asks for, each a
//! `1 × 1` tensor (a share on [`crate::Shared`], opened to the owner only by the caller):
//! [`mean_squared_error`], [`binary_accuracy`] (logistic regression: the sign of the logit
//! against a 0/1 label), [`class_accuracy`] (MLP: the true class's logit at least every
//! other, so a tie counts as correct; the plaintext twin's argmax picks the first of tied
//! classes, which differs only on exact ties), and the log-losses [`binary_log_loss`] and
//! [`class_log_loss`].
//!
//! On shares a metric costs one product per value and, for the accuracies, one or two batches
//! of secure comparisons; the per-sample correctness bits and errors stay shared, only the mean
//! is a result.
//!
//! **Log-loss**, in the numerically stable forms that never take the logarithm of a
//! probability near 0: logistic regression `mean(softplus(z) − y·z)` with
//! `softplus(z) = relu(z) + ln(1 + e^(−|z|))` — the cross-entropy of the true logistic
//! function `σ(z)` (scikit-learn's `log_loss` of `predict_proba`), not of the piecewise sigmoid
//! the model trains with; MLP `mean(m + ln Σ_j e^(z_j − m) − z_y)` with `m` the row maximum —
//! the cross-entropy of the exp softmax of the logits (for a model trained with the ReLU
//! softmax too: its probabilities can be exactly 0, whose log-loss is infinite). The logarithm's
//! argument lies in `[1, 2]` and `[1, k]`, inside [`mpc::nonlinear::ln`]'s range; the
//! exponentials' inputs are ≤ 0. On shares the error is that of the exponential (absolute
//! `≤ e^x·(x²/2^9 + 2^−7) + 2^−12` per value, [`mpc::nonlinear::exp`]) plus the logarithm's
//! (`≤ 2^−13`) and a few ulps: at most about `0.01` per sample for the binary loss and
//! `0.01 + k·2^−12` for `k` classes; the mean inherits the bound. Cost: a ReLU, an exp, a
//! logarithm and one product per sample (binary); a max tournament, `k` exps, one logarithm
//! and `k` products per row (MLP).

use super::stats::{column_sums, divide_by};
use crate::backend::{Backend, IndexMap};
use crate::error::Result;
use crate::models::bias;
use ndarray::Array2;

/// `x · w` (`n × 1`), with the public column of ones appended to `x` when `w` has one more row
/// than `x` has columns (the intercept).
///
/// # Errors
/// Shapes that fit neither way; the backend's errors.
pub async fn linear_outputs<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    w: &B::Tensor,
) -> Result<B::Tensor> {
    let x = if bias::has_bias("linear model weights", B::dim(x).1, B::dim(w).0)? {
        bias::append_ones(b, x)?
    } else {
        x.clone()
    };
    b.matmul(&x, w, 0).await
}

/// The MLP's last pre-activations (`n × classes`) on `x`: ReLU hidden layers, biases where a
/// weight matrix has one more row than its input has columns.
///
/// # Errors
/// Shapes that do not chain; the backend's errors.
pub async fn mlp_logits<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    ws: &[B::Tensor],
) -> Result<B::Tensor> {
    let mut h = x.clone();
    for (i, w) in ws.iter().enumerate() {
        if i > 0 {
            h = b.relu(&h).await?.0;
        }
        if bias::has_bias("mlp layer weights", B::dim(&h).1, B::dim(w).0)? {
            h = bias::append_ones(b, &h)?;
        }
        h = b.matmul(&h, w, 0).await?;
    }
    Ok(h)
}

/// The mean of an `n × 1` tensor (`1 × 1`).
async fn mean<B: Backend>(b: &mut B, t: &B::Tensor) -> Result<B::Tensor> {
    let n = B::dim(t).0;
    let s = column_sums(b, t)?;
    divide_by(b, &s, n).await
}

/// `Σ (pred − y)² / n` (`1 × 1`), the errors pre-scaled by `2^-pre_shift` so that
/// `Σ (e/2^p)² · 2^(2f)` stays below the ring's `2^62` (one Gram product, truncated once).
///
/// # Errors
/// Shapes other than two equal `n × 1`; the backend's errors.
pub async fn mean_squared_error<B: Backend>(
    b: &mut B,
    pred: &B::Tensor,
    y: &B::Tensor,
    pre_shift: u32,
) -> Result<B::Tensor> {
    let n = B::dim(y).0;
    let e = b.sub(pred, y)?;
    let e = b.shift_right(&e, pre_shift).await?;
    let s = b.matmul(&b.transpose(&e), &e, 0).await?;
    let s = divide_by(b, &s, n).await?;
    b.scale(&s, f64::powi(4.0, pre_shift as i32)).await
}

/// The share of samples whose logit's sign matches its 0/1 label (`1 × 1`): the prediction bit
/// `c = [z ≥ 0]`, then `1 − c − y + 2·c·y`.
///
/// # Errors
/// Shapes other than two equal `n × 1`; the backend's errors.
pub async fn binary_accuracy<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    y: &B::Tensor,
) -> Result<B::Tensor> {
    let (_, bits) = b.relu(logits).await?;
    accuracy_of_signs(b, &bits, y).await
}

/// The logistic log-loss `mean(softplus(z) − y·z)` (`1 × 1`) of the logits `z` against 0/1
/// labels (`n × 1` both), `softplus(z) = relu(z) + ln(1 + e^(−|z|))`, `|z| = 2·relu(z) − z`.
///
/// # Errors
/// Shapes other than two equal `n × 1`; the backend's errors.
pub async fn binary_log_loss<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    y: &B::Tensor,
) -> Result<B::Tensor> {
    let (r, _) = b.relu(logits).await?;
    softplus_loss(b, logits, &r, y).await
}

/// [`binary_accuracy`] and [`binary_log_loss`] from one batch of comparisons (`relu(z)` and
/// its bits serve both).
///
/// # Errors
/// As [`binary_accuracy`].
pub async fn binary_metrics<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    y: &B::Tensor,
) -> Result<[B::Tensor; 2]> {
    let (r, bits) = b.relu(logits).await?;
    let accuracy = accuracy_of_signs(b, &bits, y).await?;
    Ok([accuracy, softplus_loss(b, logits, &r, y).await?])
}

/// `mean(1 − c − y + 2·c·y)` from the prediction bits `c = [z ≥ 0]`.
async fn accuracy_of_signs<B: Backend>(
    b: &mut B,
    bits: &B::Bits,
    y: &B::Tensor,
) -> Result<B::Tensor> {
    let ones = b.constant(&Array2::ones(B::dim(y)))?;
    let c = b.select(bits, &ones).await?;
    let cy = b.mul(&c, y, 0).await?;
    let agree = b.add(&b.sub(&b.sub(&ones, &c)?, y)?, &b.add(&cy, &cy)?)?;
    mean(b, &agree).await
}

/// `mean(r + ln(1 + e^(−|z|)) − y·z)` with `r = relu(z)`.
async fn softplus_loss<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    r: &B::Tensor,
    y: &B::Tensor,
) -> Result<B::Tensor> {
    let yz = b.mul(y, logits, 0).await?;
    let neg_abs = b.sub(logits, &b.add(r, r)?)?;
    let e = b.exp(&neg_abs).await?;
    let l = b
        .ln(&b.add(&e, &b.constant(&Array2::ones(B::dim(y)))?)?)
        .await?;
    let loss = b.sub(&b.add(r, &l)?, &yz)?;
    mean(b, &loss).await
}

/// The cross-entropy of the exp softmax `mean(m + ln Σ_j e^(z_j − m) − z_y)` (`1 × 1`) from the
/// logits and the one-hot labels (`n × k` both), `m` the row maximum.
///
/// # Errors
/// Shapes other than two equal `n × k` with `k ≥ 1`; the backend's errors.
pub async fn class_log_loss<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    one_hot: &B::Tensor,
) -> Result<B::Tensor> {
    let t = TrueLogits::new(b, logits, one_hot).await?;
    t.log_loss(b, logits).await
}

/// The share of samples whose true class's logit is at least every other's (`1 × 1`), from
/// the logits and the one-hot labels (`n × k` both): the true logit `t` (one product and a row
/// sum), the bits `[t ≥ z_j]` for every class, their count, and `[count ≥ k − ½]`.
///
/// # Errors
/// Shapes other than two equal `n × k`; the backend's errors.
pub async fn class_accuracy<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    one_hot: &B::Tensor,
) -> Result<B::Tensor> {
    let t = TrueLogits::new(b, logits, one_hot).await?;
    t.accuracy(b, logits).await
}

/// [`class_accuracy`] and [`class_log_loss`] from one true-logit product.
///
/// # Errors
/// As [`class_log_loss`].
pub async fn class_metrics<B: Backend>(
    b: &mut B,
    logits: &B::Tensor,
    one_hot: &B::Tensor,
) -> Result<[B::Tensor; 2]> {
    let t = TrueLogits::new(b, logits, one_hot).await?;
    Ok([t.accuracy(b, logits).await?, t.log_loss(b, logits).await?])
}

/// The logit of each row's true class (`n × 1`) and the map of the `n × k` entries to their
/// row, shared by the class metrics.
struct TrueLogits<T> {
    rows: IndexMap,
    truth: T,
    classes: usize,
}

impl<T> TrueLogits<T> {
    /// One product with the one-hot labels and a row sum.
    async fn new<B: Backend<Tensor = T>>(b: &mut B, logits: &T, one_hot: &T) -> Result<Self> {
        let (n, k) = B::dim(one_hot);
        let rows = IndexMap::from_fn((n, 1), (n, k), |i, _| Some((i, 0)))?;
        let picked = b.mul(logits, one_hot, 0).await?;
        let truth = b.scatter_add(&picked, &rows)?;
        Ok(Self {
            rows,
            truth,
            classes: k,
        })
    }

    async fn log_loss<B: Backend<Tensor = T>>(&self, b: &mut B, logits: &T) -> Result<T> {
        let m = b.row_max(logits).await?;
        let e = b.exp(&b.sub(logits, &b.gather(&m, &self.rows)?)?).await?;
        let l = b.ln(&b.scatter_add(&e, &self.rows)?).await?;
        let loss = b.sub(&b.add(&m, &l)?, &self.truth)?;
        mean(b, &loss).await
    }

    async fn accuracy<B: Backend<Tensor = T>>(&self, b: &mut B, logits: &T) -> Result<T> {
        let (n, k) = (B::dim(&self.truth).0, self.classes);
        let margins = b.sub(&b.gather(&self.truth, &self.rows)?, logits)?;
        let (_, bits) = b.relu(&margins).await?;
        let wins = b.select(&bits, &b.constant(&Array2::ones((n, k)))?).await?;
        let count = b.scatter_add(&wins, &self.rows)?;
        let gap = b.sub(
            &count,
            &b.constant(&Array2::from_elem((n, 1), k as f64 - 0.5))?,
        )?;
        let (_, right) = b.relu(&gap).await?;
        let right = b
            .select(&right, &b.constant(&Array2::ones((n, 1)))?)
            .await?;
        mean(b, &right).await
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
