//! CNN models served by the inference endpoint (`ml::models::cnn`, evaluated by `hecnn`): the
//! layout a model entry names (`lola`, the default: one image per request as one ciphertext
//! per kernel tap, `hecnn::lola`; `cryptonets` or `batch`: up to `N/2` images per request, one
//! ciphertext per pixel, `hecnn::batch`; `matrix`: up to `N/2 / 1024` images per request in
//! one ciphertext, `hecnn::matrix`; `auto`: the packing planner's choice for latency,
//! `hecnn::planner`), the smallest 128-bit preset that leaves the layout's
//! depth (or the named one), the Galois keys of the layout's rotations only (none in the batch
//! layout), what clients are told ([`CnnInfo`]: the architecture, never the weights) and one
//! sanitized forward pass.
//!
//! **Security model** (semi-honest, as for ST-GCNs, see [`super`]): the party sees the client's
//! ciphertexts (IND-CPA under RLWE) and learns their count and sizes, which the public
//! architecture and layout fix, and the timing; in the batch layout it does not learn how many
//! slots hold images. The client learns the logits, sanitized with the session's public key and
//! flooded like the ST-GCN logits (`hecnn::sanitize`), and the architecture announced in
//! [`CnnInfo`]: in the LoLa layout every slot of the one returned ciphertext holds a logit or an
//! exact zero; in the batch layout the slots it left empty hold the logits of an all-zero image,
//! which it could query anyway (`hecnn::batch`); in the matrix layout every slot but the class
//! slots of each image's block holds an exact zero, and the blocks it left empty hold the
//! logits of an all-zero image (`hecnn::matrix`).

use super::error::{InferenceError, Result};
use super::model::{
    at_level, checked_flood, default_max_key_bytes, galois_levels, named_preset, session_key_bytes,
    Engine, Evaluated, ServedModel,
};
use crate::infer::msg::{CnnInfo, ModelInfo};
use crate::server::config::{InferenceConfig, ServedModelConfig};
use ckks::{Evaluator, PublicKey};
use hecnn::{
    matrix::EncryptedMatrix, BatchCnn, CnnLayout, EncryptedBatch, EncryptedImage, LayoutKind,
    LolaCnn, MatrixCnn,
};
use ml::models::cnn::CnnModel;
use std::time::Instant;

/// The layouts a CNN model entry may name.
const LAYOUTS: &str = "lola, cryptonets (or batch), matrix, auto";

/// `layout = "auto"`: the packing planner's choice for the latency of one image
/// (`hecnn::planner`, priced with a probe of this machine's op costs on all its cores: a few
/// seconds at start), with the dense layers' baby-step/giant-step splits of a single-image
/// choice. The planner picks its own preset, so `preset` may not be named beside it.
fn planned_layout(
    cfg: &ServedModelConfig,
    model: &CnnModel,
) -> Result<(LayoutKind, Option<[usize; 2]>)> {
    use hecnn::planner::{candidates, choose, probe_costs, Objective};
    if let Some(p) = &cfg.preset {
        return Err(InferenceError::Config(format!(
            "model {:?}: layout \"auto\" chooses its preset; remove preset = {p:?}",
            cfg.name
        )));
    }
    let planning = |e| InferenceError::model(format!("planning model {:?}", cfg.name), e);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The layouts this service serves (the tile layout is priced by `hecnn::planner` but not
    // served here).
    let cands: Vec<_> = candidates(model)
        .map_err(planning)?
        .into_iter()
        .filter(|c| matches!(c.layout, LayoutKind::Lola | LayoutKind::Batch))
        .collect();
    let costs = probe_costs(&cands, &[threads], 5).map_err(planning)?;
    let plan = choose(&cands, &costs, Objective::Latency).map_err(planning)?;
    let chosen = plan.chosen();
    let c = &chosen.candidate;
    tracing::info!(
        model = %cfg.name,
        plan = %c.label(),
        estimate_s = chosen.total_s,
        "CNN layout chosen by the planner"
    );
    Ok((c.layout, <[usize; 2]>::try_from(c.splits.as_slice()).ok()))
}

impl ServedModel {
    /// Compiles an in-memory CNN under the settings of `cfg` (its `path` is not read; its
    /// `packing` is for ST-GCNs and ignored).
    ///
    /// # Errors
    /// An unknown layout or preset, a preset too shallow for the layout, a model whose
    /// features do not fit one ciphertext.
    pub fn new_cnn(
        cfg: &ServedModelConfig,
        model: &CnnModel,
        limits: &InferenceConfig,
    ) -> Result<Self> {
        let (layout, splits) = match cfg.layout.as_deref().unwrap_or("lola") {
            "lola" => (LayoutKind::Lola, None),
            "cryptonets" | "batch" => (LayoutKind::Batch, None),
            "matrix" => (LayoutKind::Matrix, None),
            "auto" => planned_layout(cfg, model)?,
            l => {
                return Err(InferenceError::Config(format!(
                    "model {:?}: unknown CNN layout {l:?} (served: {LAYOUTS})",
                    cfg.name
                )))
            }
        };
        let preset = match &cfg.preset {
            Some(name) => named_preset(cfg, name)?,
            None => hecnn::choose_preset(layout.name(), hecnn::LOLA_DEPTH.max(hecnn::BATCH_DEPTH))?,
        };
        let params = preset.build()?;
        let compiling = |e| {
            InferenceError::model(
                format!("compiling model {:?} for {}", cfg.name, preset.name),
                e,
            )
        };
        let flood = checked_flood(limits)?;
        let (engine, steps, input_level, output_level, logit_flood) = match layout {
            LayoutKind::Batch => {
                let he = BatchCnn::new(model, &params).map_err(compiling)?;
                let f = he.logit_flood(&flood);
                let levels = (he.input_level(), he.output_level());
                (Engine::Batch(Box::new(he)), vec![], levels.0, levels.1, f)
            }
            LayoutKind::Matrix => {
                let he = MatrixCnn::new(model, &params).map_err(compiling)?;
                let (f, steps) = (he.logit_flood(&flood), he.rotation_steps());
                let levels = (he.input_level(), he.output_level());
                (Engine::Matrix(Box::new(he)), steps, levels.0, levels.1, f)
            }
            _ => {
                let he = match splits {
                    Some(s) => LolaCnn::with_splits(model, &params, s),
                    None => LolaCnn::new(model, &params),
                }
                .map_err(compiling)?;
                let (f, steps) = (he.logit_flood(&flood), he.rotation_steps());
                let levels = (he.input_level(), he.output_level());
                (Engine::Lola(Box::new(he)), steps, levels.0, levels.1, f)
            }
        };
        let keys = at_level(&steps, input_level);
        let needed = galois_levels(&params, &keys);
        let flood_sd = logit_flood.slot_error_sd(params.n(), params.default_scale());
        let key_bytes = session_key_bytes(&params, needed.len(), output_level);
        let spec = &model.spec;
        let info = ModelInfo {
            name: cfg.name.clone(),
            preset: preset.name.to_string(),
            log_n: params.log_n().0,
            q_primes: params.q_primes().to_vec(),
            p_primes: params.p_primes().to_vec(),
            input_level: input_level as u32,
            output_level: output_level as u32,
            flood_sd,
            input_layout: no_stgcn_layout(),
            input_affine: None,
            rotation_steps: steps,
            rotation_levels: vec![input_level as u32; keys.len()],
            class_names: class_names(spec.classes),
            max_key_bytes: limits
                .max_key_bytes
                .unwrap_or_else(|| default_max_key_bytes(std::iter::once(key_bytes))),
            session_ttl_s: limits.session_ttl_s,
            params: None,
            dense: None,
            cnn: Some(CnnInfo {
                layout,
                spec: spec.clone(),
            }),
        };
        Ok(Self {
            engine,
            params,
            info,
            flood,
            needed,
            key_bytes,
            plan: None,
        })
    }

    /// One request in the LoLa layout: the tap ciphertexts through the network, the logit
    /// ciphertext sanitized and serialized; class `c` is read from slot `c`.
    pub(super) fn evaluate_lola(
        &self,
        he: &LolaCnn,
        eval: &Evaluator,
        pk: &PublicKey,
        taps: Vec<ckks::Ciphertext>,
    ) -> Result<Evaluated> {
        let c0 = eval.counters();
        let t0 = Instant::now();
        let logits = he.forward(eval, &EncryptedImage { taps })?;
        let counts = hegcn::counts_diff(&c0, &eval.counters());
        let t1 = Instant::now();
        let logits = he.sanitize_logits(eval, &logits, pk, &self.flood)?;
        let sanitize = t1.elapsed().as_secs_f64();
        Ok(Evaluated {
            bytes: vec![logits.ct.to_bytes(&self.params)?],
            positions: (0..he.model().spec.classes).map(|c| (0, c)).collect(),
            secs: t0.elapsed().as_secs_f64(),
            sanitize,
            counts,
        })
    }

    /// One request in the batch layout: the pixel ciphertexts through the network (every slot
    /// is evaluated: the party does not know how many hold images), the class ciphertexts
    /// sanitized and serialized; class `c` of image `j` is in slot `j` of ciphertext `c`, the
    /// positions name image 0's.
    pub(super) fn evaluate_batch(
        &self,
        he: &BatchCnn,
        eval: &Evaluator,
        pk: &PublicKey,
        pixels: Vec<ckks::Ciphertext>,
    ) -> Result<Evaluated> {
        let c0 = eval.counters();
        let t0 = Instant::now();
        let images = he.batch_capacity();
        let logits = he.forward(eval, &EncryptedBatch { pixels, images })?;
        let counts = hegcn::counts_diff(&c0, &eval.counters());
        let t1 = Instant::now();
        let logits = he.sanitize_logits(eval, &logits, pk, &self.flood)?;
        let sanitize = t1.elapsed().as_secs_f64();
        let bytes = logits
            .classes
            .iter()
            .map(|c| c.to_bytes(&self.params))
            .collect::<ckks::Result<Vec<_>>>()?;
        Ok(Evaluated {
            positions: (0..bytes.len()).map(|c| (c, 0)).collect(),
            bytes,
            secs: t0.elapsed().as_secs_f64(),
            sanitize,
            counts,
        })
    }
}

impl ServedModel {
    /// One request in the matrix layout: the batch ciphertext through the network (every block
    /// is evaluated: the party does not know how many hold images), the logit ciphertext
    /// sanitized and serialized; class `c` of image `n` is in slot `n·block + c`, the
    /// positions name image 0's.
    pub(super) fn evaluate_matrix(
        &self,
        he: &MatrixCnn,
        eval: &Evaluator,
        pk: &PublicKey,
        cts: Vec<ckks::Ciphertext>,
    ) -> Result<Evaluated> {
        let [ct] =
            <[ckks::Ciphertext; 1]>::try_from(cts).map_err(|c| hecnn::HeCnnError::Shape {
                what: "matrix input ciphertexts",
                expected: 1,
                found: c.len(),
            })?;
        let c0 = eval.counters();
        let t0 = Instant::now();
        let images = he.batch_capacity();
        let logits = he.forward(eval, &EncryptedMatrix { ct, images })?;
        let counts = hegcn::counts_diff(&c0, &eval.counters());
        let t1 = Instant::now();
        let logits = he.sanitize_logits(eval, &logits, pk, &self.flood)?;
        let sanitize = t1.elapsed().as_secs_f64();
        Ok(Evaluated {
            bytes: vec![logits.ct.to_bytes(&self.params)?],
            positions: (0..he.model().spec.classes).map(|c| (0, c)).collect(),
            secs: t0.elapsed().as_secs_f64(),
            sanitize,
            counts,
        })
    }
}

/// The ST-GCN input layout a CNN's model info carries: zero slots, which clients that do not
/// know [`ModelInfo::cnn`] refuse (`params_for`: "layout slots").
fn no_stgcn_layout() -> hegcn::Layout {
    hegcn::Layout {
        packing: hegcn::Packing::Ama,
        channels: 0,
        nodes: 0,
        persons: 0,
        frames: 0,
        dilation: 0,
        frame_stride: 0,
        block: 0,
        slots: 0,
    }
}

/// Class names of a CNN: the digits for ten classes (MNIST), `class<i>` otherwise.
fn class_names(classes: usize) -> Vec<String> {
    (0..classes)
        .map(|c| match classes {
            10 => c.to_string(),
            _ => format!("class{c}"),
        })
        .collect()
}
