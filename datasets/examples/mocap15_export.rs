//! Generates the Mocap-15 cross-view split with the default configuration and reports the time
//! taken; with a directory argument also writes it as ST-GCN-style `.npy` files
//! (`train_data.npy` `(N, 3, 64, 15, 1)` f32, `train_label.npy` i64, same for `test_`).
//!
//! `cargo run -p datasets --release --example mocap15_export -- [OUT_DIR] [TRAIN_PER_CLASS] [TEST_PER_CLASS]`

use std::path::Path;
use std::time::Instant;

use datasets::skeleton::ntu::save_arrays;
use datasets::skeleton::{Mocap15, Mocap15Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let train_per_class = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let test_per_class = args.get(3).map_or(Ok(30), |s| s.parse())?;
    let t0 = Instant::now();
    let gen = Mocap15::load_bundled(Mocap15Config::default())?;
    let t1 = Instant::now();
    let split = gen.cross_view(train_per_class, test_per_class)?;
    let t2 = Instant::now();
    println!(
        "load {:.3} s, generate {:.3} s: train {:?}, test {:?}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        split.train.set.shape(),
        split.test.set.shape()
    );
    if let Some(dir) = args.get(1) {
        let dir = Path::new(dir);
        std::fs::create_dir_all(dir)?;
        save_arrays(
            &split.train.set,
            &dir.join("train_data.npy"),
            &dir.join("train_label.npy"),
        )?;
        save_arrays(
            &split.test.set,
            &dir.join("test_data.npy"),
            &dir.join("test_label.npy"),
        )?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}
