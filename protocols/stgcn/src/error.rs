//! Errors of the ST-GCN crate.

/// Everything that can go wrong when building, loading, running or training an ST-GCN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A stored tensor has a shape different from the one the configuration implies.
    #[error("tensor `{tensor}`: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Tensor name.
        tensor: String,
        /// Shape implied by the configuration.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },
    /// A tensor the configuration needs is absent from the file.
    #[error("tensor `{tensor}` is missing from the weights")]
    MissingTensor {
        /// Tensor name.
        tensor: String,
    },
    /// The weights contain a tensor the configuration does not know.
    #[error("tensor `{tensor}` in the weights is not part of this model")]
    UnknownTensor {
        /// Tensor name.
        tensor: String,
    },
    /// A stored tensor has an element type other than F32/F64.
    #[error("tensor `{tensor}`: unsupported dtype {dtype} (expected F64 or F32)")]
    UnsupportedDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype found, as safetensors prints it.
        dtype: String,
    },
    /// A stored tensor holds a NaN or an infinity.
    #[error("tensor `{tensor}`: element {index} is not finite")]
    NonFiniteTensor {
        /// Tensor name.
        tensor: String,
        /// Flat index of the first bad element.
        index: usize,
    },
    /// The safetensors container could not be parsed or written.
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// The JSON configuration could not be parsed or written.
    #[error("model config JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An input array does not have the shape the model expects.
    #[error("input {what}: expected {expected}, found {found}")]
    InputShape {
        /// Which dimension (e.g. `"channels C"`).
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Size found.
        found: usize,
    },
    /// The adjacency tensor is not `(K, V, V)` with the configured K and V.
    #[error("adjacency: expected shape {expected:?}, found {found:?}")]
    AdjacencyShape {
        /// Expected `(K, V, V)`.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },
    /// A graph edge or centre names a node outside `0..num_nodes`.
    #[error("graph node {node} out of range (graph has {num_nodes} nodes)")]
    NodeOutOfRange {
        /// Offending node index.
        node: usize,
        /// Number of nodes.
        num_nodes: usize,
    },
    /// A block's configuration is inconsistent.
    #[error("block {block}: {field} = {found}, expected {expected}")]
    InvalidBlock {
        /// Block index.
        block: usize,
        /// Field name.
        field: &'static str,
        /// Expected value (or description of the allowed values).
        expected: String,
        /// Value found.
        found: usize,
    },
    /// An activation mask does not cover all graph nodes.
    #[error(
        "block {block}, activation site {site}: mask has {found} entries, expected {expected}"
    )]
    MaskLength {
        /// Block index.
        block: usize,
        /// Activation site (0: after the first BN, 1: after the residual sum).
        site: usize,
        /// Number of nodes V.
        expected: usize,
        /// Entries found.
        found: usize,
    },
    /// A class label is not below the number of classes.
    #[error("label {label} of sample {index} out of range (model has {num_classes} classes)")]
    LabelOutOfRange {
        /// Sample index.
        index: usize,
        /// Label value.
        label: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// The number of labels differs from the number of samples.
    #[error("{labels} labels for {samples} samples")]
    LabelCount {
        /// Number of labels.
        labels: usize,
        /// Number of samples.
        samples: usize,
    },
    /// A size or hyper-parameter is outside its allowed range.
    #[error("{name} = {value} is outside the allowed range {allowed}")]
    InvalidValue {
        /// Name of the value.
        name: &'static str,
        /// Value found.
        value: f64,
        /// Allowed range, in words.
        allowed: &'static str,
    },
    /// An operation needs a model with another activation kind.
    #[error("the model has activation {found:?}, this needs {expected:?}")]
    WrongActivation {
        /// Activation the operation needs.
        expected: super::ActivationKind,
        /// The model's activation.
        found: super::ActivationKind,
    },
    /// An operation needs every node of an activation site to be active (not pruned).
    #[error("block {block}, activation site {site}: pruned nodes are not supported here")]
    PrunedSite {
        /// Block index.
        block: usize,
        /// Activation site.
        site: usize,
    },
    /// Training diverged.
    #[error("loss is not finite at epoch {epoch}, batch {batch}")]
    NonFiniteLoss {
        /// Epoch (0-based).
        epoch: usize,
        /// Batch within the epoch (0-based).
        batch: usize,
    },
}
