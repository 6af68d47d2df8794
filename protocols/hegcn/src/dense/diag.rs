//! One linear stage of the dense single-sample layout: an `n × n` matrix applied to a state
//! vector that is replicated with period `n` over all slots, by the diagonal method with
//! baby-step/giant-step (Halevi–Shoup). Because the state is periodic, a slot rotation of the
//! whole ciphertext by `k` is the cyclic rotation of every copy by `k mod n`: no wrap-around
//! masks are needed, and only non-zero diagonals cost a product.
//!
//! With `class = col − row (mod n)` written as `g·B + b` (`0 ≤ b < B`, `g` signed), the map is
//! `y = Σ_g rot(u_g, g·B)`, `u_g = Σ_b rot(d_{gB+b}, −gB) ⊙ rot(x, b)`. The baby rotations are a
//! chain of rotations by 1 and the giant sums a Horner scheme of rotations by `±B`, so the whole
//! layout needs the Galois keys of only three steps (`1`, `B`, `−B`), at the price of one key
//! switch per baby and per giant step (see the `dense` module docs for the rule).
//!
//! Security model: that of the crate (semi-honest server holding the weights, which only ever
//! appear as plaintexts multiplied into client ciphertexts).

use std::collections::BTreeMap;

use ckks::{Ciphertext, Encoder, Evaluator};
use rayon::prelude::*;

use crate::error::Result;
use crate::linear::PlaintextCache;

/// An `n × n` matrix as its pre-rotated BSGS diagonals (only non-zero ones).
#[derive(Debug, Clone)]
pub(crate) struct DiagMap {
    /// The period `n`.
    n: usize,
    /// The baby-step count `B`.
    baby: usize,
    /// `(g, b) ↦ rot(d_{gB+b}, −gB)` over one period.
    terms: BTreeMap<(i64, usize), Vec<f64>>,
}

impl DiagMap {
    /// The map with entries `(row, col, value)` (rows and columns below `n`; repeated entries
    /// add up), `baby` baby steps (a power of two dividing `n`).
    pub(crate) fn from_entries(
        n: usize,
        baby: usize,
        entries: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Self {
        let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for (row, col, v) in entries {
            if v == 0.0 {
                continue;
            }
            let class = (col + n - row) % n;
            diags.entry(class).or_insert_with(|| vec![0.0; n])[row] += v;
        }
        let mut terms = BTreeMap::new();
        for (class, d) in diags {
            if d.iter().all(|&x| x == 0.0) {
                continue;
            }
            // Signed class in (−n/2, n/2]: negative giant steps rotate right.
            let signed = if class > n / 2 {
                class as i64 - n as i64
            } else {
                class as i64
            };
            let g = signed.div_euclid(baby as i64);
            let b = signed.rem_euclid(baby as i64) as usize;
            let shift = (g * baby as i64).rem_euclid(n as i64) as usize;
            // e[j] = d[(j − gB) mod n]
            let e: Vec<f64> = (0..n).map(|j| d[(j + n - shift) % n]).collect();
            terms.insert((g, b), e);
        }
        Self { n, baby, terms }
    }

    /// Number of plaintext products (non-zero diagonals).
    pub(crate) fn products(&self) -> usize {
        self.terms.len()
    }

    /// Largest baby step used (0 if none).
    pub(crate) fn max_baby(&self) -> usize {
        self.terms.keys().map(|k| k.1).max().unwrap_or(0)
    }

    /// Smallest and largest giant index (`(0, 0)` for an empty map).
    pub(crate) fn giant_range(&self) -> (i64, i64) {
        let lo = self.terms.keys().map(|k| k.0).min().unwrap_or(0);
        let hi = self.terms.keys().map(|k| k.0).max().unwrap_or(0);
        (lo.min(0), hi.max(0))
    }

    /// Rotation steps the evaluation uses (a subset of `{1, B, −B}`).
    pub(crate) fn rotation_steps(&self) -> Vec<i64> {
        let (lo, hi) = self.giant_range();
        let b = self.baby as i64;
        let mut s = Vec::new();
        if self.max_baby() > 0 {
            s.push(1);
        }
        if hi > 0 {
            s.push(b);
        }
        if lo < 0 {
            s.push(-b);
        }
        s
    }

    /// Key switches of one evaluation: one per baby step up to the largest, one per giant
    /// step between the smallest and the largest giant index.
    pub(crate) fn key_switches(&self) -> usize {
        let (lo, hi) = self.giant_range();
        self.max_baby() + (hi - lo) as usize
    }

    /// One period of diagonal `(g, b)` replicated over `slots` slots.
    fn slots_of(&self, e: &[f64], slots: usize) -> Vec<f64> {
        (0..slots).map(|i| e[i % self.n]).collect()
    }

    /// `M·x` rescaled once to scale `target` (one level); `x` holds the state with period `n`.
    pub(crate) fn apply(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        cache: &PlaintextCache,
        x: &Ciphertext,
        target: f64,
    ) -> Result<Ciphertext> {
        let level = x.level();
        let slots = eval.params().slots();
        let q = eval.params().q_prime(level)? as f64;
        let pt_scale = q * target / x.scale();
        let mut babies = vec![x.clone()];
        for _ in 0..self.max_baby() {
            let next = eval.rotate(babies.last().expect("non-empty"), 1)?;
            babies.push(next);
        }
        let mut by_g: BTreeMap<i64, Vec<(usize, &Vec<f64>)>> = BTreeMap::new();
        for (&(g, b), e) in &self.terms {
            by_g.entry(g).or_default().push((b, e));
        }
        let inner: BTreeMap<i64, Ciphertext> = by_g
            .into_par_iter()
            .map(|(g, bs)| -> Result<(i64, Ciphertext)> {
                let mut acc: Option<Ciphertext> = None;
                for (b, e) in bs {
                    let pt = cache.get_or_encode(
                        encoder,
                        &self.slots_of(e, slots),
                        level,
                        pt_scale,
                        false,
                    )?;
                    let p = eval.mul_plain(&babies[b], &pt)?;
                    match &mut acc {
                        None => acc = Some(p),
                        Some(a) => eval.add_assign(a, &p)?,
                    }
                }
                Ok((g, acc.expect("every giant index has a term")))
            })
            .collect::<Result<_>>()?;
        let (lo, hi) = self.giant_range();
        let b = self.baby as i64;
        let horner = |range: Vec<i64>, step: i64| -> Result<Option<Ciphertext>> {
            let mut acc: Option<Ciphertext> = None;
            for g in range {
                if let Some(a) = acc.take() {
                    acc = Some(eval.rotate(&a, step)?);
                }
                if let Some(u) = inner.get(&g) {
                    match &mut acc {
                        None => acc = Some(u.clone()),
                        Some(a) => eval.add_assign(a, u)?,
                    }
                }
            }
            Ok(acc)
        };
        // Σ_{g ≥ 0} rot(u_g, gB) by Horner from the top; Σ_{g < 0} likewise with −B and one
        // last rotation.
        let pos = horner((0..=hi).rev().collect(), b)?;
        let neg = match horner((lo..0).collect(), -b)? {
            Some(a) => Some(eval.rotate(&a, -b)?),
            None => None,
        };
        let sum = match (pos, neg) {
            (Some(mut p), Some(n)) => {
                eval.add_assign(&mut p, &n)?;
                p
            }
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => {
                let zero = encoder.encode(&[], level, pt_scale)?;
                eval.mul_plain(x, &zero)?
            }
        };
        Ok(eval.rescale(&sum)?)
    }

    /// The plaintext twin of [`Self::apply`] on one period (for tests).
    #[cfg(test)]
    pub(crate) fn apply_plain(&self, x: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut y = vec![0.0; n];
        for (&(g, b), e) in &self.terms {
            let shift = (g * self.baby as i64).rem_euclid(n as i64) as usize;
            // u_g[j] = e[j]·x[j + b]; y[i] += u_g[i + gB]
            for (i, yi) in y.iter_mut().enumerate() {
                let j = (i + shift) % n;
                *yi += e[j] * x[(j + b) % n];
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The BSGS decomposition reproduces the matrix–vector product for any sparse matrix.
        #[test]
        fn bsgs_terms_reproduce_the_product(
            entries in proptest::collection::vec((0usize..64, 0usize..64, -1.0f64..1.0), 0..80),
            x in proptest::collection::vec(-1.0f64..1.0, 64),
        ) {
            let m = DiagMap::from_entries(64, 8, entries.iter().copied());
            let mut want = vec![0.0; 64];
            for &(r, c, v) in &entries {
                want[r] += v * x[c];
            }
            let got = m.apply_plain(&x);
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }
}
