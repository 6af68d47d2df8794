//! The 128 × m bit-matrix transpose at the heart of IKNP (Ishai–Kilian–Nissim–Petrank, CRYPTO 2003,
//! §3; Asharov–Lindell–Schneider–Zohner, CCS 2013, §4 on its cost).
//!
//! Input: 128 rows ("columns" of the IKNP matrix), each `m` bits packed LSB-first in `m / 64` words,
//! stored one after the other. Output: `m` blocks of 128 bits, block `j` holding bit `j` of every row.
//! The matrix is cut into 128 × 128 tiles; each tile is transposed in place by seven rounds of
//! masked swaps (Eklundh's recursive method, [`transpose_tile`], which IKNP's superblocks call
//! directly) and written out contiguously. Tiles are independent, so rayon spreads them over cores.

use rayon::prelude::*;

/// Transposes a 128 × 128 bit tile in place: afterwards bit `c` of `a[r]` is the old bit `r` of `a[c]`.
///
/// Eklundh's seven rounds on the rows as pairs of 64-bit halves: the first (64 × 64 sub-blocks)
/// only exchanges halves; each of the six others shifts and masks both halves of a row alike by a
/// constant. The body is compiled for AVX-512 (x86-64-v4) and AVX2 (x86-64-v3) as well and the
/// best copy is chosen at run time through `pulp`'s safe `vectorize`, so the compiler runs the
/// rounds with `J ≥ 4` on four (two) rows per register; elsewhere two-lane SSE2 operations, one
/// register per row.
pub fn transpose_tile(a: &mut [u128; 128]) {
    best_simd(
        #[inline(always)]
        || eklundh(a),
    )
}

/// Runs `f` compiled for the best instruction set available: its body (which must be
/// `#[inline(always)]`, as must everything it calls that should vectorize) is compiled for
/// AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and the baseline, and the copy is chosen at run time
/// through `pulp`'s safe `vectorize` (a cached CPUID check).
#[inline(always)]
pub(crate) fn best_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(f);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(f);
        }
    }
    f()
}

/// The seven rounds of [`transpose_tile`].
#[inline(always)]
fn eklundh(a: &mut [u128; 128]) {
    // Index of the low half of a `u128` seen as two `u64`.
    const LO: usize = if cfg!(target_endian = "little") { 0 } else { 1 };
    let a: &mut [[u64; 2]; 128] = bytemuck::cast_mut(a);
    for r in 0..64 {
        let hi = a[r][1 - LO];
        a[r][1 - LO] = a[r + 64][LO];
        a[r + 64][LO] = hi;
    }
    round::<32>(a, 0x0000_0000_ffff_ffff);
    round::<16>(a, 0x0000_ffff_0000_ffff);
    round::<8>(a, 0x00ff_00ff_00ff_00ff);
    round::<4>(a, 0x0f0f_0f0f_0f0f_0f0f);
    round::<2>(a, 0x3333_3333_3333_3333);
    round::<1>(a, 0x5555_5555_5555_5555);
}

/// One Eklundh round on `J × J` sub-blocks (`J < 64`): rows `k..k+J` pair with rows `k+J..k+2J`,
/// and the off-diagonal sub-blocks swap, in both halves at once. `m` selects the low `J` bits of
/// every `2J`-bit group of a half.
#[inline(always)]
fn round<const J: usize>(a: &mut [[u64; 2]; 128], m: u64) {
    for k in (0..128).step_by(2 * J) {
        for r in k..k + J {
            let (x, y) = (a[r], a[r + J]);
            let t = [((x[0] >> J) ^ y[0]) & m, ((x[1] >> J) ^ y[1]) & m];
            a[r + J] = [y[0] ^ t[0], y[1] ^ t[1]];
            a[r] = [x[0] ^ (t[0] << J), x[1] ^ (t[1] << J)];
        }
    }
}

/// Transposes 128 rows of `m` bits (`rows.len() == 128 * m / 64`, `m` a multiple of 128) into `m`
/// blocks.
pub fn transpose_128(rows: &[u64], m: usize) -> Vec<u128> {
    assert!(
        m.is_multiple_of(128),
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

/// The former single-copy (SSE2) tile transpose, kept as the reference of the dispatched one.
#[cfg(test)]
fn transpose_tile_baseline(a: &mut [u128; 128]) {
    eklundh(a)
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

    proptest::proptest! {
        /// The dispatched (AVX-512 / AVX2) copy agrees with the baseline copy on random tiles.
        #[test]
        fn dispatched_tile_transpose_matches_baseline(seed in proptest::prelude::any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let a: [u128; 128] =
                core::array::from_fn(|_| ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128);
            let (mut x, mut y) = (a, a);
            transpose_tile(&mut x);
            transpose_tile_baseline(&mut y);
            proptest::prop_assert_eq!(x, y);
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
