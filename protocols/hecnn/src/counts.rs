//! Operation counts shared by the layouts: the squares of an `x²` activation and the sum of
//! the counts of a pass's parts (every layout plans its counts from these and its own layers;
//! the sum is [`ckks::cost::sum_stages`], shared with `hegcn`).

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

/// The field-wise sum of the operations of `stages`.
pub(crate) fn sum_stages(stages: &[Stage]) -> OpCounts {
    ckks::cost::sum_stages(stages)
}
