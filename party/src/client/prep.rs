//! The owner's side of the jobs that are not training runs: `Standardize` (a dataset
//! standardized on the parties, its statistics kept shared or sent to the owner), `Evaluate`
//! (a trained model's metric or predictions on a test set) and `Fold` (a model trained on
//! standardized data, its weights with the standardization folded in). Each party sends its shares of the
//! result to the owner only: P0 in the job's stream, P1 on the owner's watch connection; the
//! owner adds them. The result column starts with two public words `[what, width]`
//! (`server::job::prep::RESULT_HEADER`) that say how to read the rest.

use super::{refused, Client, ClientError, JobDone, Result};
use crate::proto::{
    ClientRequest, EntryId, EvaluateSpec, FoldSpec, JobSpec, ModelKind, Reply, StandardizeSpec,
    TripleKind,
};
use mpc::FixedPoint;
use ndarray::Array2;

/// What a result holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    /// A standardization's statistics: row 0 the means, row 1 the standard deviations.
    Stats,
    /// A linear regression's MSE (`1 × 1`) or predictions (`n × 1`).
    Linreg,
    /// A logistic regression's accuracy and log-loss (`1 × 2`) or probabilities (`n × 1`).
    Logreg,
    /// An MLP's accuracy and log-loss (`1 × 2`) or class scores (`n × classes`).
    Mlp,
    /// A model's weights with its standardization folded in (`n × 1`: every weight matrix
    /// row-major, each with its bias row).
    Folded,
}

/// A job's result as the owner reconstructs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    /// What it is.
    pub kind: ResultKind,
    /// The values, one row per sample (metrics: one row, `1 × 1` for an MSE, `1 × 2` for a
    /// classifier's accuracy and log-loss; statistics: `2 × columns`).
    pub values: Array2<f64>,
}

/// The job that standardizes `dataset` on the parties (`label`: the label column too, for a
/// regression target; `reveal_stats`: send the statistics to the owner).
pub fn standardize_spec(
    dataset: &str,
    reveal_stats: bool,
    label: bool,
    triples: TripleKind,
) -> JobSpec {
    prep_job(
        ModelKind::Standardize(StandardizeSpec {
            reveal_stats,
            label,
        }),
        dataset,
        triples,
    )
}

/// The job that applies the trained model `model` to the test set `dataset`: its metrics, or its
/// predictions when `predict`.
pub fn evaluate_spec(model: EntryId, dataset: &str, predict: bool, triples: TripleKind) -> JobSpec {
    prep_job(
        ModelKind::Evaluate(EvaluateSpec { model, predict }),
        dataset,
        triples,
    )
}

/// The job that folds the standardization of the trained model `model` into its weights, for
/// the owner ([`crate::deploy::reveal`] runs it). Its dataset is the model itself.
pub fn fold_spec(model: EntryId) -> JobSpec {
    prep_job(ModelKind::Fold(FoldSpec { model }), "", TripleKind::Ot)
}

fn prep_job(model: ModelKind, dataset: &str, triples: TripleKind) -> JobSpec {
    JobSpec {
        model,
        dataset: dataset.into(),
        learning_rate: 1.0,
        batch_size: 1,
        epochs: 1,
        schedule_seed: 0,
        triples,
        intercept: false,
        ot_extension: Default::default(),
    }
}

/// Reads a result column (header included) as rows.
fn decode_result(col: &Array2<f64>) -> Result<JobResult> {
    let bad = |what: String| ClientError::Unexpected { got: what };
    if col.ncols() != 1 || col.nrows() < 2 {
        return Err(bad(format!(
            "a result of {} × {}",
            col.nrows(),
            col.ncols()
        )));
    }
    let (what, width) = (col[[0, 0]].round(), col[[1, 0]].round());
    let kind = match what as i64 {
        0 => ResultKind::Stats,
        1 => ResultKind::Linreg,
        2 => ResultKind::Logreg,
        3 => ResultKind::Mlp,
        4 => ResultKind::Folded,
        _ => return Err(bad(format!("a result of kind {what}"))),
    };
    let body: Vec<f64> = col.iter().skip(2).copied().collect();
    let width = width as usize;
    if width == 0 || !body.len().is_multiple_of(width) {
        return Err(bad(format!("{} values in rows of {width}", body.len())));
    }
    let values = Array2::from_shape_vec((body.len() / width, width), body)
        .map_err(|e| bad(e.to_string()))?;
    Ok(JobResult { kind, values })
}

impl Client {
    /// Submits `spec` (a `Standardize` or `Evaluate` job) to P0 (this connection), watches it at
    /// P1 (`p1`) and returns its end and, when it reveals one, the result from both parties'
    /// shares.
    ///
    /// # Errors
    /// Connection errors; [`ClientError::WrongRole`] when `p1` is not P1;
    /// [`ClientError::Refused`] with P0's or P1's refusal; [`ClientError::ModelMismatch`] when
    /// the two shares differ in shape.
    pub async fn run_for_result(
        &mut self,
        p1: &mut Client,
        spec: &JobSpec,
    ) -> Result<(JobDone, Option<JobResult>)> {
        if p1.role != 1 {
            return Err(ClientError::WrongRole {
                addr: p1.addr,
                got: p1.role,
                want: 1,
            });
        }
        self.send_submit(spec).await?;
        let (mut watching, mut result) = (false, None);
        let mut source = spec.triples;
        loop {
            match self.recv().await? {
                Reply::Progress { job, triples, .. } => {
                    source = triples;
                    if !watching {
                        p1.send(&ClientRequest::Watch { job }).await?;
                        watching = true;
                    }
                }
                Reply::EpochShares {
                    job,
                    count,
                    frac_bits,
                    ..
                } => {
                    let s0 = self.recv_shares(count).await?;
                    let s1 = p1.next_watched(job).await?;
                    if s1.share.dim() != s0.dim() || s1.frac_bits != frac_bits {
                        return Err(ClientError::ModelMismatch {
                            p0: (s0.dim().0, s0.dim().1, frac_bits.get()),
                            p1: (s1.share.dim().0, s1.share.dim().1, s1.frac_bits.get()),
                            expected: format!("the shares of job {job}'s result from both parties"),
                        });
                    }
                    let fp = FixedPoint::new(frac_bits);
                    let col = fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1.share).view());
                    result = Some(decode_result(&col)?);
                }
                Reply::JobDone { job, stats } => {
                    if watching {
                        p1.end_watch(job).await?;
                    }
                    let triples = source;
                    return Ok((
                        JobDone {
                            job,
                            stats,
                            triples,
                        },
                        result,
                    ));
                }
                other => return Err(refused(other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_by_their_header() {
        let col = ndarray::array![[3.0], [2.0], [0.1], [0.9], [0.7], [0.3]];
        let r = decode_result(&col).unwrap();
        assert_eq!(r.kind, ResultKind::Mlp);
        assert_eq!(r.values, ndarray::array![[0.1, 0.9], [0.7, 0.3]]);
        let stats = decode_result(&ndarray::array![[0.0], [1.0], [5.0], [2.0]]).unwrap();
        assert_eq!(
            (stats.kind, stats.values.dim()),
            (ResultKind::Stats, (2, 1))
        );
        assert!(decode_result(&ndarray::array![[7.0], [1.0], [1.0]]).is_err());
        assert!(decode_result(&ndarray::array![[1.0], [2.0], [1.0]]).is_err());
    }
}
