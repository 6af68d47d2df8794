//! Fast RNS base conversion in the coefficient domain, optionally exact and centred.

use rayon::prelude::*;

use crate::arith::Modulus;
use crate::kernels::{self, Shoup};
use crate::pool;

/// Fast base conversion (coefficient domain) of `x`, given by its residues modulo the primes
/// `src`, into other moduli: `x̃ = Σ_i [x_i · D̂_i^{-1}]_{d_i} · D̂_i mod t`, equal to `x + u·D`
/// with `0 ≤ u < |src|`.
///
/// With `centered`, the overflow `u` is removed with a floating-point estimate
/// `v = round(Σ_i y_i / d_i)` (Halevi–Polyakov–Shoup CT-RSA 2019 §2.3) and the result is the exact
/// centred representative of `x` in `[-D/2, D/2)`; ModDown and the key-switching decomposition
/// use this so that their rounding errors have zero mean (an `O(k)` bias would otherwise be
/// multiplied by `s` in every key switch).
///
/// [`BaseConverter::new`] does the source-side work once (`y_i` and `v`, in pooled buffers);
/// [`BaseConverter::convert_into`] then writes the residues modulo one target prime, so callers
/// convert straight into the limbs of their output polynomial.
pub struct BaseConverter<'a> {
    n: usize,
    src: &'a [Modulus],
    /// `y_i = x_i · (D/d_i)^{-1} mod d_i`, limb-major.
    y: pool::Scratch,
    /// Overflow estimates `v` (empty unless centred).
    v: pool::Scratch,
    centered: bool,
}

impl std::fmt::Debug for BaseConverter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseConverter")
            .field("n", &self.n)
            .field("sources", &self.src.len())
            .field("centered", &self.centered)
            .finish_non_exhaustive()
    }
}

impl<'a> BaseConverter<'a> {
    /// Prepares the conversion of the residues `src_limbs` (modulo `src`). With
    /// `times_n`, the residues are those of `N·x` (an inverse NTT without its final scaling by
    /// `N^{-1}`), which is folded into the constant applied here.
    pub fn new(
        n: usize,
        src_limbs: &[&[u64]],
        src: &'a [Modulus],
        centered: bool,
        times_n: bool,
    ) -> Self {
        assert_eq!(src_limbs.len(), src.len());
        let mut y = pool::Scratch::dirty(src.len() * n);
        y.0.par_chunks_mut(n)
            .zip(src_limbs.par_iter())
            .enumerate()
            .for_each(|(i, (yi, x))| {
                let m = src[i];
                let hat = src
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, d)| m.mul(acc, m.reduce(d.value())));
                let hat = if times_n {
                    m.mul(hat, m.reduce(n as u64))
                } else {
                    hat
                };
                let inv = m.inv(hat).expect("distinct primes");
                kernels::mul_const_into(yi, x, Shoup::new(inv, m.value()), m.value());
            });
        let mut v = pool::Scratch::empty(if centered { n } else { 0 });
        if centered {
            let inv_d: Vec<f64> = src.iter().map(|m| 1.0 / m.value() as f64).collect();
            let ys: Vec<&[u64]> = y.0.chunks_exact(n).collect();
            v.0.resize(n, 0);
            kernels::overflow_estimate(&mut v.0, &ys, &inv_d);
        }
        Self {
            n,
            src,
            y,
            v,
            centered,
        }
    }

    /// Writes the converted residues modulo `t` into `out` (every element is overwritten).
    pub fn convert_into(&self, t: Modulus, out: &mut [u64]) {
        assert_eq!(out.len(), self.n);
        let src = self.src;
        // [D̂_i]_t with Shoup companions.
        let hats: Vec<Shoup> = (0..src.len())
            .map(|i| {
                let h = src
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, d)| t.mul(acc, t.reduce(d.value())));
                Shoup::new(h, t.value())
            })
            .collect();
        let ys: Vec<&[u64]> = self.y.0.chunks_exact(self.n).collect();
        // D mod t: the overflow correction is v·D.
        let v = self.centered.then(|| {
            let d_mod = src
                .iter()
                .fold(1u64, |acc, d| t.mul(acc, t.reduce(d.value())));
            (&self.v.0[..], Shoup::new(d_mod, t.value()))
        });
        let inputs_below = src
            .iter()
            .map(|m| m.value())
            .max()
            .unwrap_or(0)
            .max(src.len() as u64);
        kernels::base_convert_into(out, &ys, &hats, v, t.value(), inputs_below);
    }
}
