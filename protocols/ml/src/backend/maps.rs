//! Public re-indexings and public linear maps of matrices, the local layer operations of
//! convolutional models on shares: an [`IndexMap`] says, for every output entry, which input
//! entry it copies (or that it is 0) — batch gathering, im2col unfolding with zero padding and
//! stride, strided row selection, broadcasting a row to many rows — and its adjoint sums entries
//! back. A [`PublicLinear`] is a sparse matrix with real coefficients applied on the left (graph
//! aggregation, average pooling, per-row scales).
//!
//! Both are public (known to both parties) and act on each party's share alone: a gather is
//! exact on shares; a linear map with real coefficients is applied to the fixed-point encoding
//! and then truncated once by the backend. No security assumption beyond that of the backend.

use crate::error::{MlError, Result};
use ndarray::Array2;

/// Marks an output entry that is 0 rather than a copy of an input entry.
const ZERO: u32 = u32::MAX;

/// A public re-indexing: output entry `(r, c)` is input entry `src[r·cols + c]` or 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexMap {
    in_dim: (usize, usize),
    out_dim: (usize, usize),
    src: Vec<u32>,
}

impl IndexMap {
    /// A map from an `in_dim` matrix to an `out_dim` one; `f(r, c)` is the input `(row, col)`
    /// that output `(r, c)` copies, or `None` for 0.
    ///
    /// # Errors
    /// An input index outside `in_dim`, or an input too large for 32-bit indices.
    pub fn from_fn(
        in_dim: (usize, usize),
        out_dim: (usize, usize),
        mut f: impl FnMut(usize, usize) -> Option<(usize, usize)>,
    ) -> Result<Self> {
        let total = in_dim.0 * in_dim.1;
        if total >= ZERO as usize {
            return Err(MlError::OutOfRange {
                what: "index map input entries",
                index: 0,
                value: total,
                limit: ZERO as usize,
            });
        }
        let mut src = Vec::with_capacity(out_dim.0 * out_dim.1);
        for r in 0..out_dim.0 {
            for c in 0..out_dim.1 {
                src.push(match f(r, c) {
                    None => ZERO,
                    Some((i, j)) => {
                        if i >= in_dim.0 || j >= in_dim.1 {
                            return Err(MlError::OutOfRange {
                                what: "index map source row",
                                index: r * out_dim.1 + c,
                                value: if i >= in_dim.0 { i } else { j },
                                limit: if i >= in_dim.0 { in_dim.0 } else { in_dim.1 },
                            });
                        }
                        (i * in_dim.1 + j) as u32
                    }
                });
            }
        }
        Ok(Self {
            in_dim,
            out_dim,
            src,
        })
    }

    /// Shape of the matrix the map reads.
    pub fn in_dim(&self) -> (usize, usize) {
        self.in_dim
    }

    /// Shape of the matrix the map writes.
    pub fn out_dim(&self) -> (usize, usize) {
        self.out_dim
    }

    /// The flat input index of every output entry (row-major), `None` for 0.
    pub fn sources(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.src.iter().map(|&s| (s != ZERO).then_some(s as usize))
    }

    /// Applies the map to a row-major slice of any element type (`zero` for unmapped entries).
    pub fn gather_slice<T: Copy>(&self, input: &[T], zero: T) -> Vec<T> {
        self.src
            .iter()
            .map(|&s| if s == ZERO { zero } else { input[s as usize] })
            .collect()
    }

    /// The adjoint on a row-major slice: every output entry added into the input entry it came
    /// from, with `add`.
    pub fn scatter_slice<T: Copy>(&self, output: &[T], zero: T, add: impl Fn(T, T) -> T) -> Vec<T> {
        let mut acc = vec![zero; self.in_dim.0 * self.in_dim.1];
        for (&s, &v) in self.src.iter().zip(output) {
            if s != ZERO {
                acc[s as usize] = add(acc[s as usize], v);
            }
        }
        acc
    }

    /// Checks that `dim` is what the map reads (`adjoint`: what it writes).
    pub(crate) fn check(&self, op: &'static str, dim: (usize, usize), adjoint: bool) -> Result<()> {
        let want = if adjoint { self.out_dim } else { self.in_dim };
        super::check_same(op, want, dim)
    }
}

/// A public sparse `out_rows × in_rows` matrix with real coefficients, applied on the left:
/// `(M·X)[i, :] = Σ_j M[i, j]·X[j, :]`. Stored by rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicLinear {
    out_rows: usize,
    in_rows: usize,
    /// Row `i`'s entries are `entries[start[i]..start[i + 1]]`.
    start: Vec<usize>,
    entries: Vec<(usize, f64)>,
}

impl PublicLinear {
    /// A map from `(row, col, coefficient)` triplets (duplicates add up; zeros are dropped).
    ///
    /// # Errors
    /// A row or column outside the shape, or a non-finite coefficient.
    pub fn from_triplets(
        out_rows: usize,
        in_rows: usize,
        triplets: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Result<Self> {
        let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); out_rows];
        for (k, (i, j, c)) in triplets.into_iter().enumerate() {
            let (what, value, limit) = if i >= out_rows {
                ("linear map output row", i, out_rows)
            } else if j >= in_rows {
                ("linear map input row", j, in_rows)
            } else if !c.is_finite() {
                ("linear map coefficient (non-finite) at row", i, out_rows)
            } else {
                if c != 0.0 {
                    rows[i].push((j, c));
                }
                continue;
            };
            return Err(MlError::OutOfRange {
                what,
                index: k,
                value,
                limit,
            });
        }
        let mut start = Vec::with_capacity(out_rows + 1);
        let mut entries = Vec::new();
        start.push(0);
        for mut r in rows {
            r.sort_by_key(|e| e.0);
            let row_start = entries.len();
            for (j, c) in r {
                let len = entries.len();
                match entries.last_mut() {
                    Some((lj, lc)) if len > row_start && *lj == j => *lc += c,
                    _ => entries.push((j, c)),
                }
            }
            start.push(entries.len());
        }
        Ok(Self {
            out_rows,
            in_rows,
            start,
            entries,
        })
    }

    /// `(out_rows, in_rows)`.
    pub fn dim(&self) -> (usize, usize) {
        (self.out_rows, self.in_rows)
    }

    /// The entries `(column, coefficient)` of output row `i`.
    pub fn row(&self, i: usize) -> &[(usize, f64)] {
        &self.entries[self.start[i]..self.start[i + 1]]
    }

    /// The transposed map (the adjoint, for backward passes).
    pub fn transpose(&self) -> Self {
        let trip =
            (0..self.out_rows).flat_map(|i| self.row(i).iter().map(move |&(j, c)| (j, i, c)));
        Self::from_triplets(self.in_rows, self.out_rows, trip).expect("indices were valid")
    }

    /// The dense `out_rows × in_rows` matrix.
    pub fn to_dense(&self) -> Array2<f64> {
        let mut m = Array2::zeros((self.out_rows, self.in_rows));
        for i in 0..self.out_rows {
            for &(j, c) in self.row(i) {
                m[[i, j]] += c;
            }
        }
        m
    }

    /// Applies the map to the rows of a row-major `in_rows × cols` slice with coefficients `coef`
    /// (one per entry, in storage order) and multiply-add `fma(acc, coef, x)`.
    pub(crate) fn apply_with<T: Copy, K: Copy>(
        &self,
        input: &[T],
        cols: usize,
        coef: &[K],
        zero: T,
        fma: impl Fn(T, K, T) -> T,
    ) -> Vec<T> {
        let mut out = vec![zero; self.out_rows * cols];
        for i in 0..self.out_rows {
            let o = &mut out[i * cols..(i + 1) * cols];
            let range = self.start[i]..self.start[i + 1];
            for (&(j, _), &cf) in self.entries[range.clone()].iter().zip(&coef[range]) {
                for (a, &x) in o.iter_mut().zip(&input[j * cols..(j + 1) * cols]) {
                    *a = fma(*a, cf, x);
                }
            }
        }
        out
    }

    /// The coefficients in storage order.
    pub(crate) fn coefficients(&self) -> impl Iterator<Item = f64> + '_ {
        self.entries.iter().map(|e| e.1)
    }

    /// Checks that `dim` has `in_rows` rows.
    pub(crate) fn check(&self, op: &'static str, dim: (usize, usize)) -> Result<()> {
        if dim.0 != self.in_rows {
            return Err(MlError::Shape {
                op,
                left: self.dim(),
                right: dim,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arr(r: usize, c: usize, v: Vec<f64>) -> Array2<f64> {
        Array2::from_shape_vec((r, c), v).unwrap()
    }

    fn gather(m: &IndexMap, x: &Array2<f64>) -> Array2<f64> {
        let (r, c) = m.out_dim();
        arr(r, c, m.gather_slice(x.as_slice().unwrap(), 0.0))
    }

    fn scatter(m: &IndexMap, y: &Array2<f64>) -> Array2<f64> {
        let (r, c) = m.in_dim();
        arr(
            r,
            c,
            m.scatter_slice(y.as_slice().unwrap(), 0.0, |a, b| a + b),
        )
    }

    #[test]
    fn gather_copies_and_zeroes() {
        let x = arr(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
        let m = IndexMap::from_fn((2, 2), (1, 3), |_, c| (c < 2).then_some((1, c))).unwrap();
        assert_eq!(gather(&m, &x), arr(1, 3, vec![3.0, 4.0, 0.0]));
        let y = arr(1, 3, vec![1.0, 1.0, 5.0]);
        assert_eq!(scatter(&m, &y), arr(2, 2, vec![0.0, 0.0, 1.0, 1.0]));
    }

    #[test]
    fn bad_indices_are_refused_with_their_value() {
        let e = IndexMap::from_fn((2, 2), (1, 1), |_, _| Some((2, 0))).unwrap_err();
        assert!(e.to_string().contains("value 2, limit 2"), "{e}");
        let e = PublicLinear::from_triplets(2, 3, [(0, 3, 1.0)]).unwrap_err();
        assert!(e.to_string().contains("value 3, limit 3"), "{e}");
        assert!(PublicLinear::from_triplets(2, 3, [(0, 0, f64::NAN)]).is_err());
    }

    #[test]
    fn duplicate_triplets_add_up() {
        let m = PublicLinear::from_triplets(2, 2, [(0, 1, 1.0), (0, 1, 2.0), (1, 0, 0.5)]).unwrap();
        assert_eq!(m.to_dense(), arr(2, 2, vec![0.0, 3.0, 0.5, 0.0]));
        assert_eq!(m.transpose().to_dense(), m.to_dense().t().to_owned());
    }

    fn map_strategy() -> impl Strategy<Value = (IndexMap, Array2<f64>, Array2<f64>)> {
        (1usize..5, 1usize..5, 1usize..5, 1usize..5).prop_flat_map(|(ir, ic, or, oc)| {
            let srcs = proptest::collection::vec(proptest::option::of((0..ir, 0..ic)), or * oc);
            let xs = proptest::collection::vec(-10.0f64..10.0, ir * ic);
            let ys = proptest::collection::vec(-10.0f64..10.0, or * oc);
            (srcs, xs, ys).prop_map(move |(s, x, y)| {
                let m = IndexMap::from_fn((ir, ic), (or, oc), |r, c| s[r * oc + c]).unwrap();
                (m, arr(ir, ic, x), arr(or, oc, y))
            })
        })
    }

    proptest! {
        /// ⟨gather(x), y⟩ = ⟨x, scatter_add(y)⟩.
        #[test]
        fn scatter_add_is_the_adjoint_of_gather((m, x, y) in map_strategy()) {
            let lhs = (&gather(&m, &x) * &y).sum();
            let rhs = (&x * &scatter(&m, &y)).sum();
            prop_assert!((lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()));
        }

        /// Applying the sparse map equals the dense product, and the transpose is the adjoint.
        #[test]
        fn linear_map_is_the_dense_product(
            trip in proptest::collection::vec((0usize..4, 0usize..5, -3.0f64..3.0), 0..12),
            x in proptest::collection::vec(-5.0f64..5.0, 15),
        ) {
            let m = PublicLinear::from_triplets(4, 5, trip).unwrap();
            let x = arr(5, 3, x);
            let coef: Vec<f64> = m.coefficients().collect();
            let y = arr(4, 3, m.apply_with(x.as_slice().unwrap(), 3, &coef, 0.0, |a, c, v| a + c * v));
            let d = m.to_dense().dot(&x);
            prop_assert!((&y - &d).iter().all(|e| e.abs() < 1e-9));
            prop_assert_eq!(m.transpose().to_dense(), m.to_dense().t().to_owned());
        }
    }
}
