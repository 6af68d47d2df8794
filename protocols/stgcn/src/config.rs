//! The JSON-serialisable ST-GCN configuration: architecture, graph, activations, pruning mask,
//! input normalisation and class names (the `*.json` half of a model file).

use ndarray::{Array2, Array3, ArrayView5, Axis};
use serde::{Deserialize, Serialize};

use super::{ModelError, Result};

/// Activation function used at every activation site of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivationKind {
    /// `max(0, x)` (plaintext only; not HE-friendly).
    Relu,
    /// `x²` (CryptoNets / CryptoGCN).
    Square,
    /// `a_v·x² + b_v·x + c_v` with trainable per-node coefficients (LinGCN).
    Poly,
}

/// Which graph nodes keep their non-linearity at one activation site (`true`) and which are
/// replaced by the identity (`false`, a pruned activation).
pub type ActivationMask = Vec<bool>;

/// The published ST-GCN variants used by CryptoGCN / LinGCN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// Blocks 3→64, 64→128 (stride 2), 128→128.
    #[serde(rename = "STGCN-3-128")]
    Stgcn3x128,
    /// Blocks 3→128, 128→256 (stride 2), 256→256.
    #[serde(rename = "STGCN-3-256")]
    Stgcn3x256,
    /// Blocks 64, 64, 128 (stride 2), 128, 256 (stride 2), 256.
    #[serde(rename = "STGCN-6-256")]
    Stgcn6x256,
}

impl Architecture {
    /// The name used in papers and configs, e.g. `"STGCN-3-128"`.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Stgcn3x128 => "STGCN-3-128",
            Architecture::Stgcn3x256 => "STGCN-3-256",
            Architecture::Stgcn6x256 => "STGCN-6-256",
        }
    }

    /// Block list for `in_channels` input channels, with every width divided by `width_divisor`
    /// (1 for the published sizes; 8 gives 8, 16, 16 channels for STGCN-3-128). Widths are
    /// rounded down and at least 1. The first block has no residual; later blocks have an
    /// identity residual when shapes are unchanged and a strided 1×1 convolution otherwise.
    pub fn blocks(self, in_channels: usize, width_divisor: usize) -> Vec<BlockSpec> {
        let plan: &[(usize, usize)] = match self {
            Architecture::Stgcn3x128 => &[(64, 1), (128, 2), (128, 1)],
            Architecture::Stgcn3x256 => &[(128, 1), (256, 2), (256, 1)],
            Architecture::Stgcn6x256 => &[(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)],
        };
        let div = width_divisor.max(1);
        let mut c_in = in_channels;
        plan.iter()
            .enumerate()
            .map(|(i, &(width, stride))| {
                let c_out = (width / div).max(1);
                let spec = BlockSpec {
                    in_channels: c_in,
                    out_channels: c_out,
                    stride,
                    residual: i > 0,
                };
                c_in = c_out;
                spec
            })
            .collect()
    }
}

/// One ST-GCN block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Temporal stride (1 or 2).
    pub stride: usize,
    /// Whether the block has a residual branch (identity if shapes match, else conv + BN).
    pub residual: bool,
}

impl BlockSpec {
    /// Whether the residual branch is a 1×1 convolution + BN (as opposed to the identity).
    pub fn residual_is_conv(&self) -> bool {
        self.residual && (self.in_channels != self.out_channels || self.stride != 1)
    }
}

/// The graph: the K partition matrices and, for documentation, where they came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// Graph name (e.g. `"ntu-rgb+d"`), informational.
    pub name: Option<String>,
    /// Undirected edge list the partition was built from, informational.
    pub edges: Option<Vec<(usize, usize)>>,
    /// Centre node used for the partition, informational.
    pub center: Option<usize>,
    /// `adjacency[k][v][w]`: the (K, V, V) partition matrices, see [`super::spatial_partition`].
    pub adjacency: Vec<Vec<Vec<f64>>>,
}

impl GraphSpec {
    /// Wraps a `(K, V, V)` adjacency tensor.
    pub fn from_adjacency(adjacency: &Array3<f64>) -> Self {
        GraphSpec {
            name: None,
            edges: None,
            center: None,
            adjacency: adjacency
                .outer_iter()
                .map(|a| a.outer_iter().map(|row| row.to_vec()).collect())
                .collect(),
        }
    }

    /// The K = 3 spatial partition of a named graph (see [`super::spatial_partition`]), keeping
    /// name, edges and centre in the config for reference.
    pub fn from_edges(
        name: &str,
        num_nodes: usize,
        edges: &[(usize, usize)],
        center: usize,
    ) -> Result<Self> {
        let a = super::spatial_partition(num_nodes, edges, center)?;
        Ok(GraphSpec {
            name: Some(name.to_string()),
            edges: Some(edges.to_vec()),
            center: Some(center),
            ..GraphSpec::from_adjacency(&a)
        })
    }

    /// Partition size K.
    pub fn num_subsets(&self) -> usize {
        self.adjacency.len()
    }

    /// Number of nodes V.
    pub fn num_nodes(&self) -> usize {
        self.adjacency.first().map_or(0, Vec::len)
    }

    /// The adjacency as a `(K, V, V)` array; errors if the nested lists are ragged.
    pub fn adjacency_array(&self) -> Result<Array3<f64>> {
        let k = self.num_subsets();
        let v = self.num_nodes();
        let mut a = Array3::zeros((k, v, v));
        for (ki, m) in self.adjacency.iter().enumerate() {
            if m.len() != v || m.iter().any(|row| row.len() != v) {
                return Err(ModelError::AdjacencyShape {
                    expected: vec![k, v, v],
                    found: vec![
                        k,
                        m.len(),
                        m.iter().map(Vec::len).find(|&l| l != v).unwrap_or(v),
                    ],
                });
            }
            for (vi, row) in m.iter().enumerate() {
                for (wi, &x) in row.iter().enumerate() {
                    a[[ki, vi, wi]] = x;
                }
            }
        }
        Ok(a)
    }
}

/// Fixed per-(channel, node) input normalisation `(x − mean[c][v]) / std[c][v]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputNorm {
    /// `mean[c][v]`.
    pub mean: Vec<Vec<f64>>,
    /// `std[c][v]` (positive).
    pub std: Vec<Vec<f64>>,
}

impl InputNorm {
    /// Fits mean and standard deviation per (c, v) over samples, frames and persons of an
    /// `(N, C, T, V, M)` array. Standard deviations below `1e-6` are set to 1.
    pub fn fit(x: ArrayView5<'_, f64>) -> Self {
        let (_, c, _, v, _) = x.dim();
        let mut mean = vec![vec![0.0; v]; c];
        let mut std = vec![vec![1.0; v]; c];
        for ci in 0..c {
            let xc = x.index_axis(Axis(1), ci);
            for vi in 0..v {
                let xv = xc.index_axis(Axis(2), vi);
                let n = xv.len().max(1) as f64;
                let m = xv.sum() / n;
                let var = xv.fold(0.0, |acc, &e| acc + (e - m) * (e - m)) / n;
                mean[ci][vi] = m;
                std[ci][vi] = if var.sqrt() < 1e-6 { 1.0 } else { var.sqrt() };
            }
        }
        InputNorm { mean, std }
    }

    /// `(scale, shift)` arrays of shape `(C, V)` with `normalised = scale·x + shift`.
    pub fn affine(&self) -> (Array2<f64>, Array2<f64>) {
        let c = self.mean.len();
        let v = self.mean.first().map_or(0, Vec::len);
        let scale = Array2::from_shape_fn((c, v), |(ci, vi)| 1.0 / self.std[ci][vi]);
        let shift = Array2::from_shape_fn((c, v), |(ci, vi)| -self.mean[ci][vi] / self.std[ci][vi]);
        (scale, shift)
    }
}

/// Everything needed to rebuild an [`super::StGcn`] except its tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StGcnConfig {
    /// Published variant these blocks came from (informational; `blocks` is authoritative).
    pub architecture: Option<Architecture>,
    /// Divisor applied to the published widths (1 = published size).
    pub width_divisor: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Frames T the model is meant for (the network accepts any T ≥ 1; the folded model and the
    /// HE planner use this value).
    pub num_frames: usize,
    /// Persons per clip M.
    pub num_persons: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Class names (empty, or one per class).
    pub class_names: Vec<String>,
    /// Blocks in order.
    pub blocks: Vec<BlockSpec>,
    /// Temporal kernel length (odd; 9 in ST-GCN), zero padding `(kernel − 1) / 2`.
    pub temporal_kernel: usize,
    /// Graph partition.
    pub graph: GraphSpec,
    /// Activation used at every site.
    pub activation: ActivationKind,
    /// Initial `[a, b, c]` of polynomial activations.
    pub poly_init: [f64; 3],
    /// Per block, per activation site (0: after the first BN, 1: after the residual sum), which
    /// nodes keep their non-linearity.
    pub activation_mask: Vec<[ActivationMask; 2]>,
    /// Optional fixed input normalisation.
    pub input_norm: Option<InputNorm>,
    /// Batch-norm epsilon.
    pub bn_eps: f64,
    /// Batch-norm running-statistics momentum (PyTorch convention: `new = (1−m)·old + m·batch`).
    pub bn_momentum: f64,
}

impl StGcnConfig {
    /// A configuration for a published variant with defaults: x² activations, no pruning, no
    /// input normalisation, kernel 9, one person, `bn_eps = 1e-5`, `bn_momentum = 0.1`.
    pub fn new(
        architecture: Architecture,
        width_divisor: usize,
        in_channels: usize,
        num_frames: usize,
        adjacency: &Array3<f64>,
        num_classes: usize,
    ) -> Self {
        let blocks = architecture.blocks(in_channels, width_divisor);
        let v = adjacency.dim().1;
        StGcnConfig {
            architecture: Some(architecture),
            width_divisor,
            in_channels,
            num_frames,
            num_persons: 1,
            num_classes,
            class_names: Vec::new(),
            activation_mask: vec![[vec![true; v], vec![true; v]]; blocks.len()],
            blocks,
            temporal_kernel: 9,
            graph: GraphSpec::from_adjacency(adjacency),
            activation: ActivationKind::Square,
            poly_init: [0.2, 0.5, 0.2],
            input_norm: None,
            bn_eps: 1e-5,
            bn_momentum: 0.1,
        }
    }

    /// Number of graph nodes V.
    pub fn num_nodes(&self) -> usize {
        self.graph.num_nodes()
    }

    /// Frames after every block for an input of `t` frames.
    pub fn frames_after_blocks(&self, t: usize) -> Vec<usize> {
        let mut t = t;
        self.blocks
            .iter()
            .map(|b| {
                t = (t.max(1) - 1) / b.stride + 1;
                t
            })
            .collect()
    }

    /// Replaces the activation of `nodes` at block `block`, site `site` (0: after the first BN,
    /// 1: after the residual sum) by the identity.
    pub fn prune(&mut self, block: usize, site: usize, nodes: &[usize]) -> Result<()> {
        let v = self.num_nodes();
        let n_blocks = self.activation_mask.len();
        let sites = self
            .activation_mask
            .get_mut(block)
            .ok_or(ModelError::InputShape {
                what: "block index (exclusive bound)",
                expected: n_blocks,
                found: block,
            })?;
        if site > 1 {
            return Err(ModelError::InputShape {
                what: "activation site (exclusive bound)",
                expected: 2,
                found: site,
            });
        }
        if let Some(&node) = nodes.iter().find(|&&n| n >= v) {
            return Err(ModelError::NodeOutOfRange { node, num_nodes: v });
        }
        for &n in nodes {
            sites[site][n] = false;
        }
        Ok(())
    }

    /// Number of (block, site, node) activations that are still non-linear (each costs one
    /// multiplicative level per site under HE if any node of the site is non-linear).
    pub fn num_nonlinear_activations(&self) -> usize {
        self.activation_mask
            .iter()
            .flat_map(|s| s.iter())
            .map(|m| m.iter().filter(|&&k| k).count())
            .sum()
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates JSON written by [`Self::to_json`].
    pub fn from_json(s: &str) -> Result<Self> {
        let cfg: StGcnConfig = serde_json::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks internal consistency (channel chain, strides, graph shape, masks, norm shape).
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &'static str, v: usize| {
            if v == 0 {
                Err(ModelError::InvalidValue {
                    name,
                    value: 0.0,
                    allowed: ">= 1",
                })
            } else {
                Ok(())
            }
        };
        pos("in_channels", self.in_channels)?;
        pos("num_frames", self.num_frames)?;
        pos("num_persons", self.num_persons)?;
        pos("num_classes", self.num_classes)?;
        if self.blocks.is_empty() {
            return Err(ModelError::InvalidValue {
                name: "blocks.len()",
                value: 0.0,
                allowed: ">= 1",
            });
        }
        if self.temporal_kernel.is_multiple_of(2) {
            return Err(ModelError::InvalidValue {
                name: "temporal_kernel",
                value: self.temporal_kernel as f64,
                allowed: "odd, >= 1",
            });
        }
        if self.bn_eps.is_nan() || self.bn_eps <= 0.0 {
            return Err(ModelError::InvalidValue {
                name: "bn_eps",
                value: self.bn_eps,
                allowed: "> 0",
            });
        }
        if !(0.0..=1.0).contains(&self.bn_momentum) {
            return Err(ModelError::InvalidValue {
                name: "bn_momentum",
                value: self.bn_momentum,
                allowed: "[0, 1]",
            });
        }
        let a = self.graph.adjacency_array()?;
        let (k, v, _) = a.dim();
        if k == 0 || v == 0 {
            return Err(ModelError::AdjacencyShape {
                expected: vec![3, v.max(1), v.max(1)],
                found: vec![k, v, v],
            });
        }
        if let Some(bad) = a.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFiniteTensor {
                tensor: "graph.adjacency".into(),
                index: bad,
            });
        }
        if !self.class_names.is_empty() && self.class_names.len() != self.num_classes {
            return Err(ModelError::InputShape {
                what: "class_names length",
                expected: self.num_classes,
                found: self.class_names.len(),
            });
        }
        let mut c_in = self.in_channels;
        for (i, b) in self.blocks.iter().enumerate() {
            if b.in_channels != c_in {
                return Err(ModelError::InvalidBlock {
                    block: i,
                    field: "in_channels",
                    expected: c_in.to_string(),
                    found: b.in_channels,
                });
            }
            if b.out_channels == 0 {
                return Err(ModelError::InvalidBlock {
                    block: i,
                    field: "out_channels",
                    expected: ">= 1".into(),
                    found: 0,
                });
            }
            if b.stride != 1 && b.stride != 2 {
                return Err(ModelError::InvalidBlock {
                    block: i,
                    field: "stride",
                    expected: "1 or 2".into(),
                    found: b.stride,
                });
            }
            c_in = b.out_channels;
        }
        if self.activation_mask.len() != self.blocks.len() {
            return Err(ModelError::InputShape {
                what: "activation_mask blocks",
                expected: self.blocks.len(),
                found: self.activation_mask.len(),
            });
        }
        for (i, sites) in self.activation_mask.iter().enumerate() {
            for (s, m) in sites.iter().enumerate() {
                if m.len() != v {
                    return Err(ModelError::MaskLength {
                        block: i,
                        site: s,
                        expected: v,
                        found: m.len(),
                    });
                }
            }
        }
        if let Some(norm) = &self.input_norm {
            for table in [&norm.mean, &norm.std] {
                if table.len() != self.in_channels {
                    return Err(ModelError::InputShape {
                        what: "input_norm channels",
                        expected: self.in_channels,
                        found: table.len(),
                    });
                }
                if let Some(row) = table.iter().find(|r| r.len() != v) {
                    return Err(ModelError::InputShape {
                        what: "input_norm nodes",
                        expected: v,
                        found: row.len(),
                    });
                }
            }
            if let Some(&s) = norm
                .std
                .iter()
                .flatten()
                .find(|&&s| s.is_nan() || s <= 0.0 || !s.is_finite())
            {
                return Err(ModelError::InvalidValue {
                    name: "input_norm.std",
                    value: s,
                    allowed: "> 0 and finite",
                });
            }
        }
        Ok(())
    }
}
