//! Skeleton graphs and the ST-GCN "spatial configuration" partitioning (Yan, Xiong, Lin,
//! *Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action Recognition*,
//! AAAI 2018, §3.3 "Partition strategies", and the `Graph` class of the authors' code).
//!
//! Layouts: the 15-joint DeepMimic humanoid of the bundled mocap clips, OpenPose BODY_25 and the
//! 25-joint Kinect v2 layout of NTU RGB+D.
//!
//! # Normalization of the partitions (exactly what [`Graph::spatial_partitions`] returns)
//!
//! Let `Â = I + A` (binary adjacency with self-loops, symmetric) and `D` the diagonal of its
//! column sums, `D_ii = Σ_j Â_ji = deg(i) + 1`. The normalized adjacency is `N = Â · D⁻¹`, i.e.
//! `N[j, i] = Â[j, i] / (deg(i) + 1)`: every column sums to 1 (ST-GCN's `normalize_digraph`).
//! With `r(v)` the hop distance from `v` to the center joint, the K = 3 partitions split `N`:
//!
//! * `A_0[i, i] = N[i, i]` — the root (self) subset;
//! * `A_1[j, i] = N[j, i]` for neighbours with `r(j) ≥ r(i)` — same distance or farther from the
//!   center than the root node `i`;
//! * `A_2[j, i] = N[j, i]` for neighbours with `r(j) < r(i)` — closer to the center.
//!
//! So `A_0 + A_1 + A_2 = N` and each column of the sum adds up to 1. The order (self,
//! farther-or-equal, closer) is that of the ST-GCN code, where a layer computes
//! `x_out[.., i] = Σ_k Σ_j W_k x[.., j] A_k[j, i]` (`einsum('nkctv,kvw->nctw')`).
//!
//! [`Graph::spatial_partitions`] uses exact hop distances (the paper's definition).
//! The reference code computes `r` with hop distances capped at `max_hop = 1` (nodes two or more
//! hops from the center all get distance ∞, so most edges fall into `A_1`);
//! [`Graph::spatial_partitions_capped`] reproduces that variant for compatibility.

use ndarray::{Array2, Array3};

use super::{Result, SkeletonError};

/// OpenPose BODY_25 edges (0-based joint indices; 1 = neck, 8 = mid-hip).
pub const BODY25_EDGES: [(usize, usize); 24] = [
    (1, 8),
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (8, 9),
    (9, 10),
    (10, 11),
    (8, 12),
    (12, 13),
    (13, 14),
    (1, 0),
    (0, 15),
    (15, 17),
    (0, 16),
    (16, 18),
    (14, 19),
    (19, 20),
    (14, 21),
    (11, 22),
    (22, 23),
    (11, 24),
];

/// BODY_25 center joint (neck, 0-based), as ST-GCN's OpenPose layout.
pub const BODY25_CENTER: usize = 1;

/// NTU RGB+D 25-joint edges, **1-based** as in the dataset's documentation and the ST-GCN code.
pub const NTU25_EDGES_1BASED: [(usize, usize); 24] = [
    (1, 2),
    (2, 21),
    (3, 21),
    (4, 3),
    (5, 21),
    (6, 5),
    (7, 6),
    (8, 7),
    (9, 21),
    (10, 9),
    (11, 10),
    (12, 11),
    (13, 1),
    (14, 13),
    (15, 14),
    (16, 15),
    (17, 1),
    (18, 17),
    (19, 18),
    (20, 19),
    (22, 23),
    (23, 8),
    (24, 25),
    (25, 12),
];

/// NTU center joint (1-based 21 = spine at the shoulders); this is the 0-based index 20.
pub const NTU25_CENTER: usize = 20;

/// Parent of each joint of the 15-joint DeepMimic humanoid (`skeleton.csv`; `None` = root).
pub const MOCAP15_PARENTS: [Option<usize>; 15] = [
    None,
    Some(0),
    Some(1),
    Some(0),
    Some(3),
    Some(4),
    Some(1),
    Some(6),
    Some(7),
    Some(0),
    Some(9),
    Some(10),
    Some(1),
    Some(12),
    Some(13),
];

/// Center joint of the mocap humanoid: the chest (index 1), where neck and shoulders attach —
/// the counterpart of NTU's spine-shoulder joint.
pub const MOCAP15_CENTER: usize = 1;

/// Number of partitions of the spatial configuration strategy.
pub const NUM_PARTITIONS: usize = 3;

/// An undirected skeleton graph: joints `0..num_nodes`, bone `edges`, and the `center` joint used
/// by the spatial partitioning. Build it with [`Graph::new`] (or the layout constructors), which
/// validates indices and connectivity; the methods index by the edges' endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Number of joints `V`.
    pub num_nodes: usize,
    /// Bones as unordered pairs of 0-based joint indices.
    pub edges: Vec<(usize, usize)>,
    /// The center ("gravity center") joint.
    pub center: usize,
}

impl Graph {
    /// Builds a graph, checking that indices are in range, there are no self-loops or repeated
    /// edges, and the graph is connected (every joint must have a hop distance to the center).
    pub fn new(num_nodes: usize, edges: Vec<(usize, usize)>, center: usize) -> Result<Self> {
        let bad = |reason, node| SkeletonError::InvalidGraph {
            reason,
            node,
            num_nodes,
        };
        if center >= num_nodes {
            return Err(bad("center out of range", center));
        }
        let mut seen = std::collections::HashSet::new();
        for &(a, b) in &edges {
            if a >= num_nodes || b >= num_nodes {
                return Err(bad("edge endpoint out of range", a.max(b)));
            }
            if a == b {
                return Err(bad("self-loop edge", a));
            }
            if !seen.insert((a.min(b), a.max(b))) {
                return Err(bad("repeated edge", a));
            }
        }
        let g = Graph {
            num_nodes,
            edges,
            center,
        };
        if let Some(v) = g
            .hop_distances_from(center)
            .iter()
            .position(|d| d.is_none())
        {
            return Err(bad("node not connected to the center", v));
        }
        Ok(g)
    }

    /// Builds a tree from a parent list (`None` for the root); edges are (child, parent).
    pub fn from_parents(parents: &[Option<usize>], center: usize) -> Result<Self> {
        let edges = parents
            .iter()
            .enumerate()
            .filter_map(|(c, p)| p.map(|p| (c, p)))
            .collect();
        Self::new(parents.len(), edges, center)
    }

    /// The 15-joint DeepMimic humanoid of the bundled mocap clips (parents as in
    /// `skeleton.csv`), centered on the chest.
    pub fn mocap15() -> Self {
        Self::from_parents(&MOCAP15_PARENTS, MOCAP15_CENTER).expect("constant layout is valid")
    }

    /// OpenPose BODY_25, centered on the neck.
    pub fn body25() -> Self {
        Self::new(25, BODY25_EDGES.to_vec(), BODY25_CENTER).expect("constant layout is valid")
    }

    /// NTU RGB+D (Kinect v2) 25 joints, centered on joint 21 (1-based; index 20).
    pub fn ntu25() -> Self {
        let edges = NTU25_EDGES_1BASED
            .iter()
            .map(|&(a, b)| (a - 1, b - 1))
            .collect();
        Self::new(25, edges, NTU25_CENTER).expect("constant layout is valid")
    }

    /// The names [`Graph::by_name`] knows, in the order it lists them.
    pub const NAMES: [&'static str; 3] = ["mocap15", "body25", "ntu25"];

    /// A bundled layout by name: `mocap15` ([`Graph::mocap15`]), `body25` ([`Graph::body25`])
    /// or `ntu25` ([`Graph::ntu25`]).
    ///
    /// # Errors
    /// [`SkeletonError::UnknownGraph`] naming the unknown name and listing the known ones.
    pub fn by_name(name: &str) -> Result<Self> {
        match name {
            "mocap15" => Ok(Self::mocap15()),
            "body25" => Ok(Self::body25()),
            "ntu25" => Ok(Self::ntu25()),
            _ => Err(SkeletonError::UnknownGraph {
                name: name.to_owned(),
                known: Self::NAMES.join(", "),
            }),
        }
    }

    /// The name of this graph if it is one of the bundled layouts (same nodes, edges in the
    /// same order and centre as [`Graph::by_name`] builds), `None` for any other graph.
    pub fn name(&self) -> Option<&'static str> {
        Self::NAMES
            .into_iter()
            .find(|n| Self::by_name(n).is_ok_and(|g| &g == self))
    }

    /// Binary symmetric adjacency without self-loops, `(V, V)`.
    pub fn adjacency(&self) -> Array2<f64> {
        let mut a = Array2::zeros((self.num_nodes, self.num_nodes));
        for &(i, j) in &self.edges {
            a[[i, j]] = 1.0;
            a[[j, i]] = 1.0;
        }
        a
    }

    /// Hop distance of every joint from `source` (`None` when unreachable).
    pub fn hop_distances_from(&self, source: usize) -> Vec<Option<usize>> {
        let mut nbrs = vec![Vec::new(); self.num_nodes];
        for &(i, j) in &self.edges {
            nbrs[i].push(j);
            nbrs[j].push(i);
        }
        let mut dist = vec![None; self.num_nodes];
        dist[source] = Some(0);
        let mut queue = std::collections::VecDeque::from([source]);
        while let Some(v) = queue.pop_front() {
            let d = dist[v].expect("queued nodes have a distance");
            for &w in &nbrs[v] {
                if dist[w].is_none() {
                    dist[w] = Some(d + 1);
                    queue.push_back(w);
                }
            }
        }
        dist
    }

    /// Hop distance of every joint from the center. Graphs built by [`Graph::new`] are
    /// connected; a joint unreachable in a hand-built `Graph` gets `usize::MAX`.
    pub fn hop_distances_to_center(&self) -> Vec<usize> {
        self.hop_distances_from(self.center)
            .into_iter()
            .map(|d| d.unwrap_or(usize::MAX))
            .collect()
    }

    /// `N = (I + A) · D⁻¹` with `D` the column sums of `I + A`; every column sums to 1.
    pub fn normalized_adjacency(&self) -> Array2<f64> {
        let mut a = self.adjacency();
        for i in 0..self.num_nodes {
            a[[i, i]] = 1.0;
        }
        for i in 0..self.num_nodes {
            let s: f64 = a.column(i).sum();
            a.column_mut(i).mapv_inplace(|x| x / s);
        }
        a
    }

    /// ST-GCN spatial configuration partitions, `(K = 3, V, V)`, with exact hop distances to the
    /// center (see the module documentation for the exact normalization and order).
    ///
    /// On a graph built field by field rather than by [`Graph::new`], repeated edges count once
    /// and joints unreachable from the center are infinitely far (two of them compare equal).
    pub fn spatial_partitions(&self) -> Array3<f64> {
        let r: Vec<f64> = self
            .hop_distances_to_center()
            .into_iter()
            .map(|d| d as f64)
            .collect();
        self.partition_by(&r)
    }

    /// The same partitions as returned by the ST-GCN reference code, whose hop distances to the
    /// center are capped at 1 (farther joints get distance ∞ and compare equal to each other).
    pub fn spatial_partitions_capped(&self) -> Array3<f64> {
        let r: Vec<f64> = self
            .hop_distances_to_center()
            .into_iter()
            .map(|d| if d <= 1 { d as f64 } else { f64::INFINITY })
            .collect();
        self.partition_by(&r)
    }

    /// The three partitions as separate matrices `[A_0, A_1, A_2]`.
    pub fn spatial_partition_array(&self) -> [Array2<f64>; 3] {
        let a = self.spatial_partitions();
        [
            a.index_axis(ndarray::Axis(0), 0).to_owned(),
            a.index_axis(ndarray::Axis(0), 1).to_owned(),
            a.index_axis(ndarray::Axis(0), 2).to_owned(),
        ]
    }

    fn partition_by(&self, r: &[f64]) -> Array3<f64> {
        let v = self.num_nodes;
        let n = self.normalized_adjacency();
        let mut out = Array3::zeros((NUM_PARTITIONS, v, v));
        for i in 0..v {
            out[[0, i, i]] = n[[i, i]];
        }
        for &(a, b) in &self.edges {
            for (j, i) in [(a, b), (b, a)] {
                // Entry (j, i): input node j contributes to output node i.
                let k = if r[j] >= r[i] { 1 } else { 2 };
                out[[k, j, i]] = n[[j, i]];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_partitions(g: &Graph) {
        let a = g.spatial_partitions();
        let v = g.num_nodes;
        assert_eq!(a.shape(), &[3, v, v]);
        let r = g.hop_distances_to_center();
        let adj = g.adjacency();
        for i in 0..v {
            // Columns of the sum over k add up to 1.
            let s: f64 = (0..3).map(|k| a.slice(ndarray::s![k, .., i]).sum()).sum();
            assert!((s - 1.0).abs() < 1e-12, "column {i} sums to {s}");
            let deg = adj.column(i).sum();
            for j in 0..v {
                let (a0, a1, a2) = (a[[0, j, i]], a[[1, j, i]], a[[2, j, i]]);
                if i == j {
                    assert_eq!(a0, 1.0 / (deg + 1.0));
                    assert_eq!((a1, a2), (0.0, 0.0));
                } else {
                    assert_eq!(a0, 0.0);
                    if adj[[j, i]] == 0.0 {
                        assert_eq!((a1, a2), (0.0, 0.0));
                    } else if r[j] >= r[i] {
                        assert_eq!((a1, a2), (1.0 / (deg + 1.0), 0.0));
                    } else {
                        assert_eq!((a1, a2), (0.0, 1.0 / (deg + 1.0)));
                    }
                }
            }
        }
        // In a tree every non-center node has exactly one neighbour closer to the center.
        for i in 0..v {
            let closer = (0..v).filter(|&j| a[[2, j, i]] > 0.0).count();
            assert_eq!(closer, usize::from(i != g.center), "node {i}");
        }
    }

    #[test]
    fn layouts_are_trees_and_partitions_hold() {
        for g in [Graph::mocap15(), Graph::body25(), Graph::ntu25()] {
            assert_eq!(g.edges.len(), g.num_nodes - 1);
            check_partitions(&g);
        }
    }

    #[test]
    fn ntu_center_and_distances() {
        let g = Graph::ntu25();
        assert_eq!(g.center, 20);
        let r = g.hop_distances_to_center();
        // 1-based: 21 -> 2 -> 1 (spine base) ; hand tip 24 -> 25 -> 12 -> 11 -> 10 -> 9 -> 21.
        assert_eq!(r[0], 2);
        assert_eq!(r[23], 6);
        assert_eq!(r[3], 2); // head: 4 -> 3 -> 21
    }

    #[test]
    fn capped_variant_matches_reference_behaviour() {
        let g = Graph::ntu25();
        let a = g.spatial_partitions_capped();
        let exact = g.spatial_partitions();
        // Same total, different split.
        let total: Array2<f64> = a.sum_axis(ndarray::Axis(0));
        let total_exact: Array2<f64> = exact.sum_axis(ndarray::Axis(0));
        assert_eq!(total, total_exact);
        assert_eq!(total, g.normalized_adjacency());
        // Edge (1-based) 12-11: both far from the center, so in the capped variant it is in A_1
        // both ways; exactly, 11 is closer to the center than 12.
        assert!(a[[1, 10, 11]] > 0.0 && a[[1, 11, 10]] > 0.0);
        assert!(exact[[2, 10, 11]] > 0.0 && exact[[1, 11, 10]] > 0.0);
        // Near the center both agree: 2 is closer to 21 than 1 (1-based).
        assert!(a[[2, 1, 0]] > 0.0 && exact[[2, 1, 0]] > 0.0);
    }

    #[test]
    fn graphs_by_name_round_trip_and_unknown_names_list_the_known_ones() {
        for (n, g, v) in [
            ("mocap15", Graph::mocap15(), 15),
            ("body25", Graph::body25(), 25),
            ("ntu25", Graph::ntu25(), 25),
        ] {
            let by = Graph::by_name(n).unwrap();
            assert_eq!((by.num_nodes, by.name()), (v, Some(n)));
            assert_eq!(by, g);
        }
        // Same node count, other edges: body25 and ntu25 are told apart.
        assert_ne!(Graph::body25(), Graph::ntu25());
        let e = Graph::by_name("NTU25").unwrap_err().to_string();
        assert!(
            e.contains("\"NTU25\"") && e.contains("mocap15, body25, ntu25"),
            "{e}"
        );
        // A graph built by hand has no name.
        assert_eq!(Graph::new(2, vec![(0, 1)], 0).unwrap().name(), None);
    }

    #[test]
    fn invalid_graphs_are_rejected() {
        assert!(matches!(
            Graph::new(3, vec![(0, 1)], 0),
            Err(SkeletonError::InvalidGraph { node: 2, .. })
        ));
        assert!(Graph::new(3, vec![(0, 1), (1, 1)], 0).is_err());
        assert!(Graph::new(3, vec![(0, 1), (1, 3)], 0).is_err());
        assert!(Graph::new(3, vec![(0, 1), (1, 0), (1, 2)], 0).is_err());
        assert!(Graph::new(2, vec![(0, 1)], 2).is_err());
    }

    proptest::proptest! {
        /// Partition laws on random trees with a random center.
        #[test]
        fn random_tree_partitions(
            raw_parents in proptest::collection::vec(0usize..1000, 1..40),
            center_pick in 0usize..1000,
        ) {
            let mut parents = vec![None];
            for (i, p) in raw_parents.iter().enumerate() {
                parents.push(Some(p % (i + 1)));
            }
            let g = Graph::from_parents(&parents, center_pick % parents.len()).unwrap();
            check_partitions(&g);
        }
    }

    #[test]
    fn split_array_matches_tensor() {
        let g = Graph::body25();
        let parts = g.spatial_partition_array();
        let t = g.spatial_partitions();
        for (k, p) in parts.iter().enumerate() {
            assert_eq!(p, &t.index_axis(ndarray::Axis(0), k));
        }
    }
}
