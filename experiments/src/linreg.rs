//! Task `linreg`: secure linear regression (SecureML §IV) beside its plaintext twin.
//!
//! The data owner standardizes the features with the training set's statistics, centres and
//! scales the target, encodes both in fixed point and secret-shares them (seed-compressed: P0
//! receives a 32-byte seed, P1 the masked matrix). The dealer makes the triples the plan of the
//! training run lists (offline phase); the two parties then train over the configured transport
//! (online phase) and the owner reconstructs the weights. The plaintext twin runs the same code
//! on `f64` from the same initial weights with the same batches.

use crate::common;
use crate::config::{LinregTask, MpcConfig};
use crate::link;
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::{Context, Result};
use ml::backend::{Plain, Shared};
use ml::models::linreg::{self, LinRegHyper};
use ml::Schedule;
use mpc::net::Metered;
use mpc::share::{reconstruct, share_seeded};
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::{Array2, Axis};
use std::sync::Arc;
use std::time::Instant;

/// Runs the task and adds its results to `report`.
pub async fn run(
    task: &LinregTask,
    mpc_cfg: &MpcConfig,
    transport: &str,
    seed: u64,
    report: &mut Report,
) -> Result<()> {
    let split = common::load(&task.data, seed)?;
    let (mut xtr, mut xte) = (split.train.x.clone(), split.test.x.clone());
    if task.standardize {
        let st = datasets::preprocess::Standardizer::fit(&xtr);
        xtr = st.transform(&xtr)?;
        xte = st.transform(&xte)?;
    }
    let (ytr_raw, yte_raw) = (split.train.y.clone(), split.test.y.clone());
    let y_mean = ytr_raw.mean().unwrap_or(0.0);
    let y_std = ytr_raw.std(0.0).max(1e-12);
    let ytr = ytr_raw.mapv(|v| (v - y_mean) / y_std).insert_axis(Axis(1));
    let (n, d) = xtr.dim();

    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = Schedule::shuffled(n, task.batch_size, task.epochs, seed ^ 0x5eed)?;
    let w0 = Array2::<f64>::zeros((d, 1));
    let fp = FixedPoint::new(FracBits::new(mpc_cfg.frac_bits)?);
    let run = |base: &str| {
        if task.label.is_empty() {
            base.to_string()
        } else {
            format!("{base}_{}", task.label)
        }
    };
    let (rs, rp) = (run("secure"), run("plain"));

    // Plaintext twin.
    let t = Instant::now();
    let w_plain = linreg::train(
        &mut Plain::new(),
        &xtr,
        &ytr,
        w0.clone(),
        &sched,
        &hyper,
        &|_| {},
    )
    .await?;
    let plain_s = t.elapsed().as_secs_f64();

    // Data owner: encode and share (keys and masks from the OS CSPRNG).
    let mut rng = mpc::share::os_rng();
    let x_enc = fp
        .encode_matrix(&xtr.view())
        .context("encoding the training features")?;
    let y_enc = fp
        .encode_matrix(&ytr.view())
        .context("encoding the training targets")?;
    let (x_seed, x1) = share_seeded(&x_enc.view(), &mut rng);
    let (y_seed, y1) = share_seeded(&y_enc.view(), &mut rng);
    let upload_p1 = ((n * d + n) * 8) as f64;
    drop((x_enc, y_enc));

    // Offline phase.
    let requests = linreg::plan(n, d, &sched, &hyper).await?;
    let source = task.triples.as_deref().unwrap_or(&mpc_cfg.triples);
    let off = crate::offline::run(source, transport, &requests).await?;
    let (offline_s, trust, dealer_stats) = (off.seconds, off.trust, off.stats);
    let [pre0, pre1] = off.pre;

    // Online phase: two parties over the transport.
    let (c0, c1) = link::pair(transport).await?;
    let (c0, c1) = (Metered::new(c0), Metered::new(c1));
    let (m0, m1) = (c0.meter(), c1.meter());
    let pb = Arc::new(common::progress(sched.steps() as u64, "secure linreg"));
    let sched = Arc::new(sched);
    let x0 = x_seed.expand(n, d);
    let y0 = y_seed.expand(n, 1);
    let t = Instant::now();
    let party =
        |ch, role: Role, x: Share, y: Share, pre, pb: Option<Arc<indicatif::ProgressBar>>| {
            let sched = sched.clone();
            tokio::spawn(async move {
                let mut b = Shared::new(ch, role, fp, pre);
                let t = Instant::now();
                let xd = b.data(&x).await?;
                let setup_s = t.elapsed().as_secs_f64();
                drop(x);
                let cb = move |p: linreg::Progress| {
                    if let Some(pb) = &pb {
                        pb.inc(1);
                        pb.set_message(format!("secure linreg, epoch {}", p.epoch + 1));
                    }
                };
                let t = Instant::now();
                let w =
                    linreg::train(&mut b, &xd, &y, Share::zeros(d, 1), &sched, &hyper, &cb).await?;
                anyhow::Ok((w, setup_s, t.elapsed().as_secs_f64()))
            })
        };
    let h0 = party(c0, Role::P0, x0, y0, pre0, Some(pb.clone()));
    let h1 = party(c1, Role::P1, x1, y1, pre1, None);
    let (w0s, w1s) = tokio::join!(h0, h1);
    let ((w0s, setup_s, train_s), (w1s, _, _)) = (w0s??, w1s??);
    let online_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let w_secure = fp.decode_matrix(&reconstruct(&w0s, &w1s).view());
    let (s0, s1) = (m0.stats(), m1.stats());

    // Evaluation on the test set, in the target's original units.
    let mse = |w: &Array2<f64>, x: &Array2<f64>, y: &ndarray::Array1<f64>| {
        let p = x.dot(w).column(0).mapv(|v| v * y_std + y_mean);
        (&p - y).mapv(|e| e * e).mean().unwrap_or(f64::NAN)
    };
    let (mse_s, mse_p) = (
        mse(&w_secure, &xte, &yte_raw),
        mse(&w_plain, &xte, &yte_raw),
    );
    let (tr_s, tr_p) = (
        mse(&w_secure, &xtr, &ytr_raw),
        mse(&w_plain, &xtr, &ytr_raw),
    );
    let max_dw = w_secure
        .iter()
        .zip(w_plain.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let rel = (mse_s - mse_p).abs() / mse_p.abs().max(1e-300);

    report.metric(format!("{rs}.test_mse"), mse_s);
    report.metric(format!("{rp}.test_mse"), mse_p);
    report.metric(format!("{rs}.train_mse"), tr_s);
    report.metric(format!("{rp}.train_mse"), tr_p);
    report.metric(format!("{rs}.max_weight_diff"), max_dw);
    report.metric(format!("{rs}.test_mse_rel_diff"), rel);
    report.metric(format!("{rs}.online_s"), online_s);
    report.metric(format!("{rs}.online_mask_open_s"), setup_s);
    report.metric(format!("{rs}.online_train_s"), train_s);
    report.metric(format!("{rs}.offline_s"), offline_s);
    report.metric(format!("{rp}.train_s"), plain_s);
    report.metric(format!("{rs}.bytes_sent_p0_bytes"), s0.bytes_sent as f64);
    report.metric(format!("{rs}.bytes_sent_p1_bytes"), s1.bytes_sent as f64);
    report.metric(format!("{rs}.rounds_p0_count"), s0.rounds as f64);
    report.metric(format!("{rs}.rounds_p1_count"), s1.rounds as f64);
    report.metric(
        format!("{rs}.offline_bytes_sent_p0_bytes"),
        dealer_stats[0].bytes_sent as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_sent_p1_bytes"),
        dealer_stats[1].bytes_sent as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_received_p0_bytes"),
        dealer_stats[0].bytes_received as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_received_p1_bytes"),
        dealer_stats[1].bytes_received as f64,
    );
    report.metric(format!("{rs}.upload_bytes"), upload_p1 + 64.0);
    report.metric(format!("{rs}.steps_count"), sched.steps() as f64);

    let steps = sched.steps();
    report.section(
        &format!("Linear regression{}", if task.label.is_empty() { String::new() } else { format!(" ({})", task.label) }),
        format!(
            "Data: {}.\nSGD: {} epochs, batch {}, learning rate {} ({} steps); fixed point f = {}; transport `{}`.\n\n\
             | run | test MSE | train MSE | time |\n|---|---|---|---|\n\
             | secure (2PC) | {} | {} | online {:.3} s (opening E = X − U {:.3} s, SGD {:.3} s), offline {:.3} s |\n\
             | plaintext twin | {} | {} | {:.3} s |\n\n\
             Relative test-MSE difference {:.3e}; max |w_secure − w_plain| = {:.3e}.\n\n\
             | communication (online) | P0 | P1 |\n|---|---|---|\n\
             | bytes sent | {} | {} |\n| rounds | {} | {} |\n| per step | {} | {} |\n\n\
             Offline phase (`{}`): P0 sent {} and received {}; P1 sent {} and received {}. Data owner upload: {} to P1, a 32-byte seed per matrix to P0.",
            split.description,
            task.epochs,
            task.batch_size,
            task.learning_rate,
            steps,
            mpc_cfg.frac_bits,
            transport,
            fmt_num(mse_s),
            fmt_num(tr_s),
            online_s,
            setup_s,
            train_s,
            offline_s,
            fmt_num(mse_p),
            fmt_num(tr_p),
            plain_s,
            rel,
            max_dw,
            fmt_bytes(s0.bytes_sent as f64),
            fmt_bytes(s1.bytes_sent as f64),
            s0.rounds,
            s1.rounds,
            fmt_bytes(s0.bytes_sent as f64 / steps as f64),
            fmt_bytes(s1.bytes_sent as f64 / steps as f64),
            source,
            fmt_bytes(dealer_stats[0].bytes_sent as f64),
            fmt_bytes(dealer_stats[0].bytes_received as f64),
            fmt_bytes(dealer_stats[1].bytes_sent as f64),
            fmt_bytes(dealer_stats[1].bytes_received as f64),
            fmt_bytes(upload_p1),
        ),
    );
    report.note(format!("Triples: {trust}."));
    report.note(
        "Parties: semi-honest and non-colluding; the data matrix is masked once by a random U shared by the triple source and E = X − U is opened (SecureML §IV).",
    );
    report.note(format!(
        "Truncation: SecureML's local truncation; a product below 2^l_x in magnitude (encoded) fails with probability ≤ 2^(l_x+1−64): with f = {} a real product below 4096 has l_x = {}, i.e. {:.1e} per value.",
        mpc_cfg.frac_bits,
        2 * mpc_cfg.frac_bits + 12,
        mpc::trunc::failure_probability(2 * mpc_cfg.frac_bits + 12)
    ));
    Ok(())
}
