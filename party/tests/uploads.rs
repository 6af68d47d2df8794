//! `share-upload` end to end with real `party serve` processes: every input format (CSV, NPY,
//! MNIST IDX) reconstructs to its input from the two parties' stores, bad files are refused
//! naming where the bad value is, and horizontal partitioning: a second owner appends rows to a
//! dataset it was granted, and the owner trains on the union.

mod support;

use ndarray::{s, Array2, Axis};
use party::client::ClientError;
use party::proto::{
    ClientRequest, DatasetRef, EntryId, ErrorCode, JobSpec, ModelKind, Reply, ShareForm,
    TripleKind, UploadHeader, UploadOptions,
};
use std::path::Path;
use std::process::Command;
use support::*;

fn write_idx(path: &Path, dims: &[usize], data: &[u8]) {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    v.extend_from_slice(data);
    std::fs::write(path, v).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npy_and_mnist_idx_uploads_reconstruct_to_their_input_and_bad_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, 50_000_000);
    let dir = tmp.path();

    // NPY f32, labels in the last column.
    let x32 = Array2::from_shape_fn((120, 5), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 4.0 - 1.0);
    let p = dir.join("x32.npy");
    datasets::npy::write_npy(&p, &x32).unwrap();
    upload_ok(c.upload(ALICE, &["--name", "n32"], &p));
    assert_close(&c.reconstruct("n32"), &x32.mapv(f64::from));

    // NPY f64 features with a separate 1-D label file.
    let x64 = Array2::from_shape_fn((80, 3), |(i, j)| (i as f64).sin() * (j + 1) as f64);
    let y64 = ndarray::Array1::from_shape_fn(80, |i| (i % 2) as f64);
    let (px, py) = (dir.join("x64.npy"), dir.join("y64.npy"));
    datasets::npy::write_npy(&px, &x64).unwrap();
    datasets::npy::write_npy(&py, &y64).unwrap();
    upload_ok(c.upload(
        ALICE,
        &["--name", "n64", "--labels", py.to_str().unwrap()],
        &px,
    ));
    let want = ndarray::concatenate![Axis(1), x64, y64.clone().insert_axis(Axis(1))];
    assert_close(&c.reconstruct("n64"), &want);

    // MNIST IDX: 300 bundled test images, "0 vs rest".
    let m = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(300);
    let (pi, pl) = (dir.join("img-idx3-ubyte"), dir.join("lab-idx1-ubyte"));
    write_idx(&pi, &[300, m.rows, m.cols], m.images.as_slice().unwrap());
    write_idx(&pl, &[300], m.labels.as_slice().unwrap());
    upload_ok(c.upload(
        ALICE,
        &[
            "--name",
            "mnist",
            "--labels",
            pl.to_str().unwrap(),
            "--positive",
            "0",
        ],
        &pi,
    ));
    let y = m.labels.mapv(|l| f64::from(u8::from(l == 0)));
    let want = ndarray::concatenate![Axis(1), m.images_f64(), y.insert_axis(Axis(1))];
    assert_close(&c.reconstruct("mnist"), &want);

    // The owner's listing shows the shapes.
    let mut alice = c.client(0, ALICE).await.unwrap();
    match alice.request(&ClientRequest::List).await.unwrap() {
        Reply::Entries(e) => {
            let mut got: Vec<_> = e
                .iter()
                .map(|e| (e.name.as_str(), e.rows, e.cols))
                .collect();
            got.sort();
            assert_eq!(
                got,
                vec![("mnist", 300, 785), ("n32", 120, 5), ("n64", 80, 4)]
            );
        }
        r => panic!("{r:?}"),
    }

    // Bad files: refused before anything is sent, naming file, place, value and bound.
    let bad = dir.join("bad.npy");
    let mut xb = x64.clone();
    xb[[41, 2]] = 3e14;
    datasets::npy::write_npy(&bad, &xb).unwrap();
    let e = upload_err(c.upload(ALICE, &["--name", "bad"], &bad));
    assert!(
        e.contains("bad.npy")
            && e.contains("row 41, column 2 (0-based)")
            && e.contains("300000000000000")
            && e.contains("140737488355328"),
        "{e}"
    );
    write_idx(&pl, &[299], &m.labels.as_slice().unwrap()[..299]);
    let e = upload_err(c.upload(
        ALICE,
        &["--name", "bad", "--labels", pl.to_str().unwrap()],
        &pi,
    ));
    assert!(e.contains("lab-idx1-ubyte"), "{e}");
    std::fs::write(&pl, [0u8, 0, 8, 1, 0, 0]).unwrap();
    let e = upload_err(c.upload(
        ALICE,
        &["--name", "bad", "--labels", pl.to_str().unwrap()],
        &pi,
    ));
    assert!(e.contains("lab-idx1-ubyte"), "{e}");
    let e = upload_err(c.upload(ALICE, &["--name", "bad"], &pi));
    assert!(
        e.contains("img-idx3-ubyte") && e.contains("--labels"),
        "{e}"
    );
    assert!(c.entries(0).iter().all(|(_, n, _)| n != "bad"));
    assert!(c.entries(1).iter().all(|(_, n, _)| n != "bad"));
}

/// Standardized breast cancer, split 80/20 with a fixed seed: (train matrix with the label
/// last, test x, test labels).
fn cancer() -> (Array2<f64>, Array2<f64>, Vec<usize>) {
    let ds = datasets::tabular::breast_cancer().unwrap();
    let (tr, te) = datasets::split::stratified_split(&ds, 0.2, 7).unwrap();
    let st = datasets::preprocess::Standardizer::fit(&tr.x);
    let xtr = st.transform(&tr.x).unwrap();
    let xte = st.transform(&te.x).unwrap();
    let ytr = tr.y.clone().insert_axis(Axis(1));
    (
        ndarray::concatenate![Axis(1), xtr, ytr],
        xte,
        te.labels().unwrap(),
    )
}

/// Horizontal partitioning: alice uploads the first 200 rows and grants bob append rights; dave
/// (not granted) is refused, a part of another shape is refused with both shapes named; bob
/// appends the other rows; the version on both parties is the concatenation; bob can
/// neither see nor train on it; alice trains on the union and the revealed model matches the
/// plaintext twin on the concatenated rows with the same schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_owner_appends_rows_and_the_owner_trains_on_the_union() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 60, 50_000_000);
    let dir = tmp.path();
    let (full, xte, yte) = cancer();
    let (n, cols) = full.dim();
    let (p1, p2, narrow) = (dir.join("a.csv"), dir.join("b.csv"), dir.join("c.csv"));
    datasets::csv::write_csv(&p1, None, &full.slice(s![..200, ..]).to_owned()).unwrap();
    datasets::csv::write_csv(&p2, None, &full.slice(s![200.., ..]).to_owned()).unwrap();
    datasets::csv::write_csv(&narrow, None, &full.slice(s![200.., 1..]).to_owned()).unwrap();

    upload_ok(c.upload(ALICE, &["--name", "cancer", "--allow-append", "bob"], &p1));
    let e = upload_err(c.upload(DAVE, &["--append-to", "alice/cancer"], &p2));
    assert!(
        e.contains("no dataset alice/cancer that dave may append to"),
        "{e}"
    );
    let e = upload_err(c.upload(BOB, &["--append-to", "alice/other"], &p2));
    assert!(
        e.contains("no dataset alice/other that bob may append to"),
        "{e}"
    );
    let e = upload_err(c.upload(BOB, &["--append-to", "alice/cancer"], &narrow));
    assert!(
        e.contains(&format!("have {} columns", cols - 1))
            && e.contains(&format!("has {cols} columns"))
            && e.contains("must match"),
        "{e}"
    );
    let e = upload_err(c.upload(
        BOB,
        &["--append-to", "alice/cancer", "--frac-bits", "12"],
        &p2,
    ));
    assert!(
        e.contains("12 fractional bits") && e.contains("16 fractional bits"),
        "{e}"
    );
    let before = c.reconstruct("cancer");
    assert_close(&before, &full.slice(s![..200, ..]).to_owned());

    upload_ok(c.upload(BOB, &["--append-to", "alice/cancer"], &p2));
    for id in 0..2 {
        assert_eq!(
            c.entries(id),
            vec![("committed".to_string(), "cancer".to_string(), n as u64)],
            "P{id}"
        );
        let m = &c.manifests(id)[0];
        assert_eq!(
            (m.owner.as_str(), m.appenders.clone()),
            ("alice", vec!["bob".to_string()])
        );
        assert_eq!(m.appended.len(), 1);
        assert_eq!(
            (m.appended[0].client.as_str(), m.appended[0].rows),
            ("bob", n as u64 - 200)
        );
    }
    assert_close(&c.reconstruct("cancer"), &full);

    // Bob sees no dataset of his and cannot train on alice's.
    let mut bob = c.client(0, BOB).await.unwrap();
    assert_eq!(
        bob.request(&ClientRequest::List).await.unwrap(),
        Reply::Entries(vec![])
    );
    let r = bob
        .request(&ClientRequest::Submit(JobSpec {
            model: ModelKind::Logreg,
            dataset: "cancer".into(),
            learning_rate: 0.125,
            batch_size: 64,
            epochs: 1,
            schedule_seed: 1,
            triples: TripleKind::Ot,
            intercept: false,
            ot_extension: Default::default(),
        }))
        .await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::NotFound,
                ..
            })
        ),
        "{r:?}"
    );

    // Alice trains on the union.
    let wfile = dir.join("w.csv");
    let (epochs, batch, lr, seed) = (2u64, 64u64, 0.125, 5u64);
    let t = std::time::Instant::now();
    run_ok(Command::new(PARTY).args([
        "train",
        "--p0",
        &c.client[0].to_string(),
        "--p0-cert",
        c.cert(0).to_str().unwrap(),
        "--p1",
        &c.client[1].to_string(),
        "--p1-cert",
        c.cert(1).to_str().unwrap(),
        "--token",
        ALICE,
        "--dataset",
        "cancer",
        "--model",
        "logreg",
        "--epochs",
        &epochs.to_string(),
        "--batch",
        &batch.to_string(),
        "--lr",
        &lr.to_string(),
        "--seed",
        &seed.to_string(),
        "--triples",
        "ot",
        // SecureML's model, no intercept: the CSV holds the d weights.
        "--no-intercept",
        "--reveal",
        wfile.to_str().unwrap(),
    ]));
    eprintln!(
        "train on the union + reveal: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let w = datasets::csv::read_csv(&wfile).unwrap().data;
    let d = cols - 1;
    assert_eq!(w.dim(), (d, 1));
    let w_plain = twin_logreg(&full, (epochs, batch, lr, seed), false).await;
    let (a, b) = (
        sign_accuracy(&w, &xte, &yte),
        sign_accuracy(&w_plain, &xte, &yte),
    );
    let dw = w
        .iter()
        .zip(&w_plain)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    eprintln!("union: secure {a:.2}%, plaintext twin {b:.2}%, max |w - w_plain| = {dw:.2e}");
    assert!((a - b).abs() <= 1.0, "secure {a}% vs plaintext {b}%");
    assert!(dw < 1e-3, "max weight difference {dw}");
    assert!(a > 90.0, "secure accuracy {a}%");

    // Deleting is the owner's: bob's delete finds nothing, alice's removes it on both.
    assert!(matches!(
        bob.request(&ClientRequest::Delete {
            name: "cancer".into()
        })
        .await,
        Err(ClientError::Refused {
            code: ErrorCode::NotFound,
            ..
        })
    ));
    let mut alice = c.client(0, ALICE).await.unwrap();
    assert_eq!(
        alice
            .request(&ClientRequest::Delete {
                name: "cancer".into()
            })
            .await
            .unwrap(),
        Reply::Done
    );
    for id in 0..2 {
        assert!(c.entries(id).iter().all(|(_, n, _)| n != "cancer"), "P{id}");
    }
}

/// A share header whose `rows × cols` would not fit `max_upload_bytes` once expanded: a seed
/// is 32 bytes whatever the shape, so the shape itself is what must be bounded.
fn huge_header(rows: u64, cols: u64, form: ShareForm) -> UploadHeader {
    UploadHeader {
        id: EntryId::random(),
        name: "huge".into(),
        rows,
        cols,
        label_column: 0,
        frac_bits: mpc::FracBits::new(16).unwrap(),
        form,
        digest: [0; 32],
        len: match form {
            ShareForm::Seed => 32,
            ShareForm::Matrix => 8,
        },
    }
}

fn assert_limit(r: Result<Reply, ClientError>, want: &[&str]) {
    match r {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, ErrorCode::Limit, "{message}");
            for w in want {
                assert!(message.contains(w), "{message:?} lacks {w:?}");
            }
        }
        other => panic!("expected a Limit refusal, got {other:?}"),
    }
}

/// Seed-form uploads and appends declaring rows = 2^33, or a rows·cols·8 that overflows u64,
/// are refused with `Limit` (naming rows, columns, bytes and the limit) before any share byte
/// is received or expanded; the party keeps serving and a normal upload succeeds afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_seed_upload_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 30, 1_000_000);
    let x = Array2::from_shape_fn((50, 4), |(i, j)| ((i * 5 + j) % 7) as f64 / 8.0);
    let csv = tmp.path().join("x.csv");
    datasets::csv::write_csv(&csv, None, &x).unwrap();
    upload_ok(c.upload(ALICE, &["--name", "base"], &csv));
    let big = [
        "8589934592 rows x 4 columns",
        "274877906944 bytes",
        "max_upload_bytes = 1000000",
    ];
    let overflow = [
        "4611686018427387904 rows x 4 columns",
        "overflows",
        "max_upload_bytes = 1000000",
    ];
    let append = UploadOptions {
        appenders: vec![],
        append_to: Some(DatasetRef {
            owner: "alice".into(),
            name: "base".into(),
        }),
        ..Default::default()
    };
    let mut p0 = c.client(0, ALICE).await.unwrap();
    for (rows, want) in [(1u64 << 33, &big), (1 << 62, &overflow)] {
        for opts in [UploadOptions::default(), append.clone()] {
            let h = huge_header(rows, 4, ShareForm::Seed);
            assert_limit(
                p0.request(&ClientRequest::UploadWith(h, opts)).await,
                &want[..],
            );
        }
    }
    // The same connection still works, and P1 bounds its matrix form alike.
    assert_eq!(p0.list().await.unwrap().len(), 1);
    let mut p1 = c.client(1, ALICE).await.unwrap();
    let h = huge_header(1 << 62, 4, ShareForm::Matrix);
    assert_limit(
        p1.request(&ClientRequest::UploadWith(h, append.clone()))
            .await,
        &overflow,
    );
    // A plain `Upload` (its share bytes would follow unasked; not sent here, so that the
    // party's close cannot reset the reply) is refused with `Limit` too, then closed.
    let h = huge_header(1 << 33, 4, ShareForm::Seed);
    p0.send(&ClientRequest::Upload(h)).await.unwrap();
    assert_limit(p0.recv().await, &big);
    assert!(
        p0.list().await.is_err(),
        "the stream cannot be resynchronized"
    );
    // Both parties are alive and serve a normal upload and an append.
    for p in c.procs.iter_mut() {
        assert!(
            p.as_mut().unwrap().try_wait().unwrap().is_none(),
            "a party exited"
        );
    }
    upload_ok(c.upload(ALICE, &["--name", "after"], &csv));
    assert_close(&c.reconstruct("after"), &x);
    upload_ok(c.upload(ALICE, &["--append-to", "alice/base"], &csv));
    assert_close(
        &c.reconstruct("base"),
        &ndarray::concatenate![Axis(0), x, x],
    );
    assert!(c.log_lines(0, &["upload refused", "max_upload_bytes"]) >= 5);
}
