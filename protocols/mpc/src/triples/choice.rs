//! Which dealer-free source — [`OtSource`](super::OtSource) or [`HeSource`](super::HeSource) —
//! makes a job's preprocessing faster: a cost model over the job's [`TripleRequest`]s (the
//! `triples = "auto"` of remote jobs and experiment configs).
//!
//! ## The rule
//!
//! Both sources make masks, elementwise and AND triples the same way (OT extension, Gilboa
//! products, bit-sliced AND triples), so they differ only in the matrix cross terms and in `he`'s setup
//! (RLWE parameters and the public-key exchange). For every cross term `X (n × k) · V (k × m)` of
//! the requests (two per matrix triple, one each way, run at the same time):
//!
//! * `ot` sends Gilboa's 2080 bits per scalar product: `n·k·m` multiply-accumulates at
//!   [`OT_S_PER_MAC`] seconds each;
//! * `he` sends the queries and responses of the block plan [`choose_blocks`] picks, and does its
//!   NTTs: the plan's cost (bytes plus NTT work in bytes-equivalents) at [`HE_S_PER_UNIT`] seconds
//!   per unit, plus [`HE_SETUP_S`] once.
//!
//! `auto` picks `he` when its estimate is lower, `ot` otherwise: tiny jobs (a few thousand
//! multiply-accumulates per step, where one RLWE query of ~0.5 MB costs more than the whole OT
//! product) get `ot`; matrix-heavy jobs (an MLP's eight products per step, SecureML's Table II,
//! an ST-GCN's convolutions) get `he`. A dealer is never chosen: `auto` means dealer-free.
//!
//! ## Calibration
//!
//! The per-unit costs are SecureML Table II (linear regression, n = 10,000, d = 1,000, batch 128,
//! 2 epochs: 156 steps, 39,936,000 multiply-accumulates) of `experiments/configs/
//! secureml-offline.toml`, both parties on one 2-core machine over TLS on loopback: `ot` 48.5 s
//! (10.6 GB per party), `he` 7.9 s (0.52 GB per party) of which about [`HE_SETUP_S`] is setup.
//! Those `ot` figures were taken with IKNP alone ([`crate::offline::cot::OtExtension::Iknp`]);
//! the silent extension sends less per Gilboa product but has not been calibrated here.
//! Times on other machines scale both sources alike to first order (both are CPU-bound here), so
//! the choice, a ratio, carries over better than the seconds.
//!
//! Security: the model reads only public shapes (the requests every party derives from the public
//! job); the choice it makes is public and the same at both parties.

use super::{Lhs, MaskId, TripleRequest};
use crate::error::{MpcError, Result};
use crate::offline::he::choose_blocks;
use crate::offline::rlwe::RlweParams;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Seconds per multiply-accumulate of a matrix cross term by OT (Gilboa, 2080 bits each way):
/// 48.5 s for the 39,936,000 of SecureML Table II.
pub const OT_S_PER_MAC: f64 = 48.5 / 39_936_000.0;

/// Seconds of `he`'s setup beyond `ot`'s (RLWE parameters, key generation, public-key exchange).
pub const HE_SETUP_S: f64 = 0.5;

/// Seconds per unit of [`choose_blocks`]'s cost (bytes plus NTT bytes-equivalents): Table II's
/// 7.9 s less [`HE_SETUP_S`] over its [`TABLE_II_HE_UNITS`] units.
pub const HE_S_PER_UNIT: f64 = (7.9 - HE_SETUP_S) / TABLE_II_HE_UNITS;

/// Cost units of SecureML Table II's cross terms by `he` (156 steps of `128 × 1000 · 1000 × 1`
/// and `1000 × 128 · 128 × 1`, two cross terms each; the test `table_ii_units` recomputes it).
pub const TABLE_II_HE_UNITS: f64 = 918_252_504.0;

/// A dealer-free triple source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DealerFree {
    /// [`super::OtSource`].
    Ot,
    /// [`super::HeSource`].
    He,
}

impl DealerFree {
    /// The source's name in configurations (`ot`, `he`).
    pub fn name(self) -> &'static str {
        match self {
            DealerFree::Ot => "ot",
            DealerFree::He => "he",
        }
    }
}

/// Estimated seconds of the matrix cross terms of some requests by each source (setup not
/// included), and their multiply-accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// Seconds by `ot`.
    pub ot_s: f64,
    /// Seconds by `he`, without [`HE_SETUP_S`].
    pub he_s: f64,
    /// Multiply-accumulates of the cross terms (one way).
    pub macs: u64,
}

impl Estimate {
    /// The sum of two estimates.
    pub fn plus(self, o: Estimate) -> Estimate {
        Estimate {
            ot_s: self.ot_s + o.ot_s,
            he_s: self.he_s + o.he_s,
            macs: self.macs.saturating_add(o.macs),
        }
    }

    /// `times` copies of this estimate (the steps of a job that repeat one step's shapes).
    pub fn times(self, times: u64) -> Estimate {
        Estimate {
            ot_s: self.ot_s * times as f64,
            he_s: self.he_s * times as f64,
            macs: self.macs.saturating_mul(times),
        }
    }

    /// A job of `steps` steps from plans of its first step (`one`) and of its first two (`two`):
    /// `one + (two − one)·(steps − 1)`, the setup requests counted once.
    pub fn extrapolate(one: Estimate, two: Estimate, steps: u64) -> Estimate {
        let per_step = Estimate {
            ot_s: (two.ot_s - one.ot_s).max(0.0),
            he_s: (two.he_s - one.he_s).max(0.0),
            macs: two.macs.saturating_sub(one.macs),
        };
        one.plus(per_step.times(steps.saturating_sub(1)))
    }

    /// Seconds by `he` with its setup.
    pub fn he_total_s(&self) -> f64 {
        HE_SETUP_S + self.he_s
    }

    /// The cheaper source: `he` when its total is below `ot`'s.
    pub fn cheapest(&self) -> DealerFree {
        if self.he_total_s() < self.ot_s {
            DealerFree::He
        } else {
            DealerFree::Ot
        }
    }

    /// One line for logs and clients, e.g. `he (estimated matrix offline: he 3.2 s, ot 41.0 s
    /// for 3.4e7 multiply-accumulates)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (estimated matrix offline: he {:.1} s, ot {:.1} s for {:.2e} multiply-accumulates)",
            self.cheapest().name(),
            self.he_total_s(),
            self.ot_s,
            self.macs as f64
        )
    }
}

/// The RLWE parameters `he` runs with (built once: their NTT tables take a moment).
fn params() -> &'static RlweParams {
    static P: OnceLock<RlweParams> = OnceLock::new();
    P.get_or_init(RlweParams::standard)
}

/// Prices request lists one after another, keeping the masks registered by earlier lists (a job
/// registers its data mask once and uses it in every step) and each product shape's price.
#[derive(Debug, Default)]
pub struct Estimator {
    masks: HashMap<MaskId, (usize, usize)>,
    he_units: HashMap<(usize, usize, usize), f64>,
}

impl Estimator {
    /// An estimator with no mask registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The estimate of `requests`.
    ///
    /// # Errors
    /// [`MpcError::Preprocessing`] for a product against a mask no list registered.
    pub fn add(&mut self, requests: &[TripleRequest]) -> Result<Estimate> {
        let mut e = Estimate::default();
        for r in requests {
            match r {
                TripleRequest::Mask { id, rows, cols } => {
                    self.masks.insert(*id, (*rows, *cols));
                }
                TripleRequest::Matmul { lhs, cols } => {
                    let (n, k, m) = self.shape(lhs, *cols)?;
                    e = e.plus(self.cross_term(n, k, m));
                }
                TripleRequest::Elementwise { .. }
                | TripleRequest::And { .. }
                | TripleRequest::LeafOt { .. }
                | TripleRequest::Rot { .. } => {}
            }
        }
        Ok(e)
    }

    /// `(n, k, m)` of the cross terms of a product with left factor `lhs` and `cols` columns.
    fn shape(&self, lhs: &Lhs, cols: usize) -> Result<(usize, usize, usize)> {
        Ok(match lhs {
            Lhs::Fresh { rows, inner } => (*rows, *inner, cols),
            Lhs::Mask {
                id,
                rows,
                transpose,
            } => {
                let (_, d) =
                    self.masks
                        .get(id)
                        .copied()
                        .ok_or_else(|| MpcError::Preprocessing {
                            expected: format!("mask #{id} registered before use"),
                            found: "unknown mask".into(),
                        })?;
                if *transpose {
                    (d, rows.len(), cols)
                } else {
                    (rows.len(), d, cols)
                }
            }
        })
    }

    /// One cross term `X (n × k) · V (k × m)` by each source.
    fn cross_term(&mut self, n: usize, k: usize, m: usize) -> Estimate {
        if n == 0 || k == 0 || m == 0 {
            return Estimate::default();
        }
        let units = *self
            .he_units
            .entry((n, k, m))
            .or_insert_with(|| choose_blocks(params(), n, k, m).cost(params()) as f64);
        let macs = (n as u64).saturating_mul(k as u64).saturating_mul(m as u64);
        Estimate {
            ot_s: macs as f64 * OT_S_PER_MAC,
            he_s: units * HE_S_PER_UNIT,
            macs,
        }
    }
}

/// The estimate of one request list (masks registered in it).
///
/// # Errors
/// As [`Estimator::add`].
pub fn estimate(requests: &[TripleRequest]) -> Result<Estimate> {
    Estimator::new().add(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SecureML Table II's requests: the data mask and `steps` steps of the forward and
    /// backward products of a batch of 128.
    fn table_ii(steps: usize) -> Vec<TripleRequest> {
        let mut r = vec![TripleRequest::Mask {
            id: 0,
            rows: 10_000,
            cols: 1_000,
        }];
        for s in 0..steps {
            let rows: Vec<usize> = (0..128).map(|i| (s * 128 + i) % 10_000).collect();
            for transpose in [false, true] {
                r.push(TripleRequest::Matmul {
                    lhs: Lhs::Mask {
                        id: 0,
                        rows: rows.clone(),
                        transpose,
                    },
                    cols: 1,
                });
            }
        }
        r
    }

    #[test]
    fn table_ii_units() {
        let e = estimate(&table_ii(156)).unwrap();
        assert_eq!(e.macs, 39_936_000);
        let units = e.he_s / HE_S_PER_UNIT;
        assert!((units / TABLE_II_HE_UNITS - 1.0).abs() < 1e-9, "{units}");
        // The calibration reproduces the measured times.
        assert!((e.ot_s - 48.5).abs() < 1e-6, "{}", e.ot_s);
        assert!((e.he_total_s() - 7.9).abs() < 1e-6, "{}", e.he_total_s());
        assert_eq!(e.cheapest(), DealerFree::He);
    }
}
