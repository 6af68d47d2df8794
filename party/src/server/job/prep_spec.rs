//! Checks of the jobs that are not training runs ([`super::prep`]), each party on its own
//! before any work: a standardization on a raw table; an evaluation of a trained model of the
//! owner on a test table of the model's width, standardized alike or raw.
//!
//! Security model: as the job runner's; everything checked is public to both parties (shapes,
//! model descriptions, which job standardized a dataset).

use super::linear_spec::refuse;
use super::{JobError, Result};
use crate::proto::{EntryId, LinearModelMeta, ModelMeta};
use crate::store::{Manifest, Standardization};

/// The columns a standardization of `m` covers: every feature, the label too when `label`.
///
/// # Errors
/// A skeleton dataset, fewer than two rows, a dataset standardized already.
pub fn standardize_columns(m: &Manifest, label: bool) -> Result<Vec<u64>> {
    if m.tensor.is_some() {
        return refuse(
            "dataset",
            &m.name,
            "a skeleton dataset: standardize tables (its clips' BNs normalize on their own)",
        );
    }
    if m.rows < 2 {
        return refuse("dataset rows", m.rows, "at least 2 to standardize");
    }
    if let Some(s) = &m.standardization {
        return refuse(
            "dataset",
            &m.name,
            format!(
                "already standardized (by job {}): upload the raw data again",
                s.origin
            ),
        );
    }
    let cols: Vec<u64> = (0..m.cols)
        .filter(|&c| label || c != m.label_column)
        .collect();
    if cols.is_empty() {
        return refuse(
            "dataset columns",
            m.cols,
            "at least one feature to standardize",
        );
    }
    Ok(cols)
}

/// A classifier cannot train on a dataset whose label column was standardized (its labels are
/// no longer class indices).
///
/// # Errors
/// [`JobError::Param`] naming the dataset and the standardization.
pub fn check_classifier_labels(m: &Manifest, kind: &str) -> Result<()> {
    match &m.standardization {
        Some(s) if s.label => refuse(
            "model",
            kind,
            format!(
                "dataset {} has its label standardized (job {}): standardize without --label \
                 for a classifier",
                m.name, s.origin
            ),
        ),
        _ => Ok(()),
    }
}

/// How a test set meets a model's preprocessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alignment {
    /// Both raw.
    Raw,
    /// The model was trained on standardized data, the test set is raw: apply the model's
    /// statistics to it.
    ApplyModels,
    /// Both standardized by the same job.
    Same,
}

/// The model description of `model` and how the test set `m` aligns with it.
///
/// # Errors
/// A model without a description, a test set of another width, preprocessing that differs.
pub fn check_evaluation(model: &Manifest, m: &Manifest) -> Result<(LinearModelMeta, Alignment)> {
    let Some(ModelMeta::Linear(meta)) = &model.model else {
        return refuse(
            "model",
            model.id,
            "not a linear model or MLP with a description (trained by this version's jobs)",
        );
    };
    if m.tensor.is_some() {
        return refuse("dataset", &m.name, "a skeleton dataset: evaluate on tables");
    }
    let features = m.cols.saturating_sub(1);
    if meta.layers.first() != Some(&features) {
        return refuse(
            "dataset width",
            format!("{features} features ({})", m.name),
            format!("model {} takes {} features", model.id, meta.layers[0]),
        );
    }
    if m.frac_bits != model.frac_bits {
        return refuse(
            "dataset fractional bits",
            m.frac_bits.get(),
            format!("model {} has {}", model.id, model.frac_bits.get()),
        );
    }
    let align = align(model.id, model.standardization.as_ref(), m)?;
    Ok((meta.clone(), align))
}

fn align(id: EntryId, ms: Option<&Standardization>, m: &Manifest) -> Result<Alignment> {
    match (ms, &m.standardization) {
        (None, None) => Ok(Alignment::Raw),
        (Some(s), None) if s.columns.len() as u64 >= m.cols.saturating_sub(1) => {
            Ok(Alignment::ApplyModels)
        }
        (Some(s), Some(t)) if s.origin == t.origin => Ok(Alignment::Same),
        (s, t) => Err(JobError::Param {
            parameter: "dataset preprocessing".into(),
            value: format!("{} ({})", describe(t.as_ref()), m.name),
            limit: format!(
                "model {id} was trained on {}: give a raw test set or one standardized by the \
                 same job",
                describe(s)
            ),
        }),
    }
}

fn describe(s: Option<&Standardization>) -> String {
    match s {
        None => "raw data".into(),
        Some(s) => format!("data standardized by job {}", s.origin),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::proto::TripleKind;
    use crate::server::job::linear_spec::tests::table;
    use crate::store::EntryKind;
    use ml::ops::stats::ColumnStats;
    use mpc::Share;

    fn standardized(m: &Manifest, origin: EntryId, label: bool) -> Manifest {
        let c = m.cols as usize - usize::from(!label);
        let z = || Share::zeros(1, c);
        let stats = ColumnStats {
            mean: z(),
            inv_sd: z(),
            sd: z(),
        };
        let cols = standardize_columns(m, label).unwrap();
        let st = Standardization::new(origin, cols, (label, m.label_column), false, &stats);
        Manifest {
            standardization: Some(st),
            ..m.clone()
        }
    }

    fn model(features: u64, trained_on: &Manifest) -> Manifest {
        model_of("linreg", vec![features, 1], trained_on)
    }

    /// A trained model of `kind` with `layers` and biases, on `trained_on`.
    pub(in crate::server::job) fn model_of(
        kind: &str,
        layers: Vec<u64>,
        trained_on: &Manifest,
    ) -> Manifest {
        let rows = layers.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
        let meta = LinearModelMeta {
            kind: kind.into(),
            layers,
            softmax: None,
            intercept: true,
            learning_rate: 0.5,
            batch_size: 8,
            epochs: 1,
            schedule_seed: "1".into(),
            init_seed: None,
            triples: TripleKind::Ot,
            dataset: trained_on.name.clone(),
            dataset_id: trained_on.id,
            rows: trained_on.rows,
        };
        Manifest {
            id: EntryId([5; 16]),
            kind: EntryKind::Model,
            cols: 1,
            rows,
            model: Some(ModelMeta::Linear(meta)),
            ..trained_on.clone()
        }
    }

    #[test]
    fn standardization_covers_features_and_the_label_on_request_once() {
        let m = table(10, 4);
        assert_eq!(standardize_columns(&m, false).unwrap(), vec![0, 1, 2]);
        assert_eq!(standardize_columns(&m, true).unwrap(), vec![0, 1, 2, 3]);
        let e = standardize_columns(&table(1, 4), false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("dataset rows = 1: at least 2"), "{e}");
        let s = standardized(&m, EntryId([2; 16]), true);
        let e = standardize_columns(&s, true).unwrap_err().to_string();
        assert!(e.contains("already standardized"), "{e}");
        check_classifier_labels(&standardized(&m, EntryId([2; 16]), false), "logreg").unwrap();
        let e = check_classifier_labels(&s, "logreg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("label standardized"), "{e}");
    }

    #[test]
    fn evaluation_checks_width_and_preprocessing() {
        let train = table(10, 4);
        let raw_model = model(3, &train);
        assert_eq!(
            check_evaluation(&raw_model, &table(5, 4)).unwrap().1,
            Alignment::Raw
        );
        let e = check_evaluation(&raw_model, &table(5, 3))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset width = 2 features (small): model"),
            "{e}"
        );
        assert!(e.ends_with("takes 3 features"), "{e}");
        let s = standardized(&train, EntryId([2; 16]), true);
        let std_model = Manifest {
            standardization: s.standardization.clone(),
            ..model(3, &s)
        };
        let align = |t: &Manifest| check_evaluation(&std_model, t).map(|r| r.1);
        assert_eq!(align(&table(5, 4)).unwrap(), Alignment::ApplyModels);
        assert_eq!(align(&s).unwrap(), Alignment::Same);
        let other = standardized(&table(5, 4), EntryId([3; 16]), true);
        let e = align(&other).unwrap_err().to_string();
        assert!(
            e.starts_with("dataset preprocessing = data standardized by job"),
            "{e}"
        );
        let e = check_evaluation(&raw_model, &s).unwrap_err().to_string();
        assert!(e.contains("was trained on raw data"), "{e}");
        let mut bare = raw_model.clone();
        bare.model = None;
        assert!(check_evaluation(&bare, &train).is_err());
    }
}
