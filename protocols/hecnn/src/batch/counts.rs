//! The operation count of a batch-layout forward pass, from the model's shape alone.

use super::BatchCnn;
use crate::counts::{squares, sum};
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

pub(super) fn planned(he: &BatchCnn) -> OpCounts {
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
    sum(&[conv, squares(f), linear(h, f), squares(h), linear(c, h)])
}
