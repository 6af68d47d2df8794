//! Tests of the RNS polynomial arithmetic against schoolbook references.

use super::*;
use crate::primes::{largest_ntt_primes, ntt_primes_of_bits};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A test basis shaped like CKKS's `INSECURE_N10_L4_S40_TEST_ONLY` preset: `N = 2^10`, a 50-bit
/// `q_0`, four 40-bit scale primes and two 50-bit special primes.
struct Params {
    basis: RnsBasis,
    q: Vec<u64>,
    p: Vec<u64>,
}

impl AsRef<RnsBasis> for Params {
    fn as_ref(&self) -> &RnsBasis {
        &self.basis
    }
}

impl Params {
    fn n(&self) -> usize {
        self.basis.n()
    }
    fn max_level(&self) -> usize {
        self.q.len() - 1
    }
    fn q_primes(&self) -> &[u64] {
        &self.q
    }
    fn p_primes(&self) -> &[u64] {
        &self.p
    }
}

fn params() -> Params {
    let log_n = 10;
    let two_n = 2u64 << log_n;
    let big = largest_ntt_primes(two_n, 50, 3).unwrap();
    let mut q = vec![big[0]];
    q.extend(ntt_primes_of_bits(two_n, 40).take(4));
    let p = big[1..].to_vec();
    Params {
        basis: RnsBasis::new(log_n, &q, &p),
        q,
        p,
    }
}

fn random_poly(params: &Params, seed: u64, q_len: usize, p_len: usize) -> RnsPoly<Coeff> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut p = RnsPoly::<Coeff>::zero(params, q_len, p_len);
    for t in 0..p.limbs() {
        let m = params.basis.moduli()[p.modulus_index(params, t)];
        for x in p.limb_mut(t) {
            *x = rng.gen_range(0..m.value());
        }
    }
    p
}

fn naive_negacyclic(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for i in 0..n {
        for j in 0..n {
            let prod = m.mul(a[i], b[j]);
            if i + j < n {
                out[i + j] = m.add(out[i + j], prod);
            } else {
                out[i + j - n] = m.sub(out[i + j - n], prod);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn ntt_round_trip(seed in any::<u64>()) {
        let params = params();
        let a = random_poly(&params, seed, params.max_level() + 1, params.p_primes().len());
        let back = a.clone().into_ntt(&params).into_coeff(&params);
        prop_assert_eq!(a, back);
    }

    #[test]
    fn ntt_product_is_negacyclic_convolution(seed in any::<u64>()) {
        let params = params();
        let a = random_poly(&params, seed, 2, 0);
        let b = random_poly(&params, seed ^ 1, 2, 0);
        let mut c = a.clone().into_ntt(&params);
        c.mul_assign(&params, &b.clone().into_ntt(&params));
        let c = c.into_coeff(&params);
        for t in 0..2 {
            let m = params.basis.moduli()[t];
            prop_assert_eq!(c.limb(t), &naive_negacyclic(a.limb(t), b.limb(t), &m)[..]);
        }
    }

    #[test]
    fn automorphism_commutes_with_ntt(seed in any::<u64>(), k in 0u64..512) {
        let params = params();
        let g = (2 * k + 1) % (2 * params.n() as u64);
        let a = random_poly(&params, seed, 3, params.p_primes().len());
        let via_coeff = a.automorphism(&params, g).into_ntt(&params);
        let via_ntt = a.into_ntt(&params).automorphism(&params, g);
        prop_assert_eq!(via_coeff, via_ntt);
    }
}

#[test]
fn rescale_divides_with_rounding() {
    let params = params();
    let q_len = 3;
    // x = q_2 * 1234 + r with small r: rescale gives 1234 (r < q_2/2).
    let q2 = params.q_primes()[2] as i64;
    let coeffs: Vec<i64> = (0..params.n() as i64)
        .map(|i| (i - 500) * q2 + (i % 7) * 1000 - 3000)
        .collect();
    let mut p = RnsPoly::from_signed(&params, &coeffs, q_len, 0).into_ntt(&params);
    p.rescale_by_last(&params);
    let back = p.into_coeff(&params);
    for (i, &c) in coeffs.iter().enumerate() {
        let expect = (c as f64 / q2 as f64).round() as i64;
        let got = params.basis.moduli()[0].centered(back.limb(0)[i]);
        assert_eq!(got, expect);
        assert_eq!(params.basis.moduli()[1].centered(back.limb(1)[i]), expect);
    }
}

#[test]
fn mod_down_divides_by_p() {
    let params = params();
    let pbig: i128 = params.p_primes().iter().map(|&p| p as i128).product();
    let coeffs: Vec<i64> = (0..params.n() as i64).map(|i| i * 37 - 9000).collect();
    let mut wide = RnsPoly::<Coeff>::zero(&params, 2, params.p_primes().len());
    for t in 0..wide.limbs() {
        let m = params.basis.moduli()[wide.modulus_index(&params, t)];
        for (x, &c) in wide.limb_mut(t).iter_mut().zip(&coeffs) {
            *x = m.reduce_i128(c as i128 * pbig + 12345);
        }
    }
    let down = wide.into_ntt(&params).mod_down(&params).into_coeff(&params);
    for (i, &c) in coeffs.iter().enumerate() {
        // 12345 / P rounds to 0: the exact centred ModDown returns c itself.
        assert_eq!(params.basis.moduli()[0].centered(down.limb(0)[i]), c);
        assert_eq!(params.basis.moduli()[1].centered(down.limb(1)[i]), c);
    }
}
