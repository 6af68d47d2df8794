//! The structural projection of soft gates onto a hard activation mask: the fewest sites that
//! hold the budget (`⌈k / V⌉`, those with the largest gate mass), and in them the `k` nodes
//! with the largest gates. Every other site is the identity on all nodes, so it spends no
//! multiplicative level under HE; see the module doc of [`super`].

use stgcn::{SoftGates, StGcn};

use crate::error::{MlError, Result};

/// A hard mask: per block, per site, per node, whether the node keeps its activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateMask {
    /// `keep[block][site][node]`.
    pub keep: Vec<[Vec<bool>; 2]>,
}

impl GateMask {
    /// Non-linear `(site, node)` pairs.
    pub fn nonlinear_nodes(&self) -> usize {
        self.keep.iter().flatten().flatten().filter(|&&k| k).count()
    }

    /// Sites with at least one non-linear node (each spends one level under HE).
    pub fn nonlinear_sites(&self) -> usize {
        self.keep
            .iter()
            .flatten()
            .filter(|s| s.iter().any(|&k| k))
            .count()
    }

    /// Prunes every node the mask drops (on top of any pruning `model` already has).
    pub fn apply(&self, model: &mut StGcn) -> Result<()> {
        for (b, sites) in self.keep.iter().enumerate() {
            for (s, keep) in sites.iter().enumerate() {
                let drop: Vec<usize> = (0..keep.len()).filter(|&v| !keep[v]).collect();
                model.prune_activations(b, s, &drop)?;
            }
        }
        Ok(())
    }
}

/// The hard mask of `budget` non-linear nodes for the soft gates `g`. Ties keep the earlier
/// site or node. Refuses a budget above the number of `(site, node)` pairs.
pub fn project(g: &SoftGates, budget: usize) -> Result<GateMask> {
    let v = g.first().map_or(0, |s| s[0].len());
    let sites: Vec<(usize, usize, f64)> = g
        .iter()
        .enumerate()
        .flat_map(|(b, s)| (0..2).map(move |i| (b, i, s[i].iter().sum::<f64>())))
        .collect();
    let total = sites.len() * v;
    if budget > total {
        return Err(MlError::OutOfRange {
            what: "gate budget (non-linear nodes)",
            index: 0,
            value: budget,
            limit: total,
        });
    }
    let mut keep = vec![[vec![false; v], vec![false; v]]; g.len()];
    if budget == 0 {
        return Ok(GateMask { keep });
    }
    let mut by_mass = sites.clone();
    by_mass.sort_by(|a, b| b.2.total_cmp(&a.2));
    let chosen = &by_mass[..budget.div_ceil(v)];
    let mut nodes: Vec<(usize, usize, usize, f64)> = chosen
        .iter()
        .flat_map(|&(b, s, _)| (0..v).map(move |n| (b, s, n, g[b][s][n])))
        .collect();
    nodes.sort_by(|a, b| b.3.total_cmp(&a.3));
    for &(b, s, n, _) in &nodes[..budget] {
        keep[b][s][n] = true;
    }
    Ok(GateMask { keep })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Exactly `k` nodes, in the fewest sites, and every kept node's gate is at least that
        /// of any dropped node of a chosen site.
        #[test]
        fn projection_keeps_k_nodes_in_the_fewest_sites(
            flat in proptest::collection::vec(0.0f64..1.0, 24),
            k in 0usize..=24,
        ) {
            let v = 4;
            let g: SoftGates = (0..3)
                .map(|b| [0, 1].map(|s| flat[(2 * b + s) * v..(2 * b + s + 1) * v].to_vec()))
                .collect();
            let m = project(&g, k).unwrap();
            prop_assert_eq!(m.nonlinear_nodes(), k);
            prop_assert_eq!(m.nonlinear_sites(), k.div_ceil(v));
            for sites in m.keep.iter().zip(&g) {
                for (keep, gs) in sites.0.iter().zip(sites.1.iter()) {
                    if keep.iter().any(|&x| x) {
                        let kept_min = (0..v).filter(|&i| keep[i]).map(|i| gs[i]).fold(f64::MAX, f64::min);
                        let other_max = (0..v).filter(|&i| !keep[i]).map(|i| gs[i]).fold(f64::MIN, f64::max);
                        prop_assert!(kept_min >= other_max);
                    }
                }
            }
        }
    }

    #[test]
    fn projection_picks_the_heaviest_sites() {
        let g: SoftGates = vec![
            [vec![0.1, 0.2, 0.1], vec![0.9, 0.8, 0.7]],
            [vec![0.6, 0.95, 0.1], vec![0.0, 0.0, 0.3]],
        ];
        let m = project(&g, 4).unwrap();
        assert_eq!(
            m.keep,
            vec![
                [vec![false; 3], vec![true; 3]],
                [vec![false, true, false], vec![false; 3]],
            ]
        );
        assert_eq!((m.nonlinear_sites(), m.nonlinear_nodes()), (2, 4));
        let e = project(&g, 13).unwrap_err().to_string();
        assert!(
            e.contains("gate budget") && e.contains("13") && e.contains("12"),
            "{e}"
        );
    }
}
