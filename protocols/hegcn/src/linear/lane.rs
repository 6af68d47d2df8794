//! The two representations a linear map accumulates in, behind one trait so that the hoisted
//! and BSGS evaluations are written once: ciphertexts over `Q_l` (every rotation divided by
//! `P` at once: one ModDown per rotation) and [`ExtCiphertext`]s over `Q_l ∪ P` (the sums
//! divided once per output: `ckks::lazy`, double hoisting). The plan picks one per map by
//! its cost model (see the module docs of `linear`).

use ckks::{Ciphertext, Evaluator, ExtCiphertext, Plaintext};

use crate::error::Result;

/// Rotated inputs, plaintext products, their sums and giant-step rotations in one
/// representation, and the way back to a [`Ciphertext`].
pub(crate) trait Lane: Sized + Send + Sync {
    /// Whether the weight plaintexts carry the special primes (`Encoder::encode_ext`).
    const EXTENDED: bool;
    /// Rotations of `ct` by the non-zero `steps`, sharing one decomposition.
    fn rotations(eval: &Evaluator, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Self>>;
    /// The unrotated input in this representation.
    fn identity(eval: &Evaluator, ct: &Ciphertext) -> Result<Self>;
    /// `x ⊙ pt`.
    fn mul_plain(eval: &Evaluator, x: &Self, pt: &Plaintext) -> Result<Self>;
    /// `acc += x ⊙ pt` (counted as one product and one addition).
    fn mul_plain_add(eval: &Evaluator, acc: &mut Self, x: &Self, pt: &Plaintext) -> Result<()>;
    /// `acc += x`.
    fn add(eval: &Evaluator, acc: &mut Self, x: &Self) -> Result<()>;
    /// Rotation of a sum by `step` (a giant step).
    fn rotate(eval: &Evaluator, x: &Self, step: i64) -> Result<Self>;
    /// The ciphertext over `Q_l`.
    fn finish(eval: &Evaluator, x: Self) -> Result<Ciphertext>;
}

impl Lane for Ciphertext {
    const EXTENDED: bool = false;
    fn rotations(eval: &Evaluator, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Self>> {
        Ok(eval.rotate_hoisted(ct, steps)?)
    }
    fn identity(_: &Evaluator, ct: &Ciphertext) -> Result<Self> {
        Ok(ct.clone())
    }
    fn mul_plain(eval: &Evaluator, x: &Self, pt: &Plaintext) -> Result<Self> {
        Ok(eval.mul_plain(x, pt)?)
    }
    fn mul_plain_add(eval: &Evaluator, acc: &mut Self, x: &Self, pt: &Plaintext) -> Result<()> {
        Ok(eval.mul_plain_add_assign(acc, x, pt)?)
    }
    fn add(eval: &Evaluator, acc: &mut Self, x: &Self) -> Result<()> {
        Ok(eval.add_assign(acc, x)?)
    }
    fn rotate(eval: &Evaluator, x: &Self, step: i64) -> Result<Self> {
        Ok(eval.rotate(x, step)?)
    }
    fn finish(_: &Evaluator, x: Self) -> Result<Ciphertext> {
        Ok(x)
    }
}

impl Lane for ExtCiphertext {
    const EXTENDED: bool = true;
    fn rotations(eval: &Evaluator, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Self>> {
        Ok(eval.rotate_hoisted_ext(ct, steps)?)
    }
    fn identity(eval: &Evaluator, ct: &Ciphertext) -> Result<Self> {
        Ok(eval.lift_ext(ct)?)
    }
    fn mul_plain(eval: &Evaluator, x: &Self, pt: &Plaintext) -> Result<Self> {
        Ok(eval.mul_plain_ext(x, pt)?)
    }
    fn mul_plain_add(eval: &Evaluator, acc: &mut Self, x: &Self, pt: &Plaintext) -> Result<()> {
        Ok(eval.mul_plain_add_assign_ext(acc, x, pt)?)
    }
    fn add(eval: &Evaluator, acc: &mut Self, x: &Self) -> Result<()> {
        Ok(eval.add_assign_ext(acc, x)?)
    }
    fn rotate(eval: &Evaluator, x: &Self, step: i64) -> Result<Self> {
        Ok(eval.rotate_ext(x, step)?)
    }
    fn finish(eval: &Evaluator, x: Self) -> Result<Ciphertext> {
        Ok(eval.mod_down_ext(x)?)
    }
}

/// `acc += x ⊙ pt`, or `acc = x ⊙ pt` for the first term.
pub(super) fn mul_plain_accumulate<L: Lane>(
    eval: &Evaluator,
    acc: &mut Option<L>,
    x: &L,
    pt: &Plaintext,
) -> Result<()> {
    match acc {
        None => *acc = Some(L::mul_plain(eval, x, pt)?),
        Some(a) => L::mul_plain_add(eval, a, x, pt)?,
    }
    Ok(())
}

/// `acc += x`, or `acc = x` for the first part.
pub(super) fn accumulate<L: Lane>(eval: &Evaluator, acc: &mut Option<L>, x: L) -> Result<()> {
    match acc {
        None => *acc = Some(x),
        Some(a) => L::add(eval, a, &x)?,
    }
    Ok(())
}
