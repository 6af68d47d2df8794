//! The responder's side of the RLWE triple source: the sum of plaintext products under the
//! querier's ciphertexts, minus a fresh share, re-randomized under the querier's public key,
//! flooded at the output coefficients and switched to the response moduli (`2^w` for `c_1`,
//! `2^(w−d)` for `c_0`; the steps and their bounds are in the parent module's docs).

use lattice::sample;
use rand::RngCore;

use super::keys::{ExpandedQuery, PublicKey, Response};
use super::poly::{Coeff, Ntt, Poly};
use super::{RlweParams, MAX_RESPONSE_NNZ, PRIMES};
use crate::error::{MpcError, Result};
use crate::offline::flood::{self, FloodLedger, FloodNoise};

/// The responder's side: `Enc(Σ_b query_b · ŵ_b − R)` re-randomized under the querier's `pk`,
/// flooded at `outputs`, switched to `2^w`. `products` pairs expanded queries with plaintexts in
/// NTT form; `nnz` is the number of plaintext entries they hold, counted from the public block
/// shape (at most [`MAX_RESPONSE_NNZ`]); it sets the flooding width ([`flood::flood_bits`]).
/// The output coefficients are charged to `ledger` first: a response beyond the run budget is
/// refused. Returns the response and the responder's shares `R` (one per output).
pub fn respond(
    p: &RlweParams,
    pk: &PublicKey,
    products: &[(&ExpandedQuery, &Poly<Ntt>)],
    nnz: usize,
    outputs: &[usize],
    ledger: &FloodLedger,
    rng: &mut impl RngCore,
) -> Result<(Response, Vec<u64>)> {
    respond_inner(p, pk, products, nnz, outputs, ledger, rng, true)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn respond_inner(
    p: &RlweParams,
    pk: &PublicKey,
    products: &[(&ExpandedQuery, &Poly<Ntt>)],
    nnz: usize,
    outputs: &[usize],
    ledger: &FloodLedger,
    rng: &mut impl RngCore,
    rerandomize: bool,
) -> Result<(Response, Vec<u64>)> {
    if nnz > MAX_RESPONSE_NNZ {
        return Err(MpcError::InvalidHeParams {
            what: "plaintext entries summed in one response",
            value: nnz as u64,
            max: MAX_RESPONSE_NNZ as u64,
        });
    }
    let n = p.degree();
    if let Some(&j) = outputs.iter().find(|&&j| j >= n) {
        return Err(MpcError::Malformed {
            reason: format!("HE output coefficient {j} beyond the degree {n}"),
        });
    }
    ledger.charge(outputs.len() as u64)?;
    let u = rerandomize.then(|| {
        let u = sample::ternary(rng, n);
        Poly::from_signed(p, &u, PRIMES).into_ntt(p)
    });
    let mut terms: Vec<(&Poly<Ntt>, &Poly<Ntt>, &Poly<Ntt>)> =
        products.iter().map(|(q, w)| (&q.c0, &q.c1, *w)).collect();
    if let Some(u) = &u {
        terms.push((&pk.b, &pk.a, u));
    }
    let (c0, c1) = Poly::dot_pair(p, &terms, PRIMES);
    let c0 = c0.into_coeff(p);
    let mut c1 = c1.into_coeff(p);
    if rerandomize {
        for j in 0..n {
            let e = sample::gaussian_one(rng);
            for i in 0..PRIMES {
                let q = p.modulus(i);
                let x = &mut c1.data_mut()[i * n + j];
                *x = q.add(*x, q.reduce_i64(e));
            }
        }
    }
    let c1s: Vec<u128> = (0..n)
        .map(|j| p.switch_residues(|i| c1.data()[i * n + j]))
        .collect();
    let bits = rerandomize.then(|| flood::flood_bits(n, nnz));
    let (c0s, shares) = flood_outputs(p, &c0, outputs, bits, rng);
    Ok((Response { c1: c1s, c0: c0s }, shares))
}

/// `c_0` at the outputs: minus a fresh share `R`, plus (with `flood_bits`) a Gaussian `e_0` and
/// uniform flooding noise in `[−2^flood_bits, 2^flood_bits)`, switched to `2^(w−d)`. Returns the
/// switched coefficients and the shares.
fn flood_outputs(
    p: &RlweParams,
    c0: &Poly<Coeff>,
    outputs: &[usize],
    flood_bits: Option<u32>,
    rng: &mut impl RngCore,
) -> (Vec<u128>, Vec<u64>) {
    let n = p.degree();
    let mut shares = Vec::with_capacity(outputs.len());
    let mut c0s = Vec::with_capacity(outputs.len());
    let mut one = [0u64; PRIMES];
    for &j in outputs {
        let r = rng.next_u64();
        let noise = flood_bits.map(|b| (sample::gaussian_one(rng), FloodNoise::sample(b, rng)));
        for (i, o) in one.iter_mut().enumerate() {
            let q = p.modulus(i);
            let mut x = c0.data()[i * n + j];
            if let Some((e0, f)) = noise {
                x = q.add(x, q.reduce_i64(e0));
                x = q.add(x, p.reduce_flood(i, f));
            }
            *o = q.sub(x, p.encode_scaled(i, r));
        }
        c0s.push(p.switch_c0(|i| one[i]));
        shares.push(r);
    }
    (c0s, shares)
}
