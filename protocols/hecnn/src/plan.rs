//! Parameter choice: the smallest 128-bit CKKS preset that leaves a layout's depth.

use crate::error::{HeCnnError, Result};
use ckks::{presets, Preset};

/// The smallest 128-bit preset with at least `depth` levels.
///
/// # Errors
/// [`HeCnnError::DepthExceeded`] if even the largest preset is too shallow.
pub fn choose_preset(layout: &'static str, depth: usize) -> Result<Preset> {
    presets::ALL_128BIT
        .into_iter()
        .find(|p| p.levels >= depth)
        .ok_or(HeCnnError::DepthExceeded {
            layout,
            needed: depth,
            available: presets::ALL_128BIT.last().map_or(0, |p| p.levels),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_five_needs_n14_and_depth_forty_is_refused() {
        assert_eq!(choose_preset("batch", 5).unwrap().log_n, 14);
        assert_eq!(choose_preset("batch", 3).unwrap().log_n, 13);
        assert!(matches!(
            choose_preset("batch", 40),
            Err(HeCnnError::DepthExceeded { needed: 40, .. })
        ));
    }
}
