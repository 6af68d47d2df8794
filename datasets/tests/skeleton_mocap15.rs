//! The Mocap-15 generator: shapes, determinism, views, mirroring, resampling and normalisation.

use datasets::skeleton::augment::mirror_joint;
use datasets::skeleton::fk::{ForwardKinematics, RawClip};
use datasets::skeleton::mocap::{MocapSkeleton, MOCAP_ACTIONS};
use datasets::skeleton::{Centering, Mocap15, Mocap15Config, SampleParams, SkeletonError, ViewSet};
use ndarray::{s, Array4};

fn gen(cfg: Mocap15Config) -> Mocap15 {
    Mocap15::load_bundled(cfg).unwrap()
}

fn max_abs_diff(a: &Array4<f32>, b: &Array4<f32>) -> f32 {
    (a - b).iter().fold(0.0, |m, d| m.max(d.abs()))
}

fn params(class: usize) -> SampleParams {
    SampleParams {
        class,
        start_s: 0.3,
        speed: 1.1,
        bone_scale: 1.0,
        mirror: false,
        view_deg: 0.0,
        noise_std: 0.0,
        noise_seed: 1,
    }
}

#[test]
fn cross_view_shapes_labels_and_views() {
    let g = gen(Mocap15Config::default());
    let split = g.cross_view(4, 3).unwrap();
    assert_eq!(split.train.set.shape(), [60, 3, 64, 15, 1]);
    assert_eq!(split.test.set.shape(), [45, 3, 64, 15, 1]);
    assert_eq!(split.train.set.class_counts(), vec![4; 15]);
    assert_eq!(split.test.set.class_counts(), vec![3; 15]);
    assert_eq!(split.train.set.class_names, MOCAP_ACTIONS.to_vec());
    let train_views: Vec<f64> = split.train.params.iter().map(|p| p.view_deg).collect();
    assert!(train_views.iter().all(|&v| v == -45.0 || v == 45.0));
    assert_eq!(train_views.iter().filter(|&&v| v == 45.0).count(), 30);
    assert!(split.test.params.iter().all(|p| p.view_deg == 0.0));
    assert!(split.train.set.data.iter().all(|v| v.is_finite()));
    // Parameters are within the configured ranges; mirroring happens at roughly half the rate.
    for p in split.train.params.iter().chain(&split.test.params) {
        assert!((0.7..=1.3).contains(&p.speed));
        assert!((0.9..=1.1).contains(&p.bone_scale));
    }
    let mirrored = split.train.params.iter().filter(|p| p.mirror).count();
    assert!((10..=50).contains(&mirrored), "{mirrored} of 60 mirrored");
    // The generated tensors are exactly the rendered parameters.
    for (i, p) in split.train.params.iter().enumerate().step_by(7) {
        assert_eq!(
            split.train.set.data.slice(s![i, .., .., .., ..]),
            g.render(p)
        );
    }
}

#[test]
fn same_seed_same_tensor_other_seed_differs() {
    let a = gen(Mocap15Config::default()).cross_view(3, 2).unwrap();
    let b = gen(Mocap15Config::default()).cross_view(3, 2).unwrap();
    assert_eq!(a, b);
    let c = gen(Mocap15Config {
        seed: 7,
        ..Mocap15Config::default()
    })
    .cross_view(3, 2)
    .unwrap();
    assert_ne!(a.train.set.data, c.train.set.data);
    // Streams are per class and split: generating more samples keeps the first ones.
    let more = gen(Mocap15Config::default()).cross_view(5, 2).unwrap();
    assert_eq!(more.train.params[..3], a.train.params[..3]);
    // Train and test samples are drawn independently.
    assert_ne!(a.train.params[0].start_s, a.test.params[0].start_s);
}

#[test]
fn views_rotate_about_the_vertical_axis() {
    let g = gen(Mocap15Config::default());
    for class in [0, 7, 14] {
        let front = g.render(&params(class));
        for deg in [-45.0f64, 45.0, 120.0] {
            let side = g.render(&SampleParams {
                view_deg: deg,
                ..params(class)
            });
            let (sn, cs) = deg.to_radians().sin_cos();
            let mut expected = front.clone();
            for t in 0..64 {
                for v in 0..15 {
                    let (x, z) = (front[[0, t, v, 0]] as f64, front[[2, t, v, 0]] as f64);
                    expected[[0, t, v, 0]] = (cs * x + sn * z) as f32;
                    expected[[2, t, v, 0]] = (-sn * x + cs * z) as f32;
                }
            }
            assert!(max_abs_diff(&side, &expected) < 1e-5, "class {class} {deg}");
            assert!(
                max_abs_diff(&side, &front) > 0.05,
                "view {deg} changed nothing"
            );
            // Heights are unchanged by a camera yaw.
            assert_eq!(
                side.slice(s![1, .., .., ..]),
                front.slice(s![1, .., .., ..])
            );
        }
    }
}

#[test]
fn mirror_negates_z_and_swaps_left_right() {
    let g = gen(Mocap15Config::default());
    let plain = g.render(&params(9));
    let mirrored = g.render(&SampleParams {
        mirror: true,
        ..params(9)
    });
    for t in 0..64 {
        for v in 0..15 {
            let w = mirror_joint(v);
            assert!((mirrored[[0, t, v, 0]] - plain[[0, t, w, 0]]).abs() < 1e-6);
            assert!((mirrored[[1, t, v, 0]] - plain[[1, t, w, 0]]).abs() < 1e-6);
            assert!((mirrored[[2, t, v, 0]] + plain[[2, t, w, 0]]).abs() < 1e-6);
        }
    }
    assert_eq!(mirror_joint(3), 9);
    assert_eq!(mirror_joint(14), 8);
    assert_eq!(mirror_joint(1), 1);
    // The right hip is at +z in the canonical heading (character faces +x), so after mirroring
    // the joint labelled "right hip" is still on the +z side.
    assert!(plain[[2, 0, 3, 0]] > 0.0 && mirrored[[2, 0, 3, 0]] > 0.0);
}

#[test]
fn bones_keep_their_scaled_lengths_and_root_starts_at_origin() {
    let skel = MocapSkeleton::load_bundled().unwrap();
    let g = gen(Mocap15Config::default());
    for (class, scale) in [(1, 0.9), (10, 1.1), (12, 1.03)] {
        let a = g.render(&SampleParams {
            bone_scale: scale,
            speed: 0.83,
            view_deg: 30.0,
            ..params(class)
        });
        for c in 0..3 {
            assert_eq!(
                a[[c, 0, 0, 0]],
                0.0,
                "root of the first frame is the origin"
            );
        }
        for t in 0..64 {
            for (v, j) in skel.joints.iter().enumerate() {
                let Some(p) = j.parent else { continue };
                let len: f64 = (0..3)
                    .map(|c| (a[[c, t, v, 0]] - a[[c, t, p, 0]]) as f64)
                    .map(|d| d * d)
                    .sum::<f64>()
                    .sqrt();
                let expect = scale * j.offset.iter().map(|o| o * o).sum::<f64>().sqrt();
                assert!((len - expect).abs() < 1e-5, "class {class} t {t} bone {v}");
            }
        }
    }
}

#[test]
fn resampling_hits_keyframes_and_heading_is_canonical() {
    // At the walk clip's own frame rate, speed 1 and start 0 the output frames are keyframes.
    let dt = 0.033332;
    let g = gen(Mocap15Config {
        fps: 1.0 / dt,
        frames: 30,
        centering: Centering::None,
        ..Mocap15Config::default()
    });
    let a = g.render(&SampleParams {
        start_s: 0.0,
        speed: 1.0,
        ..params(14)
    });
    let fk = ForwardKinematics::bundled().unwrap();
    let clip = RawClip::load_bundled("walk").unwrap();
    for t in 0..30 {
        let p = fk.positions(&clip.frames[t]);
        for v in 0..15 {
            // A yaw keeps heights and horizontal distances from the vertical axis.
            assert!((a[[1, t, v, 0]] as f64 - p[v][1]).abs() < 1e-5);
            let r_out = (a[[0, t, v, 0]] as f64).hypot(a[[2, t, v, 0]] as f64);
            assert!((r_out - p[v][0].hypot(p[v][2])).abs() < 1e-5);
        }
    }
    // First frame: the hips' left -> right vector points along +z.
    let hx = a[[0, 0, 3, 0]] - a[[0, 0, 9, 0]];
    let hz = a[[2, 0, 3, 0]] - a[[2, 0, 9, 0]];
    assert!(hx.abs() < 1e-6 && hz > 0.1);
}

#[test]
fn loops_continue_and_one_shot_clips_hold() {
    let g = gen(Mocap15Config {
        centering: Centering::None,
        ..Mocap15Config::default()
    });
    // Run (0.8 s) at speed 1.3 over 64 frames at 30 fps covers ~3.5 cycles. Across the cycle
    // boundaries the pelvis keeps its in-cycle speed (~0.12-0.18 m per frame) and no joint jumps
    // more than the fastest foot swing (~0.47 m per frame at this speed).
    let run = g.render(&SampleParams {
        start_s: 0.1,
        speed: 1.3,
        ..params(11)
    });
    let step = |t: usize, v: usize| -> f32 {
        (0..3)
            .map(|c| (run[[c, t + 1, v, 0]] - run[[c, t, v, 0]]).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    for t in 0..63 {
        let root = step(t, 0);
        assert!(
            (0.08..0.25).contains(&root),
            "pelvis step {root} m at frame {t}"
        );
        let max = (0..15).map(|v| step(t, v)).fold(0.0, f32::max);
        assert!(max < 0.6, "largest joint step {max} m at frame {t}");
    }
    // Turning cyclic clips (spin, crawl, dance_a turn by 14-21 degrees per cycle): each new
    // cycle is turned to continue the heading, so at 60 fps the hips never turn more than 15
    // degrees between frames, across cycle boundaries included (measured: at most 1-9 degrees;
    // turning the next cycle the wrong way gives 22-41 degree jumps).
    let g60 = gen(Mocap15Config {
        centering: Centering::None,
        fps: 60.0,
        ..Mocap15Config::default()
    });
    for (class, start) in [(12, 3.9), (2, 2.5), (3, 1.2)] {
        let a = g60.render(&SampleParams {
            start_s: start,
            speed: 1.0,
            ..params(class)
        });
        let yaw = |t: usize| {
            let hx = a[[0, t, 3, 0]] - a[[0, t, 9, 0]];
            let hz = a[[2, t, 3, 0]] - a[[2, t, 9, 0]];
            hz.atan2(hx).to_degrees()
        };
        let max_turn = (0..63)
            .map(|t| {
                let d = (yaw(t + 1) - yaw(t)).rem_euclid(360.0);
                d.min(360.0 - d)
            })
            .fold(0.0, f32::max);
        assert!(
            max_turn < 15.0,
            "class {class}: hips turn {max_turn} deg in one frame"
        );
    }
    // The runner keeps moving forward (+x after canonicalisation) across cycles.
    assert!(run[[0, 63, 0, 0]] - run[[0, 0, 0, 0]] > 5.0);
    // Kick (non-cyclic) started 1 s before the clip holds its first pose.
    let kick = g.render(&SampleParams {
        start_s: -1.0,
        speed: 1.0,
        ..params(8)
    });
    assert_eq!(
        kick.slice(s![.., 0, .., ..]),
        kick.slice(s![.., 29, .., ..])
    );
    assert_ne!(
        kick.slice(s![.., 0, .., ..]),
        kick.slice(s![.., 40, .., ..])
    );
}

#[test]
fn noise_and_random_views() {
    let g = gen(Mocap15Config::default());
    let clean = g.render(&params(3));
    let noisy = g.render(&SampleParams {
        noise_std: 0.01,
        ..params(3)
    });
    let d = &noisy - &clean;
    let n = d.len() as f64;
    let rms = (d.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt();
    // Centring subtracts the first-frame root's noise from every value: rms ~ 0.01 * sqrt(2).
    assert!((0.01..0.02).contains(&rms), "noise rms {rms}");
    let r = g.random_view(4, 2).unwrap();
    let views: Vec<f64> = r.train.params.iter().map(|p| p.view_deg).collect();
    assert!(views.iter().all(|v| (-180.0..180.0).contains(v)));
    assert!(views.iter().any(|v| v.abs() > 60.0));
    let jittered = gen(Mocap15Config {
        yaw_jitter_deg: 10.0,
        ..Mocap15Config::default()
    })
    .generate(6, &ViewSet::cross_view_test(), 9)
    .unwrap();
    assert!(jittered.params.iter().all(|p| p.view_deg.abs() <= 10.0));
    assert!(jittered.params.iter().any(|p| p.view_deg != 0.0));
}

#[test]
fn invalid_configs_are_rejected() {
    for cfg in [
        Mocap15Config {
            speed_range: (1.3, 0.7),
            ..Mocap15Config::default()
        },
        Mocap15Config {
            frames: 0,
            ..Mocap15Config::default()
        },
        Mocap15Config {
            mirror_prob: 1.5,
            ..Mocap15Config::default()
        },
        Mocap15Config {
            noise_std: -1.0,
            ..Mocap15Config::default()
        },
    ] {
        assert!(matches!(
            Mocap15::load_bundled(cfg),
            Err(SkeletonError::InvalidConfig { .. })
        ));
    }
    let g = gen(Mocap15Config::default());
    assert!(g.generate(1, &ViewSet::Fixed(vec![]), 1).is_err());
}
