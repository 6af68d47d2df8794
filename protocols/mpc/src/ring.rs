//! The ring Z_2^64: wrapping `u64` arithmetic on ndarray matrices.
//!
//! All shares, masks and openings live here. Matrices are `Array2<u64>`; vectors are n×1 matrices so
//! one code path serves SecureML's mini-batch products (§IV) and elementwise operations.

use ndarray::{Array2, ArrayView2, Axis, Zip};
use rand::RngCore;
use rayon::prelude::*;

/// A matrix over Z_2^64.
pub type RingMatrix = Array2<u64>;

/// Elementwise `a + b` in Z_2^64.
pub fn add(a: &ArrayView2<'_, u64>, b: &ArrayView2<'_, u64>) -> RingMatrix {
    let mut out = a.to_owned();
    add_assign(&mut out, b);
    out
}

/// Elementwise `a - b` in Z_2^64.
pub fn sub(a: &ArrayView2<'_, u64>, b: &ArrayView2<'_, u64>) -> RingMatrix {
    let mut out = a.to_owned();
    sub_assign(&mut out, b);
    out
}

/// `a += b` in Z_2^64.
pub fn add_assign(a: &mut RingMatrix, b: &ArrayView2<'_, u64>) {
    Zip::from(a).and(b).for_each(|x, &y| *x = x.wrapping_add(y));
}

/// `a -= b` in Z_2^64.
pub fn sub_assign(a: &mut RingMatrix, b: &ArrayView2<'_, u64>) {
    Zip::from(a).and(b).for_each(|x, &y| *x = x.wrapping_sub(y));
}

/// Elementwise (Hadamard) product in Z_2^64.
pub fn hadamard(a: &ArrayView2<'_, u64>, b: &ArrayView2<'_, u64>) -> RingMatrix {
    let mut out = a.to_owned();
    Zip::from(&mut out)
        .and(b)
        .for_each(|x, &y| *x = x.wrapping_mul(y));
    out
}

/// `-a` in Z_2^64.
pub fn neg(a: &ArrayView2<'_, u64>) -> RingMatrix {
    a.mapv(u64::wrapping_neg)
}

/// Multiplies every entry by the public constant `c` in Z_2^64.
pub fn scale(a: &ArrayView2<'_, u64>, c: u64) -> RingMatrix {
    a.mapv(|x| x.wrapping_mul(c))
}

/// The matrix product `a · b` in Z_2^64.
///
/// ndarray's `dot` would overflow-check in debug builds and has no integer fast path, so this is a
/// row-parallel (rayon) loop over a transposed right operand, written for cache-friendly dot
/// products of contiguous rows.
pub fn matmul(a: &ArrayView2<'_, u64>, b: &ArrayView2<'_, u64>) -> RingMatrix {
    let (n, k) = a.dim();
    let (k2, m) = b.dim();
    assert_eq!(k, k2, "ring::matmul inner dimensions differ");
    let a = a.as_standard_layout();
    let bt = b.t().as_standard_layout().into_owned();
    let a_rows = a.as_slice().expect("standard layout");
    let bt_rows = bt.as_slice().expect("standard layout");
    let mut out = vec![0u64; n * m];
    if k == 0 || n == 0 || m == 0 {
        return Array2::from_shape_vec((n, m), out).expect("shape");
    }
    let grain = crate::compute::min_len(k.saturating_mul(m));
    out.par_chunks_mut(m)
        .with_min_len(grain)
        .enumerate()
        .for_each(|(i, row)| {
            let ai = &a_rows[i * k..(i + 1) * k];
            for (j, o) in row.iter_mut().enumerate() {
                *o = dot(ai, &bt_rows[j * k..(j + 1) * k]);
            }
        });
    Array2::from_shape_vec((n, m), out).expect("shape")
}

/// Wrapping dot product, unrolled in four independent lanes so the compiler can pipeline it.
#[inline]
fn dot(a: &[u64], b: &[u64]) -> u64 {
    let mut acc = [0u64; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for (l, acc) in acc.iter_mut().enumerate() {
            let i = 4 * c + l;
            *acc = acc.wrapping_add(a[i].wrapping_mul(b[i]));
        }
    }
    let mut s = acc[0]
        .wrapping_add(acc[1])
        .wrapping_add(acc[2])
        .wrapping_add(acc[3]);
    for i in 4 * chunks..a.len() {
        s = s.wrapping_add(a[i].wrapping_mul(b[i]));
    }
    s
}

/// A uniformly random matrix over Z_2^64 from `rng`.
pub fn random(rng: &mut impl RngCore, rows: usize, cols: usize) -> RingMatrix {
    let mut v = vec![0u64; rows * cols];
    fill_random(rng, &mut v);
    Array2::from_shape_vec((rows, cols), v).expect("shape")
}

/// Fills `out` with uniform words from `rng`.
pub fn fill_random(rng: &mut impl RngCore, out: &mut [u64]) {
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
    rng.fill_bytes(bytes);
    // Interpret as little-endian words so the expansion of a seed is the same on every platform.
    for w in out.iter_mut() {
        *w = u64::from_le(*w);
    }
}

/// Selects the rows `idx` of `a` (a mini-batch of a data matrix).
pub fn select_rows(a: &ArrayView2<'_, u64>, idx: &[usize]) -> RingMatrix {
    a.select(Axis(0), idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mat(v: Vec<u64>, r: usize, c: usize) -> RingMatrix {
        Array2::from_shape_vec((r, c), v).unwrap()
    }

    proptest! {
        #[test]
        fn add_sub_inverse(v in proptest::collection::vec(any::<u64>(), 12), w in proptest::collection::vec(any::<u64>(), 12)) {
            let a = mat(v, 3, 4);
            let b = mat(w, 3, 4);
            prop_assert_eq!(sub(&add(&a.view(), &b.view()).view(), &b.view()), a);
        }

        #[test]
        fn matmul_distributes(v in proptest::collection::vec(any::<u64>(), 6), w in proptest::collection::vec(any::<u64>(), 8), z in proptest::collection::vec(any::<u64>(), 8)) {
            let a = mat(v, 3, 2);
            let b = mat(w, 2, 4);
            let c = mat(z, 2, 4);
            let lhs = matmul(&a.view(), &add(&b.view(), &c.view()).view());
            let rhs = add(&matmul(&a.view(), &b.view()).view(), &matmul(&a.view(), &c.view()).view());
            prop_assert_eq!(lhs, rhs);
        }

        #[test]
        fn matmul_matches_naive(v in proptest::collection::vec(any::<u64>(), 15), w in proptest::collection::vec(any::<u64>(), 10)) {
            let a = mat(v, 3, 5);
            let b = mat(w, 5, 2);
            let c = matmul(&a.view(), &b.view());
            for i in 0..3 { for j in 0..2 {
                let mut s = 0u64;
                for k in 0..5 { s = s.wrapping_add(a[[i,k]].wrapping_mul(b[[k,j]])); }
                prop_assert_eq!(c[[i,j]], s);
            }}
        }

        #[test]
        fn hadamard_commutes(v in proptest::collection::vec(any::<u64>(), 6), w in proptest::collection::vec(any::<u64>(), 6)) {
            let a = mat(v, 2, 3);
            let b = mat(w, 2, 3);
            prop_assert_eq!(hadamard(&a.view(), &b.view()), hadamard(&b.view(), &a.view()));
            prop_assert_eq!(add(&neg(&a.view()).view(), &a.view()), Array2::<u64>::zeros((2, 3)));
        }
    }

    #[test]
    fn matmul_handles_empty_and_transposed_views() {
        let a = mat((0..6).collect(), 2, 3);
        let b = mat((0..6).collect(), 2, 3);
        let c = matmul(&a.view(), &b.t());
        assert_eq!(c, mat(vec![5, 14, 14, 50], 2, 2));
        let e = matmul(&Array2::<u64>::zeros((0, 3)).view(), &b.t());
        assert_eq!(e.dim(), (0, 2));
    }
}
