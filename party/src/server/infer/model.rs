//! A model as the inference endpoint serves it: loaded, folded, planned for 128-bit CKKS
//! parameters (a named preset, or by default the set `hegcn::choose_params` tailors to the
//! model's depth and slots: the smallest ring, exactly its levels, the smallest keys) and compiled ([`ServedModel`]), with what clients are told about it, the bytes of the
//! keys a session uploads, and one sanitized forward pass.
//!
//! **Model kinds.** A model file is an ST-GCN (`stgcn`, its JSON has `blocks`) or an
//! MNIST-style CNN (`ml::models::cnn`, its JSON has `kernel` and `maps`), detected by
//! [`ModelKind::detect`]; CNNs are compiled by `super::cnn`. Both share everything after
//! compilation: sessions, key checks, the input checks and the sanitized reply.
//!
//! **Layout rule.** A model configured for one frame and one person (`T·M = 1`, a single
//! pose) is served in the dense layout of `hegcn::dense` whatever `packing` names: its whole
//! state fits one period of `next_pow2(V·P)` slots, where the packed layouts would spend a
//! block per (channel, node) and thousands of products. Its sessions need the Galois keys of
//! the dense plan only (steps `1`, `2` and `±B` of its maps' baby-step counts, at most 8),
//! and its clients pack the input as the announced `DenseLayout` says (node order, channels
//! repeated every `input_repeat` slots). Every other model uses the configured packing: `ama`,
//! `channel-major`, or `planned` — the packing planner's per-stage plan (module `planned`), whose
//! parameters hold the slots of either packing.

use super::error::{InferenceError, Result};
use crate::infer::max_public_key_bytes;
use crate::infer::msg::ModelInfo;
use crate::server::config::{InferenceConfig, ServedModelConfig};
use ckks::{CkksParams, Evaluator, GaloisKeys, PublicKey, RelinKey};
use hegcn::{DenseLayout, DenseStgcn, HeStgcn, PackedTensor, Packing};
use std::collections::BTreeMap;
use std::time::Instant;

/// A model compiled for encrypted evaluation.
#[derive(Debug)]
pub struct ServedModel {
    pub(super) engine: Engine,
    /// The CKKS parameters every key and ciphertext of a session is checked against.
    pub(super) params: CkksParams,
    pub(super) info: ModelInfo,
    /// The flood of every reply.
    pub(super) flood: hegcn::FloodConfig,
    /// Galois elements of the rotations the model uses, each with the highest level it is
    /// rotated at (a session's key for it must switch at that level; more is cut on receipt).
    pub(super) needed: BTreeMap<u64, usize>,
    /// Bytes of the keys a session of this model uploads ([`required_key_bytes`]).
    pub(super) key_bytes: u64,
    /// `packing = "planned"`: the chosen plan and its estimated seconds per sample on this
    /// machine.
    pub(super) plan: Option<(hegcn::PackingPlan, f64)>,
}

/// The compiled program that answers a model's requests.
#[derive(Debug)]
pub(super) enum Engine {
    /// An ST-GCN; `dense` is the single-pose program that answers requests when the model
    /// takes one pose (see the module docs), `he` then only provides the parameters and levels.
    Stgcn {
        /// The packed program.
        he: Box<HeStgcn>,
        /// The dense single-pose program.
        dense: Option<Box<DenseStgcn>>,
    },
    /// A CNN in the single-image layout (`hecnn::lola`).
    Lola(Box<hecnn::LolaCnn>),
    /// A CNN in the CryptoNets batch layout (`hecnn::batch`).
    Batch(Box<hecnn::BatchCnn>),
    /// A CNN in the matrix layout (`hecnn::matrix`: a batch in one ciphertext).
    Matrix(Box<hecnn::MatrixCnn>),
}

/// What a model file holds, told by its JSON's top-level fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// An ST-GCN (`stgcn::StGcnConfig`: has `blocks`).
    Stgcn,
    /// An MNIST-style CNN (`ml::models::cnn::CnnSpec`: has `kernel` and `maps`).
    Cnn,
}

impl ModelKind {
    /// The kind of the model whose JSON is `json`; `file` names it in the error.
    ///
    /// # Errors
    /// [`InferenceError::Config`] for text that is not a JSON object, or holds neither
    /// kind's fields (naming the fields looked for and those found).
    pub fn detect(json: &str, file: &std::path::Path) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            InferenceError::Config(format!("model file {}: not JSON: {e}", file.display()))
        })?;
        let Some(obj) = v.as_object() else {
            return Err(InferenceError::Config(format!(
                "model file {}: the architecture must be a JSON object",
                file.display()
            )));
        };
        match (
            obj.contains_key("blocks"),
            obj.contains_key("kernel") && obj.contains_key("maps"),
        ) {
            (true, false) => Ok(Self::Stgcn),
            (false, true) => Ok(Self::Cnn),
            _ => Err(InferenceError::Config(format!(
                "model file {}: neither an ST-GCN (field `blocks`) nor a CNN (fields `kernel` \
                 and `maps`) architecture; its fields: {}",
                file.display(),
                obj.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Bytes of the evaluation keys a client uploads for a model under `params` whose rotations
/// need `galois` Galois elements: the relinearization key and one `GaloisKeys` object per
/// element, as `crate::infer::generate_keys` sends them (sizes from `ckks`'s serialization).
pub fn required_key_bytes(params: &ckks::CkksParams, galois: usize) -> u64 {
    let each = GaloisKeys::serialized_len(params, 1);
    RelinKey::serialized_len(params).saturating_add(each.saturating_mul(galois as u64))
}

/// The default `max_key_bytes`: the largest requirement of the served models plus 1/64.
pub(super) fn default_max_key_bytes(needs: impl Iterator<Item = u64>) -> u64 {
    let most = needs.max().unwrap_or(0);
    most.saturating_add(most / 64)
}

impl ServedModel {
    /// Loads `<path>.json` + `.safetensors`, folds it, plans its levels and compiles it.
    ///
    /// # Errors
    /// Unreadable or invalid model files, an unknown packing or preset, a model deeper than the
    /// largest preset.
    pub fn load(cfg: &ServedModelConfig, limits: &InferenceConfig) -> Result<Self> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| InferenceError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let json = read(&cfg.path)?;
        let json = String::from_utf8(json).map_err(|e| InferenceError::Read {
            path: cfg.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let kind = ModelKind::detect(&json, &cfg.path)?;
        let weights = read(&cfg.path.with_extension("safetensors"))?;
        let loading = || format!("loading model {}", cfg.path.display());
        match kind {
            ModelKind::Stgcn => {
                let model = stgcn::StGcn::from_json_and_safetensors(&json, &weights)
                    .map_err(|e| InferenceError::model(loading(), e))?;
                Self::new(cfg, &model, limits)
            }
            ModelKind::Cnn => {
                let model = ml::models::cnn::CnnModel::from_json_and_safetensors(&json, &weights)
                    .map_err(|e| InferenceError::model(loading(), e))?;
                Self::new_cnn(cfg, &model, limits)
            }
        }
    }

    /// Compiles an in-memory model under the settings of `cfg` (its `path` is not read).
    ///
    /// # Errors
    /// An unknown packing or preset, a model deeper than the largest preset, a CNN `layout`.
    pub fn new(
        cfg: &ServedModelConfig,
        model: &stgcn::StGcn,
        limits: &InferenceConfig,
    ) -> Result<Self> {
        if let Some(l) = &cfg.layout {
            return Err(InferenceError::Config(format!(
                "model {:?}: layout = {l:?} is for CNN models; an ST-GCN takes `packing`",
                cfg.name
            )));
        }
        let choice = packing(cfg)?;
        let folded = model.fold();
        let use_dense = DenseLayout::applies(&folded);
        let (slots, packing) = slots_for(&folded, choice);
        let (spec, params) = match &cfg.preset {
            None if use_dense => {
                let depth = hegcn::level_plan_unfused(&folded)?.depth;
                let slots = DenseLayout::period_for(&folded).max(slots);
                hegcn::smallest_params(depth, slots, packing)?
            }
            None => {
                let depth = hegcn::level_plan(&folded)?.depth;
                hegcn::smallest_params(depth, slots, packing)?
            }
            Some(name) => {
                let p = named_preset(cfg, name)?;
                (hegcn::ParamSpec::of_preset(&p), p.build()?)
            }
        };
        let (he, plan) = match choice {
            // A single pose is answered by the dense program; `he` only provides levels.
            PackingChoice::Planned if !use_dense => {
                let (he, plan, secs) = super::planned::compile(&cfg.name, &folded, &params)?;
                (he, Some((plan, secs)))
            }
            _ => {
                let he = HeStgcn::compile(&folded, packing, &params).map_err(|e| {
                    InferenceError::model(
                        format!("compiling model {:?} for {}", cfg.name, spec.name()),
                        e,
                    )
                })?;
                (he, None)
            }
        };
        let dense = match use_dense {
            true => Some(Box::new(DenseStgcn::compile(&folded, &params).map_err(
                |e| {
                    InferenceError::model(
                        format!("compiling model {:?} densely for {}", cfg.name, spec.name()),
                        e,
                    )
                },
            )?)),
            false => None,
        };
        he.set_lockstep_budget((limits.lockstep_mib << 20).max(1));
        let n = folded.num_classes;
        let mut class_names = model.config().class_names.clone();
        if class_names.len() != n {
            class_names = (0..n).map(|i| format!("class{i}")).collect();
        }
        // Dense: each step at the highest level the pass rotates by it at; the packed layouts
        // announce the input level for every step.
        let keys: Vec<(i64, usize)> = match &dense {
            Some(d) => d.rotation_levels(),
            None => at_level(&he.rotation_steps(), he.plan().depth),
        };
        let needed = galois_levels(&params, &keys);
        let flood = checked_flood(limits)?;
        let flood_sd = he
            .logit_flood(&flood)
            .slot_error_sd(params.n(), params.default_scale());
        let key_bytes = session_key_bytes(&params, needed.len(), he.output_level());
        let info = ModelInfo {
            name: cfg.name.clone(),
            preset: spec.name(),
            log_n: params.log_n().0,
            q_primes: params.q_primes().to_vec(),
            p_primes: params.p_primes().to_vec(),
            // A dense model spends one level per map (`level_plan_unfused`), the packed
            // layouts fuse the maps around pruned sites (`hegcn::open_maps`).
            input_level: dense.as_ref().map_or(he.plan().depth, |d| d.plan().depth) as u32,
            output_level: he.output_level() as u32,
            flood_sd,
            // Zero slots for a dense model: clients without `dense` refuse it.
            input_layout: match &dense {
                Some(_) => hegcn::Layout {
                    slots: 0,
                    ..he.input_layout().clone()
                },
                None => he.input_layout().clone(),
            },
            input_affine: folded
                .input_affine
                .as_ref()
                .map(|(s, t)| (s.iter().copied().collect(), t.iter().copied().collect())),
            rotation_steps: keys.iter().map(|&(s, _)| s).collect(),
            rotation_levels: keys.iter().map(|&(_, l)| l as u32).collect(),
            class_names,
            // The service's bound, set when the service is made from all its models.
            max_key_bytes: limits
                .max_key_bytes
                .unwrap_or_else(|| default_max_key_bytes(std::iter::once(key_bytes))),
            session_ttl_s: limits.session_ttl_s,
            params: spec.preset().is_none().then_some(spec),
            dense: dense.as_ref().map(|d| d.layout().clone()),
            cnn: None,
        };
        let sm = Self {
            params,
            engine: Engine::Stgcn {
                he: Box::new(he),
                dense,
            },
            info,
            flood,
            needed,
            key_bytes,
            plan,
        };
        sm.set_plaintext_cache_budget(limits.plaintext_cache_mib << 20);
        Ok(sm)
    }

    /// Input ciphertexts a request carries.
    pub fn input_cts(&self) -> usize {
        self.info.input_cts()
    }

    /// The CKKS parameters of the model's sessions.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// Level of the returned logits (the session's public key is at this level).
    pub fn output_level(&self) -> usize {
        self.info.output_level as usize
    }

    /// The ST-GCN program (tests); panics for a CNN.
    #[cfg(test)]
    pub(super) fn stgcn(&self) -> &HeStgcn {
        match &self.engine {
            Engine::Stgcn { he, .. } => he,
            Engine::Lola(_) | Engine::Batch(_) | Engine::Matrix(_) => {
                panic!("model {:?} is a CNN", self.info.name)
            }
        }
    }

    /// Whether requests are evaluated in the dense single-pose layout.
    pub fn is_dense(&self) -> bool {
        matches!(self.engine, Engine::Stgcn { dense: Some(_), .. })
    }

    /// Bounds the memory of the encoded weights kept between requests (bytes); a CNN encodes
    /// its weights once when compiled and keeps them (no cache).
    pub(super) fn set_plaintext_cache_budget(&self, bytes: usize) {
        match &self.engine {
            Engine::Stgcn { dense: Some(d), .. } => d.set_plaintext_cache_budget(bytes),
            Engine::Stgcn { he, .. } => he.set_plaintext_cache_budget(bytes),
            Engine::Lola(_) | Engine::Batch(_) | Engine::Matrix(_) => {}
        }
    }

    /// What clients are told about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Galois keys a session needs.
    pub fn galois_key_count(&self) -> usize {
        self.needed.len()
    }

    /// Bytes of the keys a session of this model uploads.
    pub fn key_bytes(&self) -> u64 {
        self.key_bytes
    }

    /// Size, bound, hits and misses of the model's plaintext cache (the encoded weights kept
    /// between requests); all zero for a CNN (no cache: its weights are encoded once).
    pub fn plaintext_cache_stats(&self) -> hegcn::PlaintextCacheStats {
        match &self.engine {
            Engine::Stgcn { dense: Some(d), .. } => d.plaintext_cache_stats(),
            Engine::Stgcn { he, .. } => he.plaintext_cache_stats(),
            Engine::Lola(_) | Engine::Batch(_) | Engine::Matrix(_) => Default::default(),
        }
    }
}

/// Bytes of a session's uploads: the relinearization key, `galois` Galois keys and the public
/// key at `output_level`.
pub(super) fn session_key_bytes(params: &CkksParams, galois: usize, output_level: usize) -> u64 {
    required_key_bytes(params, galois).saturating_add(max_public_key_bytes(params, output_level))
}

/// The Galois elements (identity left out) of the rotation `keys` (step, level) under
/// `params`, each with the highest level of its steps.
pub(super) fn galois_levels(params: &CkksParams, keys: &[(i64, usize)]) -> BTreeMap<u64, usize> {
    crate::infer::keys_by_element(params, keys)
        .into_iter()
        .map(|(g, (_, level))| (g, level))
        .collect()
}

/// Every step of `steps` at `level`.
pub(super) fn at_level(steps: &[i64], level: usize) -> Vec<(i64, usize)> {
    steps.iter().map(|&s| (s, level)).collect()
}

/// The packings a served ST-GCN may name (`packing = …` in `[[inference.models]]`, `party
/// deploy --packing`).
pub const PACKINGS: [&str; 3] = ["ama", "channel-major", "planned"];

/// What `packing = …` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PackingChoice {
    /// One packing for every stage.
    Uniform(Packing),
    /// The packing planner's per-stage plan (module `planned`).
    Planned,
}

/// The packing `cfg` names.
fn packing(cfg: &ServedModelConfig) -> Result<PackingChoice> {
    match cfg.packing.as_str() {
        "ama" => Ok(PackingChoice::Uniform(Packing::Ama)),
        "channel-major" => Ok(PackingChoice::Uniform(Packing::ChannelMajor)),
        "planned" => Ok(PackingChoice::Planned),
        p => Err(InferenceError::Config(format!(
            "model {:?}: unknown packing {p:?} ({})",
            cfg.name,
            PACKINGS.join(", ")
        ))),
    }
}

/// The slots the parameters must hold: the named packing's, or for a plan the larger of the
/// two packings' (every plan of the planner then fits).
fn slots_for(folded: &stgcn::FoldedModel, choice: PackingChoice) -> (usize, Packing) {
    match choice {
        PackingChoice::Uniform(p) => (hegcn::slots_needed(folded, p), p),
        PackingChoice::Planned => [Packing::Ama, Packing::ChannelMajor]
            .into_iter()
            .map(|p| (hegcn::slots_needed(folded, p), p))
            .max_by_key(|(s, _)| *s)
            .expect("two packings"),
    }
}

/// The 128-bit preset `name` that `cfg` names.
pub(super) fn named_preset(cfg: &ServedModelConfig, name: &str) -> Result<ckks::Preset> {
    ckks::presets::ALL_128BIT
        .iter()
        .find(|p| p.name == name)
        .copied()
        .ok_or_else(|| {
            InferenceError::Config(format!(
                "model {:?}: {name:?} is not a 128-bit preset ({})",
                cfg.name,
                ckks::presets::ALL_128BIT.map(|p| p.name).join(", ")
            ))
        })
}

/// The flood of `[inference]`, its error bound and width checked.
pub(super) fn checked_flood(limits: &InferenceConfig) -> Result<hegcn::FloodConfig> {
    let flood = limits.flood();
    let eps = flood.eval_error_bound;
    if !(eps.is_finite() && eps > 0.0 && eps < 1.0) {
        return Err(InferenceError::Config(format!(
            "[inference] eval_error_bound = {eps}: must be finite, above 0 and below 1"
        )));
    }
    let max_bits = ckks::sanitize::MAX_FLOOD_WIDTH_BITS;
    if flood.flood_bits > max_bits {
        return Err(InferenceError::Config(format!(
            "[inference] flood_bits = {}: at most {max_bits}",
            flood.flood_bits
        )));
    }
    Ok(flood)
}

/// The serialized reply of one forward pass.
pub(super) struct Evaluated {
    pub(super) bytes: Vec<Vec<u8>>,
    pub(super) positions: Vec<(usize, usize)>,
    /// Seconds of the forward pass and the sanitization together.
    pub(super) secs: f64,
    /// Seconds of the sanitization alone.
    pub(super) sanitize: f64,
    pub(super) counts: ckks::OpCounts,
}

impl ServedModel {
    /// Runs the model (the head masks its output to the logit slots), sanitizes the logits with
    /// the client's public key (fresh `c1`, flooded noise) and serializes them.
    pub(super) fn evaluate(
        &self,
        eval: &Evaluator,
        pk: &PublicKey,
        cts: Vec<ckks::Ciphertext>,
    ) -> Result<Evaluated> {
        let c0 = eval.counters();
        let t0 = Instant::now();
        let (he, dense) = match &self.engine {
            Engine::Stgcn { he, dense } => (he, dense),
            Engine::Lola(cnn) => return self.evaluate_lola(cnn, eval, pk, cts),
            Engine::Batch(cnn) => return self.evaluate_batch(cnn, eval, pk, cts),
            Engine::Matrix(cnn) => return self.evaluate_matrix(cnn, eval, pk, cts),
        };
        let logits = match dense {
            Some(d) => {
                let [x] = <[ckks::Ciphertext; 1]>::try_from(cts).map_err(|c| {
                    hegcn::HeGcnError::Shape {
                        what: "dense input ciphertexts",
                        expected: 1,
                        found: c.len(),
                    }
                })?;
                d.forward(eval, &x)?
            }
            None => {
                let layout = he.input_layout().clone();
                he.forward(eval, &PackedTensor { cts, layout })?.0
            }
        };
        let counts = hegcn::counts_diff(&c0, &eval.counters());
        let t1 = Instant::now();
        let logits = he.sanitize_logits(eval, &logits, pk, &self.flood)?;
        let sanitize = t1.elapsed().as_secs_f64();
        let bytes = logits
            .cts
            .iter()
            .map(|c| c.to_bytes(&self.params))
            .collect::<ckks::Result<Vec<_>>>()?;
        Ok(Evaluated {
            bytes,
            positions: logits.positions,
            secs: t0.elapsed().as_secs_f64(),
            sanitize,
            counts,
        })
    }
}
