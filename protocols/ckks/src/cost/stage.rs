//! A block of a forward pass's evaluator operations that run at one level ([`Stage`]), the
//! unit the encrypted-model planners (`hecnn::planner`, `hegcn::planner`) count and price:
//! [`sum_stages`] adds their operations, [`price_stages`] prices each with a probed
//! [`OpCosts`] table ([`OpCosts::price`] at the stage's level, its lazy-ModDown products over
//! `Q·P`).
//!
//! Cost: pure arithmetic on counts. Security: counts of public model shapes only.

use super::probe::OpCosts;
use crate::evaluator::OpCounts;

/// A block of a forward pass's operations that run at one level: what a planner prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The layer (`conv`, `x²`, `fc1`, `block0.gcn`, …).
    pub layer: String,
    /// The level of the stage's inputs.
    pub level: usize,
    /// The evaluator operations.
    pub ops: OpCounts,
    /// How many of `ops.mul_plain` (with their accumulations) are taken over `Q·P` (lazy
    /// ModDown, [`crate::lazy`]).
    pub over_qp: u64,
}

impl Stage {
    /// A stage of `ops` at `level`, `over_qp` of whose plaintext products are over `Q·P`.
    pub fn new(layer: impl Into<String>, level: usize, ops: OpCounts, over_qp: u64) -> Self {
        Self {
            layer: layer.into(),
            level,
            ops,
            over_qp,
        }
    }

    /// Estimated seconds of the stage with `costs` ([`OpCosts::price`] at its level).
    pub fn price(&self, costs: &OpCosts) -> f64 {
        costs.price(&self.ops, self.over_qp, self.level)
    }
}

/// The field-wise sum of `parts`.
pub fn sum_counts<'a>(parts: impl IntoIterator<Item = &'a OpCounts>) -> OpCounts {
    parts
        .into_iter()
        .fold(OpCounts::default(), |a, b| OpCounts {
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
pub fn sum_stages(stages: &[Stage]) -> OpCounts {
    sum_counts(stages.iter().map(|s| &s.ops))
}

/// Estimated seconds of each of `stages` with `costs`, in order.
pub fn price_stages(stages: &[Stage], costs: &OpCosts) -> Vec<f64> {
    stages.iter().map(|s| s.price(costs)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::OpKind;

    #[test]
    fn stages_sum_and_price_at_their_levels() {
        // 1 ms per operation per limb, for every kind.
        let costs = OpCosts::from_table("t", 1, &[1, 4], |_, l| 1e-3 * (l + 1) as f64).unwrap();
        let ops = OpCounts {
            add: 2,
            mul_plain: 4,
            rotate: 1,
            key_switch: 1,
            decompose: 1,
            mod_down: 2,
            ..OpCounts::default()
        };
        let s = [Stage::new("a", 1, ops, 3), Stage::new("b", 4, ops, 0)];
        let sum = sum_stages(&s);
        assert_eq!((sum.add, sum.mul_plain, sum.mod_down), (4, 8, 4));
        // 11 operations of 2 and 5 limbs.
        let p = price_stages(&s, &costs);
        assert!((p[0] - 11.0 * 2e-3).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 11.0 * 5e-3).abs() < 1e-12, "{p:?}");
        assert_eq!(costs.at(OpKind::MulPlainExt, 4), 5e-3);
    }
}
