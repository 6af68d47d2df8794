//! NTT-friendly prime search: a deterministic Miller–Rabin test exact on 64-bit integers and
//! the walk over the candidates `c ≡ 1 (mod 2N)` (the primes for which the negacyclic NTT of
//! degree `N` exists). CKKS builds its prime chain from these walks; the RLWE triple source takes
//! the largest primes of one size ([`largest_ntt_primes`]). Both are deterministic, so a
//! parameter set names its primes by its sizes alone.

fn mul_mod_u64(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

fn pow_mod_u64(mut b: u64, mut e: u64, m: u64) -> u64 {
    let mut r = 1u64 % m;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod_u64(r, b, m);
        }
        b = mul_mod_u64(b, b, m);
        e >>= 1;
    }
    r
}

/// Deterministic Miller–Rabin primality test, exact for all 64-bit inputs (the first twelve
/// prime bases suffice below 3.3 * 10^24).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for &b in &BASES {
        if n.is_multiple_of(b) {
            return n == b;
        }
    }
    let mut d = n - 1;
    let mut s = 0;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    'outer: for &a in &BASES {
        let mut x = pow_mod_u64(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod_u64(x, x, n);
            if x == n - 1 {
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// The primes among the candidates `start, start ∓ 2N, start ∓ 2·2N, …` in walking order: a
/// fused iterator over the arithmetic progression, bounded by `limit` (exclusive; below it when
/// descending, at or above it when ascending).
#[derive(Clone, Debug)]
pub struct NttPrimeWalk {
    next: Option<u64>,
    step: u64,
    limit: u64,
    up: bool,
}

impl NttPrimeWalk {
    /// Walks down from `start` through the candidates above `floor` (exclusive).
    pub fn down(start: u64, two_n: u64, floor: u64) -> Self {
        Self {
            next: Some(start),
            step: two_n,
            limit: floor,
            up: false,
        }
    }

    /// Walks up from `start` through the candidates below `ceiling` (exclusive).
    pub fn up(start: u64, two_n: u64, ceiling: u64) -> Self {
        Self {
            next: Some(start),
            step: two_n,
            limit: ceiling,
            up: true,
        }
    }

    /// The next candidate (prime or not), advancing the walk.
    fn candidate(&mut self) -> Option<u64> {
        let c = self.next?;
        let inside = if self.up {
            c < self.limit
        } else {
            c > self.limit
        };
        if !inside {
            self.next = None;
            return None;
        }
        self.next = if self.up {
            c.checked_add(self.step)
        } else {
            c.checked_sub(self.step)
        };
        Some(c)
    }
}

impl Iterator for NttPrimeWalk {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        while let Some(c) = self.candidate() {
            if is_prime(c) {
                return Some(c);
            }
        }
        None
    }
}

impl std::iter::FusedIterator for NttPrimeWalk {}

/// The largest candidate `c ≡ 1 (mod two_n)` with `c ≤ hi` (`hi ≥ 1`).
pub fn largest_candidate_at_most(hi: u64, two_n: u64) -> u64 {
    (hi - 1) / two_n * two_n + 1
}

/// The primes `≡ 1 (mod two_n)` of exactly `bits` bits (in `(2^(bits−1), 2^bits)`), largest
/// first.
pub fn ntt_primes_of_bits(two_n: u64, bits: u32) -> NttPrimeWalk {
    assert!((2..=63).contains(&bits), "prime size {bits} out of range");
    let top = (1u64 << bits) - 1;
    NttPrimeWalk::down(
        largest_candidate_at_most(top, two_n),
        two_n,
        1u64 << (bits - 1),
    )
}

/// The `count` largest primes `≡ 1 (mod two_n)` of `bits` bits, in decreasing order, or `None`
/// if there are fewer.
pub fn largest_ntt_primes(two_n: u64, bits: u32, count: usize) -> Option<Vec<u64>> {
    let primes: Vec<u64> = ntt_primes_of_bits(two_n, bits).take(count).collect();
    (primes.len() == count).then_some(primes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMES: [u64; 4] = [
        1125899906826241,   // 50-bit, 1 mod 2^15
        1099511922689,      // 40-bit
        576460752303439873, // 60-bit
        65537,
    ];

    #[test]
    fn primality_known_answers() {
        for p in PRIMES {
            assert!(is_prime(p), "{p}");
        }
        assert!(!is_prime(1));
        assert!(!is_prime(561)); // Carmichael
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2,3,5,7
        assert!(!is_prime((1 << 61) - 3));
        assert!(is_prime((1 << 61) - 1));
    }

    #[test]
    fn largest_primes_match_tfhe_ntt_search() {
        use tfhe_ntt::prime::largest_prime_in_arithmetic_progression64;
        for log_n in [6u32, 10, 12, 14, 16] {
            let two_n = 2u64 << log_n;
            for bits in [30u32, 40, 50] {
                let ours = largest_ntt_primes(two_n, bits, 5).unwrap();
                let mut hi = (1u64 << bits) - 1;
                for &p in &ours {
                    let theirs =
                        largest_prime_in_arithmetic_progression64(two_n, 1, 1 << (bits - 1), hi);
                    assert_eq!(Some(p), theirs, "log_n {log_n}, {bits} bits");
                    hi = p - 1;
                }
            }
        }
    }

    #[test]
    fn walks_are_bounded_and_fused() {
        let two_n = 1u64 << 11;
        let up: Vec<u64> =
            NttPrimeWalk::up((1 << 30) + 1, two_n, (1 << 30) + 200 * two_n).collect();
        assert!(up.windows(2).all(|w| w[0] < w[1]));
        assert!(up
            .iter()
            .all(|&p| p % two_n == 1 && p < (1 << 30) + 200 * two_n));
        let mut down =
            NttPrimeWalk::down(largest_candidate_at_most(1 << 20, two_n), two_n, 1 << 19);
        let all: Vec<u64> = down.by_ref().collect();
        assert!(all
            .iter()
            .all(|&p| p > 1 << 19 && p < 1 << 20 && is_prime(p)));
        assert_eq!(down.next(), None);
        assert_eq!(largest_ntt_primes(1 << 17, 20, 100), None);
    }
}
