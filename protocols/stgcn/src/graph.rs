//! ST-GCN spatial-configuration partitioning (Yan et al., AAAI 2018, §3.4) of a skeleton graph
//! into K = 3 column-normalised adjacency matrices.

use std::collections::VecDeque;

use ndarray::Array3;

use super::{ModelError, Result};

/// Builds the K = 3 spatial partition of an undirected skeleton graph.
///
/// `A_k[v, w]` is the weight with which source node `v` contributes to output node `w`
/// (`y_w = Σ_k Σ_v x_v A_k[v, w]`, the einsum `nkctv,kvw->nctw` of the reference code).
/// With self-loops added, `Â = A + I` is normalised by columns, `Â·D⁻¹` with
/// `D_ww = Σ_v Â[v, w]`, and its entries are split by the hop distance `d(·)` to `center`:
///
/// * `k = 0` (root): `v = w`;
/// * `k = 1`: neighbours `v` with `d(v) ≥ d(w)` (same distance, or farther from the centre);
/// * `k = 2`: neighbours `v` with `d(v) < d(w)` (closer to the centre).
///
/// This is the ordering of the reference implementation (`graph.py`, strategy `spatial`), where
/// `k = 1` is `a_root + a_close` of hop 1. Unlike that code, which truncates distances at
/// `max_hop = 1` (so all nodes two or more hops from the centre count as equally far), distances
/// here are true breadth-first hop counts; nodes unreachable from the centre are treated as
/// infinitely far (two such nodes are "equally far"). Pass the reference matrices directly to
/// [`super::StGcnConfig`] if bit-compatibility with a PyTorch checkpoint is needed.
///
/// Duplicate edges and self-loops in `edges` are ignored.
pub fn spatial_partition(
    num_nodes: usize,
    edges: &[(usize, usize)],
    center: usize,
) -> Result<Array3<f64>> {
    if num_nodes == 0 {
        return Err(ModelError::InvalidValue {
            name: "num_nodes",
            value: 0.0,
            allowed: ">= 1",
        });
    }
    let check = |node: usize| {
        if node >= num_nodes {
            Err(ModelError::NodeOutOfRange { node, num_nodes })
        } else {
            Ok(())
        }
    };
    check(center)?;
    let mut adj = vec![vec![false; num_nodes]; num_nodes];
    for &(i, j) in edges {
        check(i)?;
        check(j)?;
        adj[i][j] = true;
        adj[j][i] = true;
    }
    for (i, row) in adj.iter_mut().enumerate() {
        row[i] = true;
    }
    // Breadth-first hop distance to the centre.
    let mut dist = vec![usize::MAX; num_nodes];
    dist[center] = 0;
    let mut queue = VecDeque::from([center]);
    while let Some(u) = queue.pop_front() {
        for w in 0..num_nodes {
            if adj[u][w] && dist[w] == usize::MAX {
                dist[w] = dist[u] + 1;
                queue.push_back(w);
            }
        }
    }
    let col_sum: Vec<f64> = (0..num_nodes)
        .map(|w| (0..num_nodes).filter(|&v| adj[v][w]).count() as f64)
        .collect();
    let mut a = Array3::zeros((3, num_nodes, num_nodes));
    for v in 0..num_nodes {
        for w in 0..num_nodes {
            if !adj[v][w] {
                continue;
            }
            let k = if v == w {
                0
            } else if dist[v] >= dist[w] {
                1
            } else {
                2
            };
            a[[k, v, w]] = 1.0 / col_sum[w];
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_partition_is_column_stochastic() {
        // 0 - 1 - 2 - 3, centre 1.
        let a = spatial_partition(4, &[(0, 1), (1, 2), (2, 3)], 1).unwrap();
        let total = a.sum_axis(ndarray::Axis(0));
        for w in 0..4 {
            let s: f64 = total.column(w).sum();
            assert!((s - 1.0).abs() < 1e-12, "column {w} sums to {s}");
        }
        // Root subset is the (normalised) identity.
        assert!((a[[0, 0, 0]] - 0.5).abs() < 1e-12);
        assert!((a[[0, 1, 1]] - 1.0 / 3.0).abs() < 1e-12);
        // Output node 2 (distance 1): source 1 is closer (k = 2), source 3 farther (k = 1).
        assert!((a[[2, 1, 2]] - 1.0 / 3.0).abs() < 1e-12);
        assert!((a[[1, 3, 2]] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(a[[1, 1, 2]], 0.0);
        // Output node 1 is the centre: both neighbours are farther.
        assert!((a[[1, 0, 1]] - 1.0 / 3.0).abs() < 1e-12);
        assert!((a[[1, 2, 1]] - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_out_of_range_nodes() {
        let err = spatial_partition(3, &[(0, 3)], 0).unwrap_err();
        assert!(matches!(
            err,
            ModelError::NodeOutOfRange {
                node: 3,
                num_nodes: 3
            }
        ));
        assert!(spatial_partition(3, &[], 5).is_err());
    }
}
