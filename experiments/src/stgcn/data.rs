//! The skeleton data of the `stgcn` task: the Mocap-15 cross-view split or the BodyPose
//! stratified split, with the skeleton graph and the descriptions the report prints.

use crate::config::stgcn::{
    BodyPoseNorm, OtherViews, SkeletonData, OTHER_VIEWS_TEST_STREAM, OTHER_VIEWS_TRAIN_STREAM,
};
use anyhow::{Context, Result};
use datasets::skeleton::{
    BodyPoseNormalization, BodyPoseSet, Graph, Mocap15, Mocap15Config, SkeletonSet, ViewSet,
};
use stgcn::GraphSpec;

/// Train and test clips with their graph.
pub(crate) struct Data {
    pub(crate) train: SkeletonSet,
    pub(crate) test: SkeletonSet,
    pub(crate) graph: GraphSpec,
    pub(crate) description: String,
    pub(crate) protocol_note: String,
    pub(crate) short_name: &'static str,
}

/// Loads the configured data (`seed` fixes the BodyPose split).
pub(crate) fn load(d: &SkeletonData, seed: u64) -> Result<Data> {
    match d {
        SkeletonData::Mocap15 {
            train_per_class,
            test_per_class,
            frames,
            seed: data_seed,
            views,
        } => load_mocap15(
            *train_per_class,
            *test_per_class,
            *frames,
            *data_seed,
            views.as_ref(),
        ),
        SkeletonData::Bodypose {
            test_fraction,
            normalization,
        } => load_bodypose(*test_fraction, *normalization, seed),
    }
}

fn load_mocap15(
    train_per_class: usize,
    test_per_class: usize,
    frames: usize,
    data_seed: Option<u64>,
    views: Option<&OtherViews>,
) -> Result<Data> {
    let mut mc = Mocap15Config {
        frames,
        ..Mocap15Config::default()
    };
    if let Some(s) = data_seed {
        mc.seed = s;
    }
    let gen_seed = mc.seed;
    let gen = Mocap15::load_bundled(mc).context("loading the bundled mocap clips")?;
    if let Some(v) = views {
        return other_views(&gen, v, train_per_class, test_per_class, frames, gen_seed);
    }
    let split = gen
        .cross_view(train_per_class, test_per_class)
        .context("generating the Mocap-15 cross-view split")?;
    let g = Graph::mocap15();
    let graph = GraphSpec::from_edges("mocap15", g.num_nodes, &g.edges, g.center)?;
    let (train, test) = (split.train.set, split.test.set);
    Ok(Data {
        description: format!(
            "Mocap-15 cross-view: {} training clips ({train_per_class} per class, cameras at −45° and +45° yaw) and {} test clips ({test_per_class} per class, camera at 0°), {} classes, (C, T, V, M) = (3, {frames}, 15, 1), generator seed {gen_seed}",
            train.len(),
            test.len(),
            train.num_classes(),
        ),
        protocol_note: "Mocap-15 cross-view follows the NTU RGB+D cross-view protocol (train on the ±45° cameras, test on the 0° camera). The clips are renderings of the 15 bundled DeepMimic motions with random speed, temporal crop, bone scale, mirroring and joint noise from independent random streams, so test clips are new renderings of the same 15 source motions and one performer: an easier setting than NTU RGB+D, where test clips come from other people and repetitions.".into(),
        short_name: "Mocap-15 cross-view",
        train,
        test,
        graph,
    })
}

/// Mocap-15 clips from the views of `v`: training and held-out clips from the two streams
/// reserved for them (see [`OtherViews`]).
fn other_views(
    gen: &Mocap15,
    v: &OtherViews,
    train_per_class: usize,
    test_per_class: usize,
    frames: usize,
    gen_seed: u64,
) -> Result<Data> {
    let views = ViewSet::Fixed(v.angles_deg.clone());
    let train = gen
        .generate(train_per_class, &views, OTHER_VIEWS_TRAIN_STREAM)
        .context("generating the Mocap-15 other-view training clips")?
        .set;
    let test = gen
        .generate(test_per_class, &views, OTHER_VIEWS_TEST_STREAM)
        .context("generating the Mocap-15 other-view held-out clips")?
        .set;
    let g = Graph::mocap15();
    let graph = GraphSpec::from_edges("mocap15", g.num_nodes, &g.edges, g.center)?;
    let angles: Vec<String> = v.angles_deg.iter().map(|a| format!("{a}°")).collect();
    Ok(Data {
        description: format!(
            "Mocap-15 other views: {} training and {} held-out clips ({train_per_class} and {test_per_class} per class, cameras at {} yaw in turn, generator streams {OTHER_VIEWS_TRAIN_STREAM} and {OTHER_VIEWS_TEST_STREAM}), {} classes, (C, T, V, M) = (3, {frames}, 15, 1), generator seed {gen_seed}",
            train.len(),
            test.len(),
            angles.join(", "),
            train.num_classes(),
        ),
        protocol_note: "Other-view Mocap-15 clips come from cameras and random streams the cross-view split (±45° training, 0° test, streams 1 and 2) does not use: a model trained on them is public with respect to the cross-view data and can be fine-tuned on it.".into(),
        short_name: "Mocap-15 other views",
        train,
        test,
        graph,
    })
}

fn load_bodypose(test_fraction: f64, normalization: BodyPoseNorm, seed: u64) -> Result<Data> {
    let norm = match normalization {
        BodyPoseNorm::AsProvided => BodyPoseNormalization::AsProvided,
        BodyPoseNorm::MidHipTorso => BodyPoseNormalization::MidHipTorso,
    };
    let all = BodyPoseSet::load_bundled(norm).context("loading BodyPose")?;
    let (train, test) = all
        .set
        .split_stratified(test_fraction, seed)
        .context("splitting BodyPose")?;
    let g = Graph::body25();
    let graph = GraphSpec::from_edges("body25", g.num_nodes, &g.edges, g.center)?;
    Ok(Data {
        description: format!(
            "BodyPose (OpenPose BODY_25, real 2-D poses): {} training and {} test samples (stratified, test fraction {test_fraction}, seed {seed}), {} classes, (C, T, V, M) = (2, 1, 25, 1), keypoints {}",
            train.len(),
            test.len(),
            train.num_classes(),
            match normalization {
                BodyPoseNorm::AsProvided => "as normalised by the package (bounding-box centre, scaled)",
                BodyPoseNorm::MidHipTorso => "centred on the mid-hip and divided by the torso length",
            }
        ),
        protocol_note: "BodyPose clips have T = 1 frame: every 9-tap temporal convolution (zero padding 4) then reduces to its centre tap, i.e. a 1×1 convolution, and stride-2 blocks keep the single frame ((1 − 1) / 2 + 1 = 1), so ST-GCN runs unchanged as a spatial graph network. Undetected keypoints stay at (0, 0).".into(),
        short_name: "BodyPose",
        train,
        test,
        graph,
    })
}
