//! The 128 × m bit-matrix transpose at the heart of IKNP (Ishai–Kilian–Nissim–Petrank, CRYPTO 2003,
//! §3; Asharov–Lindell–Schneider–Zohner, CCS 2013, §4 on its cost).
//!
//! Input: 128 rows ("columns" of the IKNP matrix), each `m` bits packed LSB-first in `m / 64` words,
//! stored one after the other. Output: `m` blocks of 128 bits, block `j` holding bit `j` of every row.
//! The matrix is cut into 128 × 128 tiles; each tile is loaded into 128 registers-worth of `u128`,
//! transposed in place by seven rounds of masked swaps (Eklundh's recursive method), and written
//! out contiguously. Tiles are independent, so rayon spreads them over cores.

use rayon::prelude::*;

/// Transposes a 128 × 128 bit tile in place: afterwards bit `c` of `a[r]` is the old bit `r` of `a[c]`.
pub fn transpose_tile(a: &mut [u128; 128]) {
    let mut j = 64usize;
    let mut m: u128 = u64::MAX as u128;
    while j != 0 {
        let mut k = 0;
        while k < 128 {
            // Rows k..k+j pair with rows k+j..k+2j; swap the off-diagonal j×j sub-blocks.
            for r in k..k + j {
                let t = ((a[r] >> j) ^ a[r + j]) & m;
                a[r + j] ^= t;
                a[r] ^= t << j;
            }
            k += 2 * j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Transposes 128 rows of `m` bits (`rows.len() == 128 * m / 64`, `m` a multiple of 128) into `m`
/// blocks.
pub fn transpose_128(rows: &[u64], m: usize) -> Vec<u128> {
    assert!(
        m % 128 == 0,
        "transpose_128: m = {m} is not a multiple of 128"
    );
    let words = m / 64;
    assert_eq!(rows.len(), 128 * words, "transpose_128: input size");
    let mut out = vec![0u128; m];
    let grain = crate::compute::min_len(128 * 16);
    out.par_chunks_mut(128)
        .with_min_len(grain)
        .enumerate()
        .for_each(|(b, dst)| {
            let mut tile = [0u128; 128];
            for (i, t) in tile.iter_mut().enumerate() {
                let lo = rows[i * words + 2 * b] as u128;
                let hi = rows[i * words + 2 * b + 1] as u128;
                *t = lo | (hi << 64);
            }
            transpose_tile(&mut tile);
            dst.copy_from_slice(&tile);
        });
    out
}

/// The obvious bit-by-bit transpose, for tests.
pub fn transpose_128_naive(rows: &[u64], m: usize) -> Vec<u128> {
    let words = m / 64;
    (0..m)
        .map(|j| {
            (0..128).fold(0u128, |acc, i| {
                let bit = (rows[i * words + j / 64] >> (j % 64)) & 1;
                acc | ((bit as u128) << i)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn fast_transpose_matches_naive() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for m in [128, 256, 1280] {
            let rows: Vec<u64> = (0..128 * m / 64).map(|_| rng.next_u64()).collect();
            assert_eq!(
                transpose_128(&rows, m),
                transpose_128_naive(&rows, m),
                "m = {m}"
            );
        }
    }

    #[test]
    fn tile_transpose_is_an_involution_and_moves_single_bits() {
        let mut a = [0u128; 128];
        a[3] = 1 << 100;
        transpose_tile(&mut a);
        let mut expect = [0u128; 128];
        expect[100] = 1 << 3;
        assert_eq!(a, expect);
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let orig: [u128; 128] =
            core::array::from_fn(|_| ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128);
        let mut b = orig;
        transpose_tile(&mut b);
        assert_ne!(b, orig);
        transpose_tile(&mut b);
        assert_eq!(b, orig);
    }
}
