//! Exact truncation of shared values (zero failure probability) with one product of two private
//! bits per value.
//!
//! ## Construction
//!
//! Let `x0 + x1 = x (mod 2^64)` with `−2^62 ≤ x < 2^62` (two's complement) and `1 ≤ d ≤ 62`
//! (`d = 0` is the identity and also works). P0 adds the public `2^62` to its share, so the parties
//! hold `y0 = x0 + 2^62`, `y1 = x1` with `y = x + 2^62 ∈ [0, 2^63)`. Read as integers in
//! `[0, 2^64)`, `y0 + y1 = y + w·2^64` with a wrap bit `w ∈ {0, 1}`, and
//! `w = a ∨ b` for `a = msb(y0)` (known to P0) and `b = msb(y1)` (known to P1):
//!
//! * `a = b = 0`: `y0 + y1 < 2^64`, so `w = 0`;
//! * `a = b = 1`: `y0 + y1 ≥ 2^64`, so `w = 1`;
//! * exactly one is 1: `y0 + y1 ≥ 2^63`; `w = 0` would give `y = y0 + y1 ≥ 2^63`, contradicting
//!   `y < 2^63`, so `w = 1`.
//!
//! Shares of `w = a + b − a·b` need one product of two private bits: the parties run Beaver's
//! multiplication ([`crate::online::mul`]) on the sharings `(a, 0)` and `(0, b)` with an
//! elementwise triple, then `w_0 = a − (ab)_0`, `w_1 = b − (ab)_1`.
//!
//! Write `y_i = q_i·2^d + r_i` with `0 ≤ r_i < 2^d`. Then
//! `y = (q0 + q1 − w·2^(64−d))·2^d + r0 + r1`, so `⌊y/2^d⌋ = q0 + q1 − w·2^(64−d) + [r0 + r1 ≥ 2^d]`.
//! P0 takes `q0 − w_0·2^(64−d) − 2^(62−d)`, P1 takes `⌈y1/2^d⌉ − w_1·2^(64−d)` (`= q1 + [r1 ≠ 0]`).
//! They sum to `⌊y/2^d⌋ − 2^(62−d) + e` with `e = [r1 ≠ 0] − [r0 + r1 ≥ 2^d] ∈ {0, 1}` (a low-bit
//! carry implies `r1 ≠ 0`), and `⌊y/2^d⌋ − 2^(62−d) = ⌊x/2^d⌋` because `2^d` divides `2^62`.
//! **Result: `⌊x/2^d⌋` or `⌊x/2^d⌋ + 1` for every `x` in range, whatever the shares** — the
//! same ±1-ulp rounding as local truncation ([`super::truncate`]), with no failure event. The
//! precondition `|x| < 2^62` (`x ≥ −2^62`) is what makes `y < 2^63`; fixed-point products with
//! `2f = 32` fractional bits meet it for every real product below `2^30`. Outside the range the
//! result is garbage, as it is for the local variant.
//!
//! ## Security and cost
//!
//! Semi-honest, non-colluding parties; the elementwise triple comes from the offline phase
//! (dealer or OT) like every other. The only messages are one Beaver opening: each party sees
//! `a − A` and `0 − B` (resp. `0 − A`, `b − B`) with the triple's `A`, `B` uniform and unknown to
//! it, i.e. uniformly masked bits, and learns nothing about the other's bit or about `x`. Cost per
//! value: one elementwise triple, one round, two ring words sent by each party (16 bytes).

use super::Truncation;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::online;
use crate::ring::RingMatrix;
use crate::share::{Role, Share};
use crate::triples::{Preprocessing, TripleRequest};
use ndarray::Array2;

/// The public offset P0 adds: `x + 2^62 ∈ [0, 2^63)` for `−2^62 ≤ x < 2^62`.
const OFFSET: u64 = 1 << 62;

/// The preprocessing [`truncate_exact`] consumes for a `dim`-shaped input: one elementwise triple
/// (none for an empty input), as its dry run finds ([`Truncation::requests`]).
pub fn exact_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    Truncation::Exact.requests(dim)
}

fn check_bits(bits: u32) -> Result<()> {
    if bits > 62 {
        return Err(MpcError::InvalidShift { bits, max: 63 });
    }
    Ok(())
}

/// This party's share of `y = x + 2^62` (P0 adds the offset).
pub fn offset_share(role: Role, x: &Share) -> RingMatrix {
    match role {
        Role::P0 => x.view().mapv(|v| v.wrapping_add(OFFSET)),
        Role::P1 => x.view().to_owned(),
    }
}

/// The local step after the bit product: given this party's share `y_i` of `y` and its share
/// `ab_i` of `msb(y0)·msb(y1)`, its share of the truncation (see the module docs).
pub fn finish_local(role: Role, y: &RingMatrix, ab: &Share, bits: u32) -> Result<Share> {
    check_bits(bits)?;
    let high = 1u64.checked_shl(64 - bits).unwrap_or(0);
    let low = (1u64 << bits) - 1;
    let out = ndarray::Zip::from(y)
        .and(&ab.view())
        .map_collect(|&y, &ab| {
            let w = (y >> 63).wrapping_sub(ab);
            let q = match role {
                Role::P0 => (y >> bits).wrapping_sub(OFFSET >> bits),
                Role::P1 => (y >> bits) + u64::from(y & low != 0),
            };
            q.wrapping_sub(w.wrapping_mul(high))
        });
    Ok(Share::from_ring(out))
}

/// Truncates shares of `x` (`−2^62 ≤ x < 2^62`) by `bits ≤ 62` bits exactly: the result is
/// `⌊x/2^bits⌋` or that plus one, never garbage. One round; consumes one elementwise triple of
/// `x`'s shape from `pre`.
pub async fn truncate_exact<C: Channel>(
    ch: &mut C,
    role: Role,
    x: &Share,
    bits: u32,
    pre: &mut Preprocessing,
) -> Result<Share> {
    check_bits(bits)?;
    if x.dim().0 * x.dim().1 == 0 {
        return Ok(x.clone());
    }
    let t = pre.next_elementwise(x.dim())?;
    let y = offset_share(role, x);
    let msb = Share::from_ring(y.mapv(|v| v >> 63));
    let zero = Share::from_ring(Array2::zeros(x.dim()));
    let (l, r) = match role {
        Role::P0 => (&msb, &zero),
        Role::P1 => (&zero, &msb),
    };
    let ab = online::mul(ch, role, l, r, &t).await?;
    finish_local(role, &y, &ab, bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{mem_pair, Metered};
    use crate::share::reconstruct;
    use crate::triples::{dealer, TripleSource};
    use crate::trunc::truncate;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Whether `got` is `⌊x/2^d⌋` or `⌊x/2^d⌋ + 1`.
    fn within_one_ulp(x: u64, d: u32, got: u64) -> bool {
        let floor = (x as i64) >> d;
        got as i64 == floor || got as i64 == floor.wrapping_add(1)
    }

    /// Values in range, edges first (±2^62 boundaries, around 0), then random magnitudes; each
    /// shared several ways, most of them forced near the wrap so that local truncation fails.
    fn cases(rng: &mut ChaCha20Rng, n: usize) -> (Vec<u64>, Vec<u64>) {
        let lo = -(1i64 << 62);
        let hi = (1i64 << 62) - 1;
        let mut xs: Vec<i64> = vec![
            lo,
            lo + 1,
            lo + 12345,
            hi,
            hi - 1,
            hi - 54321,
            0,
            1,
            -1,
            2,
            -2,
        ];
        while xs.len() < n {
            let bits = rng.gen_range(0..63);
            xs.push(
                rng.gen_range(-(1i64 << bits)..=(1i64 << bits))
                    .clamp(lo, hi),
            );
        }
        let mut x0 = Vec::with_capacity(n);
        for (i, &x) in xs.iter().enumerate() {
            let r: u64 = match i % 4 {
                0 => rng.gen(),
                1 => (1u64 << 63).wrapping_add(rng.gen_range(0..1024)),
                2 => (x as u64)
                    .wrapping_neg()
                    .wrapping_add(rng.gen_range(0..1024)),
                _ => u64::MAX - rng.gen_range(0..1024),
            };
            x0.push(r);
        }
        (xs.into_iter().map(|x| x as u64).collect(), x0)
    }

    fn row(v: &[u64]) -> Share {
        Share::from_ring(Array2::from_shape_vec((1, v.len()), v.to_vec()).unwrap())
    }

    async fn run_exact(x0: &Share, x1: &Share, d: u32) -> RingMatrix {
        let reqs = exact_requests(x0.dim());
        let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let (mut c0, mut c1) = mem_pair();
        let (t0, t1) = tokio::join!(
            truncate_exact(&mut c0, Role::P0, x0, d, &mut p0),
            truncate_exact(&mut c1, Role::P1, x1, d, &mut p1)
        );
        assert!(p0.is_drained() && p1.is_drained());
        reconstruct(&t0.unwrap(), &t1.unwrap())
    }

    /// Exact truncation is ⌊x/2^d⌋ or +1 on every value, edges included, on shares where local
    /// truncation fails for a large fraction of them.
    #[tokio::test]
    async fn exact_truncation_is_floor_or_floor_plus_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(40);
        for d in [1u32, 16, 32, 40, 62] {
            let (xs, r) = cases(&mut rng, 4096);
            let x1: Vec<u64> = xs.iter().zip(&r).map(|(x, r)| x.wrapping_sub(*r)).collect();
            let (s0, s1) = (row(&r), row(&x1));
            let got = run_exact(&s0, &s1, d).await;
            for (x, g) in xs.iter().zip(got.iter()) {
                assert!(
                    within_one_ulp(*x, d, *g),
                    "d = {d}, x = {}: got {}",
                    *x as i64,
                    *g as i64
                );
            }
            let local = reconstruct(
                &truncate(Role::P0, &s0, d).unwrap(),
                &truncate(Role::P1, &s1, d).unwrap(),
            );
            let fails = xs
                .iter()
                .zip(local.iter())
                .filter(|(x, g)| !within_one_ulp(**x, d, **g))
                .count();
            assert!(
                fails >= 4096 / 16,
                "d = {d}: only {fails} local failures, the cases do not force wraps"
            );
        }
    }

    /// One round, two ring words per value sent by each party (plus the frame header).
    #[tokio::test]
    async fn exact_truncation_costs_one_round_and_two_words_per_value() {
        let n = 100;
        let mut rng = ChaCha20Rng::seed_from_u64(41);
        let (xs, r) = cases(&mut rng, n);
        let x1: Vec<u64> = xs.iter().zip(&r).map(|(x, r)| x.wrapping_sub(*r)).collect();
        let reqs = exact_requests((1, n));
        let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        let (c0, c1) = mem_pair();
        let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
        let (s0, s1) = (row(&r), row(&x1));
        let (t0, t1) = tokio::join!(
            truncate_exact(&mut c0, Role::P0, &s0, 16, &mut p0),
            truncate_exact(&mut c1, Role::P1, &s1, 16, &mut p1)
        );
        let (t0, t1) = (t0.unwrap(), t1.unwrap());
        for (x, g) in xs.iter().zip(reconstruct(&t0, &t1).iter()) {
            assert!(within_one_ulp(*x, 16, *g));
        }
        for c in [&c0, &c1] {
            let s = c.stats();
            assert_eq!(s.rounds, 1);
            assert!(
                s.bytes_sent >= 16 * n as u64 && s.bytes_sent <= 16 * n as u64 + 16,
                "{s:?}"
            );
        }
    }

    #[tokio::test]
    async fn exact_truncation_refuses_bad_shift_and_missing_triple() {
        let (mut c0, _c1) = mem_pair();
        let mut empty = Preprocessing::new();
        let x = Share::zeros(1, 2);
        let e = truncate_exact(&mut c0, Role::P0, &x, 63, &mut empty)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("63"), "{e}");
        assert!(truncate_exact(&mut c0, Role::P0, &x, 16, &mut empty)
            .await
            .is_err());
    }

    proptest! {
        /// The local algebra for any value in range, any share split and any shift: the bit
        /// product is shared at random, as Beaver's protocol would leave it.
        #[test]
        fn exact_local_step_is_within_one_ulp(
            x in -(1i64 << 62)..(1i64 << 62),
            r in any::<u64>(),
            mask in any::<u64>(),
            d in 0u32..=62,
        ) {
            let x = x as u64;
            let (s0, s1) = (row(&[r]), row(&[x.wrapping_sub(r)]));
            let (y0, y1) = (offset_share(Role::P0, &s0), offset_share(Role::P1, &s1));
            let ab = (y0[[0, 0]] >> 63) & (y1[[0, 0]] >> 63);
            let (ab0, ab1) = (row(&[mask]), row(&[ab.wrapping_sub(mask)]));
            let t = reconstruct(
                &finish_local(Role::P0, &y0, &ab0, d).unwrap(),
                &finish_local(Role::P1, &y1, &ab1, d).unwrap(),
            );
            prop_assert!(within_one_ulp(x, d, t[[0, 0]]), "x = {}, d = {d}: {}", x as i64, t[[0, 0]] as i64);
        }
    }
}
