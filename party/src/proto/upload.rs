//! What a client tells the parties about an upload: the header of each share, the options of
//! an upload beyond a new table (append rights, appends, skeleton tensors, row keys, the
//! statistics of a table standardized by its owner).

use super::{EntryId, RowKeys, ShareForm};
use serde::{Deserialize, Serialize};

/// Description of an uploaded share (sent to both parties; the form and digest differ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadHeader {
    /// Identifier shared by both halves of the upload.
    pub id: EntryId,
    /// Dataset name (unique per owner among committed datasets).
    pub name: String,
    /// Rows of the shared matrix (samples).
    pub rows: u64,
    /// Columns of the shared matrix (features and the label).
    pub cols: u64,
    /// Column holding the label.
    pub label_column: u64,
    /// Fixed-point fractional bits of the encoding (validated when decoded; a `u32` on the
    /// wire).
    pub frac_bits: mpc::FracBits,
    /// What follows: a seed or a matrix.
    pub form: ShareForm,
    /// SHA-256 of the share bytes that follow.
    pub digest: [u8; 32],
    /// Number of share bytes that follow.
    pub len: u64,
}

/// A dataset named by its owner and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The owning client (its name in the parties' configurations).
    pub owner: String,
    /// The dataset's name.
    pub name: String,
}

/// What an upload does beyond storing a new dataset of the uploading client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOptions {
    /// Clients (by configured name) allowed to append rows to the new dataset.
    pub appenders: Vec<String>,
    /// Append the rows to this dataset (the uploading client must be one of its appenders or
    /// its owner) instead of creating one; columns, label column and fractional bits must match.
    pub append_to: Option<DatasetRef>,
    /// Skeleton datasets: the tensor each row flattens (checked by the party against the
    /// header: `cols = C·T·V·M + 1`, label last, a known graph with `V` nodes; an append must
    /// carry the dataset's own dimensions and graph). `None` for tables.
    #[serde(default)]
    pub tensor: Option<TensorMeta>,
    /// Vertical partitioning: the rows' key tags follow the share bytes ([`RowKeys`]).
    #[serde(default)]
    pub keys: Option<RowKeys>,
    /// `share-upload --standardize`: the owner standardized the table before sharing it; this
    /// party's shares of the statistics (a new table of its own: no append, no append rights,
    /// no keys, no skeleton tensor).
    #[serde(default)]
    pub standardized: Option<StatsShares>,
}

/// One party's shares of the statistics of a table its owner standardized before uploading
/// (`share-upload --standardize`): the columns are the table's, ascending, the label column
/// among them only when `label`; each list has one fixed-point word per column. `Debug` prints
/// the lengths, not the words.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsShares {
    /// Whether the label column (a regression target) was standardized too.
    pub label: bool,
    /// Shares of the column means.
    pub mean: Vec<u64>,
    /// Shares of `1/sd`.
    pub inv_sd: Vec<u64>,
    /// Shares of the population standard deviations.
    pub sd: Vec<u64>,
}

/// The tensor behind a skeleton dataset's rows: row `n` holds clip `n` of an `(N, C, T, V, M)`
/// array flattened in C order (`c`, then `t`, `v`, `m`), followed by the label column (the
/// dataset's `label_column`, the last one); `N` is the dataset's row count (it grows with
/// appends), the other four dimensions are fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// `[C, T, V, M]`: coordinates, frames, graph nodes (joints) and persons per clip.
    pub dims: [u64; 4],
    /// The skeleton graph's name (`mocap15`, `body25` or `ntu25`: `datasets::skeleton::Graph::by_name`).
    pub graph: String,
    /// Class names, one per label value (may be empty: labels are then `0..classes`).
    #[serde(default)]
    pub class_names: Vec<String>,
}

impl std::fmt::Debug for StatsShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StatsShares {{ label: {}, columns: {}, words: <hidden> }}",
            self.label,
            self.mean.len()
        )
    }
}
