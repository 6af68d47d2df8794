//! Throughput of the loaders and generators the experiments call on every run: MNIST from the
//! bundled gzip IDX files, a small CSV set, the MNIST-sized planted generator, and `.npy` I/O.

use criterion::{criterion_group, criterion_main, Criterion};
use datasets::{mnist, npy, synth, tabular};
use std::hint::black_box;

fn loaders(c: &mut Criterion) {
    let mut g = c.benchmark_group("datasets");
    g.sample_size(10);
    g.bench_function("mnist_train_load_bundled", |b| {
        b.iter(|| black_box(mnist::load_bundled(mnist::Split::Train).unwrap()))
    });
    g.bench_function("digits_csv_gz", |b| {
        b.iter(|| black_box(tabular::digits().unwrap()))
    });
    g.bench_function("planted_linear_60000x784", |b| {
        let spec = synth::PlantedSpec::new(60_000, 784, 1);
        b.iter(|| black_box(synth::planted_linear(&spec, 0.1).unwrap()))
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let x = synth::planted_linear(&synth::PlantedSpec::new(10_000, 784, 2), 0.1)
        .unwrap()
        .dataset
        .x;
    g.bench_function("npy_write_read_10000x784_f64", |b| {
        b.iter(|| {
            npy::write_npy(&path, &x).unwrap();
            black_box(npy::read_npy_as::<f64>(&path).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, loaders);
criterion_main!(benches);
