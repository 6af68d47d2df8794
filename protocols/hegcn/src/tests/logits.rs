//! The returned logits: masked head and sanitized reply hide the dense layer's partial sums
//! in every other slot.

use super::*;

/// The returned logits show the logits and nothing else: a sanitized reply (masked head,
/// re-randomized with the client's level-0 public key, flooded) decrypts to the plaintext
/// logits at the logit slots within the flood's stated error, and to flood noise in every other
/// slot: within the flood's width and uncorrelated with the dense layer's partial sums, which the
/// unmasked head (the old reply) held in those slots.
#[test]
fn returned_logits_hide_other_slots() {
    let model = small_model(4, 8, 1, 8, ActivationKind::Poly, &[(1, 1, vec![3])], 61);
    let params = test_params(10, level_plan(&model).unwrap().depth);
    let he = HeStgcn::compile(&model, Packing::Ama, &params).unwrap();
    let k = keys(&he, 6);
    let x = random_input(3, 8, 4, 1, 62);
    let mut cur = he.encrypt_input(&k.pk, x.view()).unwrap();
    for i in 0..he.num_blocks() {
        cur = he.block(&k.eval, i, &cur).unwrap();
    }
    let old = he.head_unmasked(&k.eval, &cur).unwrap();
    let masked = he.head(&k.eval, &cur).unwrap();
    assert_eq!(masked.cts[0].level(), he.output_level());
    // The client sends its public key at the output level only.
    let pk_out = k.pk.at_level(he.output_level()).unwrap();
    let cfg = crate::FloodConfig {
        flood_bits: 8,
        eval_error_bound: 2f64.powi(-20),
    };
    let reply = he.sanitize_logits(&k.eval, &masked, &pk_out, &cfg).unwrap();
    let enc = ckks::Encoder::new(&params);
    let dec = |c: &ckks::Ciphertext| enc.decode(&k.sk.decrypt(c).unwrap());
    let sd = he
        .logit_flood(&cfg)
        .slot_error_sd(params.n(), params.default_scale());
    let want = folded_logits(&model, &x);
    let logit_tol = 8.0 * sd + 1e-6;
    let (mut partial, mut flooded, mut unflooded) = (Vec::new(), Vec::new(), Vec::new());
    for (i, ct) in reply.cts.iter().enumerate() {
        let (o, m, r) = (dec(&old[i]), dec(&masked.cts[i]), dec(ct));
        for slot in 0..params.slots() {
            match reply.positions.iter().position(|&p| p == (i, slot)) {
                Some(q) => {
                    assert!(
                        (r[slot] - want[q]).abs() <= logit_tol,
                        "logit {q}: {} vs {}",
                        r[slot],
                        want[q]
                    );
                    assert!((o[slot] - want[q]).abs() <= 1e-6, "unmasked logit {q}");
                }
                None => {
                    partial.push(o[slot]);
                    unflooded.push(m[slot]);
                    flooded.push(r[slot]);
                }
            }
        }
    }
    let max_abs = |v: &[f64]| v.iter().map(|x| x.abs()).fold(0.0, f64::max);
    // The old reply leaked partial sums of the dense layer in the other slots.
    // (every slot of a class block but its first; the unused blocks hold zeros).
    let nonzero = partial.iter().filter(|p| p.abs() > 1e-3).count();
    let classes = model.num_classes;
    assert!(nonzero >= classes * 4, "{nonzero} nonzero partial sums");
    assert!(max_abs(&partial) > 1e-2, "{}", max_abs(&partial));
    // The mask alone leaves noise far below them; the flood then dominates.
    assert!(
        max_abs(&partial) > 1e3 * max_abs(&unflooded),
        "the mask keeps partial sums"
    );
    assert!(
        max_abs(&unflooded) < 1e-2 * sd,
        "{} vs flood sd {sd}",
        max_abs(&unflooded)
    );
    // Masked and flooded: within the flood's width, spread like it, uncorrelated with them.
    assert!(
        max_abs(&flooded) <= 8.0 * sd,
        "{} > 8·{sd}",
        max_abs(&flooded)
    );
    let rms = (flooded.iter().map(|v| v * v).sum::<f64>() / flooded.len() as f64).sqrt();
    assert!(
        (0.7..1.3).contains(&(rms / sd)),
        "rms {rms} vs flood sd {sd}"
    );
    let corr = correlation(&partial, &flooded);
    assert!(corr.abs() < 0.2, "correlation {corr} with the partial sums");
    println!(
        "flood sd {sd:.3e}, max |partial sum| {:.3e}, max |masked| {:.3e}, correlation {corr:.3}",
        max_abs(&partial),
        max_abs(&unflooded)
    );
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
