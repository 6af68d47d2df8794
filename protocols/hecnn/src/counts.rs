//! Operation counts shared by the layouts: the squares of an `x²` activation and the sum of
//! the counts of a pass's parts (every layout plans its counts from these and its own layers).

use crate::layout::Stage;
use ckks::OpCounts;

/// Counts of `n` squares (product, relinearization by one key switch, rescale).
pub(crate) fn squares(n: u64) -> OpCounts {
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

/// The field-wise sum of `parts`.
pub(crate) fn sum(parts: &[OpCounts]) -> OpCounts {
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

/// The field-wise sum of the operations of `stages`.
pub(crate) fn sum_stages(stages: &[Stage]) -> OpCounts {
    sum(&stages.iter().map(|s| s.ops).collect::<Vec<_>>())
}
