//! Skeleton datasets end to end with real `party serve` processes: `share-upload` of a rank-5
//! `.npy` with its labels and graph lands on both parties with the tensor in the manifest and
//! reconstructs to the flattened clips; a granted client appends clips of the same tensor while
//! other tensors and tables are refused naming both sides; a party refuses a tensor description
//! that does not fit the header before any share byte; and P1 votes against a commit whose two
//! halves describe different tensors.

mod support;

use ndarray::{Array1, Array2, Array5, Axis};
use party::client::ClientError;
use party::proto::{
    ClientRequest, EntryId, ErrorCode, ShareForm, TensorMeta, UploadHeader, UploadOptions,
};
use party::store::State;
use std::path::{Path, PathBuf};
use support::*;

/// `n` clips of `[C, T, V, M]` with labels `i mod 3`.
fn clips(n: usize, dims: [usize; 4], shift: f32) -> (Array5<f32>, Array1<i64>) {
    let [c, t, v, m] = dims;
    let x = Array5::from_shape_fn((n, c, t, v, m), |(i, c, t, v, m)| {
        shift + i as f32 * 0.5 - c as f32 + t as f32 * 0.25 - v as f32 / 8.0 + m as f32
    });
    (x, Array1::from_shape_fn(n, |i| (i % 3) as i64))
}

fn write(dir: &Path, stem: &str, x: &Array5<f32>, y: &Array1<i64>) -> (PathBuf, PathBuf) {
    let (p, l) = (
        dir.join(format!("{stem}.npy")),
        dir.join(format!("{stem}-labels.npy")),
    );
    datasets::npy::write_npy(&p, x).unwrap();
    datasets::npy::write_npy(&l, y).unwrap();
    (p, l)
}

/// The matrix a skeleton set is stored as: clip n flattened in C order, then its label.
fn flat(x: &Array5<f32>, y: &Array1<i64>) -> Array2<f64> {
    let n = x.shape()[0];
    let f = x.len() / n;
    let xf = x.mapv(f64::from).into_shape_with_order((n, f)).unwrap();
    let yf = y.mapv(|l| l as f64).insert_axis(Axis(1));
    ndarray::concatenate![Axis(1), xf, yf]
}

fn meta(dims: [u64; 4], graph: &str, names: &[&str]) -> TensorMeta {
    TensorMeta {
        dims,
        graph: graph.into(),
        class_names: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn upload_args<'a>(labels: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--graph", "mocap15", "--labels", labels.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skeleton_sets_upload_with_their_tensor_and_appends_must_match_it() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, 50_000_000);
    let dir = tmp.path();
    let dims = [3, 4, 15, 1];
    let (x, y) = clips(6, dims, 0.0);
    let (p, l) = write(dir, "moves", &x, &y);
    upload_ok(c.upload(
        ALICE,
        &upload_args(
            &l,
            &[
                "--name",
                "moves",
                "--class-names",
                "walk,run,jump",
                "--allow-append",
                "bob",
            ],
        ),
        &p,
    ));
    let want = meta([3, 4, 15, 1], "mocap15", &["walk", "run", "jump"]);
    for id in 0..2 {
        let m = &c.manifests(id)[0];
        assert_eq!(
            (m.rows, m.cols, m.label_column, m.state),
            (6, 181, 180, State::Committed),
            "P{id}"
        );
        assert_eq!(m.tensor.as_ref(), Some(&want), "P{id}");
    }
    assert_close(&c.reconstruct("moves"), &flat(&x, &y));
    let mut alice = c.client(0, ALICE).await.unwrap();
    let listed = alice.list().await.unwrap();
    assert_eq!(listed[0].tensor_dims, Some([3, 4, 15, 1]));
    let out = run_ok(std::process::Command::new(PARTY).args([
        "list",
        "--p0",
        &c.client[0].to_string(),
        "--p0-cert",
        c.cert(0).to_str().unwrap(),
        "--token",
        ALICE,
    ]));
    assert!(
        out.contains("moves  6 x 181  clips (C, T, V, M) = (3, 4, 15, 1)"),
        "{out}"
    );

    // Bob appends four clips of the same tensor (class names left out).
    let (x2, y2) = clips(4, dims, 3.0);
    let (p2, l2) = write(dir, "more", &x2, &y2);
    upload_ok(c.upload(BOB, &upload_args(&l2, &["--append-to", "alice/moves"]), &p2));
    for id in 0..2 {
        let ms = c.manifests(id);
        assert_eq!(ms.len(), 1, "P{id}: the old version is gone");
        assert_eq!(
            (ms[0].rows, ms[0].tensor.as_ref()),
            (10, Some(&want)),
            "P{id}"
        );
    }
    let both = ndarray::concatenate![Axis(0), flat(&x, &y), flat(&x2, &y2)];
    assert_close(&c.reconstruct("moves"), &both);

    // Other frames per clip: refused with both tensors named.
    let (x3, y3) = clips(2, [3, 2, 15, 1], 0.0);
    let (p3, l3) = write(dir, "short", &x3, &y3);
    let e = upload_err(c.upload(BOB, &upload_args(&l3, &["--append-to", "alice/moves"]), &p3));
    assert!(e.contains("must match"), "{e}");
    // (The column counts differ too, so the layout check speaks first; the same column count
    // with another (C, T, V, M) reaches the tensor check.)
    let (x4, y4) = clips(2, [1, 12, 15, 1], 0.0);
    let (p4, l4) = write(dir, "reshaped", &x4, &y4);
    let e = upload_err(c.upload(BOB, &upload_args(&l4, &["--append-to", "alice/moves"]), &p4));
    assert!(
        e.contains("[1, 12, 15, 1]") && e.contains("[3, 4, 15, 1]") && e.contains("must match"),
        "{e}"
    );
    // Other class names: refused naming both lists.
    let e = upload_err(c.upload(
        BOB,
        &upload_args(
            &l2,
            &["--append-to", "alice/moves", "--class-names", "a,b,c"],
        ),
        &p2,
    ));
    assert!(
        e.contains("[\"a\", \"b\", \"c\"]") && e.contains("\"walk\""),
        "{e}"
    );
    // A table of the same width: refused, the dataset's tensor named.
    let table = dir.join("table.npy");
    datasets::npy::write_npy(&table, &flat(&x2, &y2)).unwrap();
    let e = upload_err(c.upload(BOB, &["--append-to", "alice/moves"], &table));
    assert!(
        e.contains("[3, 4, 15, 1]") && e.contains("same tensor"),
        "{e}"
    );
    // A bad clip file is refused before anything is sent.
    let mut xb = x2.clone();
    xb[[3, 2, 1, 7, 0]] = f32::INFINITY;
    let (pb, lb) = write(dir, "bad", &xb, &y2);
    let e = upload_err(c.upload(BOB, &upload_args(&lb, &["--append-to", "alice/moves"]), &pb));
    assert!(
        e.contains("bad.npy") && e.contains("clip 3, (c, t, v, m) = (2, 1, 7, 0)"),
        "{e}"
    );
    for id in 0..2 {
        assert_eq!(
            c.entries(id),
            [("committed".into(), "moves".into(), 10)],
            "P{id}"
        );
    }
}

fn header(cols: u64, form: ShareForm) -> UploadHeader {
    UploadHeader {
        id: EntryId::random(),
        name: "raw".into(),
        rows: 2,
        cols,
        label_column: cols - 1,
        frac_bits: mpc::FracBits::new(16).unwrap(),
        form,
        digest: [0; 32],
        len: match form {
            ShareForm::Seed => 32,
            ShareForm::Matrix => 2 * cols * 8,
        },
    }
}

fn with(t: TensorMeta) -> UploadOptions {
    UploadOptions {
        tensor: Some(t),
        ..Default::default()
    }
}

/// A party checks a tensor description against the header before any share byte, names the
/// value and its limit, and keeps serving the connection; P1 votes against a commit whose
/// halves describe different tensors of the same width, and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_refuse_tensors_that_do_not_fit_and_halves_that_disagree() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, 50_000_000);
    let mut p0 = c.client(0, ALICE).await.unwrap();
    let cases: [(u64, u64, TensorMeta, &[&str]); 6] = [
        (
            181,
            180,
            meta([3, 4, 15, 1], "coco", &[]),
            &["\"coco\"", "mocap15, body25, ntu25"],
        ),
        (
            301,
            300,
            meta([3, 4, 25, 1], "mocap15", &[]),
            &["mocap15 has 15 nodes", "V = 25"],
        ),
        (
            180,
            179,
            meta([3, 4, 15, 1], "mocap15", &[]),
            &["180 columns", "= 181"],
        ),
        (
            181,
            0,
            meta([3, 4, 15, 1], "mocap15", &[]),
            &["label column 0", "last column, 180"],
        ),
        (
            1,
            0,
            meta([3, 2048, 15, 1], "mocap15", &[]),
            &["T = 2048", "1..=1024"],
        ),
        (
            1,
            0,
            meta([20, 4, 15, 1], "mocap15", &[]),
            &["C = 20", "1..=16"],
        ),
    ];
    for (cols, label, t, want) in cases {
        let h = UploadHeader {
            label_column: label,
            ..header(cols.max(2), ShareForm::Seed)
        };
        match p0.request(&ClientRequest::UploadWith(h, with(t))).await {
            Err(ClientError::Refused { code, message }) => {
                assert_eq!(code, ErrorCode::BadRequest, "{message}");
                for w in want {
                    assert!(message.contains(w), "{message:?} lacks {w:?}");
                }
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(
        p0.list().await.unwrap().is_empty(),
        "the connection still serves"
    );

    // Two valid halves of the same width describing different tensors.
    let mut p1 = c.client(1, ALICE).await.unwrap();
    let share = vec![0u8; 2 * 181 * 8];
    let h1 = UploadHeader {
        digest: party::store::sha256(&share),
        ..header(181, ShareForm::Matrix)
    };
    let seed = [9u8; 32];
    let h0 = UploadHeader {
        id: h1.id,
        form: ShareForm::Seed,
        len: 32,
        digest: party::store::sha256(&seed),
        ..h1.clone()
    };
    let none = &|_| {};
    p1.upload_with(
        h1,
        with(meta([3, 4, 15, 1], "mocap15", &[])),
        &share,
        none,
        None,
    )
    .await
    .unwrap();
    p0.upload_with(
        h0.clone(),
        with(meta([1, 12, 15, 1], "mocap15", &[])),
        &seed,
        none,
        None,
    )
    .await
    .unwrap();
    let r = p0.request(&ClientRequest::Commit { id: h0.id }).await;
    assert!(
        matches!(
            &r,
            Err(ClientError::Refused {
                code: ErrorCode::Peer,
                ..
            })
        ),
        "{r:?}"
    );
    c.wait_until("both halves discarded", || {
        c.manifests(0).is_empty() && c.manifests(1).is_empty()
    });
}
