//! Tests of the store: durability, crash clean-up, seeds, versions and old manifests.

use super::*;

fn manifest(id: EntryId, name: &str, bytes: &[u8], form: ShareForm, rows: u64) -> Manifest {
    Manifest {
        id,
        kind: EntryKind::Dataset,
        name: name.into(),
        owner: "alice".into(),
        rows,
        cols: 2,
        label_column: 1,
        frac_bits: mpc::FracBits::new(16).unwrap(),
        form,
        sha256: hex::encode(sha256(bytes)),
        created: now(),
        state: State::Prepared,
        appenders: Vec::new(),
        supersedes: None,
        appended: Vec::new(),
        tensor: None,
        model: None,
        keys: None,
        standardization: None,
    }
}

#[test]
fn put_commit_list_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let share = Share::from_ring(ndarray::array![[1u64, 2], [3, 4]]);
    let bytes = matrix_bytes(&share);
    let id = EntryId::random();
    s.put(&manifest(id, "d", &bytes, ShareForm::Matrix, 2), &bytes)
        .unwrap();
    assert!(s.list("alice").unwrap().is_empty(), "prepared is invisible");
    s.set_state(&id, State::Committed).unwrap();
    assert_eq!(s.list("alice").unwrap().len(), 1);
    assert!(s.list("bob").unwrap().is_empty());
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    let m = s
        .find_committed(EntryKind::Dataset, "alice", "d")
        .unwrap()
        .unwrap();
    assert_eq!(s.load_share(&m).unwrap().view(), share.view());
    // Same name again is refused.
    let id2 = EntryId::random();
    assert!(matches!(
        s.put(&manifest(id2, "d", &bytes, ShareForm::Matrix, 2), &bytes),
        Err(StoreError::Exists { .. })
    ));
}

#[test]
fn seeds_expand_to_the_share() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let seed = [5u8; 32];
    let id = EntryId::random();
    s.put(&manifest(id, "d", &seed, ShareForm::Seed, 3), &seed)
        .unwrap();
    let m = s.get(&id).unwrap();
    assert_eq!(
        s.load_share(&m).unwrap().view(),
        Seed(seed).expand(3, 2).view()
    );
}

#[test]
fn bad_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let bytes = vec![0u8; 32];
    let mut m = manifest(EntryId::random(), "d", &bytes, ShareForm::Matrix, 2);
    assert!(matches!(
        s.put(&m, &bytes[..31]),
        Err(StoreError::BadShare { .. })
    ));
    m.sha256 = hex::encode([0u8; 32]);
    assert!(matches!(
        s.put(&m, &bytes),
        Err(StoreError::BadShare { .. })
    ));
}

#[test]
fn open_cleans_partial_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let bytes = vec![1u8; 32];
    let id = EntryId::random();
    s.put(&manifest(id, "d", &bytes, ShareForm::Matrix, 2), &bytes)
        .unwrap();
    let good = EntryId::random();
    s.put(&manifest(good, "e", &bytes, ShareForm::Matrix, 2), &bytes)
        .unwrap();
    drop(s);
    let e = dir.path().join("entries");
    fs::write(e.join("x.share.tmp"), b"partial").unwrap();
    fs::write(e.join(format!("{}.share", EntryId::random())), b"orphan").unwrap();
    fs::write(e.join(format!("{id}.share")), vec![2u8; 32]).unwrap();
    let s = Store::open(dir.path()).unwrap();
    let left: Vec<_> = fs::read_dir(&e)
        .unwrap()
        .map(|x| x.unwrap().path())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(matches!(s.get(&id), Err(StoreError::NotFound { .. })));
    assert!(s.get(&good).is_ok());
}

#[test]
fn a_dropped_writer_leaves_nothing_and_a_finished_one_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let id = EntryId::random();
    let mut w = s.begin(&id).unwrap();
    w.write(&[1u8; 16]).unwrap();
    // A second upload of the same id while the first is running is refused.
    assert!(matches!(s.begin(&id), Err(StoreError::Exists { .. })));
    drop(w);
    let left = fs::read_dir(dir.path().join("entries")).unwrap().count();
    assert_eq!(left, 0, "the partial file is removed");
    let mut w = s.begin(&id).unwrap();
    w.write(&[1u8; 16]).unwrap();
    w.write(&[1u8; 16]).unwrap();
    assert_eq!(w.len(), 32);
    let bytes = [1u8; 32];
    let mut m = manifest(id, "d", &bytes, ShareForm::Matrix, 2);
    m.sha256 = w.digest_hex();
    s.finish(w, &m).unwrap();
    assert_eq!(s.read_bytes(&s.get(&id).unwrap()).unwrap(), bytes);
}

#[test]
fn a_partial_upload_left_by_a_crash_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mut w = s.begin(&EntryId::random()).unwrap();
    w.write(&[3u8; 100]).unwrap();
    // A crash: the writer's destructor never runs.
    std::mem::forget(w);
    drop(s);
    let e = dir.path().join("entries");
    assert_eq!(fs::read_dir(&e).unwrap().count(), 1);
    let _s = Store::open(dir.path()).unwrap();
    assert_eq!(fs::read_dir(&e).unwrap().count(), 0);
}

fn version(s: &Store, base: &Manifest, rows: u64, client: &str) -> Manifest {
    let bytes = vec![9u8; (rows * 2 * 8) as usize];
    let mut m = manifest(
        EntryId::random(),
        &base.name,
        &bytes,
        ShareForm::Matrix,
        rows,
    );
    m.supersedes = Some(base.id);
    m.appended = vec![AppendedPart {
        client: client.into(),
        rows: rows - base.rows,
    }];
    s.put(&m, &bytes).unwrap();
    m
}

#[test]
fn an_appended_version_replaces_the_one_it_extends_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let bytes = vec![1u8; 32];
    let v1 = manifest(EntryId::random(), "d", &bytes, ShareForm::Matrix, 2);
    s.put(&v1, &bytes).unwrap();
    s.decide(&v1.id).unwrap();
    s.commit(&v1.id).unwrap();
    // Two appends race: both prepared, the first decided wins, the second conflicts.
    let v2 = version(&s, &v1, 3, "bob");
    let v2b = version(&s, &v1, 5, "carol");
    assert_eq!(v2.uploader(), "bob");
    assert_eq!(v1.uploader(), "alice");
    let found = s.find_committed(EntryKind::Dataset, "alice", "d").unwrap();
    assert_eq!(found.unwrap().id, v1.id, "prepared versions are invisible");
    s.decide(&v2.id).unwrap();
    assert!(matches!(
        s.decide(&v2b.id),
        Err(StoreError::Conflict { .. })
    ));
    s.commit(&v2.id).unwrap();
    assert!(matches!(
        s.decide(&v2b.id),
        Err(StoreError::Conflict { .. })
    ));
    let found = s.find_committed(EntryKind::Dataset, "alice", "d").unwrap();
    assert_eq!(found.unwrap().id, v2.id);
    assert!(matches!(s.get(&v1.id), Err(StoreError::NotFound { .. })));
    assert_eq!(s.list("alice").unwrap().len(), 1);
    // A plain upload of a taken name is refused; one prepared before the name was taken
    // cannot be decided.
    let other = manifest(EntryId::random(), "d", &bytes, ShareForm::Matrix, 2);
    assert!(matches!(
        s.put(&other, &bytes),
        Err(StoreError::Exists { .. })
    ));
    let e = manifest(EntryId::random(), "e", &bytes, ShareForm::Matrix, 2);
    let e2 = manifest(EntryId::random(), "e", &bytes, ShareForm::Matrix, 2);
    s.put(&e, &bytes).unwrap();
    s.put(&e2, &bytes).unwrap();
    s.decide(&e.id).unwrap();
    assert!(matches!(s.decide(&e2.id), Err(StoreError::Conflict { .. })));
}

#[test]
fn a_crash_between_commit_and_removing_the_old_version_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let bytes = vec![1u8; 32];
    let v1 = manifest(EntryId::random(), "d", &bytes, ShareForm::Matrix, 2);
    s.put(&v1, &bytes).unwrap();
    s.commit(&v1.id).unwrap();
    let v2 = version(&s, &v1, 4, "bob");
    // The crash: v2 committed, v1 still on disk.
    s.set_state(&v2.id, State::Committed).unwrap();
    let found = s.find_committed(EntryKind::Dataset, "alice", "d").unwrap();
    assert_eq!(
        found.unwrap().id,
        v2.id,
        "the newest version wins meanwhile"
    );
    assert_eq!(s.list("alice").unwrap().len(), 1);
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert!(matches!(s.get(&v1.id), Err(StoreError::NotFound { .. })));
    assert_eq!(s.get(&v2.id).unwrap().rows, 4);
}

#[test]
fn manifests_without_the_version_fields_still_parse() {
    let text = r#"id = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]
kind = "dataset"
name = "d"
owner = "alice"
rows = 2
cols = 2
label_column = 1
frac_bits = 16
form = "Matrix"
sha256 = "00"
created = 1
state = "committed"
"#;
    let m = parse_manifest(text.as_bytes()).unwrap();
    assert!(m.appenders.is_empty() && m.supersedes.is_none() && m.appended.is_empty());
    let mut m2 = m.clone();
    m2.appenders = vec!["bob".into()];
    m2.supersedes = Some(EntryId([7; 16]));
    m2.appended = vec![AppendedPart {
        client: "bob".into(),
        rows: 3,
    }];
    let back = parse_manifest(toml::to_string_pretty(&m2).unwrap().as_bytes()).unwrap();
    assert_eq!(back, m2);
}

/// A skeleton dataset's tensor round-trips through the manifest, and a manifest whose tensor
/// does not fit its columns, or names an unknown graph, or sits on a model, is refused when read.
#[test]
fn manifests_with_a_tensor_are_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let share = Share::from_ring(ndarray::Array2::zeros((2, 3 * 2 * 15 + 1)));
    let bytes = matrix_bytes(&share);
    let id = EntryId::random();
    let mut m = manifest(id, "moves", &bytes, ShareForm::Matrix, 2);
    (m.cols, m.label_column) = (91, 90);
    m.tensor = Some(crate::proto::TensorMeta {
        dims: [3, 2, 15, 1],
        graph: "mocap15".into(),
        class_names: vec!["walk".into(), "run".into()],
    });
    s.put(&m, &bytes).unwrap();
    assert_eq!(s.get(&id).unwrap(), m);
    let text = toml::to_string_pretty(&m).unwrap();
    let bad = |from: &str, to: &str, want: &str| {
        let t = text.replacen(from, to, 1);
        assert_ne!(t, text, "{from:?} not in the manifest");
        let e = parse_manifest(t.as_bytes()).unwrap_err();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    };
    bad("label_column = 90", "label_column = 0", "label column 0");
    bad(
        "graph = \"mocap15\"",
        "graph = \"ntu25\"",
        "ntu25 has 25 nodes",
    );
    bad(
        "graph = \"mocap15\"",
        "graph = \"kinect\"",
        "unknown skeleton graph",
    );
    bad("kind = \"dataset\"", "kind = \"model\"", "not a dataset");
    // On disk: the store refuses to read the entry, naming the manifest.
    let path = dir.path().join("entries").join(format!("{id}.toml"));
    std::fs::write(&path, text.replacen("cols = 91", "cols = 92", 1)).unwrap();
    let e = s.get(&id).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{id}.toml")) && e.contains("92 columns"),
        "{e}"
    );
}
