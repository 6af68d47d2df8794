//! Mini-batch SGD with momentum and weight decay (the ST-GCN recipe, Yan et al. 2018 §4.2),
//! learning-rate schedules, the training loop and evaluation.

use std::time::Instant;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayView5, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::model::Gradients;
use super::params::TensorRole;
use super::{ModelError, Result, StGcn};

/// Learning-rate schedule over epochs.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// Constant learning rate.
    Constant,
    /// Cosine annealing from the base rate to 0 over the run: `lr·(1 + cos(π·e/E))/2`.
    Cosine,
    /// Multiply by `gamma` at each listed epoch (ST-GCN: ×0.1 at epochs 10 and 50).
    Step {
        /// Epochs (0-based) at which the rate is multiplied by `gamma`.
        milestones: Vec<usize>,
        /// Factor.
        gamma: f64,
    },
}

impl LrSchedule {
    /// Learning rate of epoch `epoch` (0-based) out of `epochs`.
    pub fn rate(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let e = epochs.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / e).cos())
            }
            LrSchedule::Step { milestones, gamma } => {
                let k = milestones.iter().filter(|&&m| m <= epoch).count();
                base * gamma.powi(k as i32)
            }
        }
    }
}

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Clips per mini-batch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Base learning rate.
    pub learning_rate: f64,
    /// Momentum (PyTorch convention, `v ← μ·v + g`, `w ← w − lr·v`).
    pub momentum: f64,
    /// L2 weight decay, applied to convolution and dense weights only.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Seed of the ChaCha20 stream that shuffles the training set each epoch.
    pub seed: u64,
    /// If set, gradients are rescaled so that their global L2 norm is at most this value
    /// (polynomial-activation networks can otherwise blow up once the loss is small).
    pub clip_grad_norm: Option<f64>,
    /// Linear learning-rate warm-up over this many epochs (Goyal et al. 2017, "Accurate, large
    /// minibatch SGD", §2.2): batch `i` of the first `warmup_epochs · batches` uses
    /// `(i + 1) / (warmup_epochs · batches)` times the scheduled rate. 0 disables it.
    pub warmup_epochs: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 32,
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: LrSchedule::Cosine,
            seed: 0,
            clip_grad_norm: None,
            warmup_epochs: 0,
        }
    }
}

/// Knowledge distillation from a trained teacher (Hinton, Vinyals and Dean, "Distilling the
/// knowledge in a neural network", 2015): the loss is
/// `(1 − weight)·CE(student, labels) + weight·T²·KL(softmax(teacher/T) ‖ softmax(student/T))`
/// with temperature `T`. Used when a ReLU model's activations are replaced by `x²` and the
/// network is fine-tuned: the ReLU model's softened outputs carry how similar the classes look
/// to it, which the one-hot labels of a nearly perfectly fitted training set do not.
#[derive(Clone, Debug, PartialEq)]
pub struct Distillation {
    /// Softmax temperature `T` (> 0; Hinton et al. use 1–20).
    pub temperature: f64,
    /// Weight of the soft term, in `[0, 1]` (0: plain cross-entropy).
    pub weight: f64,
}

impl Distillation {
    /// Checks the temperature (positive, finite) and weight (in `[0, 1]`).
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(ModelError::InvalidValue {
                name: "distillation temperature",
                value: self.temperature,
                allowed: "> 0 and finite",
            });
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(ModelError::InvalidValue {
                name: "distillation weight",
                value: self.weight,
                allowed: "[0, 1]",
            });
        }
        Ok(())
    }
}

/// The per-batch callback of [`Trainer::run_epoch_with`].
pub type AfterBatch<'a> = &'a mut dyn FnMut(&mut StGcn, &Gradients) -> Result<()>;

/// SGD with momentum and weight decay; holds one velocity per tensor.
#[derive(Clone, Debug)]
pub struct Sgd {
    momentum: f64,
    weight_decay: f64,
    velocity: Vec<ArrayD<f64>>,
}

impl Sgd {
    /// A fresh optimiser for `model`.
    pub fn new(model: &StGcn, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            velocity: model
                .tensors()
                .iter()
                .map(|t| ArrayD::zeros(t.value.raw_dim()))
                .collect(),
        }
    }

    /// One update with learning rate `lr`; batch-norm running statistics are left alone.
    pub fn step(&mut self, model: &mut StGcn, grads: &Gradients, lr: f64) {
        let (mu, wd) = (self.momentum, self.weight_decay);
        for ((t, g), v) in model
            .tensors_mut()
            .iter_mut()
            .zip(grads.as_slice())
            .zip(&mut self.velocity)
        {
            if t.role == TensorRole::Buffer {
                continue;
            }
            let decay = if t.role == TensorRole::Weight {
                wd
            } else {
                0.0
            };
            ndarray::Zip::from(&mut t.value)
                .and(g)
                .and(v)
                .for_each(|w, &g, v| {
                    *v = mu * *v + g + decay * *w;
                    *w -= lr * *v;
                });
        }
    }
}

/// Summary of one training epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Learning rate of the epoch's last batch (the scheduled rate once warm-up is over).
    pub learning_rate: f64,
    /// Mean training loss over the epoch's batches (weighted by batch size).
    pub loss: f64,
    /// Training accuracy (fraction) of the training-mode forward passes.
    pub train_accuracy: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Result of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Fraction of correct top-1 predictions.
    pub accuracy: f64,
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Logits `(N, classes)`.
    pub logits: Array2<f64>,
}

fn argmax(row: ndarray::ArrayView1<'_, f64>) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

fn correct(logits: &Array2<f64>, labels: &[usize]) -> usize {
    logits
        .outer_iter()
        .zip(labels)
        .filter(|(row, &y)| argmax(row.view()) == y)
        .count()
}

/// Epoch-by-epoch training state (optimiser velocities, shuffling stream, epoch counter), so a
/// caller can evaluate or checkpoint between epochs without resetting momentum or schedule.
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainConfig,
    opt: Sgd,
    rng: ChaCha20Rng,
    epoch: usize,
}

impl Trainer {
    /// Checks the hyper-parameters and creates fresh optimiser state for `model`.
    pub fn new(model: &StGcn, cfg: TrainConfig) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(ModelError::InvalidValue {
                name: "batch_size",
                value: 0.0,
                allowed: ">= 1",
            });
        }
        if cfg.learning_rate.is_nan() || cfg.learning_rate <= 0.0 || cfg.learning_rate.is_infinite()
        {
            return Err(ModelError::InvalidValue {
                name: "learning_rate",
                value: cfg.learning_rate,
                allowed: "> 0 and finite",
            });
        }
        if let Some(c) = cfg.clip_grad_norm {
            if c.is_nan() || c <= 0.0 {
                return Err(ModelError::InvalidValue {
                    name: "clip_grad_norm",
                    value: c,
                    allowed: "> 0",
                });
            }
        }
        Ok(Trainer {
            opt: Sgd::new(model, cfg.momentum, cfg.weight_decay),
            rng: ChaCha20Rng::seed_from_u64(cfg.seed),
            cfg,
            epoch: 0,
        })
    }

    /// Epochs completed so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Runs the next epoch (learning rate from the schedule at [`Self::epoch`]) on
    /// `(N, C, T, V, M)` clips with labels. `model` must be the model the trainer was made for.
    pub fn run_epoch(
        &mut self,
        model: &mut StGcn,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
    ) -> Result<EpochStats> {
        self.run_epoch_inner(model, x, labels, None, None)
    }

    /// As [`Self::run_epoch`], calling `after_batch(model, gradients)` after each batch's
    /// weight update (before the next batch's forward pass): how gate training updates the
    /// soft gates from [`Gradients::gates`] between steps. An error from it stops the epoch.
    pub fn run_epoch_with(
        &mut self,
        model: &mut StGcn,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        after_batch: AfterBatch<'_>,
    ) -> Result<EpochStats> {
        self.run_epoch_inner(model, x, labels, None, Some(after_batch))
    }

    /// As [`Self::run_epoch`], with the knowledge-distillation loss: `teacher_logits` holds the
    /// teacher's `(N, classes)` logits of the clips `x` (e.g. [`evaluate`]'s logits of the
    /// trained ReLU model), row `i` for clip `i`. The reported loss is the distillation loss.
    pub fn run_epoch_distilled(
        &mut self,
        model: &mut StGcn,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        teacher_logits: ArrayView2<'_, f64>,
        distillation: &Distillation,
    ) -> Result<EpochStats> {
        distillation.validate()?;
        if teacher_logits.nrows() != x.dim().0 {
            return Err(ModelError::InputShape {
                what: "teacher logits (rows)",
                expected: x.dim().0,
                found: teacher_logits.nrows(),
            });
        }
        self.run_epoch_inner(model, x, labels, Some((teacher_logits, distillation)), None)
    }

    fn run_epoch_inner(
        &mut self,
        model: &mut StGcn,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        teacher: Option<(ArrayView2<'_, f64>, &Distillation)>,
        mut after_batch: Option<AfterBatch<'_>>,
    ) -> Result<EpochStats> {
        let n = x.dim().0;
        if labels.len() != n {
            return Err(ModelError::LabelCount {
                labels: labels.len(),
                samples: n,
            });
        }
        if model.tensors().len() != self.opt.velocity.len() {
            return Err(ModelError::InputShape {
                what: "model tensors (the trainer was made for another model)",
                expected: self.opt.velocity.len(),
                found: model.tensors().len(),
            });
        }
        if let Some((t, v)) = model
            .tensors()
            .iter()
            .zip(&self.opt.velocity)
            .find(|(t, v)| t.value.shape() != v.shape())
        {
            return Err(ModelError::ShapeMismatch {
                tensor: t.name.clone(),
                expected: v.shape().to_vec(),
                found: t.value.shape().to_vec(),
            });
        }
        let start = Instant::now();
        let epoch = self.epoch;
        let lr = self
            .cfg
            .schedule
            .rate(self.cfg.learning_rate, epoch, self.cfg.epochs);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.rng);
        let (mut loss_sum, mut hits) = (0.0, 0);
        let batches = n.div_ceil(self.cfg.batch_size);
        let warmup_steps = self.cfg.warmup_epochs * batches;
        let mut lr_used = lr;
        for (batch, idx) in order.chunks(self.cfg.batch_size).enumerate() {
            let step = epoch * batches + batch;
            lr_used = if step < warmup_steps {
                lr * (step + 1) as f64 / warmup_steps as f64
            } else {
                lr
            };
            let xb = x.select(Axis(0), idx);
            let yb: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            let (loss, logits, mut grads) = match teacher {
                None => model.loss_and_gradients(xb.view(), &yb)?,
                Some((t, d)) => {
                    let tb = t.select(Axis(0), idx);
                    model.distillation_loss_and_gradients(xb.view(), &yb, tb.view(), d)?
                }
            };
            if !loss.is_finite() {
                return Err(ModelError::NonFiniteLoss { epoch, batch });
            }
            loss_sum += loss * idx.len() as f64;
            hits += correct(&logits, &yb);
            if let Some(max) = self.cfg.clip_grad_norm {
                grads.clip_norm(max);
            }
            self.opt.step(model, &grads, lr_used);
            if let Some(f) = after_batch.as_deref_mut() {
                f(model, &grads)?;
            }
        }
        self.epoch += 1;
        Ok(EpochStats {
            epoch,
            learning_rate: lr_used,
            loss: loss_sum / n.max(1) as f64,
            train_accuracy: hits as f64 / n.max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Trains `model` for `cfg.epochs` epochs on `(N, C, T, V, M)` clips with labels, calling
/// `on_epoch` after each epoch (see [`Trainer`] to interleave evaluation). Batches are drawn from
/// a ChaCha20-seeded shuffle; BN runs in training mode.
pub fn train(
    model: &mut StGcn,
    x: ArrayView5<'_, f64>,
    labels: &[usize],
    cfg: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    let mut trainer = Trainer::new(model, cfg.clone())?;
    let mut history = Vec::with_capacity(cfg.epochs);
    for _ in 0..cfg.epochs {
        let stats = trainer.run_epoch(model, x, labels)?;
        on_epoch(&stats);
        history.push(stats);
    }
    Ok(history)
}

/// Evaluation-mode accuracy, loss and logits on labelled clips.
pub fn evaluate(model: &StGcn, x: ArrayView5<'_, f64>, labels: &[usize]) -> Result<Evaluation> {
    let n = x.dim().0;
    if labels.len() != n {
        return Err(ModelError::LabelCount {
            labels: labels.len(),
            samples: n,
        });
    }
    let q = model.config().num_classes;
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= q) {
        return Err(ModelError::LabelOutOfRange {
            index,
            label,
            num_classes: q,
        });
    }
    let logits = model.forward(x)?;
    let (loss, _) = super::ops::softmax_cross_entropy(&logits, labels);
    Ok(Evaluation {
        accuracy: correct(&logits, labels) as f64 / n.max(1) as f64,
        loss,
        logits,
    })
}
