//! Pricing candidates with probed operation costs, and the choice by objective.

use super::{Candidate, Objective};
use crate::error::{HeCnnError, Result};
use ckks::cost::probe::probe;
use ckks::cost::{OpCosts, OpKind};

/// A candidate's estimated time on one thread count.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The candidate.
    pub candidate: Candidate,
    /// Threads the costs were probed on.
    pub threads: usize,
    /// Estimated seconds of each stage (as `candidate.stages`).
    pub stage_s: Vec<f64>,
    /// Estimated seconds of sanitizing the returned ciphertexts.
    pub sanitize_s: f64,
    /// Estimated seconds of one forward pass with its sanitizing.
    pub total_s: f64,
}

impl Estimate {
    /// Estimated images per hour, one forward pass after the other.
    pub fn images_per_hour(&self) -> f64 {
        3600.0 * self.candidate.images as f64 / self.total_s
    }
}

/// `c` priced with `costs` (probed at `c`'s preset): each stage at its level, the sanitizing
/// of each returned ciphertext at level 0.
pub fn estimate(c: &Candidate, costs: &OpCosts) -> Estimate {
    let stage_s: Vec<f64> = c
        .stages
        .iter()
        .map(|s| costs.price(&s.ops, s.over_qp, s.level))
        .collect();
    let sanitize_s = c.outputs as f64 * costs.at(OpKind::Sanitize, 0);
    Estimate {
        candidate: c.clone(),
        threads: costs.threads(),
        total_s: stage_s.iter().sum::<f64>() + sanitize_s,
        stage_s,
        sanitize_s,
    }
}

/// The planner's result: every estimate, best first for the objective.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The objective ranked by.
    pub objective: Objective,
    /// Every candidate on every probed thread count, best first.
    pub ranked: Vec<Estimate>,
}

impl Plan {
    /// The chosen plan.
    pub fn chosen(&self) -> &Estimate {
        &self.ranked[0]
    }

    /// The best estimate of the chosen candidate on `threads` threads, if probed.
    pub fn chosen_on(&self, threads: usize) -> Option<&Estimate> {
        let c = &self.chosen().candidate;
        self.ranked.iter().find(|e| {
            e.threads == threads && e.candidate.layout == c.layout && e.candidate.splits == c.splits
        })
    }
}

/// Ranks every candidate on every cost table of its preset by `objective`.
///
/// # Errors
/// [`HeCnnError::Planner`] for no candidate, or a candidate whose preset has no cost table.
pub fn choose(candidates: &[Candidate], costs: &[OpCosts], objective: Objective) -> Result<Plan> {
    let mut ranked = Vec::new();
    for c in candidates {
        let tables: Vec<&OpCosts> = costs
            .iter()
            .filter(|t| t.params() == c.preset.name)
            .collect();
        if tables.is_empty() {
            return Err(HeCnnError::Planner {
                what: "no probed operation costs for the preset",
                value: c.preset.name.to_string(),
            });
        }
        ranked.extend(tables.into_iter().map(|t| estimate(c, t)));
    }
    if ranked.is_empty() {
        return Err(HeCnnError::Planner {
            what: "no candidate plan",
            value: objective.name().to_string(),
        });
    }
    let key = |e: &Estimate| match objective {
        Objective::Latency => e.total_s,
        Objective::Throughput => e.total_s / e.candidate.images as f64,
    };
    ranked.sort_by(|a, b| key(a).total_cmp(&key(b)));
    Ok(Plan { objective, ranked })
}

/// Probes the costs of every preset of `candidates` on each of `threads` thread counts (in a
/// rayon pool of that many threads), at the lowest, middle and highest level ≥ 1 their stages
/// run at, `reps` times each (see [`ckks::cost::probe::probe`]).
///
/// # Errors
/// [`HeCnnError::Planner`] for a thread count of 0 or a pool that cannot be built; CKKS errors.
pub fn probe_costs(
    candidates: &[Candidate],
    threads: &[usize],
    reps: usize,
) -> Result<Vec<OpCosts>> {
    let mut presets: Vec<ckks::Preset> = Vec::new();
    for c in candidates {
        if !presets.iter().any(|p| p.name == c.preset.name) {
            presets.push(c.preset);
        }
    }
    let mut out = Vec::new();
    for preset in presets {
        let levels: Vec<usize> = candidates
            .iter()
            .filter(|c| c.preset.name == preset.name)
            .flat_map(|c| c.stages.iter().map(|s| s.level.max(1)))
            .collect();
        let (lo, hi) = (levels.iter().min(), levels.iter().max());
        let (lo, hi) = (*lo.unwrap_or(&1), *hi.unwrap_or(&1));
        let params = preset.build()?;
        for &t in threads {
            if t == 0 {
                return Err(HeCnnError::Planner {
                    what: "probe thread count (≥ 1)",
                    value: "0".into(),
                });
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| HeCnnError::Planner {
                    what: "rayon pool for the probe",
                    value: format!("{t} threads: {e}"),
                })?;
            out.push(pool.install(|| probe(&params, &[lo, (lo + hi) / 2, hi], reps))?);
        }
    }
    Ok(out)
}
