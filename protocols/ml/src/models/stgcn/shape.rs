//! The public structure of an ST-GCN trained on shares ([`StgcnShape`]): configuration, the
//! frozen graph (`A_k ⊙ E_k`), the frozen BN statistics, the input normalisation and the list of
//! trainable tensors as matrices, in a fixed order. Everything here is public to both parties
//! (it comes from the starting model both hold); no secret is stored.

use crate::error::{MlError, Result};
use ndarray::{Array1, Array2, Array3};
use stgcn::{ActivationKind, StGcn, StGcnConfig};

/// What a trainable parameter is (decides weight decay and export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    /// A convolution or dense weight `(in × out)`: trained with weight decay.
    Weight,
    /// A bias row `(1 × out)`.
    Bias,
    /// A BN affine scale `s = γ/√(var+eps)` (`1 × C`).
    BnScale,
    /// A BN affine shift `t = β − mean·s` (`1 × C`).
    BnShift,
    /// A node-wise polynomial coefficient row (`1 × V`).
    Poly,
}

/// One trainable tensor: name, matrix shape, kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamSpec {
    pub(crate) name: String,
    pub(crate) dims: (usize, usize),
    pub(crate) kind: ParamKind,
}

/// Indices into the parameter list of one BN affine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BnParams {
    pub(crate) scale: usize,
    pub(crate) shift: usize,
}

/// Indices of one activation site's node-wise coefficients (poly only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PolyParams {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) c: usize,
}

/// The residual branch of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residual {
    None,
    Identity,
    Conv {
        weight: usize,
        bias: usize,
        bn: BnParams,
    },
}

/// Public structure and parameter indices of one block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockShape {
    pub(crate) c_in: usize,
    pub(crate) c_out: usize,
    pub(crate) stride: usize,
    /// Frames entering the block.
    pub(crate) t_in: usize,
    /// Frames leaving it.
    pub(crate) t_out: usize,
    /// `A_k ⊙ E_k`, `(K, V, V)`: edge importance frozen at the starting model's values.
    pub(crate) adjacency: Array3<f64>,
    pub(crate) gcn_w: usize,
    pub(crate) gcn_b: usize,
    pub(crate) bn1: BnParams,
    pub(crate) act: [Option<PolyParams>; 2],
    /// `keep[site][v]`: node v keeps its non-linearity at the site.
    pub(crate) keep: [Vec<bool>; 2],
    pub(crate) tcn_w: usize,
    pub(crate) tcn_b: usize,
    pub(crate) bn2: BnParams,
    pub(crate) residual: Residual,
}

/// What the starting model says of one BN (public): running statistics and the affine `γ, β`
/// (the re-calibration on private data keeps `γ, β` and replaces the statistics).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BnFrozen {
    /// The BN's affine parameters.
    pub(crate) params: BnParams,
    pub(crate) mean: Array1<f64>,
    pub(crate) var: Array1<f64>,
    pub(crate) gamma: Array1<f64>,
    pub(crate) beta: Array1<f64>,
}

/// Where one tensor of the model file comes from on export.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExportSource {
    /// The transpose of trainable parameter `i` (weights `in × out` → `out × in`, rows `1 × d`
    /// → `d × 1`).
    Param(usize),
    /// BN `γ = s·√(var+eps)` from the scale parameter `scale`.
    BnWeight { scale: usize },
    /// BN `β = t + mean·s`.
    BnBias { scale: usize, shift: usize },
    /// A public tensor kept as it is (running statistics, edge importance), as a matrix.
    Public(Array2<f64>),
}

/// The public structure of an ST-GCN trained on shares (config, adjacency with the frozen edge
/// importance, frozen BN statistics, input normalisation, parameter list) from a starting model.
#[derive(Debug, Clone)]
pub struct StgcnShape {
    pub(crate) config: StGcnConfig,
    pub(crate) params: Vec<ParamSpec>,
    pub(crate) blocks: Vec<BlockShape>,
    pub(crate) fc_w: usize,
    pub(crate) fc_b: usize,
    /// Input normalisation `x ↦ scale[c,v]·x + shift[c,v]`, `(C × V)` each.
    pub(crate) input_norm: Option<(Array2<f64>, Array2<f64>)>,
    /// Frozen BN running statistics and the starting affine, by BN param index.
    pub(crate) bn_stats: Vec<BnFrozen>,
    /// Every tensor of the model file in `StGcn::tensors()` order: name, shape, source.
    pub(crate) exports: Vec<(String, Vec<usize>, ExportSource)>,
}

/// A tensor of shape `(d0, d1, …)` as the `d0 × (d1·…)` matrix of its row-major values.
pub(crate) fn as_matrix(t: &ndarray::ArrayD<f64>) -> Array2<f64> {
    let d0 = t.shape().first().copied().unwrap_or(1);
    let rest = t.len() / d0.max(1);
    Array2::from_shape_vec((d0, rest), t.iter().copied().collect()).expect("sizes agree")
}

/// The export source of every model tensor: a parameter of the same name, a BN affine solved
/// back, or the public tensor itself.
fn export_sources(model: &StGcn, params: &[ParamSpec]) -> Vec<(String, Vec<usize>, ExportSource)> {
    let index = |name: &str| params.iter().position(|p| p.name == name);
    model
        .tensors()
        .iter()
        .map(|t| {
            let bn = |suffix: &str| {
                t.name
                    .strip_suffix(suffix)
                    .and_then(|prefix| Some((index(&format!("{prefix}.scale"))?, prefix)))
            };
            let src = if let Some(i) = index(&t.name) {
                ExportSource::Param(i)
            } else if let Some((scale, _)) = bn(".weight") {
                ExportSource::BnWeight { scale }
            } else if let Some((scale, prefix)) = bn(".bias") {
                let shift = index(&format!("{prefix}.shift")).expect("BN shift beside scale");
                ExportSource::BnBias { scale, shift }
            } else {
                ExportSource::Public(as_matrix(&t.value))
            };
            (t.name.clone(), t.value.shape().to_vec(), src)
        })
        .collect()
}

fn tensor1(model: &StGcn, name: &str) -> Result<Array1<f64>> {
    let t = model.tensor(name).ok_or(MlError::Unsupported {
        what: "model tensor",
        value: name.to_string(),
        reason: "missing from the starting model",
    })?;
    Ok(Array1::from_iter(t.iter().copied()))
}

/// Builds the parameter list while walking the blocks.
struct Builder<'a> {
    model: &'a StGcn,
    params: Vec<ParamSpec>,
    bn_stats: Vec<BnFrozen>,
}

impl Builder<'_> {
    fn add(&mut self, name: String, dims: (usize, usize), kind: ParamKind) -> usize {
        self.params.push(ParamSpec { name, dims, kind });
        self.params.len() - 1
    }

    fn bn(&mut self, prefix: &str, c: usize) -> Result<BnParams> {
        let scale = self.add(format!("{prefix}.scale"), (1, c), ParamKind::BnScale);
        let shift = self.add(format!("{prefix}.shift"), (1, c), ParamKind::BnShift);
        let get = |x: &str| tensor1(self.model, &format!("{prefix}.{x}"));
        let frozen = BnFrozen {
            params: BnParams { scale, shift },
            mean: get("running_mean")?,
            var: get("running_var")?,
            gamma: get("weight")?,
            beta: get("bias")?,
        };
        self.bn_stats.push(frozen);
        Ok(BnParams { scale, shift })
    }

    fn poly(&mut self, prefix: &str, v: usize) -> PolyParams {
        PolyParams {
            a: self.add(format!("{prefix}.a"), (1, v), ParamKind::Poly),
            b: self.add(format!("{prefix}.b"), (1, v), ParamKind::Poly),
            c: self.add(format!("{prefix}.c"), (1, v), ParamKind::Poly),
        }
    }
}

impl StgcnShape {
    /// The structure of `model` for 2PC training. Refuses ReLU activations (2PC training is for
    /// HE-friendly models: `x²` or node-wise polynomials) and more than one person per clip.
    pub fn from_model(model: &StGcn) -> Result<Self> {
        let cfg = model.config().clone();
        if cfg.activation == ActivationKind::Relu {
            return Err(MlError::Unsupported {
                what: "activation",
                value: "Relu".into(),
                reason: "2PC training supports the HE-friendly Square and Poly activations only",
            });
        }
        if cfg.num_persons != 1 {
            return Err(MlError::Unsupported {
                what: "num_persons",
                value: cfg.num_persons.to_string(),
                reason: "2PC training supports one person per clip (M = 1)",
            });
        }
        let (k, v) = (cfg.graph.num_subsets(), cfg.num_nodes());
        let base = cfg.graph.adjacency_array()?;
        let poly = cfg.activation == ActivationKind::Poly;
        let mut b = Builder {
            model,
            params: Vec::new(),
            bn_stats: Vec::new(),
        };
        let mut blocks = Vec::with_capacity(cfg.blocks.len());
        let mut t_in = cfg.num_frames;
        for (i, spec) in cfg.blocks.iter().enumerate() {
            let (ci, co, s) = (spec.in_channels, spec.out_channels, spec.stride);
            let p = |x: &str| format!("blocks.{i}.{x}");
            let gcn_w = b.add(p("gcn.conv.weight"), (ci, k * co), ParamKind::Weight);
            let gcn_b = b.add(p("gcn.conv.bias"), (1, k * co), ParamKind::Bias);
            let bn1 = b.bn(&p("bn1"), co)?;
            let act1 = poly.then(|| b.poly(&p("act1"), v));
            let kt = cfg.temporal_kernel;
            let tcn_w = b.add(p("tcn.conv.weight"), (kt * co, co), ParamKind::Weight);
            let tcn_b = b.add(p("tcn.conv.bias"), (1, co), ParamKind::Bias);
            let bn2 = b.bn(&p("bn2"), co)?;
            let residual = if !spec.residual {
                Residual::None
            } else if spec.residual_is_conv() {
                let weight = b.add(p("residual.conv.weight"), (ci, co), ParamKind::Weight);
                let bias = b.add(p("residual.conv.bias"), (1, co), ParamKind::Bias);
                let bn = b.bn(&p("residual.bn"), co)?;
                Residual::Conv { weight, bias, bn }
            } else {
                Residual::Identity
            };
            let act2 = poly.then(|| b.poly(&p("act2"), v));
            let edge = model
                .tensor(&p("gcn.edge_importance"))
                .ok_or(MlError::Unsupported {
                    what: "model tensor",
                    value: p("gcn.edge_importance"),
                    reason: "missing from the starting model",
                })?;
            let edge = Array3::from_shape_vec((k, v, v), edge.iter().copied().collect()).map_err(
                |_| MlError::Unsupported {
                    what: "edge importance shape",
                    value: format!("{:?}", edge.shape()),
                    reason: "must be (K, V, V)",
                },
            )?;
            let t_out = (t_in.max(1) - 1) / s + 1;
            let mask = &cfg.activation_mask[i];
            blocks.push(BlockShape {
                c_in: ci,
                c_out: co,
                stride: s,
                t_in,
                t_out,
                adjacency: &base * &edge,
                gcn_w,
                gcn_b,
                bn1,
                act: [act1, act2],
                keep: [mask[0].clone(), mask[1].clone()],
                tcn_w,
                tcn_b,
                bn2,
                residual,
            });
            t_in = t_out;
        }
        let c_last = cfg
            .blocks
            .last()
            .map_or(cfg.in_channels, |x| x.out_channels);
        let q = cfg.num_classes;
        let fc_w = b.add("fc.weight".into(), (c_last, q), ParamKind::Weight);
        let fc_b = b.add("fc.bias".into(), (1, q), ParamKind::Bias);
        let input_norm = cfg.input_norm.as_ref().map(stgcn::InputNorm::affine);
        let exports = export_sources(model, &b.params);
        Ok(Self {
            exports,
            config: cfg,
            params: b.params,
            blocks,
            fc_w,
            fc_b,
            input_norm,
            bn_stats: b.bn_stats,
        })
    }

    /// The trainable tensors as matrices, in the fixed order of [`Self::param_names`]: per
    /// block `gcn.conv.weight (Ci × K·Co)`, `gcn.conv.bias (1 × K·Co)`, `bn1.{scale,shift}
    /// (1 × Co)`, `act1.{a,b,c} (1 × V)` (poly only), `tcn.conv.weight (Kt·Co × Co)` (row
    /// `c·Kt + j`), `tcn.conv.bias`, `bn2.{scale,shift}`, then for a convolutional residual
    /// `residual.conv.weight (Ci × Co)`, `residual.conv.bias`, `residual.bn.{scale,shift}`,
    /// then `act2.{a,b,c}`; last `fc.weight (Cl × Q)` and `fc.bias (1 × Q)`. Weights are the
    /// transposes of the model file's (they multiply activation rows from the right).
    pub fn param_dims(&self) -> Vec<(usize, usize)> {
        self.params.iter().map(|p| p.dims).collect()
    }

    /// Names of the trainable tensors (model-file names, BN affines as `*.scale`/`*.shift`).
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Columns of one dataset row: `C·T·V·M` (M = 1).
    pub fn input_cols(&self) -> usize {
        self.config.in_channels * self.config.num_frames * self.config.num_nodes()
    }

    /// Number of classes Q.
    pub fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    /// Frames T of a clip.
    pub(crate) fn frames(&self) -> usize {
        self.config.num_frames
    }

    /// Nodes V.
    pub(crate) fn nodes(&self) -> usize {
        self.config.num_nodes()
    }

    /// Temporal kernel length.
    pub(crate) fn kernel(&self) -> usize {
        self.config.temporal_kernel
    }

    /// Partitions K.
    pub(crate) fn subsets(&self) -> usize {
        self.config.graph.num_subsets()
    }

    /// Frozen `(mean, var)` of the BN whose scale is parameter `scale`.
    pub(crate) fn bn_stats(&self, scale: usize) -> (&Array1<f64>, &Array1<f64>) {
        let f = self.bn_frozen(scale);
        (&f.mean, &f.var)
    }

    /// What the starting model says of the BN whose scale is parameter `scale`.
    pub(crate) fn bn_frozen(&self, scale: usize) -> &BnFrozen {
        self.bn_stats
            .iter()
            .find(|f| f.params.scale == scale)
            .expect("every BN scale has statistics")
    }

    /// BN epsilon.
    pub(crate) fn bn_eps(&self) -> f64 {
        self.config.bn_eps
    }
}
