//! The server's layers in the batch layout: scalar-weighted sums of ciphertexts, squares,
//! one rescale per layer. Work is spread over output neurons with rayon.

use super::{BatchCnn, EncryptedBatch, EncryptedLogits};
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, Evaluator};
use ndarray::{Array1, Array2};
use rayon::prelude::*;

/// `Σ_i w_i·x_i + b` over the pairs `(i, w_i)`, rescaled once.
fn weighted_sum(
    eval: &Evaluator,
    xs: &[Ciphertext],
    terms: impl Iterator<Item = (usize, f64)>,
    bias: f64,
) -> Result<Ciphertext> {
    let mut acc: Option<Ciphertext> = None;
    for (i, w) in terms {
        match acc.as_mut() {
            None => acc = Some(eval.mul_const(&xs[i], w)?),
            Some(a) => eval.mul_const_add_assign(a, &xs[i], w)?,
        }
    }
    let acc = acc.ok_or(HeCnnError::Shape {
        what: "terms of a weighted sum",
        expected: 1,
        found: 0,
    })?;
    Ok(eval.add_const(&eval.rescale(&acc)?, bias)?)
}

/// `W·x + b` for the weights `w` (`outputs × inputs`), one output neuron per task.
fn dense(
    eval: &Evaluator,
    xs: &[Ciphertext],
    w: &Array2<f64>,
    b: &Array1<f64>,
) -> Result<Vec<Ciphertext>> {
    (0..w.nrows())
        .into_par_iter()
        .map(|j| weighted_sum(eval, xs, w.row(j).iter().copied().enumerate(), b[j]))
        .collect()
}

fn square_all(eval: &Evaluator, xs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
    xs.par_iter()
        .map(|x| Ok(eval.rescale(&eval.square(x)?)?))
        .collect()
}

pub(super) fn forward(
    he: &BatchCnn,
    eval: &Evaluator,
    input: &EncryptedBatch,
) -> Result<EncryptedLogits> {
    let m = &he.model;
    let sp = &m.spec;
    if input.pixels.len() != sp.pixels() {
        return Err(HeCnnError::Shape {
            what: "pixel ciphertexts",
            expected: sp.pixels(),
            found: input.pixels.len(),
        });
    }
    let np = sp.positions();
    // conv: feature f = map·P + position.
    let z1: Vec<Ciphertext> = (0..sp.features())
        .into_par_iter()
        .map(|f| {
            let (map, p) = (f / np, f % np);
            let terms = he.taps[p].iter().map(|&(k, src)| (src, m.conv_w[[map, k]]));
            weighted_sum(eval, &input.pixels, terms, m.conv_b[map])
        })
        .collect::<Result<_>>()?;
    let a1 = square_all(eval, &z1)?;
    drop(z1);
    let z2 = dense(eval, &a1, &m.fc1_w, &m.fc1_b)?;
    drop(a1);
    let a2 = square_all(eval, &z2)?;
    let z3 = dense(eval, &a2, &m.fc2_w, &m.fc2_b)?;
    Ok(EncryptedLogits {
        classes: z3,
        images: input.images,
    })
}
