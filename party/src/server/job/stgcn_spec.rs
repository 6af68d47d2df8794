//! Checks an ST-GCN job against its dataset and builds the public model it starts from. Each
//! party runs these checks on its own copy of the job (P1 does not rely on P0's), before any
//! share is touched.
//!
//! The dataset must be a skeleton dataset (its manifest carries a [`TensorMeta`]) whose rows are
//! `C·T·V·M` coordinates followed by the label. The starting model is either the owner's public
//! initial model (`init`: loaded, every tensor finite, its configuration matching the dataset)
//! or a published architecture built from the dataset's dimensions and skeleton graph with
//! public Kaiming weights from `init_seed`. Activations must be `x²` or the trainable
//! polynomial: a ReLU would need a secure comparison per activation value and could not be
//! served under CKKS afterwards. Security model: none needed — everything checked here is
//! public (shapes, names, hyper-parameters, the public initial model).

use super::{JobError, Result};
use crate::proto::{InitModel, JobSpec, StgcnSpec, TensorMeta};
use crate::store::Manifest;
use datasets::skeleton::Graph;
use stgcn::{ActivationKind, Architecture, GraphSpec, StGcn, StGcnConfig};

/// Most scalars (all tensors of `StGcn::tensors()`, BN statistics included) an ST-GCN job may
/// train: every one is a shared value updated by 2PC products at every step.
pub const MAX_STGCN_PARAMS: usize = 2_000_000;
/// Most epochs an ST-GCN job may run.
pub const MAX_STGCN_EPOCHS: u64 = 1_000;
/// Most clips a job's BN re-calibration may use: its one chunk of preprocessing grows with
/// them, ~17.6 MB per clip per party at the committed Mocap-15 size (STGCN-3-128 / 4, T = 32,
/// exact truncation: 2.25 GB for 128 clips, `cargo run --release -p ml --example stgcn_step
/// -- 128 16 exact`).
pub const MAX_CALIBRATION_CLIPS: u32 = 256;

/// A checked ST-GCN job: the public starting model and the dataset's clip dimensions.
#[derive(Debug, Clone)]
pub struct StgcnJob {
    /// The model training starts from (public).
    pub model: StGcn,
    /// `[C, T, V, M]` of the dataset's clips.
    pub dims: [usize; 4],
    /// Number of classes of the model's output.
    pub classes: usize,
}

fn invalid<T>(msg: String) -> Result<T> {
    Err(JobError::Invalid(msg))
}

/// Checks `spec` (an ST-GCN job with architecture `s`) against the dataset `m` and builds its
/// starting model.
///
/// # Errors
/// [`JobError::Invalid`] naming the dataset, the offending value and its limit.
pub fn validate(spec: &JobSpec, s: &StgcnSpec, m: &Manifest) -> Result<StgcnJob> {
    let (t, dims) = skeleton_dims(m)?;
    check_hyper(spec, s, m)?;
    let model = match &s.init {
        Some(init) => from_init(init, s)?,
        None => from_scratch(s, t, dims)?,
    };
    check_model(&model, t, dims, &m.name)?;
    let classes = model.config().num_classes;
    Ok(StgcnJob {
        model,
        dims,
        classes,
    })
}

/// The tensor metadata of a skeleton dataset and its `[C, T, V, M]`, checked against the
/// dataset's columns and label column.
fn skeleton_dims(m: &Manifest) -> Result<(&TensorMeta, [usize; 4])> {
    let Some(t) = &m.tensor else {
        return invalid(format!(
            "dataset {:?} is a table, not a skeleton dataset: an ST-GCN job needs clips uploaded \
             with their (C, T, V, M) shape and skeleton graph",
            m.name
        ));
    };
    if let Some(i) = t.dims.iter().position(|&d| d == 0) {
        return invalid(format!(
            "dataset {:?}: dimension {} of (C, T, V, M) = {:?} is 0",
            m.name, i, t.dims
        ));
    }
    let features = t.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    if features.and_then(|f| f.checked_add(1)) != Some(m.cols) {
        return invalid(format!(
            "dataset {:?}: (C, T, V, M) = {:?} needs {} columns (coordinates and the label), \
             the dataset has {}",
            m.name,
            t.dims,
            features.map_or("more than 2^64".into(), |f| (f + 1).to_string()),
            m.cols
        ));
    }
    if m.label_column + 1 != m.cols {
        return invalid(format!(
            "dataset {:?}: the label must be the last column ({}), not column {}",
            m.name,
            m.cols - 1,
            m.label_column
        ));
    }
    let d = t.dims.map(|x| x as usize);
    Ok((t, d))
}

/// The skeleton graph a dataset names.
///
/// # Errors
/// [`JobError::Invalid`] for an unknown name, listing the known ones.
pub fn skeleton_graph(name: &str) -> Result<Graph> {
    Graph::by_name(name).or_else(|e| invalid(e.to_string()))
}

/// Parses an activation name; ReLU is refused with the reason.
///
/// # Errors
/// [`JobError::Invalid`] for `relu` and unknown names.
pub fn parse_activation(name: &str) -> Result<ActivationKind> {
    match name {
        "square" | "x2" | "x^2" => Ok(ActivationKind::Square),
        "poly" => Ok(ActivationKind::Poly),
        "relu" => invalid(
            "activation relu is refused: in 2PC every ReLU value costs a secure comparison at \
             every step, and the trained model could not be served under CKKS; use square (x²) \
             or poly (a·x² + b·x + c)"
                .into(),
        ),
        other => invalid(format!("unknown activation {other:?} (square, poly)")),
    }
}

/// Parses a published architecture name (`STGCN-3-128`, `STGCN-3-256`, `STGCN-6-256`).
///
/// # Errors
/// [`JobError::Invalid`] listing the known names.
pub fn parse_architecture(name: &str) -> Result<Architecture> {
    let all = [
        Architecture::Stgcn3x128,
        Architecture::Stgcn3x256,
        Architecture::Stgcn6x256,
    ];
    match all
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    {
        Some(a) => Ok(a),
        None => invalid(format!(
            "unknown architecture {name:?} (STGCN-3-128, STGCN-3-256, STGCN-6-256)"
        )),
    }
}

/// The optimizer's and the schedule's values.
fn check_hyper(spec: &JobSpec, s: &StgcnSpec, m: &Manifest) -> Result<()> {
    let lr = spec.learning_rate;
    if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
        return invalid(format!("learning rate {lr} outside (0, 1]"));
    }
    if !(s.momentum.is_finite() && (0.0..1.0).contains(&s.momentum)) {
        return invalid(format!("momentum {} outside [0, 1)", s.momentum));
    }
    if !(s.weight_decay.is_finite() && (0.0..1.0).contains(&s.weight_decay)) {
        return invalid(format!("weight decay {} outside [0, 1)", s.weight_decay));
    }
    if s.calibration_clips > MAX_CALIBRATION_CLIPS {
        return invalid(format!(
            "{} calibration clips above the limit {MAX_CALIBRATION_CLIPS}",
            s.calibration_clips
        ));
    }
    if !(1..=MAX_STGCN_EPOCHS).contains(&spec.epochs) {
        return invalid(format!(
            "{} epochs outside 1..={MAX_STGCN_EPOCHS}",
            spec.epochs
        ));
    }
    if spec.batch_size == 0 || spec.batch_size > m.rows {
        return invalid(format!(
            "batch size {} outside 1..={} (the clips of dataset {:?})",
            spec.batch_size, m.rows, m.name
        ));
    }
    Ok(())
}

/// The owner's public initial model, checked against the job's other fields.
fn from_init(init: &InitModel, s: &StgcnSpec) -> Result<StGcn> {
    let model = StGcn::from_json_and_safetensors(&init.config_json, &init.safetensors)
        .map_err(|e| JobError::Invalid(format!("the initial model does not load: {e}")))?;
    let cfg = model.config();
    if !s.architecture.is_empty() {
        let want = parse_architecture(&s.architecture)?;
        if cfg.architecture != Some(want) {
            return invalid(format!(
                "the initial model is {}, the job names {}",
                cfg.architecture
                    .map_or("a custom architecture", |a| a.name()),
                want.name()
            ));
        }
    }
    if !s.activation.is_empty() && parse_activation(&s.activation)? != cfg.activation {
        return invalid(format!(
            "the initial model's activation is {:?}, the job names {:?}",
            cfg.activation, s.activation
        ));
    }
    if let Some(k) = s.classes {
        if k as usize != cfg.num_classes {
            return invalid(format!(
                "the initial model has {} classes, the job names {k}",
                cfg.num_classes
            ));
        }
    }
    Ok(model)
}

/// A published architecture on the dataset's dimensions and graph, with public weights from
/// `init_seed`.
fn from_scratch(s: &StgcnSpec, t: &TensorMeta, dims: [usize; 4]) -> Result<StGcn> {
    let arch = parse_architecture(&s.architecture)?;
    let div = s.width_divisor as usize;
    let widths: Vec<usize> = arch.blocks(1, 1).iter().map(|b| b.out_channels).collect();
    if div == 0 || widths.iter().any(|w| w % div != 0) {
        return invalid(format!(
            "width divisor {div} must be at least 1 and divide every width of {} ({widths:?})",
            arch.name()
        ));
    }
    let activation = parse_activation(&s.activation)?;
    let classes = scratch_classes(s, t)?;
    let g = skeleton_graph(&t.graph)?;
    if g.num_nodes != dims[2] {
        return invalid(format!(
            "graph {:?} has {} nodes but the clips have V = {}",
            t.graph, g.num_nodes, dims[2]
        ));
    }
    let graph = GraphSpec::from_edges(&t.graph, g.num_nodes, &g.edges, g.center)
        .map_err(|e| JobError::Invalid(format!("graph {:?}: {e}", t.graph)))?;
    let adjacency = graph
        .adjacency_array()
        .map_err(|e| JobError::Invalid(format!("graph {:?}: {e}", t.graph)))?;
    let [c, frames, _, m] = dims;
    let mut cfg = StGcnConfig::new(arch, div, c, frames, &adjacency, classes);
    cfg.graph = graph;
    cfg.num_persons = m;
    cfg.activation = activation;
    if t.class_names.len() == classes {
        cfg.class_names = t.class_names.clone();
    }
    StGcn::new(cfg, s.init_seed)
        .map_err(|e| JobError::Invalid(format!("building {}: {e}", arch.name())))
}

/// The class count from scratch: the job's `classes`, else the dataset's class names.
fn scratch_classes(s: &StgcnSpec, t: &TensorMeta) -> Result<usize> {
    let named = t.class_names.len();
    let k = match (s.classes, named) {
        (Some(k), 0) => k as usize,
        (Some(k), n) if k as usize >= n => k as usize,
        (Some(k), n) => {
            return invalid(format!(
                "the job names {k} classes but the dataset has {n} class names"
            ))
        }
        (None, 0) => {
            return invalid(
                "the dataset has no class names: give the number of classes (--classes)".into(),
            )
        }
        (None, n) => n,
    };
    if k < 2 {
        return invalid(format!("{k} classes: a classifier needs at least 2"));
    }
    Ok(k)
}

/// The starting model against the dataset: input shape, graph size, classes, activations, size.
fn check_model(model: &StGcn, t: &TensorMeta, dims: [usize; 4], name: &str) -> Result<()> {
    let cfg = model.config();
    let [c, frames, v, m] = dims;
    let have = [
        cfg.in_channels,
        cfg.num_frames,
        cfg.num_nodes(),
        cfg.num_persons,
    ];
    if have != [c, frames, v, m] {
        return invalid(format!(
            "the model expects (C, T, V, M) = {have:?}, dataset {name:?} has {:?}",
            t.dims
        ));
    }
    if cfg.activation == ActivationKind::Relu {
        parse_activation("relu")?;
    }
    if cfg.num_classes < 2 || cfg.num_classes < t.class_names.len() {
        return invalid(format!(
            "the model has {} classes, dataset {name:?} has {} class names (at least 2 needed)",
            cfg.num_classes,
            t.class_names.len()
        ));
    }
    ml::models::stgcn::StgcnShape::from_model(model)
        .map_err(|e| JobError::Invalid(format!("the model cannot be trained in 2PC: {e}")))?;
    let params: usize = model.tensors().iter().map(|x| x.value.len()).sum();
    if params > MAX_STGCN_PARAMS {
        return invalid(format!(
            "the model has {params} parameters, above the limit of {MAX_STGCN_PARAMS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "stgcn_spec_tests.rs"]
mod tests;
