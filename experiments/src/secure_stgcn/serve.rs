//! Serving the secure-trained model under CKKS: the owner's reconstructed model, BN-folded,
//! evaluated on encrypted test clips in this process through the `cryptogcn` task's path (AMA
//! packing, many clips per pass, under the 128-bit parameters `hegcn::choose_params` tailors to
//! the model, as `party serve` does by default), the decrypted logits compared with the
//! plaintext evaluation of the same weights.
//!
//! Security model: a semi-honest serving party; the client's key never leaves the client
//! (here: the same process, for measurement).

use crate::config::cryptogcn::{AccuracyData, AccuracySpec};
use crate::cryptogcn::accuracy::{self, AccuracyFigures, AccuracyInputs};
use anyhow::Result;
use datasets::skeleton::SkeletonSet;
use stgcn::StGcn;

/// Classifies the first `clips` test clips (0 = all) of `test` encrypted with `model`.
pub(super) fn serve(
    model: &StGcn,
    train: &SkeletonSet,
    test: &SkeletonSet,
    description: &str,
    clips: usize,
    cache_mib: usize,
) -> Result<AccuracyFigures> {
    let spec = AccuracySpec {
        model: "the secure-trained model".into(),
        samples: clips,
        train_per_class: 0,
        test_per_class: 0,
        seed: None,
        pruning_levels: Vec::new(),
        batch: true,
        clips_per_pass: 0,
        dataset: AccuracyData::Mocap15,
        stage_errors: false,
        pruning_epochs: 0,
        tailored_params: true,
        frontier: None,
        throughput: None,
    };
    let inputs = AccuracyInputs {
        model: model.clone(),
        train: train.clone(),
        test: test.clone(),
        data_desc: description.to_string(),
    };
    accuracy::measure(&spec, &inputs, cache_mib)
}
