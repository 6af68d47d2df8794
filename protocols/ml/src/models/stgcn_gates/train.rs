//! The gate search (weights and gate logits trained together), the structural projection and
//! the fine-tuning of the hardened model.

use ndarray::ArrayView5;
use stgcn::{EpochStats, LrSchedule, SoftGates, StGcn, TrainConfig, Trainer};

use super::relax::{GateLogits, GatePenalty};
use super::structure::{project, GateMask};
use crate::error::{MlError, Result};

/// Hyper-parameters of [`learn_gates`].
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// The budget `k` of non-linear `(site, node)` pairs.
    pub budget: usize,
    /// Epochs of the joint search (weights and gates).
    pub search_epochs: usize,
    /// Epochs of fine-tuning after hardening.
    pub finetune_epochs: usize,
    /// Weight training (both phases): batch size, learning rate (cosine schedule per phase),
    /// momentum, weight decay, gradient-norm clipping and shuffling seed.
    pub weights: TrainConfig,
    /// Learning rate of the gate logits.
    pub gate_learning_rate: f64,
    /// Momentum of the gate logits.
    pub gate_momentum: f64,
    /// Initial logit of every gate.
    pub gate_init_logit: f64,
    /// `λ_b` and `λ_s` of [`GatePenalty`].
    pub budget_weight: f64,
    /// See [`GatePenalty::site_weight`].
    pub site_weight: f64,
}

impl GateConfig {
    /// The recipe of the Mocap-15 frontier for budget `k`: batch 16, SGD lr 0.01 cosine,
    /// momentum 0.9, weight decay 1e-4, clipping at 1 (the pruning sweep's fine-tuning), gate
    /// logits from 3 with lr 0.5, `λ_b = 2`, `λ_s = 0.05`.
    pub fn recipe(budget: usize, search_epochs: usize, finetune_epochs: usize, seed: u64) -> Self {
        Self {
            budget,
            search_epochs,
            finetune_epochs,
            weights: TrainConfig {
                epochs: 0,
                batch_size: 16,
                learning_rate: 0.01,
                momentum: 0.9,
                weight_decay: 1e-4,
                schedule: LrSchedule::Cosine,
                seed,
                clip_grad_norm: Some(1.0),
                warmup_epochs: 0,
            },
            gate_learning_rate: 0.5,
            gate_momentum: 0.9,
            gate_init_logit: 3.0,
            budget_weight: 2.0,
            site_weight: 0.05,
        }
    }

    fn penalty(&self) -> GatePenalty {
        GatePenalty {
            budget: self.budget,
            budget_weight: self.budget_weight,
            site_weight: self.site_weight,
        }
    }

    fn check(&self) -> Result<()> {
        for (name, value) in [
            ("gate_learning_rate", self.gate_learning_rate),
            ("budget_weight", self.budget_weight),
            ("site_weight", self.site_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(MlError::InvalidHyper {
                    name,
                    value: value.to_string(),
                    reason: "must be finite and >= 0",
                });
            }
        }
        if !(0.0..1.0).contains(&self.gate_momentum) {
            return Err(MlError::InvalidHyper {
                name: "gate_momentum",
                value: self.gate_momentum.to_string(),
                reason: "must be in [0, 1)",
            });
        }
        Ok(())
    }
}

/// What [`learn_gates`] returns.
#[derive(Debug, Clone)]
pub struct GateOutcome {
    /// The hardened, fine-tuned model (no soft gates; the mask is its activation mask).
    pub model: StGcn,
    /// The soft gates at the end of the search.
    pub soft: SoftGates,
    /// The projected mask.
    pub mask: GateMask,
    /// Per epoch: the search, then the fine-tuning.
    pub search: Vec<EpochStats>,
    /// Fine-tuning epochs.
    pub finetune: Vec<EpochStats>,
}

/// Learns which nodes of `base` (an `x²` or polynomial model) keep their activation under
/// `cfg.budget` on the `(N, C, T, V, M)` clips `x` with `labels`: joint search, projection,
/// fine-tuning. Nodes `base` has already pruned stay pruned.
pub fn learn_gates(
    base: &StGcn,
    x: ArrayView5<'_, f64>,
    labels: &[usize],
    cfg: &GateConfig,
) -> Result<GateOutcome> {
    cfg.check()?;
    let blocks = base.config().blocks.len();
    let mut logits = GateLogits::new(blocks, base.config().num_nodes(), cfg.gate_init_logit)?;
    project(&logits.gates(), cfg.budget)?;
    let mut model = base.clone();
    model.set_soft_gates(Some(logits.gates()))?;
    let penalty = cfg.penalty();
    let search_cfg = TrainConfig {
        epochs: cfg.search_epochs,
        ..cfg.weights.clone()
    };
    let mut trainer = Trainer::new(&model, search_cfg)?;
    let mut search = Vec::with_capacity(cfg.search_epochs);
    for _ in 0..cfg.search_epochs {
        let mut update = |m: &mut StGcn, grads: &stgcn::Gradients| -> stgcn::Result<()> {
            let dg = grads.gates().expect("a gated model returns gate gradients");
            logits.step(dg, &penalty, cfg.gate_learning_rate, cfg.gate_momentum);
            m.set_soft_gates(Some(logits.gates()))
        };
        search.push(trainer.run_epoch_with(&mut model, x, labels, &mut update)?);
    }
    let soft = logits.gates();
    let mask = project(&soft, cfg.budget)?;
    model.set_soft_gates(None)?;
    mask.apply(&mut model)?;
    let tune = TrainConfig {
        epochs: cfg.finetune_epochs,
        ..cfg.weights.clone()
    };
    let finetune = stgcn::train(&mut model, x, labels, &tune, |_| {})?;
    Ok(GateOutcome {
        model,
        soft,
        mask,
        search,
        finetune,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array5;
    use rand::{Rng, SeedableRng};
    use stgcn::{ActivationKind, Architecture, BlockSpec, StGcnConfig};

    /// A 2-block x² model on 5 nodes and a separable 3-class toy set (class = which node
    /// carries a bump in channel 0).
    fn toy() -> (StGcn, Array5<f64>, Vec<usize>) {
        let v = 5;
        let edges: Vec<(usize, usize)> = (1..v).map(|i| (i - 1, i)).collect();
        let adj = stgcn::spatial_partition(v, &edges, 1).unwrap();
        let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 2, 3, &adj, 3);
        cfg.blocks = vec![
            BlockSpec {
                in_channels: 2,
                out_channels: 4,
                stride: 1,
                residual: false,
            },
            BlockSpec {
                in_channels: 4,
                out_channels: 4,
                stride: 1,
                residual: true,
            },
        ];
        cfg.architecture = None;
        cfg.activation_mask = vec![[vec![true; v], vec![true; v]]; 2];
        cfg.activation = ActivationKind::Square;
        let mut model = StGcn::new(cfg, 3).unwrap();
        model.init_pre_activation_bn(0.45, 0.56);
        let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let n = 48;
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let x = Array5::from_shape_fn((n, 2, 4, v, 1), |(i, c, _, node, _)| {
            let bump = if c == 0 && node == labels[i] + 1 {
                1.5
            } else {
                0.0
            };
            bump + 0.3 * r.gen_range(-1.0..1.0)
        });
        (model, x, labels)
    }

    #[test]
    fn learned_gates_meet_the_budget_and_the_model_still_learns() {
        let (model, x, labels) = toy();
        let mut cfg = GateConfig::recipe(5, 6, 6, 1);
        cfg.weights.batch_size = 8;
        cfg.weights.learning_rate = 0.05;
        let out = learn_gates(&model, x.view(), &labels, &cfg).unwrap();
        assert_eq!(out.mask.nonlinear_nodes(), 5);
        assert_eq!(out.mask.nonlinear_sites(), 1);
        assert!(out.model.soft_gates().is_none());
        assert_eq!(out.model.config().num_nonlinear_activations(), 5);
        // The budget penalty pulled the soft gates' total towards k = 5 from 20·σ(3) ≈ 19.
        let total: f64 = out.soft.iter().flatten().flatten().sum();
        assert!(total < 15.0, "soft total {total}");
        let acc = stgcn::evaluate(&out.model, x.view(), &labels)
            .unwrap()
            .accuracy;
        assert!(acc > 0.9, "training accuracy {acc}");
        // The folded model has exactly three linear sites (identity on every node).
        let folded = out.model.fold();
        let identity = folded
            .blocks
            .iter()
            .flat_map(|b| [&b.act1, &b.act2])
            .filter(|a| a.is_identity())
            .count();
        assert_eq!(identity, 3);
    }

    #[test]
    fn bad_hyper_parameters_are_named() {
        let (model, x, labels) = toy();
        let mut cfg = GateConfig::recipe(5, 1, 0, 1);
        cfg.gate_momentum = 1.0;
        let e = learn_gates(&model, x.view(), &labels, &cfg).unwrap_err();
        assert!(e.to_string().contains("gate_momentum"), "{e}");
        let cfg = GateConfig::recipe(21, 0, 0, 1);
        let e = learn_gates(&model, x.view(), &labels, &cfg).unwrap_err();
        assert!(e.to_string().contains("gate budget"), "{e}");
    }
}
