//! Vertical partitioning end to end with real `party serve` processes: a bank (alice) and an
//! insurer (bob) upload different columns of the same customers with a row key; both consent to
//! the join; the joined table reconstructs to the plaintext join and a logistic regression on it
//! lands within 1 pp of the plaintext twin's test accuracy. Consents survive a restart of both
//! parties (the bank proposes, both restart, the insurer confirms), and a spent one stays spent
//! across another restart. Refusals: a join one owner did not consent to, a third client's
//! consent, a replayed start, and key lists that disagree (the refusal names the first
//! differing row, not the key).

mod support;

use ndarray::{s, Array2, Axis};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// Features the bank holds (the rest are the insurer's).
const BANK_FEATURES: usize = 12;

/// Standardized breast cancer, split 80/20: (train table with the label last, test x, test y).
fn cancer() -> (Array2<f64>, Array2<f64>, Vec<usize>) {
    let ds = datasets::tabular::breast_cancer().unwrap();
    let (tr, te) = datasets::split::stratified_split(&ds, 0.2, 7).unwrap();
    let st = datasets::preprocess::Standardizer::fit(&tr.x);
    let xtr = st.transform(&tr.x).unwrap();
    let xte = st.transform(&te.x).unwrap();
    let full = ndarray::concatenate![Axis(1), xtr, tr.y.clone().insert_axis(Axis(1))];
    (full, xte, te.labels().unwrap())
}

/// Writes a CSV with a header, the key column `key` first, then `cols`; `order` picks the rows.
fn write_keyed(path: &Path, key: &str, cols: &Array2<f64>, order: &[usize]) {
    let mut out = String::from(key);
    for j in 0..cols.ncols() {
        write!(out, ",c{j}").unwrap();
    }
    out.push('\n');
    for &i in order {
        write!(out, "C-{i:04}").unwrap();
        for v in cols.row(i) {
            write!(out, ",{v}").unwrap();
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// Kills both parties (SIGKILL) and starts them again; their `links`-th peer link.
fn restart(c: &mut Cluster, links: usize) {
    c.kill9(0);
    c.kill9(1);
    c.start(0);
    c.start(1);
    c.wait_linked(links);
}

fn party_cmd(c: &Cluster, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(PARTY)
        .args(args)
        .args(c.conn_args(token))
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "failed: {e}");
    String::from_utf8(out.stdout).unwrap()
}

fn refused(out: std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "succeeded: {e}");
    e
}

const TERMS: [&str; 8] = [
    "--left",
    "alice/accounts",
    "--right",
    "bob/policies",
    "--name",
    "joined",
    "--owner",
    "alice",
];

fn terms(right: &str) -> Vec<&str> {
    let mut t = TERMS.to_vec();
    t[3] = right;
    t
}

/// Uploads the bank's and the insurer's columns (and a shuffled copy of the insurer's).
fn upload_both(c: &Cluster, dir: &Path, full: &Array2<f64>) -> PathBuf {
    let n = full.nrows();
    let secret = dir.join("join.key");
    std::fs::write(&secret, format!("{}\n", "5a".repeat(32))).unwrap();
    let d = full.ncols() - 1;
    let bank = ndarray::concatenate![
        Axis(1),
        full.slice(s![.., ..BANK_FEATURES]),
        full.slice(s![.., d..])
    ];
    let ins = full.slice(s![.., BANK_FEATURES..d]).to_owned();
    let rows: Vec<usize> = (0..n).collect();
    let (pb, pi) = (dir.join("bank.csv"), dir.join("ins.csv"));
    write_keyed(&pb, "id", &bank, &rows);
    write_keyed(&pi, "cust", &ins, &rows);
    let sec = secret.to_str().unwrap();
    upload_ok(c.upload(
        ALICE,
        &[
            "--name",
            "accounts",
            "--key-column",
            "id",
            "--key-secret",
            sec,
        ],
        &pb,
    ));
    let ins_args = ["--key-column", "cust", "--key-secret", sec, "--no-label"];
    upload_ok(c.upload(BOB, &[&["--name", "policies"][..], &ins_args].concat(), &pi));
    // The same columns with rows 5 and 6 swapped: the key lists then differ first at row 5.
    let mut swapped = rows.clone();
    swapped.swap(5, 6);
    let ps = dir.join("ins-swapped.csv");
    write_keyed(&ps, "cust", &ins, &swapped);
    upload_ok(c.upload(BOB, &[&["--name", "swapped"][..], &ins_args].concat(), &ps));
    secret
}

/// Slow-ish (a secure logistic regression between two processes, as `e2e.rs`'s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_columns_join_and_train_within_one_point_of_the_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 60, 10_000_000);
    let (full, xte, yte) = cancer();
    upload_both(&c, tmp.path(), &full);

    // Only the bank consented: the start is refused and names the missing owner.
    let j1 = ok(party_cmd(
        &c,
        ALICE,
        &[&["join-propose"][..], &TERMS].concat(),
    ));
    let j1 = j1.trim();
    let e = refused(party_cmd(
        &c,
        ALICE,
        &[&["join-confirm", "--start-only", "--join", j1][..], &TERMS].concat(),
    ));
    assert!(e.contains("bob has not consented"), "{e}");
    // A third client can neither consent nor start it.
    let e = refused(party_cmd(
        &c,
        DAVE,
        &[&["join-confirm", "--join", j1][..], &TERMS].concat(),
    ));
    assert!(e.contains("you own neither"), "{e}");

    // Key lists that disagree: refused at the first differing row, without the key.
    let t2 = terms("bob/swapped");
    let j2 = ok(party_cmd(
        &c,
        ALICE,
        &[&["join-propose"][..], &t2[..]].concat(),
    ));
    let e = refused(party_cmd(
        &c,
        BOB,
        &[&["join-confirm", "--join", j2.trim()][..], &t2[..]].concat(),
    ));
    assert!(e.contains("differ first at row 5 (0-based)"), "{e}");
    assert!(!e.contains("C-0005") && !e.contains("C-0006"), "{e}");

    // The bank's consent to j1 survives a restart of both parties: the insurer's confirmation
    // afterwards runs the join.
    restart(&mut c, 2);
    // Both consent to j1: joined, owned by alice; a replayed start finds nothing to run, even
    // after another restart.
    let out = ok(party_cmd(
        &c,
        BOB,
        &[&["join-confirm", "--join", j1][..], &TERMS].concat(),
    ));
    assert_eq!(out.trim(), j1);
    restart(&mut c, 3);
    let e = refused(party_cmd(
        &c,
        BOB,
        &[&["join-confirm", "--start-only", "--join", j1][..], &TERMS].concat(),
    ));
    assert!(e.contains("ran already"), "{e}");
    // A replayed confirmation is a new consent of bob alone: alice's was spent.
    let e = refused(party_cmd(
        &c,
        BOB,
        &[&["join-confirm", "--join", j1][..], &TERMS].concat(),
    ));
    assert!(e.contains("alice has not consented"), "{e}");
    for id in 0..2 {
        let m = c.manifests(id);
        let j: Vec<_> = m.iter().filter(|m| m.name == "joined").collect();
        assert_eq!(
            j.len(),
            1,
            "one joined entry (the refused join left nothing)"
        );
        assert_eq!(
            (j[0].owner.as_str(), j[0].cols),
            ("alice", full.ncols() as u64)
        );
        assert_eq!(j[0].state, party::store::State::Committed);
    }
    // The joined table is the bank's features, the insurer's, then the label.
    assert_close(&c.reconstruct("joined"), &full);

    // Alice trains on it like on any dataset.
    let model = tmp.path().join("model.json");
    let (epochs, batch, lr, seed) = (3u64, 64u64, 0.125, 11u64);
    let train = [
        "train",
        "--dataset",
        "joined",
        "--model",
        "logreg",
        "--epochs",
        "3",
        "--batch",
        "64",
        "--lr",
        "0.125",
        "--seed",
        "11",
        "--triples",
        "ot",
        "--reveal",
    ];
    let mut args: Vec<&str> = train.to_vec();
    args.push(model.to_str().unwrap());
    ok(party_cmd(&c, ALICE, &args));
    let w = party::linear_model::LinearModel::read(&model)
        .unwrap()
        .weights[0]
        .clone();

    let w_plain = twin_logreg(&full, (epochs, batch, lr, seed), true).await;
    let (a, b) = (
        sign_accuracy(&w, &xte, &yte),
        sign_accuracy(&w_plain, &xte, &yte),
    );
    eprintln!("joined table: secure {a:.2}%, plaintext twin {b:.2}%");
    assert!((a - b).abs() <= 1.0, "secure {a}% vs plaintext {b}%");
    assert!(a > 90.0, "secure accuracy {a}%");
}
