//! The operation count of a batch-layout forward pass, from the model's shape alone.

use super::BatchCnn;
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

/// Counts of `n` squares (product, relinearization by one key switch, rescale).
fn squares(n: u64) -> OpCounts {
    OpCounts {
        mul: n,
        relinearize: n,
        key_switch: n,
        decompose: n,
        mod_down: 2 * n,
        rescale: n,
        ..OpCounts::default()
    }
}

fn sum(parts: &[OpCounts]) -> OpCounts {
    parts.iter().fold(OpCounts::default(), |a, b| OpCounts {
        add: a.add + b.add,
        mul_plain: a.mul_plain + b.mul_plain,
        mul_const: a.mul_const + b.mul_const,
        mul: a.mul + b.mul,
        relinearize: a.relinearize + b.relinearize,
        rotate: a.rotate + b.rotate,
        key_switch: a.key_switch + b.key_switch,
        decompose: a.decompose + b.decompose,
        rescale: a.rescale + b.rescale,
        drop_level: a.drop_level + b.drop_level,
        mod_down: a.mod_down + b.mod_down,
    })
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
