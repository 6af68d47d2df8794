//! Joining two owners' keyed column uploads into one shared table (vertical partitioning).
//!
//! Sequence: each owner consents to one [`JoinSpec`] at each party (`JoinConsent`, kept in
//! [`consent::Consents`]); an owner asks P0 to start it (`JoinStart`); P0 takes the join if both
//! owners consented at P0, checks the datasets and their keys and prepares its half, then sends
//! `PeerRequest::Join`; P1 takes the join only if both owners consented to exactly that spec at
//! P1, checks and prepares its own half; P0 then commits the joined dataset on both parties by
//! two-phase commit. The joined dataset (id = the join id) belongs to `spec.owner`.
//!
//! The join is local at each party: a party's share of the joined table is its share of the
//! left dataset's columns, then of the right's, then of the one label column (additive shares
//! of columns concatenate), so no share crosses the peer link.
//!
//! Security model (semi-honest, non-colluding parties): each party compares the two datasets'
//! row key tags (HMACs under a secret of the owners, [`crate::rowkeys`]) position by position;
//! it learns the row count and, when they differ, the first row where they do, which it names in
//! the refusal (the owners see the same). It learns no key. See SECURITY.md.

pub mod consent;

use super::{limits, Result, Server, ServerError};
use crate::proto::{DatasetRef, EntryId, JoinSpec, PeerReply, PeerRequest, Reply, ShareForm};
use crate::store::{self, EntryKind, Manifest, State};
use ndarray::{s, Array2};

impl Server {
    /// A client's consent to a join at this party.
    pub(super) fn consent_join(&self, client: &str, spec: JoinSpec) -> Result<Reply> {
        let join = spec.join;
        self.joins.consent(client, spec)?;
        tracing::info!("join {join}: {client} consented");
        Ok(Reply::JoinConsented { join })
    }

    /// P0: runs the join `join` for `client` (see the module docs).
    pub(super) async fn start_join(&self, client: &str, join: EntryId) -> Result<Reply> {
        if self.cfg.role != 0 {
            return Err(ServerError::BadRequest("a join starts at P0".into()));
        }
        let spec = self.joins.take(&join, client)?;
        tokio::task::block_in_place(|| self.prepare_join(&spec))?;
        let refused = match self.peer_request(&PeerRequest::Join(spec.clone())).await {
            Ok(PeerReply::Ack) => None,
            Ok(PeerReply::JobRefused { code, message }) => Some(ServerError::refused((
                code,
                format!("P1 refused the join: {message}"),
            ))),
            other => Some(ServerError::Peer(format!(
                "P1 did not prepare the join ({other:?})"
            ))),
        };
        if let Some(e) = refused {
            self.store.remove(&join)?;
            return Err(e);
        }
        tracing::info!("join {join}: prepared on both parties; committing");
        self.commit(&spec.owner, join).await
    }

    /// P1: checks its own consents and the datasets, prepares its half of the join.
    pub(super) fn join_p1(&self, spec: &JoinSpec) -> PeerReply {
        let r = self
            .joins
            .take_exact(spec)
            .and_then(|()| tokio::task::block_in_place(|| self.prepare_join(spec)));
        match r {
            Ok(()) => PeerReply::Ack,
            Err(e) => {
                tracing::warn!("refused join {}: {}", spec.join, e.message());
                PeerReply::JobRefused {
                    code: e.code(),
                    message: e.message(),
                }
            }
        }
    }

    /// Checks the two datasets of `spec` against each other (keys, rows, fractional bits, one
    /// label) and stores this party's share of the joined table as prepared.
    fn prepare_join(&self, spec: &JoinSpec) -> Result<()> {
        let (a, b) = (self.keyed(&spec.left)?, self.keyed(&spec.right)?);
        let (ka, kb) = (self.store.read_keys(&a)?, self.store.read_keys(&b)?);
        let (ka, kb) = (ka.expect("keyed"), kb.expect("keyed"));
        check_pair(spec, &a, &b)?;
        if let Some(i) = crate::rowkeys::first_mismatch(&ka, &kb) {
            return Err(ServerError::BadRequest(format!(
                "the row keys of {} and {} differ first at row {i} (0-based): the owners must \
                 upload the same keys in the same order, with the same key secret",
                show(&spec.left),
                show(&spec.right)
            )));
        }
        let cols = features(&a) + features(&b) + 1;
        limits::upload_size(a.rows, cols, self.cfg.limits.max_upload_bytes)
            .map_err(ServerError::refused)?;
        let joined = join_columns(
            &self.store.load_share(&a)?.into_ring(),
            label(&a),
            &self.store.load_share(&b)?.into_ring(),
            label(&b),
        );
        let bytes = store::matrix_bytes(&mpc::Share::from_ring(joined));
        let m = joined_manifest(spec, &a, cols, hex::encode(store::sha256(&bytes)));
        self.store.put(&m, &bytes)?;
        tracing::info!(
            "join {}: prepared {}/{} ({} rows x {cols} columns)",
            spec.join,
            m.owner,
            m.name,
            m.rows
        );
        Ok(())
    }

    /// The committed keyed dataset `r`.
    fn keyed(&self, r: &DatasetRef) -> Result<Manifest> {
        let m = self
            .store
            .find_committed(EntryKind::Dataset, &r.owner, &r.name)?
            .ok_or_else(|| ServerError::NotFound(format!("no dataset {}", show(r))))?;
        if m.keys.is_none() {
            return Err(ServerError::BadRequest(format!(
                "dataset {} has no row keys: upload it with share-upload --key-column",
                show(r)
            )));
        }
        if m.standardization.is_some() {
            return Err(ServerError::BadRequest(format!(
                "dataset {} is a standardized version: join the raw uploads, then standardize \
                 the joined table (party standardize)",
                show(r)
            )));
        }
        Ok(m)
    }
}

fn show(r: &DatasetRef) -> String {
    format!("{}/{}", r.owner, r.name)
}

/// The label column of a dataset, `None` for one uploaded without a label.
fn label(m: &Manifest) -> Option<usize> {
    (m.label_column < m.cols).then_some(m.label_column as usize)
}

fn features(m: &Manifest) -> u64 {
    m.cols - u64::from(label(m).is_some())
}

/// Rows, fractional bits and labels of the two datasets of a join: equal rows and bits, and
/// exactly one label.
fn check_pair(spec: &JoinSpec, a: &Manifest, b: &Manifest) -> Result<()> {
    let (l, r) = (show(&spec.left), show(&spec.right));
    if a.rows != b.rows {
        return Err(ServerError::BadRequest(format!(
            "{l} has {} rows and {r} has {}: the owners must upload the same rows",
            a.rows, b.rows
        )));
    }
    if a.frac_bits != b.frac_bits {
        return Err(ServerError::BadRequest(format!(
            "{l} has {} fractional bits and {r} has {}: they must match",
            a.frac_bits, b.frac_bits
        )));
    }
    match (label(a), label(b)) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        (Some(_), Some(_)) => Err(ServerError::BadRequest(format!(
            "{l} and {r} both have a label column: one owner uploads the label, the other \
             uploads features only (share-upload --no-label)"
        ))),
        (None, None) => Err(ServerError::BadRequest(format!(
            "neither {l} nor {r} has a label column"
        ))),
    }
}

/// A party's share of the joined table: `a`'s feature columns, `b`'s, then the label column
/// (from whichever has it).
fn join_columns(
    a: &Array2<u64>,
    la: Option<usize>,
    b: &Array2<u64>,
    lb: Option<usize>,
) -> Array2<u64> {
    let mut parts = Vec::new();
    let mut labels = Vec::new();
    for (m, l) in [(a, la), (b, lb)] {
        match l {
            None => parts.push(m.view()),
            Some(l) => {
                parts.push(m.slice(s![.., ..l]));
                parts.push(m.slice(s![.., l + 1..]));
                labels.push(m.slice(s![.., l..=l]));
            }
        }
    }
    parts.extend(labels);
    ndarray::concatenate(ndarray::Axis(1), &parts).expect("equal row counts")
}

fn joined_manifest(spec: &JoinSpec, a: &Manifest, cols: u64, sha256: String) -> Manifest {
    Manifest {
        id: spec.join,
        kind: EntryKind::Dataset,
        name: spec.name.clone(),
        owner: spec.owner.clone(),
        rows: a.rows,
        cols,
        label_column: cols - 1,
        frac_bits: a.frac_bits,
        form: ShareForm::Matrix,
        sha256,
        created: store::now(),
        state: State::Prepared,
        appenders: Vec::new(),
        supersedes: None,
        appended: Vec::new(),
        tensor: None,
        model: None,
        keys: None,
        standardization: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Joining shares column-wise and reconstructing equals joining the plaintext tables.
        #[test]
        fn joined_shares_reconstruct_to_the_joined_table(
            rows in 1usize..6, fa in 1usize..4, fb in 1usize..4, lab in 0usize..4,
            left_has_label: bool, seed: u64,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let (ca, cb) = if left_has_label { (fa + 1, fb) } else { (fa, fb + 1) };
            let x = |c: usize, rng: &mut rand_chacha::ChaCha20Rng| {
                Array2::from_shape_fn((rows, c), |_| rng.gen::<u64>())
            };
            let (a, b) = (x(ca, &mut rng), x(cb, &mut rng));
            let (a0, b0) = (x(ca, &mut rng), x(cb, &mut rng));
            let op = |x: &Array2<u64>, y: &Array2<u64>, f: fn(u64, u64) -> u64| {
                ndarray::Zip::from(x).and(y).map_collect(|p, q| f(*p, *q))
            };
            let (a1, b1) = (op(&a, &a0, u64::wrapping_sub), op(&b, &b0, u64::wrapping_sub));
            let l = |has: bool, c: usize| has.then_some(lab % c);
            let (la, lb) = (l(left_has_label, ca), l(!left_has_label, cb));
            let j0 = join_columns(&a0, la, &b0, lb);
            let j1 = join_columns(&a1, la, &b1, lb);
            let plain = join_columns(&a, la, &b, lb);
            prop_assert_eq!(op(&j0, &j1, u64::wrapping_add), plain.clone());
            // The label lands last; the features keep their order.
            let (lab_col, feats) = match (la, lb) {
                (Some(l), None) => (a.column(l).to_owned(), a.ncols() - 1),
                (None, Some(l)) => (b.column(l).to_owned(), a.ncols()),
                _ => unreachable!(),
            };
            prop_assert_eq!(plain.column(fa + fb), lab_col);
            prop_assert_eq!(plain.ncols(), fa + fb + 1);
            prop_assert!(feats <= fa + fb);
        }
    }
}
