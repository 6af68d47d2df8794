//! "Mocap-15": an NTU-style skeleton action set generated from the 15 bundled DeepMimic clips by
//! augmentation, with the cross-view protocol of NTU RGB+D (Shahroudy et al., CVPR 2016, §4:
//! train on the ±45° cameras, test on the 0° camera) and a random-view variant.
//!
//! Each sample is rendered from one clip's joint rotations ([`super::fk`]) by:
//! 1. **resampling** to `fps` frames per second: output frame `k` shows clip time
//!    `start_s + k · speed / fps`, interpolating keyframes (root position and hinge angles
//!    linearly, quaternions by slerp) and running forward kinematics, so bones keep their
//!    lengths. This is the **speed warp** (`speed` in 0.7–1.3 by default) and the **random
//!    temporal crop** (`start_s`, uniform over the clip for cyclic clips). A window longer than
//!    a cyclic clip **loops**: each new cycle is moved (ground plane) and turned (about Y) so
//!    that its root starts where and heading how the previous cycle ended, as DeepMimic does for
//!    the root position; the clips' last and first poses are not identical, so a small jump in
//!    the limbs can remain at the boundary (largest: crawl, ~0.1 m). For non-cyclic clips the
//!    window start is drawn so that the window lies inside the clip when it fits and otherwise
//!    covers the whole clip; times outside the clip hold the first/last pose;
//! 2. **heading canonicalisation**: the clip is turned about the vertical (Y) axis so that in its
//!    first keyframe the hips' left→right vector points along +Z (the character faces +X);
//! 3. **body-size scale**: all positions multiplied by `bone_scale` (0.9–1.1), i.e. every bone
//!    length scaled by the same per-sample factor;
//! 4. **mirror** (probability `mirror_prob`): `z → −z` and left/right joints swapped;
//! 5. **camera view**: rotation about the vertical axis by `view_deg`
//!    (`x' = x cos θ + z sin θ`, `z' = −x sin θ + z cos θ`; a right-handed rotation about +Y);
//! 6. **Gaussian joint noise** with standard deviation `noise_std` metres on every coordinate;
//! 7. **normalisation** ([`Centering`]): by default the sequence is translated so that the root
//!    (pelvis) joint of the first frame is at the origin — the centring step of 2s-AGCN's
//!    `pre_normalization` done with the first frame's root only (2s-AGCN subtracts the centre
//!    joint of every frame, [`Centering::PerFrameRoot`]). 2s-AGCN's further steps (rotating the
//!    first frame's spine to +Z and shoulders to +X) are **not** applied: they would undo the
//!    camera views that the cross-view split is about. No scale normalisation.
//!
//! Output: `(N, C = 3, T, V = 15, M = 1)` `f32`, channels `(x, y, z)`, Y up, metres, labels in
//! [`super::mocap::MOCAP_ACTIONS`] order. All randomness comes from `ChaCha20Rng` seeded from
//! [`Mocap15Config::seed`], one stream per (split, class), so results are reproducible and do not
//! depend on how many classes or samples are generated before.

use ndarray::{Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::fk::{ForwardKinematics, RawClip};
use super::mocap::{MOCAP_ACTIONS, MOCAP_JOINTS, MOCAP_LEFT_RIGHT};
use super::{Result, SkeletonError, SkeletonSet};

/// Index of the root (pelvis) joint.
const ROOT: usize = 0;
/// Right and left hip joints.
const RIGHT_HIP: usize = 3;
const LEFT_HIP: usize = 9;

/// How a generated sequence is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Centering {
    /// Subtract the root joint of the first frame from every frame (default).
    #[default]
    FirstFrameRoot,
    /// Subtract each frame's root joint from that frame (2s-AGCN's per-frame centring).
    PerFrameRoot,
    /// Keep world coordinates.
    None,
}

/// The camera yaw angles of a split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ViewSet {
    /// Sample `i` of each class uses `angles_deg[i % len]`.
    Fixed(Vec<f64>),
    /// Each sample draws its angle uniformly from `[min_deg, max_deg)`.
    Uniform {
        /// Smallest angle, degrees.
        min_deg: f64,
        /// Largest angle (exclusive), degrees.
        max_deg: f64,
    },
}

impl ViewSet {
    /// NTU cross-view training cameras: −45° and +45°.
    pub fn cross_view_train() -> Self {
        ViewSet::Fixed(vec![-45.0, 45.0])
    }

    /// NTU cross-view test camera: 0°.
    pub fn cross_view_test() -> Self {
        ViewSet::Fixed(vec![0.0])
    }

    /// Any yaw: uniform in `[−180°, 180°)`.
    pub fn random() -> Self {
        ViewSet::Uniform {
            min_deg: -180.0,
            max_deg: 180.0,
        }
    }
}

/// Generator settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mocap15Config {
    /// Frames per sample `T` (default 64).
    pub frames: usize,
    /// Output frame rate, frames per second (default 30, NTU's Kinect rate).
    pub fps: f64,
    /// Range of the speed factor (default 0.7–1.3).
    pub speed_range: (f64, f64),
    /// Range of the per-sample body-size (bone-length) scale (default 0.9–1.1).
    pub bone_scale_range: (f64, f64),
    /// Standard deviation of the Gaussian joint noise, metres (default 0.01).
    pub noise_std: f64,
    /// Probability of mirroring a sample (default 0.5).
    pub mirror_prob: f64,
    /// Extra yaw drawn uniformly in `±yaw_jitter_deg` and added to the view angle (default 0).
    pub yaw_jitter_deg: f64,
    /// Translation normalisation (default [`Centering::FirstFrameRoot`]).
    pub centering: Centering,
    /// Seed of the `ChaCha20Rng` streams (default 2024).
    pub seed: u64,
}

impl Default for Mocap15Config {
    fn default() -> Self {
        Mocap15Config {
            frames: 64,
            fps: 30.0,
            speed_range: (0.7, 1.3),
            bone_scale_range: (0.9, 1.1),
            noise_std: 0.01,
            mirror_prob: 0.5,
            yaw_jitter_deg: 0.0,
            centering: Centering::FirstFrameRoot,
            seed: 2024,
        }
    }
}

impl Mocap15Config {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: f64, reason| {
            Err(SkeletonError::InvalidConfig {
                field,
                value,
                reason,
            })
        };
        if self.frames == 0 {
            return bad("frames", 0.0, "must be at least 1");
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return bad("fps", self.fps, "must be positive");
        }
        for (field, (lo, hi)) in [
            ("speed_range", self.speed_range),
            ("bone_scale_range", self.bone_scale_range),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0) {
                return bad(field, lo, "bounds must be positive and finite");
            }
            if lo > hi {
                return bad(field, lo, "lower bound above upper bound");
            }
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return bad("noise_std", self.noise_std, "must be >= 0");
        }
        if !(0.0..=1.0).contains(&self.mirror_prob) {
            return bad("mirror_prob", self.mirror_prob, "must be in [0, 1]");
        }
        if !(self.yaw_jitter_deg.is_finite() && self.yaw_jitter_deg >= 0.0) {
            return bad("yaw_jitter_deg", self.yaw_jitter_deg, "must be >= 0");
        }
        Ok(())
    }
}

/// Everything that determines one rendered sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleParams {
    /// Class (clip) index.
    pub class: usize,
    /// Clip time of the first output frame, seconds (may be outside the clip; see module docs).
    /// The generator draws it in `[0, duration)` for cyclic clips; rendering costs time linear in
    /// the number of cycles between 0 and the rendered times.
    pub start_s: f64,
    /// Speed factor (clip seconds per output second).
    pub speed: f64,
    /// Body-size scale.
    pub bone_scale: f64,
    /// Mirror (z → −z, left/right swapped).
    pub mirror: bool,
    /// Camera yaw, degrees.
    pub view_deg: f64,
    /// Joint noise standard deviation, metres.
    pub noise_std: f64,
    /// Seed of the noise `ChaCha20Rng`.
    pub noise_seed: u64,
}

/// A generated split: the tensor set and the parameters of every sample (for reproduction).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSet {
    /// The samples.
    pub set: SkeletonSet,
    /// `params[i]` rendered sample `i`.
    pub params: Vec<SampleParams>,
}

/// Train and test splits.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossViewSplit {
    /// Training split.
    pub train: GeneratedSet,
    /// Test split.
    pub test: GeneratedSet,
}

/// Random stream identifiers of the splits (so train and test samples differ).
const STREAM_CROSS_TRAIN: u64 = 1;
const STREAM_CROSS_TEST: u64 = 2;
const STREAM_RANDOM_TRAIN: u64 = 3;
const STREAM_RANDOM_TEST: u64 = 4;

/// One clip prepared for rendering.
#[derive(Debug, Clone)]
struct PreparedClip {
    clip: RawClip,
    times: Vec<f64>,
    duration: f64,
    /// Rotation about Y (radians) that puts the first keyframe's hips along +Z.
    canonical_yaw: f64,
    /// Root xz at the first and last keyframe and the heading change over one cycle.
    cycle: Option<CycleStep>,
}

#[derive(Debug, Clone, Copy)]
struct CycleStep {
    first_xz: [f64; 2],
    last_xz: [f64; 2],
    /// Heading change from the first to the last keyframe, radians (about +Y).
    turn: f64,
}

/// Rotates `(x, z)` about +Y by `a` radians.
fn rot_y(p: [f64; 3], a: f64) -> [f64; 3] {
    let (s, c) = a.sin_cos();
    [c * p[0] + s * p[2], p[1], -s * p[0] + c * p[2]]
}

/// Yaw that maps the hip vector (left → right) onto +Z.
fn canonical_yaw(pos: &[[f64; 3]]) -> f64 {
    let hx = pos[RIGHT_HIP][0] - pos[LEFT_HIP][0];
    let hz = pos[RIGHT_HIP][2] - pos[LEFT_HIP][2];
    (-hx).atan2(hz)
}

/// The Mocap-15 generator: the FK model, the 15 clips and a configuration.
#[derive(Debug, Clone)]
pub struct Mocap15 {
    fk: ForwardKinematics,
    clips: Vec<PreparedClip>,
    config: Mocap15Config,
}

impl Mocap15 {
    /// Loads the bundled URDF and the 15 bundled raw clips.
    pub fn load_bundled(config: Mocap15Config) -> Result<Self> {
        let fk = ForwardKinematics::bundled()?;
        let clips = MOCAP_ACTIONS
            .iter()
            .map(|a| RawClip::load_bundled(a))
            .collect::<Result<Vec<_>>>()?;
        Self::new(fk, clips, config)
    }

    /// Builds a generator from a FK model and clips (class `i` = `clips[i]`). The model must have
    /// the 15-joint humanoid layout.
    pub fn new(fk: ForwardKinematics, clips: Vec<RawClip>, config: Mocap15Config) -> Result<Self> {
        config.validate()?;
        if fk.num_joints() != MOCAP_JOINTS {
            return Err(SkeletonError::Shape {
                what: "forward-kinematics model",
                expected: "15 joints (DeepMimic humanoid)",
                found: vec![fk.num_joints()],
            });
        }
        let clips = clips
            .into_iter()
            .map(|clip| {
                let times = clip.times();
                let duration = *times.last().expect("clips have frames");
                let first = fk.positions(&clip.frames[0]);
                let last = fk.positions(clip.frames.last().expect("clips have frames"));
                let canonical_yaw = canonical_yaw(&first);
                let cycle = (clip.looping && duration > 0.0).then(|| CycleStep {
                    first_xz: [first[ROOT][0], first[ROOT][2]],
                    last_xz: [last[ROOT][0], last[ROOT][2]],
                    turn: canonical_yaw - self::canonical_yaw(&last),
                });
                PreparedClip {
                    clip,
                    times,
                    duration,
                    canonical_yaw,
                    cycle,
                }
            })
            .collect();
        Ok(Mocap15 { fk, clips, config })
    }

    /// The configuration.
    pub fn config(&self) -> &Mocap15Config {
        &self.config
    }

    /// Number of classes (clips).
    pub fn num_classes(&self) -> usize {
        self.clips.len()
    }

    /// Class names (clip names).
    pub fn class_names(&self) -> Vec<String> {
        self.clips.iter().map(|c| c.clip.name.clone()).collect()
    }

    /// Joint positions of `class` at clip time `t` (world frame, looping or clamping).
    fn pose_at(&self, class: usize, t: f64) -> Vec<[f64; 3]> {
        let pc = &self.clips[class];
        let (tt, cycles) = match pc.cycle {
            Some(_) => {
                let c = (t / pc.duration).floor();
                (t - c * pc.duration, c as i64)
            }
            None => (t.clamp(0.0, pc.duration), 0),
        };
        let frames = &pc.clip.frames;
        // Last keyframe whose time is <= tt.
        let a = pc.times.partition_point(|&x| x <= tt).saturating_sub(1);
        let frame = if a + 1 < frames.len() && pc.times[a + 1] > pc.times[a] {
            let f = (tt - pc.times[a]) / (pc.times[a + 1] - pc.times[a]);
            self.fk.interpolate(&frames[a], &frames[a + 1], f)
        } else {
            frames[a].clone()
        };
        let mut pos = self.fk.positions(&frame);
        if let Some(step) = pc.cycle {
            // Apply the cycle step `cycles` times (forwards) or its inverse (backwards).
            for _ in 0..cycles.unsigned_abs() {
                for p in pos.iter_mut() {
                    *p = if cycles > 0 {
                        let q = rot_y(
                            [p[0] - step.first_xz[0], p[1], p[2] - step.first_xz[1]],
                            step.turn,
                        );
                        [q[0] + step.last_xz[0], q[1], q[2] + step.last_xz[1]]
                    } else {
                        let q = rot_y(
                            [p[0] - step.last_xz[0], p[1], p[2] - step.last_xz[1]],
                            -step.turn,
                        );
                        [q[0] + step.first_xz[0], q[1], q[2] + step.first_xz[1]]
                    };
                }
            }
        }
        pos
    }

    /// Renders one sample as `(C = 3, T, V = 15, M = 1)`.
    ///
    /// # Panics
    /// If `p.class >= self.num_classes()`.
    pub fn render(&self, p: &SampleParams) -> Array4<f32> {
        let cfg = &self.config;
        let t_len = cfg.frames;
        let pc = &self.clips[p.class];
        let view = p.view_deg.to_radians();
        let mut noise_rng = ChaCha20Rng::seed_from_u64(p.noise_seed);
        let mut seq = vec![[[0.0f64; 3]; MOCAP_JOINTS]; t_len];
        for (k, out) in seq.iter_mut().enumerate() {
            let t = p.start_s + k as f64 * p.speed / cfg.fps;
            let pos = self.pose_at(p.class, t);
            for (v, o) in out.iter_mut().enumerate() {
                let src = if p.mirror { mirror_joint(v) } else { v };
                let mut q = rot_y(pos[src], pc.canonical_yaw);
                q = q.map(|c| c * p.bone_scale);
                if p.mirror {
                    q[2] = -q[2];
                }
                q = rot_y(q, view);
                if p.noise_std > 0.0 {
                    for c in q.iter_mut() {
                        *c += p.noise_std * gaussian(&mut noise_rng);
                    }
                }
                *o = q;
            }
        }
        let origin = seq[0][ROOT];
        let mut a = Array4::zeros((3, t_len, MOCAP_JOINTS, 1));
        for (k, frame) in seq.iter().enumerate() {
            let centre = match cfg.centering {
                Centering::FirstFrameRoot => origin,
                Centering::PerFrameRoot => frame[ROOT],
                Centering::None => [0.0; 3],
            };
            for (v, q) in frame.iter().enumerate() {
                for c in 0..3 {
                    a[[c, k, v, 0]] = (q[c] - centre[c]) as f32;
                }
            }
        }
        a
    }

    /// Draws the parameters of one sample of `class` with camera yaw `view_deg` (before jitter).
    pub fn draw_params(&self, class: usize, view_deg: f64, rng: &mut ChaCha20Rng) -> SampleParams {
        let cfg = &self.config;
        let pc = &self.clips[class];
        let speed = uniform(rng, cfg.speed_range);
        let span = (cfg.frames.saturating_sub(1)) as f64 * speed / cfg.fps;
        let start_s = if pc.cycle.is_some() {
            rng.gen::<f64>() * pc.duration
        } else {
            let slack = pc.duration - span;
            uniform(rng, (slack.min(0.0), slack.max(0.0)))
        };
        let bone_scale = uniform(rng, cfg.bone_scale_range);
        let mirror = rng.gen::<f64>() < cfg.mirror_prob;
        let jitter = uniform(rng, (-cfg.yaw_jitter_deg, cfg.yaw_jitter_deg));
        SampleParams {
            class,
            start_s,
            speed,
            bone_scale,
            mirror,
            view_deg: view_deg + jitter,
            noise_std: cfg.noise_std,
            noise_seed: rng.gen(),
        }
    }

    /// Generates `per_class` samples of every class with the given views, using random stream
    /// `stream` (samples are ordered class by class).
    pub fn generate(&self, per_class: usize, views: &ViewSet, stream: u64) -> Result<GeneratedSet> {
        if let ViewSet::Fixed(v) = views {
            if v.is_empty() {
                return Err(SkeletonError::InvalidConfig {
                    field: "views",
                    value: 0.0,
                    reason: "a fixed view set needs at least one angle",
                });
            }
        }
        let n_cls = self.num_classes();
        let mut params = Vec::with_capacity(per_class * n_cls);
        for class in 0..n_cls {
            let mut rng = ChaCha20Rng::seed_from_u64(self.config.seed);
            rng.set_stream((stream << 16) | class as u64);
            for i in 0..per_class {
                let view = match views {
                    ViewSet::Fixed(v) => v[i % v.len()],
                    ViewSet::Uniform { min_deg, max_deg } => {
                        uniform(&mut rng, (*min_deg, *max_deg))
                    }
                };
                params.push(self.draw_params(class, view, &mut rng));
            }
        }
        let t = self.config.frames;
        let mut data = Array5::zeros((params.len(), 3, t, MOCAP_JOINTS, 1));
        for (mut dst, p) in data.axis_iter_mut(Axis(0)).zip(&params) {
            dst.assign(&self.render(p));
        }
        Ok(GeneratedSet {
            set: SkeletonSet {
                data,
                labels: params.iter().map(|p| p.class).collect(),
                class_names: self.class_names(),
            },
            params,
        })
    }

    /// NTU-style cross-view split: training samples alternate between the −45° and +45° views,
    /// test samples are seen from 0° (independent random streams).
    pub fn cross_view(
        &self,
        train_per_class: usize,
        test_per_class: usize,
    ) -> Result<CrossViewSplit> {
        Ok(CrossViewSplit {
            train: self.generate(
                train_per_class,
                &ViewSet::cross_view_train(),
                STREAM_CROSS_TRAIN,
            )?,
            test: self.generate(
                test_per_class,
                &ViewSet::cross_view_test(),
                STREAM_CROSS_TEST,
            )?,
        })
    }

    /// Random-view variant: train and test samples at uniformly random yaw in `[−180°, 180°)`.
    pub fn random_view(
        &self,
        train_per_class: usize,
        test_per_class: usize,
    ) -> Result<CrossViewSplit> {
        Ok(CrossViewSplit {
            train: self.generate(train_per_class, &ViewSet::random(), STREAM_RANDOM_TRAIN)?,
            test: self.generate(test_per_class, &ViewSet::random(), STREAM_RANDOM_TEST)?,
        })
    }
}

/// The joint whose data a mirrored skeleton shows at joint `v` (left/right swapped).
pub fn mirror_joint(v: usize) -> usize {
    for (r, l) in MOCAP_LEFT_RIGHT {
        if v == r {
            return l;
        }
        if v == l {
            return r;
        }
    }
    v
}

fn uniform(rng: &mut ChaCha20Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.gen::<f64>()
}

/// Standard normal sample (Box–Muller).
fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
