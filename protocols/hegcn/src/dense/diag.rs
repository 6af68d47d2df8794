//! One linear stage of the dense single-sample layout: an `n × n` matrix applied to a state
//! vector that is replicated with period `n` over all slots, by the diagonal method with
//! baby-step/giant-step (Halevi–Shoup). Because the state is periodic, a slot rotation of the
//! whole ciphertext by `k` is the cyclic rotation of every copy by `k mod n`: no wrap-around
//! masks are needed, and only non-zero diagonals cost a product.
//!
//! With `class = col − row (mod n)` written as `g·B + b` (`0 ≤ b < B`, `g` signed), the map is
//! `y = Σ_g rot(u_g, g·B)`, `u_g = Σ_b rot(d_{gB+b}, −gB) ⊙ rot(x, b)`. The baby rotations are
//! taken two at a time, `rot(·, 1)` and `rot(·, 2)` of the last one hoisted on one
//! decomposition ([`baby_steps`]), and the giant sums are two Horner chains of rotations by
//! `B` and `−B`, run concurrently, so a map needs the Galois keys of only four steps (`1`, `2`,
//! `B`, `−B`), at the price of one key switch per baby and per giant step (but one ModUp per
//! two baby steps; see the `dense` module docs for the rule). `B` is chosen per
//! map among a few powers of two for the fewest key switches ([`DiagMap::planned`]); maps with
//! one `B` can share their giant steps ([`DiagMap::apply_sum`]).
//!
//! Security model: that of the crate (semi-honest server holding the weights, which only ever
//! appear as plaintexts multiplied into client ciphertexts).

use std::collections::BTreeMap;

use ckks::{Ciphertext, Encoder, Evaluator};
use rayon::prelude::*;

use crate::error::Result;
use crate::linear::{PlaintextCache, PlaintextId};

/// One pre-rotated diagonal over a period and the identity its plaintexts are cached under.
type Term = (PlaintextId, Vec<f64>);

/// An `n × n` matrix as its pre-rotated BSGS diagonals (only non-zero ones).
#[derive(Debug, Clone)]
pub(crate) struct DiagMap {
    /// The period `n`.
    n: usize,
    /// The baby-step count `B`.
    baby: usize,
    /// `(g, b) ↦ rot(d_{gB+b}, −gB)` over one period, with the identity its plaintexts are
    /// cached under.
    terms: BTreeMap<(i64, usize), Term>,
}

impl DiagMap {
    /// The map with entries `(row, col, value)` (rows and columns below `n`; repeated entries
    /// add up) and the baby-step count among `babies` (powers of two dividing `n`) that needs
    /// the fewest key switches ([`Self::sum_key_switches`]; the first such candidate on a tie). The
    /// products do not depend on the choice: one per non-zero diagonal.
    pub(crate) fn planned(
        n: usize,
        babies: &[usize],
        entries: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Self {
        let diags = diagonals(n, entries);
        let signed: Vec<i64> = diags.keys().map(|&c| signed_class(c, n)).collect();
        let cost = |b: usize| {
            let bi = b as i64;
            let max_baby = signed.iter().map(|s| s.rem_euclid(bi)).max().unwrap_or(0);
            switch_count(
                [max_baby as usize].into_iter(),
                signed.iter().map(|s| s.div_euclid(bi)),
            )
        };
        let baby = babies
            .iter()
            .copied()
            .min_by_key(|&b| cost(b))
            .expect("at least one baby-step candidate");
        Self::from_diagonals(n, baby, diags)
    }

    /// The map with entries `(row, col, value)` and exactly `baby` baby steps (a power of two
    /// dividing `n`).
    #[cfg(test)]
    pub(crate) fn from_entries(
        n: usize,
        baby: usize,
        entries: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Self {
        Self::from_diagonals(n, baby, diagonals(n, entries))
    }

    fn from_diagonals(n: usize, baby: usize, diags: BTreeMap<usize, Vec<f64>>) -> Self {
        let mut terms = BTreeMap::new();
        for (class, d) in diags {
            let signed = signed_class(class, n);
            let g = signed.div_euclid(baby as i64);
            let b = signed.rem_euclid(baby as i64) as usize;
            let shift = (g * baby as i64).rem_euclid(n as i64) as usize;
            // e[j] = d[(j − gB) mod n]
            let e: Vec<f64> = (0..n).map(|j| d[(j + n - shift) % n]).collect();
            terms.insert((g, b), (PlaintextId::fresh(), e));
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

    /// Rotation steps the evaluation uses (a subset of `{1, 2, B, −B}`; 2 from two baby steps
    /// on, see [`baby_steps`]).
    pub(crate) fn rotation_steps(&self) -> Vec<i64> {
        let (lo, hi) = self.giant_range();
        let b = self.baby as i64;
        let mut s = Vec::new();
        if self.max_baby() > 0 {
            s.push(1);
        }
        if self.max_baby() > 1 {
            s.push(2);
        }
        if hi > 0 {
            s.push(b);
        }
        if lo < 0 {
            s.push(-b);
        }
        s
    }

    /// The baby-step count `B`.
    pub(crate) fn baby(&self) -> usize {
        self.baby
    }

    /// Key switches of [`Self::apply_sum`] over `maps` when each input pays its baby steps: up
    /// to its map's largest, and one giant step per index between the smallest and the largest
    /// of all maps.
    pub(crate) fn sum_key_switches(maps: &[&DiagMap]) -> usize {
        switch_count(
            maps.iter().map(|m| m.max_baby()),
            maps.iter().flat_map(|m| m.terms.keys().map(|k| k.0)),
        )
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
        let babies = baby_steps(eval, vec![x.clone()], self.max_baby())?;
        Self::apply_sum(eval, encoder, cache, &[(self, &babies)], target)
    }

    /// `Σ_i M_i·x_i` rescaled once to scale `target`, each input given as its baby steps
    /// `rot(x_i, b)` for `b = 0..=max_baby` ([`baby_steps`]; a caller that already rotated an
    /// input, at a higher level, passes those rotations dropped: the residual reuses its
    /// block's graph convolution's). The maps share the period and the baby steps, and the
    /// giant steps are taken once on the summed inner products (a temporal convolution and its
    /// residual cost one set of giant steps); the inputs share their level.
    ///
    /// # Panics
    /// On an empty list, maps with different periods or baby steps (a compile-time bug), or
    /// fewer baby steps than a map uses.
    pub(crate) fn apply_sum(
        eval: &Evaluator,
        encoder: &Encoder,
        cache: &PlaintextCache,
        maps: &[(&DiagMap, &[Ciphertext])],
        target: f64,
    ) -> Result<Ciphertext> {
        let (first, xs) = maps[0];
        let x = &xs[0];
        assert!(
            maps.iter()
                .all(|(m, b)| m.n == first.n && m.baby == first.baby && b.len() > m.max_baby()),
            "summed dense maps share the period and the baby steps, and get theirs"
        );
        let q = eval.params().q_prime(x.level())? as f64;
        let mut inner: BTreeMap<i64, Ciphertext> = BTreeMap::new();
        for &(m, babies) in maps {
            // Every product lands at `q·target`, whatever the input's scale.
            let pt_scale = q * target / babies[0].scale();
            for (g, u) in m.inner_sums(eval, encoder, cache, babies, pt_scale)? {
                match inner.get_mut(&g) {
                    Some(a) => eval.add_assign(a, &u)?,
                    None => {
                        inner.insert(g, u);
                    }
                }
            }
        }
        let sum = match first.giant_sum(eval, &inner)? {
            Some(s) => s,
            None => eval.mul_plain(x, &encoder.encode(&[], x.level(), q * target / x.scale())?)?,
        };
        Ok(eval.rescale(&sum)?)
    }

    /// The inner products `u_g = Σ_b rot(d_{gB+b}, −gB) ⊙ rot(x, b)` per giant index `g`,
    /// `babies[b] = rot(x, b)`.
    fn inner_sums(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        cache: &PlaintextCache,
        babies: &[Ciphertext],
        pt_scale: f64,
    ) -> Result<BTreeMap<i64, Ciphertext>> {
        let (level, slots) = (babies[0].level(), eval.params().slots());
        let mut by_g: BTreeMap<i64, Vec<(usize, &Term)>> = BTreeMap::new();
        for (&(g, b), t) in &self.terms {
            by_g.entry(g).or_default().push((b, t));
        }
        by_g.into_par_iter()
            .map(|(g, bs)| -> Result<(i64, Ciphertext)> {
                let mut acc: Option<Ciphertext> = None;
                for (b, (id, e)) in bs {
                    let v = || replicate(e, slots);
                    let pt = cache.get_or_encode_keyed(encoder, *id, v, level, pt_scale)?;
                    match &mut acc {
                        None => acc = Some(eval.mul_plain(&babies[b], &pt)?),
                        Some(a) => eval.mul_plain_add_assign(a, &babies[b], &pt)?,
                    }
                }
                Ok((g, acc.expect("every giant index has a term")))
            })
            .collect()
    }

    /// `Σ_g rot(u_g, gB)`: for `g ≥ 0` by Horner from the top with rotations by `B`, for
    /// `g < 0` likewise with `−B` and one last rotation, the two chains concurrently (`None`
    /// when there is no term).
    fn giant_sum(
        &self,
        eval: &Evaluator,
        inner: &BTreeMap<i64, Ciphertext>,
    ) -> Result<Option<Ciphertext>> {
        let lo = inner.keys().next().map_or(0, |&g| g.min(0));
        let hi = inner.keys().next_back().map_or(0, |&g| g.max(0));
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
        // The two chains are independent: run them side by side (each key switch is only
        // parallel over limbs, few at low levels).
        let (pos, neg) = rayon::join(
            || horner((0..=hi).rev().collect(), b),
            || -> Result<Option<Ciphertext>> {
                match horner((lo..0).collect(), -b)? {
                    Some(a) => Ok(Some(eval.rotate(&a, -b)?)),
                    None => Ok(None),
                }
            },
        );
        let (pos, neg) = (pos?, neg?);
        Ok(match (pos, neg) {
            (Some(mut p), Some(n)) => {
                eval.add_assign(&mut p, &n)?;
                Some(p)
            }
            (p, n) => p.or(n),
        })
    }

    /// The plaintext twin of [`Self::apply`] on one period (for tests).
    #[cfg(test)]
    pub(crate) fn apply_plain(&self, x: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut y = vec![0.0; n];
        for (&(g, b), (_, e)) in &self.terms {
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

/// `babies` (`rot(x, b)` for `b < babies.len()`, non-empty) extended to `b = 0..=max`, two at
/// a time: from the last one, `rot(·, 1)` and `rot(·, 2)` share one decomposition (hoisting,
/// [`Evaluator::rotate_hoisted`]), so `max` baby steps cost `max` key switches but only
/// `⌈max/2⌉` decompositions (ModUp), and the pair's inner products and ModDowns are
/// independent. Needs the Galois keys of steps 1 and 2 ([`HOISTED_BABY_STEPS`]).
pub(crate) fn baby_steps(
    eval: &Evaluator,
    mut babies: Vec<Ciphertext>,
    max: usize,
) -> Result<Vec<Ciphertext>> {
    while babies.len() <= max {
        let last = babies.last().expect("non-empty");
        if babies.len() < max {
            babies.extend(eval.rotate_hoisted(last, &HOISTED_BABY_STEPS)?);
        } else {
            let next = eval.rotate(last, 1)?;
            babies.push(next);
        }
    }
    Ok(babies)
}

/// One period replicated over `slots` slots (a multiple of its length).
pub(crate) fn replicate(period: &[f64], slots: usize) -> Vec<f64> {
    period.iter().copied().cycle().take(slots).collect()
}

/// The rotations [`baby_steps`] takes from one decomposition.
pub(crate) const HOISTED_BABY_STEPS: [i64; 2] = [1, 2];

/// The non-zero diagonals `class = col − row (mod n) ↦ d[row]` of a sparse matrix.
fn diagonals(
    n: usize,
    entries: impl IntoIterator<Item = (usize, usize, f64)>,
) -> BTreeMap<usize, Vec<f64>> {
    let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (row, col, v) in entries {
        if v == 0.0 {
            continue;
        }
        let class = (col + n - row) % n;
        diags.entry(class).or_insert_with(|| vec![0.0; n])[row] += v;
    }
    diags.retain(|_, d| d.iter().any(|&x| x != 0.0));
    diags
}

/// A class as a signed offset in `(−n/2, n/2]`: negative giant steps rotate right.
fn signed_class(class: usize, n: usize) -> i64 {
    if class > n / 2 {
        class as i64 - n as i64
    } else {
        class as i64
    }
}

/// Key switches of BSGS evaluations whose inputs have the largest baby indices `max_babies`
/// (one key switch per baby step, [`baby_steps`]) and whose summed inner products have the
/// giant indices `giants`: the baby steps plus one giant step per index between the smallest
/// and the largest (0 included).
fn switch_count(
    max_babies: impl Iterator<Item = usize>,
    giants: impl Iterator<Item = i64>,
) -> usize {
    let (lo, hi) = giants.fold((0, 0), |(lo, hi), g| (g.min(lo), g.max(hi)));
    max_babies.sum::<usize>() + (hi - lo) as usize
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

        /// The planned baby-step count is a candidate with the fewest key switches, and the
        /// planned map computes the same product.
        #[test]
        fn planned_baby_steps_are_the_cheapest_candidate(
            entries in proptest::collection::vec((0usize..64, 0usize..64, -1.0f64..1.0), 1..80),
            x in proptest::collection::vec(-1.0f64..1.0, 64),
        ) {
            let babies = [16, 8, 4];
            let m = DiagMap::planned(64, &babies, entries.iter().copied());
            prop_assert!(babies.contains(&m.baby()));
            let cost = DiagMap::sum_key_switches(&[&m]);
            for b in babies {
                let other = DiagMap::from_entries(64, b, entries.iter().copied());
                prop_assert!(cost <= DiagMap::sum_key_switches(&[&other]), "B {} vs {b}", m.baby());
                prop_assert_eq!(other.products(), m.products());
            }
            let fixed = DiagMap::from_entries(64, 16, entries.iter().copied());
            for (a, b) in m.apply_plain(&x).iter().zip(fixed.apply_plain(&x)) {
                prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }

    /// The baby steps `rot(x, b)`, `b = 0..=7`, take 7 key switches but 4 decompositions
    /// (three hoisted pairs and one last single rotation), and each decrypts to `x` rotated by
    /// `b` (within 1e-6 of values of magnitude ≤ 1).
    #[test]
    fn baby_steps_are_hoisted_in_pairs() {
        let params = crate::tests::test_params(6, 2);
        let mut kg = ckks::KeyGenerator::from_seed(&params, [3; 32]);
        let sk = kg.secret_key();
        let eval = Evaluator::new(&params)
            .with_galois_keys(kg.galois_keys(&sk, &HOISTED_BABY_STEPS, false).unwrap());
        let encoder = Encoder::new(&params);
        let slots = params.slots();
        let x: Vec<f64> = (0..slots).map(|i| (i as f64 * 0.37).sin()).collect();
        let pt = encoder.encode(&x, 2, params.default_scale()).unwrap();
        let ct = sk.encrypt_symmetric(&pt).unwrap();
        eval.reset_counters();
        let babies = baby_steps(&eval, vec![ct], 7).unwrap();
        let ops = eval.counters();
        assert_eq!((babies.len(), ops.key_switch, ops.decompose), (8, 7, 4));
        for (b, c) in babies.iter().enumerate() {
            let got = encoder.decode(&sk.decrypt(c).unwrap());
            for (i, g) in got.iter().enumerate() {
                assert!((g - x[(i + b) % slots]).abs() < 1e-6, "baby {b} slot {i}");
            }
        }
    }

    /// Channel mixing inside 32-slot nodes (offsets −31..31) over a 1,024-slot period: B = 8
    /// needs 7 baby and 7 giant steps where B = 32 needs 31 + 1; a residual of the same shape
    /// sharing the giant steps adds only its 7 baby steps.
    #[test]
    fn channel_mixing_takes_eight_baby_steps() {
        let mix = |seed: f64| {
            let e = (0..25).flat_map(move |v| {
                (0..32).flat_map(move |o| {
                    (0..32).map(move |c| (v * 32 + o, v * 32 + c, 1.0 + seed + (o * c) as f64))
                })
            });
            DiagMap::planned(1024, &[32, 16, 8], e)
        };
        let (tcn, res) = (mix(0.0), mix(0.5));
        assert_eq!((tcn.baby(), tcn.products()), (8, 63));
        assert_eq!(DiagMap::sum_key_switches(&[&tcn]), 14);
        assert_eq!(DiagMap::sum_key_switches(&[&tcn, &res]), 21);
        assert_eq!(tcn.rotation_steps(), vec![1, 2, 8, -8]);
    }
}
