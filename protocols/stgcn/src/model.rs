//! The ST-GCN network (Yan et al., AAAI 2018, §3): parameters, their initialisation and the
//! model-file (de)serialisation. The training- and evaluation-mode forward passes are in
//! `forward`, the backward pass in `backward`.

use std::collections::HashMap;

use ndarray::{
    Array1, Array2, Array3, Array4, ArrayD, ArrayView1, ArrayView2, ArrayView3, Ix1, Ix2, Ix3,
    IxDyn,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::ops::{ActParams, BnCache, SparseAdjacency};
use super::params::{NamedTensor, ParamStore, TensorRole};
use super::{ActivationKind, ModelError, Result, StGcnConfig};

mod backward;
mod forward;
mod gates;

pub use gates::SoftGates;

/// Clips per chunk in evaluation-mode forward passes (bounds peak memory).
const EVAL_CHUNK: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct BnIdx {
    pub(crate) weight: usize,
    pub(crate) bias: usize,
    pub(crate) mean: usize,
    pub(crate) var: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct PolyIdx {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) c: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum ResIdx {
    None,
    Identity,
    Conv {
        weight: usize,
        bias: usize,
        bn: BnIdx,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct BlockIdx {
    pub(crate) gcn_w: usize,
    pub(crate) gcn_b: usize,
    pub(crate) edge: usize,
    pub(crate) bn1: BnIdx,
    pub(crate) act1: Option<PolyIdx>,
    pub(crate) tcn_w: usize,
    pub(crate) tcn_b: usize,
    pub(crate) bn2: BnIdx,
    pub(crate) res: ResIdx,
    pub(crate) act2: Option<PolyIdx>,
}

#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) blocks: Vec<BlockIdx>,
    pub(crate) fc_w: usize,
    pub(crate) fc_b: usize,
}

/// Gradients of the loss with respect to every tensor of a model, in the order of
/// [`StGcn::tensors`] (zero for batch-norm running statistics).
#[derive(Clone, Debug)]
pub struct Gradients {
    pub(crate) grads: Vec<ArrayD<f64>>,
    pub(crate) gates: Option<SoftGates>,
}

impl Gradients {
    /// Gradients aligned with [`StGcn::tensors`].
    pub fn as_slice(&self) -> &[ArrayD<f64>] {
        &self.grads
    }

    /// Gradients of the soft gates (`None` when the model has none); not part of
    /// [`Self::norm`] or [`Self::clip_norm`].
    pub fn gates(&self) -> Option<&SoftGates> {
        self.gates.as_ref()
    }

    /// Global L2 norm over all tensors.
    pub fn norm(&self) -> f64 {
        self.grads
            .iter()
            .map(|g| g.iter().map(|x| x * x).sum::<f64>())
            .sum::<f64>()
            .sqrt()
    }

    /// Rescales all gradients so that [`Self::norm`] is at most `max`; returns the norm before.
    pub fn clip_norm(&mut self, max: f64) -> f64 {
        let n = self.norm();
        if n > max && n > 0.0 {
            let s = max / n;
            self.grads.iter_mut().for_each(|g| *g *= s);
        }
        n
    }
}

/// Statistics of the values entering one activation site over a batch, from a training-mode
/// forward pass (see [`StGcn::activation_input_stats`]). `x²` maps an input of RMS `r` to an
/// output of RMS about `r²`, so these show where un-normalised values grow through the network.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationInputStats {
    /// Block index.
    pub block: usize,
    /// Site: 0 after the first BN, 1 after the residual sum.
    pub site: usize,
    /// Mean over all elements.
    pub mean: f64,
    /// Root mean square over all elements.
    pub rms: f64,
    /// Largest absolute value.
    pub max_abs: f64,
}

impl ActivationInputStats {
    fn of(block: usize, site: usize, x: &Array4<f64>) -> Self {
        let n = x.len().max(1) as f64;
        let (sum, sq, max_abs) = x.fold((0.0, 0.0, 0.0f64), |(s, q, m), &e| {
            (s + e, q + e * e, m.max(e.abs()))
        });
        ActivationInputStats {
            block,
            site,
            mean: sum / n,
            rms: (sq / n).sqrt(),
            max_abs,
        }
    }
}

/// Intermediate values of one block kept for the backward pass.
struct BlockTape {
    x: Array4<f64>,
    u: Array4<f64>,
    a_eff: SparseAdjacency,
    bn1: BnCache,
    z1: Array4<f64>,
    h: Array4<f64>,
    bn2: BnCache,
    res_bn: Option<BnCache>,
    s: Array4<f64>,
}

struct Tape {
    blocks: Vec<BlockTape>,
    last_shape: (usize, usize, usize, usize),
    pooled: Array2<f64>,
}

/// An ST-GCN in plaintext f64: configuration, adjacency and named tensors.
#[derive(Clone, Debug)]
pub struct StGcn {
    config: StGcnConfig,
    adjacency: Array3<f64>,
    store: ParamStore,
    layout: Layout,
    /// Soft activation gates during gate training (see `gates`).
    gates: Option<SoftGates>,
}

/// Standard-normal sample by Box–Muller (rand 0.8 has no normal distribution without rand_distr).
fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn kaiming(rng: &mut ChaCha20Rng, shape: &[usize], fan_in: usize, gain: f64) -> ArrayD<f64> {
    let std = gain / (fan_in as f64).sqrt();
    ArrayD::from_shape_simple_fn(IxDyn(shape), || std * normal(rng))
}

impl StGcn {
    /// Builds a model from a validated configuration with Kaiming-normal initial weights
    /// (`std = √(2 / fan_in)` for convolutions, `√(1 / fan_in)` for the classifier), zero biases,
    /// BN `γ = 1, β = 0`, edge importance 1 and `poly_init` activation coefficients, drawn from
    /// ChaCha20 seeded with `seed`.
    pub fn new(config: StGcnConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let adjacency = config.graph.adjacency_array()?;
        let (k, v, _) = adjacency.dim();
        let kt = config.temporal_kernel;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut store = ParamStore::default();
        let mut blocks = Vec::with_capacity(config.blocks.len());
        let vec1 = |n: usize, x: f64| ArrayD::from_elem(IxDyn(&[n]), x);
        let poly = config.activation == ActivationKind::Poly;
        let [pa, pb, pc] = config.poly_init;
        for (i, spec) in config.blocks.iter().enumerate() {
            let (ci, co) = (spec.in_channels, spec.out_channels);
            let p = |s: &str| format!("blocks.{i}.{s}");
            let bn = |store: &mut ParamStore, name: &str| BnIdx {
                weight: store.add(
                    p(&format!("{name}.weight")),
                    vec1(co, 1.0),
                    TensorRole::Trainable,
                ),
                bias: store.add(
                    p(&format!("{name}.bias")),
                    vec1(co, 0.0),
                    TensorRole::Trainable,
                ),
                mean: store.add(
                    p(&format!("{name}.running_mean")),
                    vec1(co, 0.0),
                    TensorRole::Buffer,
                ),
                var: store.add(
                    p(&format!("{name}.running_var")),
                    vec1(co, 1.0),
                    TensorRole::Buffer,
                ),
            };
            let act = |store: &mut ParamStore, name: &str| {
                poly.then(|| PolyIdx {
                    a: store.add(p(&format!("{name}.a")), vec1(v, pa), TensorRole::Trainable),
                    b: store.add(p(&format!("{name}.b")), vec1(v, pb), TensorRole::Trainable),
                    c: store.add(p(&format!("{name}.c")), vec1(v, pc), TensorRole::Trainable),
                })
            };
            let gcn_w = store.add(
                p("gcn.conv.weight"),
                kaiming(&mut rng, &[k * co, ci], ci, 2f64.sqrt()),
                TensorRole::Weight,
            );
            let gcn_b = store.add(p("gcn.conv.bias"), vec1(k * co, 0.0), TensorRole::Trainable);
            let edge = store.add(
                p("gcn.edge_importance"),
                ArrayD::from_elem(IxDyn(&[k, v, v]), 1.0),
                TensorRole::Trainable,
            );
            let bn1 = bn(&mut store, "bn1");
            let act1 = act(&mut store, "act1");
            let tcn_w = store.add(
                p("tcn.conv.weight"),
                kaiming(&mut rng, &[co, co, kt], co * kt, 2f64.sqrt()),
                TensorRole::Weight,
            );
            let tcn_b = store.add(p("tcn.conv.bias"), vec1(co, 0.0), TensorRole::Trainable);
            let bn2 = bn(&mut store, "bn2");
            let res = if !spec.residual {
                ResIdx::None
            } else if spec.residual_is_conv() {
                let weight = store.add(
                    p("residual.conv.weight"),
                    kaiming(&mut rng, &[co, ci], ci, 2f64.sqrt()),
                    TensorRole::Weight,
                );
                let bias = store.add(
                    p("residual.conv.bias"),
                    vec1(co, 0.0),
                    TensorRole::Trainable,
                );
                let bn = bn(&mut store, "residual.bn");
                ResIdx::Conv { weight, bias, bn }
            } else {
                ResIdx::Identity
            };
            let act2 = act(&mut store, "act2");
            blocks.push(BlockIdx {
                gcn_w,
                gcn_b,
                edge,
                bn1,
                act1,
                tcn_w,
                tcn_b,
                bn2,
                res,
                act2,
            });
        }
        let c_last = config
            .blocks
            .last()
            .map_or(config.in_channels, |b| b.out_channels);
        let q = config.num_classes;
        let fc_w = store.add(
            "fc.weight".into(),
            kaiming(&mut rng, &[q, c_last], c_last, 1.0),
            TensorRole::Weight,
        );
        let fc_b = store.add("fc.bias".into(), vec1(q, 0.0), TensorRole::Trainable);
        Ok(StGcn {
            config,
            adjacency,
            store,
            layout: Layout { blocks, fc_w, fc_b },
            gates: None,
        })
    }

    /// Rebuilds a model from its JSON configuration and safetensors weights.
    pub fn from_json_and_safetensors(config_json: &str, weights: &[u8]) -> Result<Self> {
        let mut model = StGcn::new(StGcnConfig::from_json(config_json)?, 0)?;
        model.load_safetensors_bytes(weights)?;
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &StGcnConfig {
        &self.config
    }

    /// Replaces the activation of `nodes` at block `block`, site `site` by the identity
    /// (activation pruning of a trained model; tensors are kept, so fine-tuning can follow).
    pub fn prune_activations(&mut self, block: usize, site: usize, nodes: &[usize]) -> Result<()> {
        self.config.prune(block, site, nodes)
    }

    /// Re-initialises the affine parameters of the batch norms that feed the activation sites:
    /// `bn1` (directly before site 0) to `(γ, β) = (gamma, beta)`; `bn2` to `(gamma, beta)` and
    /// the residual BN, if any, to `(gamma, 0)` (their sum, plus an identity residual, feeds
    /// site 1). `x²` of a unit-variance `z` then computes `(γz + β)² = γ²·z² + 2βγ·z + β²`:
    /// with `(γ, β) = (0.45, 0.56)` this is `0.20·z² + 0.50·z + 0.31`, up to the constant the
    /// least-squares quadratic fit of ReLU for a standard-normal input (Hermite coefficients
    /// `1/(2√(2π))`, `1/2`), the start used when a trained ReLU network is turned into an `x²`
    /// one and fine-tuned (activation replacement, CryptoGCN / LinGCN); with a small `γ` and
    /// `β = 1` it is near-linear. Either way squares of squares do not blow up at the start of
    /// training as they do from `γ = 1, β = 0`. Only these values change: the exported
    /// [`super::FoldedModel`] keeps its form, BN being folded into the convolutions as usual.
    pub fn init_pre_activation_bn(&mut self, gamma: f64, beta: f64) {
        let mut sets = Vec::new();
        for b in &self.layout.blocks {
            sets.push((b.bn1.weight, gamma));
            sets.push((b.bn1.bias, beta));
            sets.push((b.bn2.weight, gamma));
            sets.push((b.bn2.bias, beta));
            if let ResIdx::Conv { bn, .. } = &b.res {
                sets.push((bn.weight, gamma));
                sets.push((bn.bias, 0.0));
            }
        }
        for (i, value) in sets {
            self.store.tensors[i].value.fill(value);
        }
    }

    /// A copy with another activation kind, for switching between ReLU and `x²` (which have the
    /// same tensors).
    pub(crate) fn with_activation(&self, kind: ActivationKind) -> StGcn {
        debug_assert!(
            kind != ActivationKind::Poly && self.config.activation != ActivationKind::Poly
        );
        let mut m = self.clone();
        m.config.activation = kind;
        m
    }

    /// The configuration as pretty JSON (the `*.json` half of a model file).
    pub fn config_json(&self) -> Result<String> {
        self.config.to_json()
    }

    /// The `(K, V, V)` partition matrices (without edge importance).
    pub fn adjacency(&self) -> &Array3<f64> {
        &self.adjacency
    }

    /// All tensors in a fixed order (see the crate docs for names and shapes).
    pub fn tensors(&self) -> &[NamedTensor] {
        &self.store.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&ArrayD<f64>> {
        self.store.index_of(name).map(|i| self.store.get(i))
    }

    /// Replaces the tensor called `name`, checking its shape.
    pub fn set_tensor(&mut self, name: &str, value: ArrayD<f64>) -> Result<()> {
        let i = self
            .store
            .index_of(name)
            .ok_or_else(|| ModelError::UnknownTensor {
                tensor: name.to_string(),
            })?;
        let t = &mut self.store.tensors[i];
        if t.value.shape() != value.shape() {
            return Err(ModelError::ShapeMismatch {
                tensor: name.to_string(),
                expected: t.value.shape().to_vec(),
                found: value.shape().to_vec(),
            });
        }
        t.value = value;
        Ok(())
    }

    pub(crate) fn tensors_mut(&mut self) -> &mut [NamedTensor] {
        &mut self.store.tensors
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of trainable scalars (weights and other trainable tensors, not BN statistics).
    pub fn num_trainable_parameters(&self) -> usize {
        self.store
            .tensors
            .iter()
            .filter(|t| t.role != TensorRole::Buffer)
            .map(|t| t.value.len())
            .sum()
    }

    /// Serialises all tensors to safetensors bytes (F64), with the architecture name in the
    /// header metadata.
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "dyad-stgcn".to_string());
        if let Some(a) = self.config.architecture {
            meta.insert("architecture".to_string(), a.name().to_string());
        }
        self.store.to_safetensors_bytes(Some(meta))
    }

    /// Loads all tensors from safetensors bytes; on any error (missing, unknown, wrongly shaped,
    /// non-finite tensor) the model is left unchanged.
    pub fn load_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.store.load_safetensors_bytes(bytes)
    }

    // ------------------------------------------------------------ tensor views

    pub(crate) fn v1(&self, i: usize) -> ArrayView1<'_, f64> {
        self.store
            .get(i)
            .view()
            .into_dimensionality::<Ix1>()
            .expect("rank fixed at construction")
    }

    pub(crate) fn v2(&self, i: usize) -> ArrayView2<'_, f64> {
        self.store
            .get(i)
            .view()
            .into_dimensionality::<Ix2>()
            .expect("rank fixed at construction")
    }

    pub(crate) fn v3(&self, i: usize) -> ArrayView3<'_, f64> {
        self.store
            .get(i)
            .view()
            .into_dimensionality::<Ix3>()
            .expect("rank fixed at construction")
    }

    fn slice(&self, i: usize) -> &[f64] {
        self.store
            .get(i)
            .as_slice()
            .expect("tensors are standard layout")
    }

    pub(crate) fn act_params(&self, block: usize, site: usize) -> ActParams<'_> {
        let b = &self.layout.blocks[block];
        let idx = if site == 0 { &b.act1 } else { &b.act2 };
        ActParams {
            kind: self.config.activation,
            poly: idx
                .as_ref()
                .map(|p| (self.slice(p.a), self.slice(p.b), self.slice(p.c))),
            keep: &self.config.activation_mask[block][site],
            gate: self.gates.as_ref().map(|g| g[block][site].as_slice()),
        }
    }

    /// `A_k ⊙ E_k` of a block.
    pub(crate) fn effective_adjacency(&self, block: usize) -> Array3<f64> {
        &self.adjacency * &self.v3(self.layout.blocks[block].edge)
    }

    /// Evaluation-mode BN as `(scale, shift)` per channel.
    pub(crate) fn bn_affine(&self, idx: &BnIdx) -> (Array1<f64>, Array1<f64>) {
        let eps = self.config.bn_eps;
        let scale = &self.v1(idx.weight) / &self.v1(idx.var).mapv(|s| (s + eps).sqrt());
        let shift = &self.v1(idx.bias) - &(&self.v1(idx.mean) * &scale);
        (scale, shift)
    }
}
