//! The statistics a standardized dataset keeps, and a model trained on one carries: this
//! party's shares of the column means, `1/sd` and `sd` (`ml::ops::stats`), as hex words in the
//! manifest (TOML integers are `i64`; shares are uniform `u64` words).
//!
//! Security model: as the store's (semi-honest, non-colluding parties): one party's words are
//! uniform and say nothing about the statistics; the owner learns them only if the
//! standardization job revealed them (both parties' shares sent to the owner alone).

use crate::proto::EntryId;
use ml::ops::stats::ColumnStats;
use mpc::Share;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// How a dataset version was standardized, with this party's shares of the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standardization {
    /// The standardization job (a model and a test set were standardized alike when their
    /// origins are equal).
    pub origin: EntryId,
    /// The standardized columns of the dataset, ascending (every feature; the label column too
    /// when it is a regression target).
    pub columns: Vec<u64>,
    /// Whether the label column is among them.
    pub label: bool,
    /// The dataset's label column (features are the other columns, in order).
    pub label_column: u64,
    /// Whether the owner received the statistics.
    pub revealed: bool,
    /// This party's shares of the means of `columns`, hex.
    pub mean: Vec<String>,
    /// This party's shares of `1/sd`, hex.
    pub inv_sd: Vec<String>,
    /// This party's shares of `sd`, hex.
    pub sd: Vec<String>,
}

fn hex_words(t: &Share) -> Vec<String> {
    t.view().iter().map(|w| format!("{w:016x}")).collect()
}

fn row(words: &[String], what: &str) -> Result<Share, String> {
    let v = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            u64::from_str_radix(w, 16)
                .map_err(|e| format!("standardization {what}[{i}] = {w:?}: {e}"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    let n = v.len();
    Ok(Share::from_ring(
        Array2::from_shape_vec((1, n), v).map_err(|e| e.to_string())?,
    ))
}

impl Standardization {
    /// The record of `stats` (each `1 × columns.len()`) computed by the job `origin`.
    pub fn new(
        origin: EntryId,
        columns: Vec<u64>,
        (label, label_column): (bool, u64),
        revealed: bool,
        stats: &ColumnStats<Share>,
    ) -> Self {
        Self {
            origin,
            columns,
            label,
            label_column,
            revealed,
            mean: hex_words(&stats.mean),
            inv_sd: hex_words(&stats.inv_sd),
            sd: hex_words(&stats.sd),
        }
    }

    /// The record of a table its owner standardized before uploading it as `origin`
    /// (`share-upload --standardize`; `revealed`: the owner computed the statistics): the
    /// columns are every feature of the `cols`-column table, then its label column when
    /// `s.label`; `s` holds this party's shares, one word per column each.
    ///
    /// # Errors
    /// Share lists of another length than the columns, naming both.
    pub fn uploaded(
        origin: EntryId,
        (cols, label_column): (u64, u64),
        s: &crate::proto::StatsShares,
    ) -> Result<Self, String> {
        let columns: Vec<u64> = (0..cols)
            .filter(|&c| s.label || c != label_column)
            .collect();
        let c = columns.len();
        let lists = [("mean", &s.mean), ("inv_sd", &s.inv_sd), ("sd", &s.sd)];
        if let Some((what, l)) = lists.iter().find(|(_, l)| l.len() != c) {
            return Err(format!(
                "standardization {what}: {} words, the {c} standardized columns need {c}",
                l.len()
            ));
        }
        let row = |v: &Vec<u64>| {
            Share::from_ring(Array2::from_shape_vec((1, c), v.clone()).expect("one row"))
        };
        let stats = ColumnStats {
            mean: row(&s.mean),
            inv_sd: row(&s.inv_sd),
            sd: row(&s.sd),
        };
        Ok(Self::new(
            origin,
            columns,
            (s.label, label_column),
            true,
            &stats,
        ))
    }

    /// This party's shares of the statistics of the columns at positions `at` of
    /// [`Standardization::columns`].
    ///
    /// # Errors
    /// A word that is not hex, lists of different lengths, a position out of range.
    pub fn stats(&self, at: &[usize]) -> Result<ColumnStats<Share>, String> {
        let all = [
            row(&self.mean, "mean")?,
            row(&self.inv_sd, "inv_sd")?,
            row(&self.sd, "sd")?,
        ];
        let c = self.columns.len();
        if all.iter().any(|s| s.dim() != (1, c)) {
            return Err(format!("standardization lists do not all have {c} words"));
        }
        if let Some(&bad) = at.iter().find(|&&i| i >= c) {
            return Err(format!(
                "standardization column position {bad}: only {c} columns"
            ));
        }
        let pick = |s: &Share| {
            let v: Vec<u64> = at.iter().map(|&i| s.view()[[0, i]]).collect();
            Share::from_ring(Array2::from_shape_vec((1, at.len()), v).expect("one row"))
        };
        let [mean, inv_sd, sd] = all;
        Ok(ColumnStats {
            mean: pick(&mean),
            inv_sd: pick(&inv_sd),
            sd: pick(&sd),
        })
    }

    /// The public half of the record (no shares).
    pub fn info(&self) -> crate::proto::StandardizationInfo {
        crate::proto::StandardizationInfo {
            origin: self.origin,
            columns: self.columns.clone(),
            label: self.label,
            revealed: self.revealed,
        }
    }

    /// Positions in [`Standardization::columns`] of the features (every column but the label).
    pub fn feature_positions(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| self.columns[i] != self.label_column)
            .collect()
    }

    /// The position of the label column, when it was standardized.
    pub fn label_position(&self) -> Option<usize> {
        self.columns.iter().position(|&c| c == self.label_column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_trip_through_hex_and_pick_columns() {
        let s = |v: Vec<u64>| Share::from_ring(Array2::from_shape_vec((1, 3), v).unwrap());
        let stats = ColumnStats {
            mean: s(vec![1, u64::MAX, 3]),
            inv_sd: s(vec![4, 5, 6]),
            sd: s(vec![7, 8, 9]),
        };
        let st = Standardization::new(EntryId::random(), vec![0, 1, 2], (true, 2), false, &stats);
        let text = toml::to_string(&st).unwrap();
        let back: Standardization = toml::from_str(&text).unwrap();
        assert_eq!(back, st);
        let got = back.stats(&[1, 2]).unwrap();
        assert_eq!(got.mean.view().to_owned(), ndarray::array![[u64::MAX, 3]]);
        assert_eq!(got.sd.view().to_owned(), ndarray::array![[8, 9]]);
        assert_eq!(st.feature_positions(), vec![0, 1]);
        assert_eq!(st.label_position(), Some(2));
        assert!(back.stats(&[3]).unwrap_err().contains("only 3 columns"));
        let mut bad = st.clone();
        bad.sd[1] = "xyz".into();
        assert!(bad.stats(&[0]).unwrap_err().contains("sd[1]"));
    }

    #[test]
    fn an_uploaded_standardization_covers_the_features_and_the_label_on_request() {
        let id = EntryId::random();
        let mut s = crate::proto::StatsShares {
            label: false,
            mean: vec![1, 2],
            inv_sd: vec![3, 4],
            sd: vec![5, 6],
        };
        let st = Standardization::uploaded(id, (3, 1), &s).unwrap();
        assert_eq!(
            (st.columns.clone(), st.label, st.label_column),
            (vec![0, 2], false, 1)
        );
        assert!(st.revealed && st.origin == id);
        assert_eq!(
            st.stats(&[1]).unwrap().sd.view().to_owned(),
            ndarray::array![[6]]
        );
        assert_eq!(st.label_position(), None);
        let e = Standardization::uploaded(id, (4, 3), &s).unwrap_err();
        assert!(
            e.contains("mean: 2 words, the 3 standardized columns need 3"),
            "{e}"
        );
        s.label = true;
        s.mean.push(7);
        let e = Standardization::uploaded(id, (3, 1), &s).unwrap_err();
        assert!(e.starts_with("standardization inv_sd: 2 words"), "{e}");
        s.inv_sd.push(8);
        s.sd.push(9);
        let st = Standardization::uploaded(id, (3, 1), &s).unwrap();
        assert_eq!(
            (st.columns.clone(), st.label_position()),
            (vec![0, 1, 2], Some(1))
        );
    }
}
