//! Node positions for the dense layout ([`super::DenseLayout::node_order`]): the graph
//! convolution's diagonals are the classes `P·(pos[u] − pos[w]) + (c − o)` over the edges
//! `(u, w)` of every block's aggregation, and its BSGS evaluation pays one giant step per
//! multiple of `B` between the smallest and the largest class (the key rule of [`super`]:
//! giant steps are a Horner chain of rotations by `±B`). So the order minimises first the
//! *bandwidth* `max |pos[u] − pos[w]|` over the edges (the class range, hence the giant
//! steps, and — since neighbouring node offsets' channel ranges overlap — the diagonals), then
//! the number of distinct offsets.
//!
//! Candidates: the identity; from every root, the depth-first order of a BFS spanning tree
//! that visits small subtrees first; and the order of least bandwidth found by a bounded
//! backtracking search (nodes placed left to right; every unplaced neighbour of a placed node
//! is due within `b` positions of it, and a partial placement is refused when more nodes are
//! due by some position than positions are left up to it). On BODY25 (a tree with a degree-4 centre) the search
//! finds bandwidth 3 (offsets `−3..3`), where the depth-first orders reach 7 with ten distinct
//! offsets.
//!
//! Cost: the search stops after [`SEARCH_BUDGET`] placements per bandwidth tried, so compiling
//! stays in milliseconds on any graph; it is only a heuristic beyond that budget.

/// Placements the bandwidth search may try per candidate bandwidth.
pub const SEARCH_BUDGET: usize = 100_000;

use stgcn::FoldedModel;

/// The chosen position of every node (a permutation of `0..V`): the candidate with the
/// smallest `(bandwidth, distinct offsets)`, the first on a tie.
pub fn node_order(model: &FoldedModel) -> Vec<usize> {
    let v = model.num_nodes;
    let (adj, edges) = graph_edges(model);
    let cost = |pos: &[usize]| (bandwidth(&edges, pos), order_cost(&edges, pos));
    let mut candidates: Vec<Vec<usize>> = vec![(0..v).collect()];
    candidates.extend((0..v).map(|root| dfs_positions(&adj, root)));
    let ceiling = candidates.iter().map(|p| bandwidth(&edges, p)).min();
    let floor = adj.iter().map(|a| a.len().div_ceil(2)).max().unwrap_or(0);
    if let Some(pos) =
        (floor.max(1)..ceiling.unwrap_or(0)).find_map(|b| bandwidth_positions(&adj, b))
    {
        candidates.push(pos);
    }
    candidates
        .into_iter()
        .enumerate()
        .min_by_key(|(i, p)| (cost(p), *i))
        .map(|(_, p)| p)
        .expect("the identity is a candidate")
}

/// Neighbour lists and directed edges `(u, w)`, `u ≠ w`, of every block's aggregation.
pub(crate) fn graph_edges(model: &FoldedModel) -> (Vec<Vec<usize>>, Vec<(usize, usize)>) {
    let v = model.num_nodes;
    let mut adj = vec![Vec::new(); v];
    let mut edges = Vec::new();
    for b in &model.blocks {
        for ((_, u, w), &a) in b.aggregation.indexed_iter() {
            if a != 0.0 && u != w {
                edges.push((u, w));
                for (x, y) in [(u, w), (w, u)] {
                    if !adj[x].contains(&y) {
                        adj[x].push(y);
                    }
                }
            }
        }
    }
    (adj, edges)
}

/// Distinct signed position differences over `edges` under positions `pos`.
pub(crate) fn order_cost(edges: &[(usize, usize)], pos: &[usize]) -> usize {
    let mut d: Vec<i64> = edges
        .iter()
        .map(|&(u, w)| pos[u] as i64 - pos[w] as i64)
        .collect();
    d.sort_unstable();
    d.dedup();
    d.len()
}

/// The largest `|pos[u] − pos[w]|` over `edges` (0 without edges).
pub(crate) fn bandwidth(edges: &[(usize, usize)], pos: &[usize]) -> usize {
    edges
        .iter()
        .map(|&(u, w)| pos[u].abs_diff(pos[w]))
        .max()
        .unwrap_or(0)
}

/// Positions with every edge within `b` positions, by backtracking over the node placed at
/// each position (lowest index first); `None` when none exists or the budget runs out.
fn bandwidth_positions(adj: &[Vec<usize>], b: usize) -> Option<Vec<usize>> {
    let mut s = Search {
        adj,
        b,
        pos: vec![usize::MAX; adj.len()],
        order: Vec::with_capacity(adj.len()),
        budget: SEARCH_BUDGET,
    };
    s.place().then_some(s.pos)
}

struct Search<'a> {
    adj: &'a [Vec<usize>],
    b: usize,
    pos: Vec<usize>,
    order: Vec<usize>,
    budget: usize,
}

impl Search<'_> {
    /// The deadline of every unplaced node (the last position within `b` of its earliest
    /// placed neighbour; `None` without one).
    fn deadlines(&self) -> Vec<Option<usize>> {
        (0..self.adj.len())
            .map(|u| match self.pos[u] {
                usize::MAX => self.adj[u]
                    .iter()
                    .filter(|&&w| self.pos[w] != usize::MAX)
                    .map(|&w| self.pos[w] + self.b)
                    .min(),
                _ => None,
            })
            .collect()
    }

    /// Places a node at position `order.len()` and recurses; `true` when all are placed.
    /// Refuses a partial placement when more nodes are due by some position than positions
    /// are left up to it, and places a node due now before any other.
    fn place(&mut self) -> bool {
        let p = self.order.len();
        if p == self.adj.len() {
            return true;
        }
        let due = self.deadlines();
        let mut ds: Vec<usize> = due.iter().flatten().copied().collect();
        ds.sort_unstable();
        if ds.iter().enumerate().any(|(i, &d)| d < p + i) {
            return false;
        }
        let urgent = ds.first() == Some(&p);
        for (u, &du) in due.iter().enumerate() {
            if self.pos[u] != usize::MAX || (urgent && du != Some(p)) {
                continue;
            }
            if self.budget == 0 {
                return false;
            }
            self.budget -= 1;
            self.pos[u] = p;
            self.order.push(u);
            if self.place() {
                return true;
            }
            self.order.pop();
            self.pos[u] = usize::MAX;
        }
        false
    }
}

/// Positions of a depth-first walk from `root` over a BFS spanning tree, smaller subtrees
/// first; unreachable nodes follow in index order.
fn dfs_positions(adj: &[Vec<usize>], root: usize) -> Vec<usize> {
    let v = adj.len();
    let mut parent = vec![usize::MAX; v];
    let mut bfs = vec![root];
    parent[root] = root;
    let mut i = 0;
    while i < bfs.len() {
        let u = bfs[i];
        for &w in &adj[u] {
            if parent[w] == usize::MAX {
                parent[w] = u;
                bfs.push(w);
            }
        }
        i += 1;
    }
    let mut size = vec![1usize; v];
    for &u in bfs.iter().skip(1).rev() {
        size[parent[u]] += size[u];
    }
    let mut children = vec![Vec::new(); v];
    for &u in bfs.iter().skip(1) {
        children[parent[u]].push(u);
    }
    let mut order = Vec::with_capacity(v);
    let mut stack = vec![root];
    while let Some(u) = stack.pop() {
        order.push(u);
        let mut c = children[u].clone();
        c.sort_by_key(|&x| std::cmp::Reverse(size[x]));
        stack.extend(c);
    }
    order.extend((0..v).filter(|&u| parent[u] == usize::MAX));
    let mut pos = vec![0; v];
    for (p, &u) in order.iter().enumerate() {
        pos[u] = p;
    }
    pos
}
