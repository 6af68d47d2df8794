//! Soft activation gates, the differentiable relaxation of activation pruning used to learn
//! which nodes keep their non-linearity (LinGCN, Peng et al., NeurIPS 2023, §3.2): with gate
//! `g[v] ∈ [0, 1]` a kept node computes `x + g[v]·(act(x) − x)`, so `g = 1` is the activation,
//! `g = 0` the identity, and the loss is differentiable in `g`
//! ([`Gradients::gates`](super::Gradients::gates)). Gates are a training-time state: they are
//! not serialised, and [`StGcn::fold`] folds them exactly into the per-node polynomial
//! `g·a·x² + (g·b + 1 − g)·x + g·c`. Hardening them into a mask is the caller's choice
//! ([`StGcn::prune_activations`]).

use super::StGcn;
use crate::{ActivationKind, ModelError, Result};

/// Per block, per activation site (0, 1), per node: a gate in `[0, 1]`.
pub type SoftGates = Vec<[Vec<f64>; 2]>;

impl StGcn {
    /// Sets (or with `None` clears) the soft gates. Refused for ReLU models (a gated ReLU has
    /// no polynomial fold), for a shape other than blocks × 2 × V and for a gate outside
    /// `[0, 1]`.
    pub fn set_soft_gates(&mut self, gates: Option<SoftGates>) -> Result<()> {
        if let Some(g) = &gates {
            self.check_gates(g)?;
        }
        self.gates = gates;
        Ok(())
    }

    /// The soft gates, if set.
    pub fn soft_gates(&self) -> Option<&SoftGates> {
        self.gates.as_ref()
    }

    fn check_gates(&self, gates: &SoftGates) -> Result<()> {
        if self.config.activation == ActivationKind::Relu {
            return Err(ModelError::WrongActivation {
                expected: ActivationKind::Poly,
                found: ActivationKind::Relu,
            });
        }
        if gates.len() != self.config.blocks.len() {
            return Err(ModelError::InputShape {
                what: "soft gate blocks",
                expected: self.config.blocks.len(),
                found: gates.len(),
            });
        }
        let v = self.config.num_nodes();
        for (block, sites) in gates.iter().enumerate() {
            for (site, g) in sites.iter().enumerate() {
                if g.len() != v {
                    return Err(ModelError::MaskLength {
                        block,
                        site,
                        expected: v,
                        found: g.len(),
                    });
                }
                if let Some(&value) = g.iter().find(|x| !(0.0..=1.0).contains(*x)) {
                    return Err(ModelError::InvalidValue {
                        name: "soft gate",
                        value,
                        allowed: "[0, 1]",
                    });
                }
            }
        }
        Ok(())
    }
}
