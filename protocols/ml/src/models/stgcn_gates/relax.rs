//! The differentiable relaxation of per-node gates: logits `θ`, gates `g = σ(θ)`, the budget
//! and site penalty and its gradient, and one momentum-SGD step on the logits.

use stgcn::SoftGates;

use crate::error::{MlError, Result};

/// The penalty on soft gates: `budget_weight·(max(0, Σg − budget)/V)² +
/// site_weight·Σ_sites (1 − Π_v (1 − g_v))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatePenalty {
    /// The budget `k` of non-linear nodes over all sites.
    pub budget: usize,
    /// `λ_b`.
    pub budget_weight: f64,
    /// `λ_s`.
    pub site_weight: f64,
}

/// `σ(x) = 1 / (1 + e^(−x))`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl GatePenalty {
    /// The penalty's value at `g`.
    pub fn value(&self, g: &SoftGates) -> f64 {
        let v = nodes(g) as f64;
        let excess = (total(g) - self.budget as f64).max(0.0) / v;
        let sites: f64 = sites(g)
            .map(|s| 1.0 - s.iter().map(|x| 1.0 - x).product::<f64>())
            .sum();
        self.budget_weight * excess * excess + self.site_weight * sites
    }

    /// `∂penalty/∂g`, shaped like `g`.
    pub fn gradient(&self, g: &SoftGates) -> SoftGates {
        let v = nodes(g) as f64;
        let excess = (total(g) - self.budget as f64).max(0.0);
        let db = 2.0 * self.budget_weight * excess / (v * v);
        g.iter()
            .map(|sites| {
                sites.clone().map(|s| {
                    (0..s.len())
                        .map(|i| {
                            let others: f64 = s
                                .iter()
                                .enumerate()
                                .filter(|&(j, _)| j != i)
                                .map(|(_, x)| 1.0 - x)
                                .product();
                            db + self.site_weight * others
                        })
                        .collect()
                })
            })
            .collect()
    }
}

fn nodes(g: &SoftGates) -> usize {
    g.first().map_or(1, |s| s[0].len().max(1))
}

fn total(g: &SoftGates) -> f64 {
    sites(g).flatten().sum()
}

fn sites(g: &SoftGates) -> impl Iterator<Item = &Vec<f64>> {
    g.iter().flat_map(|s| s.iter())
}

/// Trainable gate logits with momentum buffers.
#[derive(Debug, Clone)]
pub struct GateLogits {
    theta: SoftGates,
    velocity: SoftGates,
}

impl GateLogits {
    /// `blocks × 2 × nodes` logits, all `init` (e.g. 3: every gate starts at σ(3) ≈ 0.95).
    pub fn new(blocks: usize, nodes: usize, init: f64) -> Result<Self> {
        if !init.is_finite() {
            return Err(MlError::InvalidHyper {
                name: "gate_init_logit",
                value: init.to_string(),
                reason: "must be finite",
            });
        }
        let theta = vec![[vec![init; nodes], vec![init; nodes]]; blocks];
        let velocity = vec![[vec![0.0; nodes], vec![0.0; nodes]]; blocks];
        Ok(Self { theta, velocity })
    }

    /// The gates `σ(θ)`.
    pub fn gates(&self) -> SoftGates {
        map(&self.theta, |_, t| sigmoid(t))
    }

    /// One step `v ← μ·v + (∂L/∂g + ∂P/∂g)·σ'(θ)`, `θ ← θ − lr·v` from the loss gradient
    /// `dg` of the gates (as [`stgcn::Gradients::gates`] returns it, a batch mean).
    pub fn step(&mut self, dg: &SoftGates, penalty: &GatePenalty, lr: f64, momentum: f64) {
        let g = self.gates();
        let dp = penalty.gradient(&g);
        for (b, sites) in self.theta.iter_mut().enumerate() {
            for (s, th) in sites.iter_mut().enumerate() {
                for (v, t) in th.iter_mut().enumerate() {
                    let gv = g[b][s][v];
                    let grad = (dg[b][s][v] + dp[b][s][v]) * gv * (1.0 - gv);
                    let vel = &mut self.velocity[b][s][v];
                    *vel = momentum * *vel + grad;
                    *t -= lr * *vel;
                }
            }
        }
    }
}

fn map(x: &SoftGates, f: impl Fn((usize, usize, usize), f64) -> f64) -> SoftGates {
    x.iter()
        .enumerate()
        .map(|(b, sites)| {
            let site = |s: usize| -> Vec<f64> {
                sites[s]
                    .iter()
                    .enumerate()
                    .map(|(v, &t)| f((b, s, v), t))
                    .collect()
            };
            [site(0), site(1)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gates_of(flat: &[f64], blocks: usize, v: usize) -> SoftGates {
        (0..blocks)
            .map(|b| [0, 1].map(|s| flat[(2 * b + s) * v..(2 * b + s + 1) * v].to_vec()))
            .collect()
    }

    proptest! {
        /// The analytic gradient of the penalty matches central differences.
        #[test]
        fn penalty_gradient_matches_finite_differences(
            flat in proptest::collection::vec(0.05f64..0.95, 12),
            budget in 0usize..12,
            lb in 0.0f64..5.0,
            ls in 0.0f64..5.0,
        ) {
            let p = GatePenalty { budget, budget_weight: lb, site_weight: ls };
            let g = gates_of(&flat, 2, 3);
            let an = p.gradient(&g);
            let h = 1e-6;
            for i in 0..flat.len() {
                let (mut up, mut dn) = (flat.clone(), flat.clone());
                up[i] += h;
                dn[i] -= h;
                let num = (p.value(&gates_of(&up, 2, 3)) - p.value(&gates_of(&dn, 2, 3))) / (2.0 * h);
                let (b, s, v) = (i / 6, (i / 3) % 2, i % 3);
                prop_assert!((an[b][s][v] - num).abs() < 1e-5 * (1.0 + num.abs()),
                    "entry {i}: analytic {} numeric {num}", an[b][s][v]);
            }
        }
    }

    #[test]
    fn penalty_limits() {
        let p = GatePenalty {
            budget: 3,
            budget_weight: 1.0,
            site_weight: 1.0,
        };
        // All gates off: no excess, no site spends a level.
        assert_eq!(p.value(&gates_of(&[0.0; 12], 2, 3)), 0.0);
        // All on: excess 9 over V = 3, four sites.
        assert!((p.value(&gates_of(&[1.0; 12], 2, 3)) - (9.0 + 4.0)).abs() < 1e-12);
    }

    #[test]
    fn step_moves_gates_down_under_the_penalty_alone() {
        let mut l = GateLogits::new(2, 3, 2.0).unwrap();
        let p = GatePenalty {
            budget: 2,
            budget_weight: 10.0,
            site_weight: 0.0,
        };
        let zero = vec![[vec![0.0; 3], vec![0.0; 3]]; 2];
        let before: f64 = l.gates().iter().flatten().flatten().sum();
        for _ in 0..50 {
            l.step(&zero, &p, 1.0, 0.9);
        }
        let after: f64 = l.gates().iter().flatten().flatten().sum();
        assert!(after < before - 1.0, "{before} -> {after}");
        assert!(GateLogits::new(1, 1, f64::NAN).is_err());
    }
}
