//! The operations of a batch-layout forward pass by stage, from the model's shape alone.

use super::{BatchCnn, BATCH_DEPTH};
use crate::counts::squares;
use crate::layout::Stage;
use ckks::OpCounts;

/// Counts of one layer of `outputs` weighted sums of `terms` products each, a rescale and a
/// bias add per output.
fn linear(outputs: u64, terms: u64) -> OpCounts {
    OpCounts {
        mul_const: outputs * terms,
        add: outputs * terms, // terms − 1 accumulations + 1 bias
        rescale: outputs,
        ..OpCounts::default()
    }
}

/// conv, x², fc1, x², fc2: one level each, from the input level down.
pub(super) fn stages(he: &BatchCnn) -> Vec<Stage> {
    let sp = &he.model.spec;
    let maps = sp.maps as u64;
    let conv_terms: u64 = he.taps.iter().map(|t| t.len() as u64).sum();
    let conv = OpCounts {
        mul_const: maps * conv_terms,
        add: maps * conv_terms,
        rescale: maps * sp.positions() as u64,
        ..OpCounts::default()
    };
    let (f, h, c) = (sp.features() as u64, sp.hidden as u64, sp.classes as u64);
    let l = BATCH_DEPTH;
    vec![
        Stage::new("conv", l, conv, 0),
        Stage::new("x²", l - 1, squares(f), 0),
        Stage::new("fc1", l - 2, linear(h, f), 0),
        Stage::new("x²", l - 3, squares(h), 0),
        Stage::new("fc2", l - 4, linear(c, h), 0),
    ]
}
