//! An RNS basis: the ring degree `N = 2^log_n`, the primes of the modulus with their
//! [`Modulus`] constants and their negacyclic NTT plans (`tfhe-ntt`'s `prime64::Plan`).
//!
//! The primes are the main modulus `q_0..q_{L}` followed by optional special primes
//! `p_0..p_{k-1}` (CKKS's key-switching modulus `P`); a [`crate::poly::RnsPoly`] over the basis
//! holds a prefix of the `q` primes and either none or all of the special primes.

use tfhe_ntt::prime64::Plan;

use crate::arith::Modulus;

/// Primes, their reduction constants and NTT plans for one ring degree.
#[derive(Clone, Debug)]
pub struct RnsBasis {
    log_n: u32,
    n: usize,
    q_count: usize,
    moduli: Vec<Modulus>,
    plans: Vec<Plan>,
}

impl RnsBasis {
    /// The basis of degree `2^log_n` over the primes `q` followed by the special primes `p`.
    /// Panics unless every prime is `≡ 1 mod 2N`, odd and below 2^62 (the parameter builders
    /// only produce such primes, from [`crate::primes`]).
    pub fn new(log_n: u32, q: &[u64], p: &[u64]) -> Self {
        let n = 1usize << log_n;
        let all = || q.iter().chain(p.iter());
        let moduli = all().map(|&x| Modulus::new(x)).collect();
        let plans = all()
            .map(|&x| Plan::try_new(n, x).expect("primes are 1 mod 2N, so the NTT plan exists"))
            .collect();
        Self {
            log_n,
            n,
            q_count: q.len(),
            moduli,
            plans,
        }
    }

    /// `log2(N)`.
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of primes of the main modulus (the special primes follow them).
    pub fn q_count(&self) -> usize {
        self.q_count
    }

    /// Every prime's constants: `q_0..` then `p_0..`.
    pub fn moduli(&self) -> &[Modulus] {
        &self.moduli
    }

    /// The NTT plans, in the order of [`Self::moduli`].
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }
}

impl AsRef<RnsBasis> for RnsBasis {
    fn as_ref(&self) -> &RnsBasis {
        self
    }
}
