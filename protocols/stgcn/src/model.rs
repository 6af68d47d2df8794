//! The ST-GCN network (Yan et al., AAAI 2018, §3): parameters, training- and evaluation-mode
//! forward passes, the backward pass, and the model-file (de)serialisation.

use std::collections::HashMap;

use ndarray::{
    Array1, Array2, Array3, Array4, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayView5, Axis,
    Ix1, Ix2, Ix3, IxDyn,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::ops::{self, ActParams, BnCache, SparseAdjacency};
use super::params::{NamedTensor, ParamStore, TensorRole};
use super::{ActivationKind, Distillation, ModelError, Result, StGcnConfig};

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
}

impl Gradients {
    /// Gradients aligned with [`StGcn::tensors`].
    pub fn as_slice(&self) -> &[ArrayD<f64>] {
        &self.grads
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

    // ------------------------------------------------------------ forward

    /// Checks an `(N, C, T, V, M)` input and turns it into `(N·M, C, T, V)` with the input
    /// normalisation applied.
    pub(crate) fn prepare_input(&self, x: ArrayView5<'_, f64>) -> Result<Array4<f64>> {
        let (n, c, t, v, m) = x.dim();
        let checks = [
            ("channels C", self.config.in_channels, c),
            ("nodes V", self.config.num_nodes(), v),
            ("persons M", self.config.num_persons, m),
        ];
        for (what, expected, found) in checks {
            if expected != found {
                return Err(ModelError::InputShape {
                    what,
                    expected,
                    found,
                });
            }
        }
        for (what, found) in [("clips N", n), ("frames T", t)] {
            if found == 0 {
                return Err(ModelError::InputShape {
                    what,
                    expected: 1,
                    found,
                });
            }
        }
        let mut out = Array4::zeros((n * m, c, t, v));
        for ni in 0..n {
            for mi in 0..m {
                out.index_axis_mut(Axis(0), ni * m + mi)
                    .assign(&x.index_axis(Axis(0), ni).index_axis(Axis(3), mi));
            }
        }
        if let Some(norm) = &self.config.input_norm {
            let (scale, shift) = norm.affine();
            for mut sample in out.outer_iter_mut() {
                for ((ci, _, vi), e) in sample.indexed_iter_mut() {
                    *e = scale[[ci, vi]] * *e + shift[[ci, vi]];
                }
            }
        }
        Ok(out)
    }

    fn bn_forward(
        &self,
        x: &Array4<f64>,
        idx: &BnIdx,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
    ) -> (Array4<f64>, Option<BnCache>) {
        if train {
            let (y, cache, mean, var) = ops::bn_train_forward(
                x,
                self.v1(idx.weight),
                self.v1(idx.bias),
                self.config.bn_eps,
            );
            let (n, _, t, v) = x.dim();
            let count = (n * t * v) as f64;
            let unbiased = if count > 1.0 {
                var * (count / (count - 1.0))
            } else {
                var
            };
            let m = self.config.bn_momentum;
            stats.push((idx.mean, &self.v1(idx.mean) * (1.0 - m) + &(mean * m)));
            stats.push((idx.var, &self.v1(idx.var) * (1.0 - m) + &(unbiased * m)));
            (y, Some(cache))
        } else {
            let (scale, shift) = self.bn_affine(idx);
            (ops::channel_affine(x, scale.view(), shift.view()), None)
        }
    }

    fn block_forward(
        &self,
        i: usize,
        x: Array4<f64>,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> (Array4<f64>, Option<BlockTape>) {
        let b = &self.layout.blocks[i];
        let stride = self.config.blocks[i].stride;
        let a_eff = SparseAdjacency::new(&self.effective_adjacency(i), &self.adjacency);
        let u = ops::conv1x1_forward(&x, self.v2(b.gcn_w), self.v1(b.gcn_b), 1);
        let y = ops::aggregate_forward(&u, &a_eff);
        let (z1, bn1) = self.bn_forward(&y, &b.bn1, train, stats);
        drop(y);
        observe(i, 0, &z1);
        let h = ops::act_forward(&z1, self.act_params(i, 0));
        let tc = ops::tconv_forward(&h, self.v3(b.tcn_w), self.v1(b.tcn_b), stride);
        let (mut s, bn2) = self.bn_forward(&tc, &b.bn2, train, stats);
        drop(tc);
        let mut res_bn = None;
        match &b.res {
            ResIdx::None => {}
            ResIdx::Identity => s += &x,
            ResIdx::Conv { weight, bias, bn } => {
                let r = ops::conv1x1_forward(&x, self.v2(*weight), self.v1(*bias), stride);
                let (rb, cache) = self.bn_forward(&r, bn, train, stats);
                s += &rb;
                res_bn = cache;
            }
        }
        observe(i, 1, &s);
        let out = ops::act_forward(&s, self.act_params(i, 1));
        let tape = match (bn1, bn2) {
            (Some(bn1), Some(bn2)) if train => Some(BlockTape {
                x,
                u,
                a_eff,
                bn1,
                z1,
                h,
                bn2,
                res_bn,
                s,
            }),
            _ => None,
        };
        (out, tape)
    }

    /// Forward pass of an `(N·M, C, T, V)` batch; `observe(block, site, input)` sees the input
    /// of every activation site.
    fn forward_batch(
        &self,
        x: Array4<f64>,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> (Array2<f64>, Option<Tape>) {
        let mut h = x;
        let mut tapes = Vec::new();
        for i in 0..self.config.blocks.len() {
            let (out, tape) = self.block_forward(i, h, train, stats, observe);
            tapes.extend(tape);
            h = out;
        }
        let pooled = ops::pool_forward(&h, self.config.num_persons);
        let logits = ops::dense_forward(
            &pooled,
            self.v2(self.layout.fc_w),
            self.v1(self.layout.fc_b),
        );
        let tape = train.then(|| Tape {
            blocks: tapes,
            last_shape: h.dim(),
            pooled,
        });
        (logits, tape)
    }

    /// Evaluation-mode logits `(N, classes)` for an `(N, C, T, V, M)` input (BN with running
    /// statistics), computed in chunks of 64 clips.
    pub fn forward(&self, x: ArrayView5<'_, f64>) -> Result<Array2<f64>> {
        let n = x.dim().0;
        let mut logits = Array2::zeros((n, self.config.num_classes));
        let mut start = 0;
        while start < n.max(1) {
            let end = (start + EVAL_CHUNK).min(n);
            let chunk = self.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            let (l, _) = self.forward_batch(chunk, false, &mut Vec::new(), &mut |_, _, _| {});
            logits.slice_mut(ndarray::s![start..end, ..]).assign(&l);
            start = end;
        }
        Ok(logits)
    }

    /// Evaluation-mode forward pass over `(N, C, T, V, M)` clips in chunks of 64 that calls
    /// `observe(block, site, input)` with the `(n, C, T, V)` input of every activation site.
    pub(crate) fn observe_activation_inputs(
        &self,
        x: ArrayView5<'_, f64>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> Result<()> {
        let n = x.dim().0;
        let mut start = 0;
        while start < n.max(1) {
            let end = (start + EVAL_CHUNK).min(n);
            let chunk = self.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            self.forward_batch(chunk, false, &mut Vec::new(), observe);
            start = end;
        }
        Ok(())
    }

    /// Training-mode forward and backward pass on one mini-batch: returns the mean softmax
    /// cross-entropy, the logits and the gradients, and updates the BN running statistics.
    pub fn loss_and_gradients(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        self.loss_and_gradients_with(x, labels, |logits| {
            ops::softmax_cross_entropy(logits, labels)
        })
    }

    /// As [`Self::loss_and_gradients`] with the knowledge-distillation loss of
    /// [`Distillation`] (Hinton, Vinyals and Dean 2015): `teacher_logits` are the teacher's
    /// `(N, classes)` logits of the same clips.
    pub fn distillation_loss_and_gradients(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        teacher_logits: ArrayView2<'_, f64>,
        distillation: &Distillation,
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        distillation.validate()?;
        let (n, q) = (x.dim().0, self.config.num_classes);
        for (what, expected, found) in [
            ("teacher logits (rows)", n, teacher_logits.nrows()),
            ("teacher logits (classes)", q, teacher_logits.ncols()),
        ] {
            if expected != found {
                return Err(ModelError::InputShape {
                    what,
                    expected,
                    found,
                });
            }
        }
        self.loss_and_gradients_with(x, labels, |logits| {
            ops::distillation_loss(
                logits,
                labels,
                teacher_logits,
                distillation.temperature,
                distillation.weight,
            )
        })
    }

    fn loss_and_gradients_with(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        loss: impl FnOnce(&Array2<f64>) -> (f64, Array2<f64>),
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        let n = x.dim().0;
        if labels.len() != n {
            return Err(ModelError::LabelCount {
                labels: labels.len(),
                samples: n,
            });
        }
        let q = self.config.num_classes;
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= q) {
            return Err(ModelError::LabelOutOfRange {
                index,
                label,
                num_classes: q,
            });
        }
        let input = self.prepare_input(x)?;
        let mut stats = Vec::new();
        let (logits, tape) = self.forward_batch(input, true, &mut stats, &mut |_, _, _| {});
        let tape = tape.expect("training forward records a tape");
        let (loss, dlogits) = loss(&logits);
        let grads = self.backward(&tape, &dlogits);
        for (i, value) in stats {
            self.store.tensors[i].value = value.into_dyn();
        }
        Ok((loss, logits, grads))
    }

    /// Precise BN (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021, §3): replaces the
    /// running mean and variance of every batch norm by the average, over the batches of the
    /// `(N, C, T, V, M)` clips `x` taken in order (`batch_size` clips each, weighted by size), of
    /// the batch statistics that a training-mode forward pass with the current weights computes.
    /// The exponential moving average kept during training mixes statistics of the last few
    /// dozen batches and of older weights; this is the population estimate the EMA aims at.
    /// Weights are unchanged.
    pub fn recompute_bn_statistics(
        &mut self,
        x: ArrayView5<'_, f64>,
        batch_size: usize,
    ) -> Result<()> {
        if batch_size == 0 {
            return Err(ModelError::InvalidValue {
                name: "batch_size",
                value: 0.0,
                allowed: ">= 1",
            });
        }
        let mut probe = self.clone();
        // Momentum 1: the "running" values a training step writes are the batch statistics.
        probe.config.bn_momentum = 1.0;
        let n = x.dim().0;
        let mut sums: Vec<Option<Array1<f64>>> = vec![None; self.store.tensors.len()];
        let mut start = 0;
        while start < n {
            let end = (start + batch_size).min(n);
            let input = probe.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            let mut stats = Vec::new();
            probe.forward_batch(input, true, &mut stats, &mut |_, _, _| {});
            let w = (end - start) as f64;
            for (i, v) in stats {
                let v = v * w;
                sums[i] = Some(match sums[i].take() {
                    Some(acc) => acc + v,
                    None => v,
                });
            }
            start = end;
        }
        for (i, sum) in sums.into_iter().enumerate() {
            if let Some(sum) = sum {
                self.store.tensors[i].value = (sum / n as f64).into_dyn();
            }
        }
        Ok(())
    }

    /// Statistics of the inputs of every activation site (block order, site 0 then 1) on the
    /// clips `x`, from a training-mode forward pass (BN with the batch's statistics, as in
    /// training) that leaves the running statistics unchanged. A diagnostic for polynomial
    /// activations, whose outputs grow with the square of their inputs.
    pub fn activation_input_stats(
        &self,
        x: ArrayView5<'_, f64>,
    ) -> Result<Vec<ActivationInputStats>> {
        let input = self.prepare_input(x)?;
        let (_, tape) = self.forward_batch(input, true, &mut Vec::new(), &mut |_, _, _| {});
        let tape = tape.expect("training forward records a tape");
        Ok(tape
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                [
                    ActivationInputStats::of(i, 0, &t.z1),
                    ActivationInputStats::of(i, 1, &t.s),
                ]
            })
            .collect())
    }

    // ------------------------------------------------------------ backward

    fn backward(&self, tape: &Tape, dlogits: &Array2<f64>) -> Gradients {
        let mut grads: Vec<ArrayD<f64>> = self
            .store
            .tensors
            .iter()
            .map(|t| ArrayD::zeros(t.value.raw_dim()))
            .collect();
        let l = &self.layout;
        let (dp, dw, db) = ops::dense_backward(&tape.pooled, self.v2(l.fc_w), dlogits);
        grads[l.fc_w] = dw.into_dyn();
        grads[l.fc_b] = db.into_dyn();
        let mut d = ops::pool_backward(&dp, tape.last_shape, self.config.num_persons);
        for (i, bt) in tape.blocks.iter().enumerate().rev() {
            d = self.block_backward(i, bt, d, &mut grads);
        }
        Gradients { grads }
    }

    fn store_poly(grads: &mut [ArrayD<f64>], idx: &Option<PolyIdx>, g: &Array2<f64>) {
        if let Some(p) = idx {
            grads[p.a] = g.row(0).to_owned().into_dyn();
            grads[p.b] = g.row(1).to_owned().into_dyn();
            grads[p.c] = g.row(2).to_owned().into_dyn();
        }
    }

    fn block_backward(
        &self,
        i: usize,
        t: &BlockTape,
        dout: Array4<f64>,
        grads: &mut [ArrayD<f64>],
    ) -> Array4<f64> {
        let b = &self.layout.blocks[i];
        let stride = self.config.blocks[i].stride;
        let (ds, g2) = ops::act_backward(&t.s, &dout, self.act_params(i, 1));
        drop(dout);
        Self::store_poly(grads, &b.act2, &g2);
        let mut dx_res = None;
        match &b.res {
            ResIdx::None => {}
            ResIdx::Identity => dx_res = Some(ds.clone()),
            ResIdx::Conv { weight, bias, bn } => {
                let cache = t.res_bn.as_ref().expect("training tape has residual BN");
                let (dr, dg, dbeta) = ops::bn_backward(&ds, cache, self.v1(bn.weight));
                grads[bn.weight] = dg.into_dyn();
                grads[bn.bias] = dbeta.into_dyn();
                let (dx, wb) = ops::conv1x1_backward(&t.x, self.v2(*weight), &dr, stride);
                grads[*weight] = wb.w.into_dyn();
                grads[*bias] = wb.b.into_dyn();
                dx_res = Some(dx);
            }
        }
        let (dtc, dg, dbeta) = ops::bn_backward(&ds, &t.bn2, self.v1(b.bn2.weight));
        drop(ds);
        grads[b.bn2.weight] = dg.into_dyn();
        grads[b.bn2.bias] = dbeta.into_dyn();
        let (dh, wb) = ops::tconv_backward(&t.h, self.v3(b.tcn_w), &dtc, stride);
        drop(dtc);
        grads[b.tcn_w] = wb.w.into_dyn();
        grads[b.tcn_b] = wb.b.into_dyn();
        let (dz1, g1) = ops::act_backward(&t.z1, &dh, self.act_params(i, 0));
        drop(dh);
        Self::store_poly(grads, &b.act1, &g1);
        let (dy, dg, dbeta) = ops::bn_backward(&dz1, &t.bn1, self.v1(b.bn1.weight));
        drop(dz1);
        grads[b.bn1.weight] = dg.into_dyn();
        grads[b.bn1.bias] = dbeta.into_dyn();
        let (du, da) = ops::aggregate_backward(&t.u, &t.a_eff, &dy);
        drop(dy);
        grads[b.edge] = (da * &self.adjacency).into_dyn();
        let (mut dx, wb) = ops::conv1x1_backward(&t.x, self.v2(b.gcn_w), &du, 1);
        grads[b.gcn_w] = wb.w.into_dyn();
        grads[b.gcn_b] = wb.b.into_dyn();
        if let Some(r) = dx_res {
            dx += &r;
        }
        dx
    }
}
