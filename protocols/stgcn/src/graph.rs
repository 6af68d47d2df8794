//! The K = 3 spatial-configuration partition (Yan et al., AAAI 2018, §3.4) of an edge list, as
//! a model configuration takes it. The partitioning itself is the skeleton graph's
//! ([`datasets::skeleton::Graph::spatial_partitions`]); this checks the arguments with the
//! model's errors and accepts edge lists the graph constructor refuses (repeated edges,
//! self-loops, nodes unreachable from the centre).

use datasets::skeleton::Graph;
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
/// [`super::StGcnConfig`] if bit-compatibility with a PyTorch checkpoint is needed
/// ([`Graph::spatial_partitions_capped`] computes them).
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
    for &(i, j) in edges {
        check(i)?;
        check(j)?;
    }
    // Built field by field: `Graph::new` would refuse the repeated edges and the disconnected
    // graphs this function accepts, which the partitioning handles as documented above.
    let graph = Graph {
        num_nodes,
        edges: edges.iter().copied().filter(|&(i, j)| i != j).collect(),
        center,
    };
    Ok(graph.spatial_partitions())
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

    #[test]
    fn is_the_skeleton_graph_partition() {
        let g = Graph::ntu25();
        let a = spatial_partition(g.num_nodes, &g.edges, g.center).unwrap();
        assert_eq!(a, g.spatial_partitions());
        // Repeated edges and self-loops change nothing.
        let mut noisy = g.edges.clone();
        noisy.extend([(3, 2), (2, 3), (7, 7)]);
        assert_eq!(spatial_partition(25, &noisy, g.center).unwrap(), a);
    }

    #[test]
    fn unreachable_nodes_are_equally_far() {
        // 0 - 1 - 2 and 3 - 4 with centre 0: 3 and 4 are both infinitely far, so each is in the
        // other's k = 1 subset; node 2 sees 1 as closer.
        let a = spatial_partition(5, &[(0, 1), (1, 2), (3, 4)], 0).unwrap();
        assert_eq!(a[[1, 3, 4]], 0.5);
        assert_eq!(a[[1, 4, 3]], 0.5);
        assert_eq!(a[[2, 1, 2]], 0.5);
        assert_eq!(a[[1, 2, 1]], 1.0 / 3.0);
    }
}
