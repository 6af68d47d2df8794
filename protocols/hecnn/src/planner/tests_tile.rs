//! The planner over tile shapes: every tiling of the slots whose input fits is a candidate, the latency
//! objective picks a single-image tiling and the throughput objective a batched one among the
//! tile candidates, the tables name the tile shape, and the priced stages are the compiled
//! layout's.

use super::tests::fixed_tables;
use super::*;
use crate::layout::{CnnLayout, LayoutKind};
use crate::tests::committed;
use crate::tile::{CnnTiling, TileCnn};

#[test]
fn every_tiling_is_priced_and_the_objective_picks_the_batch_tile() {
    let model = committed("mnist-cryptonets");
    let tiles: Vec<Candidate> = candidates(&model)
        .unwrap()
        .into_iter()
        .filter(|c| c.layout == LayoutKind::Tile)
        .collect();
    let fits = CnnTiling::all(8192)
        .into_iter()
        .filter(|&t| {
            let p = crate::tile::TilePlan::new(&model.spec, 8192, t).unwrap();
            p.input_cts() <= crate::tile::MAX_INPUT_CTS
        })
        .count();
    assert_eq!(tiles.len(), fits);
    assert!(fits > 20 && fits < CnnTiling::all(8192).len(), "{fits}");
    let lat = choose(&tiles, &fixed_tables(), Objective::Latency).unwrap();
    let c = &lat.chosen().candidate;
    assert_eq!(c.splits[2], 1, "latency: one image per pass, {}", c.label());
    assert_eq!(c.splits.iter().product::<usize>(), 8192);
    let thr = choose(&tiles, &fixed_tables(), Objective::Throughput).unwrap();
    let t = &thr.chosen().candidate;
    assert!(t.images > 1, "throughput: a batch per pass, {}", t.label());
    assert!(thr.chosen().images_per_hour() > lat.chosen().images_per_hour());
    let label = c.label();
    assert!(label.starts_with("tile ") && label.contains('×'), "{label}");
    assert!(
        lat.table().contains(&format!("**{label}**")),
        "{}",
        lat.table()
    );
    assert!(lat.ranking().contains(&format!("| {label} |")));
    assert!(lat.variants(LayoutKind::Tile, 1, 3).contains(&label));
    // The priced stages are those of the compiled layout at that tiling.
    let tiling = CnnTiling::from_array([c.splits[0], c.splits[1], c.splits[2]]);
    let he = TileCnn::new(&model, &c.preset.build().unwrap(), tiling).unwrap();
    assert_eq!(he.planned_stages(), c.stages);
    assert_eq!(he.planned_op_counts(), c.op_counts());
}
