//! Slot arrangements and the diagonal plan of a dense layer in the single-image layout: plain
//! arithmetic on slot indices, no ciphertext (the encrypted evaluation is `dense`).
//!
//! An *arrangement* of period `T` (a power of two dividing the slot count) says which input
//! value each slot holds: slot `s` holds `x[a[s mod T]]`, or 0 where `a` is `None`. A dense
//! layer `y = W·x` (`rows × cols`) on such a ciphertext `X` is
//!
//! ```text
//! Y = Σ_{d ∈ D} P_d ⊙ rot(X, d),   Z = Σ_{j < T/R} rot(Y, j·R)   (log2(T/R) rotate-and-add steps)
//! ```
//!
//! with a row block `R ≥ rows` (a power of two dividing `T`): output row `i` gathers its
//! products in the slots `b·R + i` of one period (`b < T/R`) and the rotate-and-add steps sum
//! those blocks, so that **every** slot `s` of `Z` holds `y[s mod R]` (0 for the padding rows):
//! the output is an arrangement of period `R` for the next layer, and a returned ciphertext
//! holds nothing but copies of the logits. The diagonal `P_d` (period `T`) holds `W[i, c]` in
//! slot `b·R + i` when `c = a[(b·R + i + d) mod T]` is the first occurrence of column `c` for
//! row `i` in the scan over `(b, i, d)`; `D` is the smallest prefix `0..k` that reaches every
//! non-zero weight (computed directly: `shifts_needed`).
//!
//! The client chooses the arrangement of the first dense layer's input, since the convolution
//! before it is slot-wise ([`dense_input_arrangement`]): block `b` of `R` slots holds the
//! features `k·b .. k·b + k` cyclically over its first `rows + k − 1` slots, so that the `k`
//! shifts `0..k` bring each of them under every row once (`k = ⌈cols / (T/R)⌉`).
//!
//! **Rotations.** `D` is evaluated baby-step/giant-step: `d = g + b` with `b = d mod n1`;
//! `Σ_g rot(Σ_b rot(P_{g+b}, −g) ⊙ rot(X, b), g)`, baby steps hoisted on `X`. The split `n1`
//! minimises the cost in hoisted key-switching inner products, with the relative weights
//! of [`ckks::cost`] (decomposition 1.4, ModDown of one polynomial 0.93): a baby step
//! (hoisted, lazy ModDown) costs 1, a giant step 3.33 (decomposition, inner product, ModDown of
//! `c1`), a rotate-and-add step 4.26 (decomposition, inner product, two ModDowns).

use crate::error::{HeCnnError, Result};
use ndarray::ArrayView2;

/// Cost of a hoisted baby step, in key-switching inner products ([`ckks::cost`]).
const BABY: f64 = ckks::cost::INNER_PRODUCT;
/// Cost of a giant step (a rotation of a sum kept over `Q·P`).
const GIANT: f64 = ckks::cost::GIANT_STEP;
/// Cost of a full rotation (the rotate-and-add steps).
const FULL: f64 = ckks::cost::FULL_ROTATION;

/// Which value each slot of one period holds.
pub(crate) type Arrangement = Vec<Option<usize>>;

/// The evaluation plan of one dense layer on an arranged ciphertext (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct DensePlan {
    /// Slots per ciphertext.
    pub slots: usize,
    /// Output rows (`y`'s length).
    pub rows: usize,
    /// Row block `R`: the output's period.
    pub block: usize,
    /// The input's period `T`.
    pub period: usize,
    /// Shifts `d` whose diagonal is not all zero, ascending.
    pub shifts: Vec<usize>,
    /// The diagonal of each shift over one period.
    pub diagonals: Vec<Vec<f64>>,
    /// Baby steps per giant step (`n1`).
    pub baby: usize,
}

/// The packing error of `layer`.
fn packing(layer: &'static str, what: &'static str, value: usize, limit: usize) -> HeCnnError {
    HeCnnError::Packing {
        layer,
        what,
        value,
        limit,
    }
}

/// Where each weight `(i, c)` (index `i·cols + c`) lands over shifts `0..k`: the shift `d`
/// and the slot `b·R + i` of its first occurrence in the scan over `(b, i, d)`, `None` if no
/// shift reaches it. Every weight is owned by exactly one diagonal, whatever its value: the
/// diagonal holds it, and no other diagonal does.
pub(crate) fn owners(
    (rows, cols): (usize, usize),
    a: &[Option<usize>],
    block: usize,
    k: usize,
) -> Vec<Option<(usize, usize)>> {
    let t = a.len();
    let mut owner = vec![None; rows * cols];
    for b in 0..t / block {
        for i in 0..rows {
            for d in 0..k {
                let Some(c) = a[(b * block + i + d) % t] else {
                    continue;
                };
                owner[i * cols + c].get_or_insert((d, b * block + i));
            }
        }
    }
    owner
}

/// The diagonals of shifts `0..k` (`None` if some non-zero weight is not reached).
fn assign(
    w: ArrayView2<'_, f64>,
    a: &[Option<usize>],
    block: usize,
    k: usize,
) -> Option<Vec<Vec<f64>>> {
    let mut diag = vec![vec![0.0; a.len()]; k];
    let owner = owners(w.dim(), a, block, k);
    for ((i, c), &v) in w.indexed_iter() {
        if v != 0.0 {
            let (d, slot) = owner[i * w.ncols() + c]?;
            diag[d][slot] = v;
        }
    }
    Some(diag)
}

/// The smallest `k` such that shifts `0..k` reach every non-zero weight (every weight, zero or
/// not, with `all`): row `i` reaches
/// column `c` held in slot `t` at shift `(t − i) mod R` (some block `b` gives the rest), so
/// `k = 1 + max_{i,c} min_t (t − i) mod R`; `None` if a weight's column is in no slot.
pub(crate) fn shifts_needed(
    w: ArrayView2<'_, f64>,
    a: &[Option<usize>],
    block: usize,
    all: bool,
) -> Option<usize> {
    let mut pos = vec![Vec::new(); w.ncols()];
    for (t, c) in a.iter().enumerate() {
        if let Some(c) = c {
            pos[*c].push(t);
        }
    }
    let mut k = 1;
    for ((i, c), &v) in w.indexed_iter() {
        if all || v != 0.0 {
            let d = pos[c]
                .iter()
                .map(|&t| (t + block - i % block) % block)
                .min()?;
            k = k.max(d + 1);
        }
    }
    Some(k)
}

/// The number of hoisted baby steps and giant steps of `shifts` split at `n1`.
fn split_counts(shifts: &[usize], n1: usize) -> (usize, usize) {
    let mut babies: Vec<usize> = shifts.iter().map(|d| d % n1).filter(|&b| b != 0).collect();
    let mut giants: Vec<usize> = shifts
        .iter()
        .map(|d| d - d % n1)
        .filter(|&g| g != 0)
        .collect();
    babies.sort_unstable();
    babies.dedup();
    giants.sort_unstable();
    giants.dedup();
    (babies.len(), giants.len())
}

/// The cheapest baby-step count for `shifts` and its cost.
fn best_split(shifts: &[usize]) -> (usize, f64) {
    let top = shifts.last().map_or(1, |&d| d + 1);
    (1..=top)
        .map(|n1| {
            let (nb, ng) = split_counts(shifts, n1);
            (n1, nb as f64 * BABY + ng as f64 * GIANT)
        })
        .fold(
            (1, f64::INFINITY),
            |best, c| if c.1 < best.1 { c } else { best },
        )
}

impl DensePlan {
    /// Plans `y = w·x` for an input of arrangement `a` (period `a.len()`) with row block
    /// `block`.
    ///
    /// # Errors
    /// [`HeCnnError::Packing`] naming `layer`: a period that is not a power of two dividing
    /// `slots`, a block that does not divide it or is below `rows`, a column index past `w`,
    /// or a weight that no shift reaches (a column missing from the arrangement).
    pub fn new(
        layer: &'static str,
        w: ArrayView2<'_, f64>,
        a: &[Option<usize>],
        slots: usize,
        block: usize,
    ) -> Result<Self> {
        let t = a.len();
        if !t.is_power_of_two() || !slots.is_multiple_of(t) {
            return Err(packing(layer, "arrangement period", t, slots));
        }
        if !block.is_power_of_two() || block > t || block < w.nrows() {
            return Err(packing(layer, "row block (power of two ≥ rows)", block, t));
        }
        if let Some(c) = a.iter().flatten().find(|&&c| c >= w.ncols()) {
            return Err(packing(layer, "arranged column", *c, w.ncols() - 1));
        }
        let Some(k) = shifts_needed(w, a, block, false) else {
            return Err(packing(layer, "columns reached", 0, w.ncols()));
        };
        let diag = assign(w, a, block, k).expect("k reaches every weight");
        let (shifts, diagonals): (Vec<usize>, Vec<Vec<f64>>) = diag
            .into_iter()
            .enumerate()
            .filter(|(_, d)| d.iter().any(|&v| v != 0.0))
            .unzip();
        let baby = best_split(&shifts).0;
        Ok(Self {
            slots,
            rows: w.nrows(),
            block,
            period: t,
            shifts,
            diagonals,
            baby,
        })
    }

    /// The baby-step counts worth considering: for each distinct pair (hoisted baby steps,
    /// giant steps) the smallest `n1` that gives it, ascending.
    pub fn split_choices(&self) -> Vec<usize> {
        let top = self.shifts.last().map_or(1, |&d| d + 1);
        let mut seen = Vec::new();
        (1..=top)
            .filter(|&n1| {
                let c = split_counts(&self.shifts, n1);
                let new = !seen.contains(&c);
                seen.push(c);
                new
            })
            .collect()
    }

    /// Sets `n1` baby steps per giant step instead of the cheapest by the fixed
    /// weights of [`ckks::cost`].
    ///
    /// # Errors
    /// [`HeCnnError::Packing`] naming `layer` if `n1` is outside `1..=` the largest shift + 1.
    pub fn set_baby(&mut self, layer: &'static str, n1: usize) -> Result<()> {
        let top = self.shifts.last().map_or(1, |&d| d + 1);
        if n1 == 0 || n1 > top {
            return Err(packing(layer, "baby steps per giant step", n1, top));
        }
        self.baby = n1;
        Ok(())
    }

    /// The output's arrangement: period `block`, row `i` in slot `i`.
    pub fn output_arrangement(&self) -> Arrangement {
        (0..self.block)
            .map(|i| (i < self.rows).then_some(i))
            .collect()
    }

    /// Giant steps with their `(baby step, index into shifts)` pairs, ascending.
    pub fn groups(&self) -> Vec<(usize, Vec<(usize, usize)>)> {
        let mut out: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for (idx, &d) in self.shifts.iter().enumerate() {
            let (g, b) = (d - d % self.baby, d % self.baby);
            match out.last_mut() {
                Some((last, members)) if *last == g => members.push((b, idx)),
                _ => out.push((g, vec![(b, idx)])),
            }
        }
        out
    }

    /// The baby steps used (with 0 if some shift is a multiple of `n1`), ascending.
    pub fn baby_steps(&self) -> Vec<usize> {
        let mut b: Vec<usize> = self.shifts.iter().map(|d| d % self.baby).collect();
        b.sort_unstable();
        b.dedup();
        b
    }

    /// The rotate-and-add steps: `R, 2R, …, T/2`.
    pub fn collapse_steps(&self) -> Vec<usize> {
        let mut steps = Vec::new();
        let mut s = self.block;
        while s < self.period {
            steps.push(s);
            s *= 2;
        }
        steps
    }

    /// Every rotation step this layer needs a Galois key for.
    pub fn rotation_steps(&self) -> Vec<usize> {
        let mut all = self.baby_steps();
        all.extend(self.groups().iter().map(|(g, _)| *g));
        all.extend(self.collapse_steps());
        all.retain(|&s| s != 0);
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The diagonal of `shifts[idx]` over all slots, rotated right by its giant step (the
    /// plaintext its baby-step rotation is multiplied by).
    pub fn encoded_diagonal(&self, idx: usize) -> Vec<f64> {
        let d = self.shifts[idx];
        let g = d - d % self.baby;
        let p = &self.diagonals[idx];
        (0..self.slots)
            .map(|s| p[(s + self.slots - g) % self.period])
            .collect()
    }
}

/// The arrangement of the first dense layer's input (`cols` features, `rows` outputs) that
/// needs the fewest rotations over `slots` slots, and its row block (see the module docs).
///
/// # Errors
/// [`HeCnnError::Packing`] if no row block fits (too many features for one ciphertext).
pub(crate) fn dense_input_arrangement(
    layer: &'static str,
    rows: usize,
    cols: usize,
    slots: usize,
) -> Result<(usize, Arrangement)> {
    let mut best: Option<(f64, usize, usize)> = None;
    let mut r = rows.next_power_of_two();
    while r <= slots {
        let blocks = slots / r;
        let k = cols.div_ceil(blocks);
        if rows + k - 1 <= r {
            let shifts: Vec<usize> = (0..k).collect();
            let cost = best_split(&shifts).1 + FULL * blocks.trailing_zeros() as f64;
            if best.is_none_or(|b| cost < b.0) {
                best = Some((cost, r, k));
            }
        }
        r *= 2;
    }
    let Some((_, r, k)) = best else {
        return Err(packing(layer, "features in one ciphertext", cols, slots));
    };
    let a = (0..slots)
        .map(|s| {
            let (b, u) = (s / r, s % r);
            let c = k * b + u % k;
            (u < rows + k - 1 && c < cols).then_some(c)
        })
        .collect();
    Ok((r, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    /// What the encrypted evaluation computes, on plain slot vectors.
    fn apply_plain(plan: &DensePlan, x: &[f64]) -> Vec<f64> {
        let n = plan.slots;
        let rot = |v: &[f64], k: usize| (0..n).map(|s| v[(s + k) % n]).collect::<Vec<f64>>();
        let mut y = vec![0.0; n];
        for (g, members) in plan.groups() {
            let mut inner = vec![0.0; n];
            for (b, idx) in members {
                let xb = rot(x, b);
                let pt = plan.encoded_diagonal(idx);
                for s in 0..n {
                    inner[s] += pt[s] * xb[s];
                }
            }
            for (acc, v) in y.iter_mut().zip(rot(&inner, g)) {
                *acc += v;
            }
        }
        for step in plan.collapse_steps() {
            let r = rot(&y, step);
            for (a, v) in y.iter_mut().zip(r) {
                *a += v;
            }
        }
        y
    }

    fn arranged(a: &[Option<usize>], x: &[f64], slots: usize) -> Vec<f64> {
        (0..slots)
            .map(|s| a[s % a.len()].map_or(0.0, |c| x[c]))
            .collect()
    }

    fn check(w: &Array2<f64>, x: &[f64], slots: usize) -> (DensePlan, Vec<f64>) {
        let (rows, cols) = w.dim();
        let (r, a) = dense_input_arrangement("test", rows, cols, slots).unwrap();
        let plan = DensePlan::new("test", w.view(), &a, slots, r).unwrap();
        let z = apply_plain(&plan, &arranged(&a, x, slots));
        let y = w.dot(&ndarray::ArrayView1::from(x));
        for (s, &v) in z.iter().enumerate() {
            let want = if s % r < rows { y[s % r] } else { 0.0 };
            assert!((v - want).abs() < 1e-9, "slot {s}: {v} vs {want}");
        }
        (plan, z)
    }

    #[test]
    fn cryptonets_dense_layers_need_fourteen_and_sixteen_shifts() {
        let w1 = Array2::from_shape_fn((100, 845), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let x: Vec<f64> = (0..845).map(|j| (j % 13) as f64 * 0.1).collect();
        let (p1, _) = check(&w1, &x, 8192);
        assert_eq!((p1.block, p1.shifts.len()), (128, 14));
        assert_eq!(p1.collapse_steps().len(), 6);
        // The second layer reads the first's periodic output.
        let w2 = Array2::from_shape_fn((10, 100), |(i, j)| ((i + 2 * j) % 5) as f64 - 2.0);
        let p2 = DensePlan::new("fc2", w2.view(), &p1.output_arrangement(), 8192, 16).unwrap();
        assert_eq!((p2.period, p2.shifts.len()), (128, 16));
        assert_eq!(p2.collapse_steps(), vec![16, 32, 64]);
    }

    #[test]
    fn a_missing_column_and_too_many_features_are_refused() {
        let w = Array2::from_elem((4, 8), 1.0);
        let a: Vec<Option<usize>> = (0..16).map(|s| (s < 7).then_some(s)).collect();
        let err = DensePlan::new("fc", w.view(), &a, 64, 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fc") && err.contains("columns reached"),
            "{err}"
        );
        let err = dense_input_arrangement("fc1", 100, 9000, 8192)
            .unwrap_err()
            .to_string();
        assert!(err.contains("9000") && err.contains("8192"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn every_weight_has_one_owner_whose_slot_holds_it(
            rows in 1usize..12,
            cols in 1usize..90,
            log_slots in 7u32..10,
        ) {
            let slots = 1usize << log_slots;
            prop_assume!(dense_input_arrangement("t", rows, cols, slots).is_ok());
            let (r, a) = dense_input_arrangement("t", rows, cols, slots).unwrap();
            let w = Array2::from_elem((rows, cols), 1.0);
            let k = shifts_needed(w.view(), &a, r, true).unwrap();
            let own = owners((rows, cols), &a, r, k);
            for (idx, o) in own.iter().enumerate() {
                let (i, c) = (idx / cols, idx % cols);
                let (d, slot) = o.expect("every weight reached");
                prop_assert!(d < k && slot % r == i);
                prop_assert_eq!(a[(slot + d) % a.len()], Some(c));
            }
            // The plan's diagonals hold each weight once, at its owner.
            let plan = DensePlan::new("t", w.view(), &a, slots, r).unwrap();
            let held: f64 = plan.diagonals.iter().flatten().sum();
            prop_assert_eq!(held as usize, rows * cols);
        }

        #[test]
        fn planned_rotations_compute_the_matrix_vector_product(
            rows in 1usize..12,
            cols in 1usize..90,
            log_slots in 7u32..10,
            seed in 0u64..1000,
        ) {
            let slots = 1usize << log_slots;
            prop_assume!(dense_input_arrangement("t", rows, cols, slots).is_ok());
            let f = |i: usize, j: usize| (((i * 31 + j * 17 + seed as usize) % 19) as f64 - 9.0) / 7.0;
            let w = Array2::from_shape_fn((rows, cols), |(i, j)| f(i, j));
            let x: Vec<f64> = (0..cols).map(|j| f(j, 3) + 0.5).collect();
            let (p1, z) = check(&w, &x, slots);
            // A second layer on the periodic output.
            let w2 = Array2::from_shape_fn((3usize.min(p1.block), rows), |(i, j)| f(i + 5, j));
            let b2 = 3usize.min(p1.block).next_power_of_two();
            let p2 = DensePlan::new("t2", w2.view(), &p1.output_arrangement(), slots, b2).unwrap();
            let z2 = apply_plain(&p2, &z);
            let y1: Vec<f64> = (0..rows).map(|i| z[i]).collect();
            let y2 = w2.dot(&ndarray::ArrayView1::from(&y1[..]));
            for (s, &v) in z2.iter().enumerate() {
                let want = if s % b2 < w2.nrows() { y2[s % b2] } else { 0.0 };
                prop_assert!((v - want).abs() < 1e-9);
            }
        }
    }
}
