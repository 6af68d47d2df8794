//! Labels inside 2PC: splitting the label column off a dataset share, and turning shared class
//! indices into shared one-hot rows (for the MLP and the ST-GCN jobs).
//!
//! `t_c = [label − c + ½ ≥ 0]` for `c = 1..k−1` by one secure comparison each (the ReLU
//! derivative), converted to arithmetic shares by a selection, and `onehot_c = t_c − t_{c+1}`
//! with the public `t_0 = 1`, `t_k = 0` (exact for integer labels). Semi-honest, non-colluding
//! parties: each sees only masked openings of the comparison circuits.

use super::Result;
use ml::backend::{Backend, Plan, PlanTensor};
use mpc::{FixedPoint, Role, Share};
use ndarray::{Array2, Axis};

/// Splits a dataset share into features (all other columns) and the label column.
pub fn split_label(s: &Share, label: usize) -> (Share, Share) {
    let v = s.view();
    let cols: Vec<usize> = (0..v.ncols()).filter(|&c| c != label).collect();
    let x = v.select(Axis(1), &cols);
    let y = v.select(Axis(1), &[label]);
    (Share::from_ring(x), Share::from_ring(y))
}

/// `[t ≥ 0] ⊙ ones`: the comparison bits of `t` as arithmetic shares of 0/1 (fixed point).
/// Runs on the plan and on shares alike, so both consume the same preprocessing.
pub(super) async fn threshold_bits<B: Backend>(
    b: &mut B,
    t: &B::Tensor,
    ones: &B::Tensor,
) -> Result<B::Tensor> {
    let (_, bits) = b.relu(t).await?;
    Ok(b.select(&bits, ones).await?)
}

/// Records the preprocessing of [`one_hot_labels`] for `n` labels of `k` classes on `plan`.
pub(super) async fn plan_one_hot(plan: &mut Plan, n: usize, k: usize) -> Result<()> {
    let t = PlanTensor((n, k - 1));
    threshold_bits(plan, &t, &t).await?;
    Ok(())
}

/// The comparison inputs of the one-hot encoding: column `c − 1` holds `label − c + ½` for
/// `c = 1..k` (local: P0 subtracts the public constants).
pub fn one_hot_comparands(role: Role, fp: &FixedPoint, y: &Share, k: usize) -> Result<Share> {
    let n = y.dim().0;
    let col = y.view().column(0).to_owned();
    let rep = Array2::from_shape_fn((n, k - 1), |(r, _)| col[r]);
    let consts = (1..k)
        .map(|c| fp.encode(-(c as f64) + 0.5))
        .collect::<std::result::Result<Vec<u64>, _>>()?;
    let pubm = Array2::from_shape_fn((n, k - 1), |(_, c)| consts[c]);
    Ok(Share::from_ring(rep).add_public(role, &pubm.view()))
}

/// One-hot rows from the threshold bits `t` (`n × (k−1)`, shares of `[label ≥ c]` for
/// `c = 1..k`): `onehot_c = t_c − t_{c+1}` with the public `t_0 = 1` and `t_k = 0` (local).
pub fn one_hot_from_thresholds(role: Role, fp: &FixedPoint, t: &Share) -> Result<Share> {
    let (n, km1) = t.dim();
    let one = Array2::from_elem((n, 1), fp.encode(1.0)?);
    let ones = Share::of_public(role, &one.view());
    let zeros = Share::zeros(n, 1);
    let lower = ndarray::concatenate![Axis(1), ones.view(), t.view()];
    let upper = ndarray::concatenate![Axis(1), t.view(), zeros.view()];
    debug_assert_eq!(lower.ncols(), km1 + 1);
    Ok(Share::from_ring(lower).sub(&Share::from_ring(upper)))
}

/// The shared one-hot rows of the labels `y` (class indices `0..k`).
pub(super) async fn one_hot_labels<B: Backend<Tensor = Share>>(
    b: &mut B,
    role: Role,
    fp: &FixedPoint,
    y: &Share,
    k: usize,
) -> Result<Share> {
    let n = y.dim().0;
    let t = one_hot_comparands(role, fp, y, k)?;
    let one = Array2::from_elem((n, k - 1), fp.encode(1.0)?);
    let ones = Share::of_public(role, &one.view());
    let bits = threshold_bits(b, &t, &ones).await?;
    one_hot_from_thresholds(role, fp, &bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml::backend::Shared;

    #[test]
    fn the_label_column_is_split_off() {
        let s = Share::from_ring(ndarray::array![[1u64, 2, 3], [4, 5, 6]]);
        let (x, y) = split_label(&s, 1);
        assert_eq!(x.view(), ndarray::array![[1u64, 3], [4, 6]].view());
        assert_eq!(y.view(), ndarray::array![[2u64], [5]].view());
    }

    /// The one-hot encoding on shares (comparisons, selection, local differences) reconstructs to
    /// exactly the plaintext one-hot rows, and consumes exactly the planned preprocessing.
    #[tokio::test]
    async fn one_hot_labels_on_shares_match_the_plaintext() {
        use mpc::triples::{dealer, TripleSource};
        let fp = FixedPoint::default();
        let (n, k) = (37usize, 10usize);
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + i / 5) % k).collect();
        let y = Array2::from_shape_fn((n, 1), |(r, _)| labels[r] as f64);
        let mut rng = mpc::share::os_rng();
        let [y0, y1] = mpc::share::share(&fp.encode_matrix(&y.view()).unwrap().view(), &mut rng);
        let mut plan = Plan::new();
        plan_one_hot(&mut plan, n, k).await.unwrap();
        let reqs = plan.into_requests();
        let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let (c0, c1) = mpc::net::mem_pair();
        let party = |c: mpc::net::MemChannel, role: Role, y: Share, pre| async move {
            let mut b = Shared::new(c, role, fp, pre);
            let oh = one_hot_labels(&mut b, role, &fp, &y, k).await.unwrap();
            assert!(b.preprocessing_drained());
            oh
        };
        let (o0, o1) = tokio::join!(
            party(c0, Role::P0, y0, p0.unwrap()),
            party(c1, Role::P1, y1, p1.unwrap())
        );
        let got = fp.decode_matrix(&mpc::share::reconstruct(&o0, &o1).view());
        let want = Array2::from_shape_fn((n, k), |(r, c)| f64::from(u8::from(labels[r] == c)));
        assert_eq!(got, want);
    }
}
