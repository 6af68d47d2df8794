//! Matrix triples from additively homomorphic encryption: SecureML's LHE-based offline phase
//! (Mohassel–Zhang, S&P 2017, §IV-B) with the lattice scheme of [`super::rlwe`] in place of
//! Paillier and Cheetah's coefficient packing for matrix products (Huang et al., USENIX Security
//! 2022, §4.1 "HomFC").
//!
//! ## Cross terms
//!
//! For shares `X = X_0 + X_1` (`n × k`) and `V = V_0 + V_1` (`k × m`), each party computes
//! `X_i·V_i` locally; the cross term `X_a·V_b` is made by the two of them: `b` (the querier)
//! encrypts `V_b` under its own key and sends it; `a` (the responder) multiplies by its plaintext
//! `X_a`, subtracts a uniform `R`, re-randomizes, floods and returns it ([`super::rlwe::respond`]);
//! `b` decrypts `X_a·V_b − R` and `a` keeps `R`. Both directions run at once (each party is querier
//! for one cross term and responder for the other), so every flight is an exchange of equal sizes.
//!
//! ## Packing (HomFC)
//!
//! Choose blocks `n' × k'` of `X` and `k' × m'` of `V` with `n'·k'·m' ≤ N`. A block of `V` becomes
//! `v̂(X) = Σ_{c,j} V_{jc}·X^{c·k' + j}` and a block of `X` becomes
//! `ŵ(X) = Σ_{i,j} X_{ij}·X^{i·k'·m' + k' − 1 − j}`. In `v̂·ŵ` the coefficient
//! `i·k'm' + c·k' + k' − 1` is `Σ_j X_{ij}·V_{jc}`: a term `(i, j)·(c, j')` lands at
//! `i·k'm' + c·k' + k' − 1 + (j' − j)`, which is an output position only if `j' = j` (then `c`, `i`
//! follow by mixed radix), and terms beyond `N` wrap (negacyclically) to positions below
//! `k' − 1`, where no output lies. Blocks along `k` (`k > N` included) are summed in the
//! encrypted domain before the response is made, at most [`super::rlwe::MAX_RESPONSE_NNZ`]
//! plaintext entries per response. One query per `(k-block, m-block)`, one plaintext per
//! `(n-block, k-block)` (reused across m-blocks), one response per `(n-block, m-block, group of
//! k-blocks)`; [`choose_blocks`] picks the block shape that minimizes bytes plus an NTT-count
//! estimate. For SecureML Table II (`128 × 1000 · 1000 × 1` forward, `1000 × 128 · 128 × 1`
//! backward) a batch costs about 3.3 MB per party (blocks `32 × 500 × 1` and `256 × 64 × 1`: two
//! queries, eight plaintexts, four responses for each product, each way) instead of the ≈ 67 MB
//! of Gilboa's 2080 bits per scalar product.
//!
//! ## Cost model
//!
//! A query is `c_0` at `log Q` bits per coefficient and its 32-byte seed (512 KB at
//! `N = 16384`); a response is all of `c_1` at 75 bits and `c_0` at the outputs at 66 bits
//! (153.6 KB plus 8.25 bytes per output; the widths and their decryption bound are in
//! [`super::rlwe`]'s docs). Bytes per
//! party per product are [`Blocks::bytes`]; the CPU goes to the plaintexts' NTTs (one per
//! `(n-block, k-block)`), the products under the queries (two per `(n-block, k-block, m-block)`;
//! in `perf`, more time than all forward NTTs together) and each response's
//! re-randomization (one forward, two inverse NTTs) and flooding. The eight products of one step
//! of SecureML's network (784-128-128-10, batch 128), measured by `cargo run --release -p ml
//! --example he_step_profile` (both parties in one process on this 2-core machine, CPU seconds of
//! both parties, medians of 3 runs alternating with the previous build, 2026-12-06 06:06 UTC,
//! load 5.5–6.1):
//!
//! | product (`n × k · k × m`) | per step | blocks `n'·k'·m'` | bytes / party | B per MAC | CPU s (both) | MAC / s / core |
//! |---|---|---|---|---|---|---|
//! | `U[B]`: 128 × 784 · 784 × 128 | 1 | 4·61·64 | 23.28 MB | 1.81 | 1.16 | 22 M |
//! | `U[B]ᵀ`: 784 × 128 · 128 × 128 | 1 | 32·8·64 | 24.89 MB | 1.94 | 1.07 | 24 M |
//! | 128 × 128 · 128 × 128 | 3 | 8·16·128 | 6.69 MB | 3.19 | 0.25 each | 17 M |
//! | 128 × 128 · 128 × 10 | 2 | 25·64·10 | 1.96 MB | 11.9 | 0.06 each | 5 M |
//! | 128 × 10 · 10 × 128 | 1 | 25·5·128 | 2.08 MB | 12.7 | 0.06 | 5 M |
//!
//! That is 74.2 MB and ≈ 3.4 CPU s per step (MAC: one multiply-add of the product; a party does
//! half the CPU). Quiet (2026-12-06 23:55 UTC, nothing else running, `he_step_profile 20`: 20
//! steps, each request alone): the same bytes; CPU s per product (both parties) 0.93, 0.92, 0.21
//! each, 0.05 each and 0.05, i.e. 28, 28, 20, 6 and 6 M MAC / s / core and 2.63 CPU s for the
//! eight products of a step; the whole step (OT included) 3.78 CPU s and 1.99 s of wall time
//! on the two cores. With both response halves at 79 bits (link version 7) the same step took
//! 77.7 MB for the eight products (blocks 5·49·64, 32·8·64, 8·16·128, 38·43·10, 32·4·128; the
//! cheaper responses moved [`choose_blocks`] to more of them in three shapes) and 136.5 MB in all
//! against 133.0 MB now; the CPU is unchanged within the noise (3.54 against 3.63 CPU s per step,
//! medians, same runs). The rest of a step's bytes is OT (elementwise Gilboa triples, leaf OTs,
//! AND triples, random OTs; `he_step_profile` lists them). A query is at its floor for these
//! parameters: `log Q ≈ 250` is what the run-sized flooding needs, and `c_1` already travels as
//! a seed. Bytes alone would allow fewer for the eight products ([`choose_blocks`] with no NTT
//! weight picks fewer, larger queries for the two data products) at more NTT work; the weight
//! keeps the CPU, the scarcer resource here.
//!
//! Nothing can be prepared once for a whole run. Six of the eight products have a fresh `U` and
//! all eight a fresh `V`. The data mask `U` is fixed, but the responder's plaintexts pack `n'`
//! rows of the mini-batch `U[B]`, and `B` changes every step (batches are reshuffled every
//! epoch): caching per row of `U` instead (each row's `k`-block as an NTT polynomial, shifted into
//! place by a monomial) would hold 60,000 × 16 × 655 KB ≈ 629 GB at MNIST's size, and encrypting
//! `U`'s rows once as queries (the roles swapped) 60,000 × 512 KB ≈ 31 GB sent and ≈ 79 GB of
//! expanded queries held by the responder. Merging several steps' products into one flight saves
//! only round trips (about 250 frames per step), not bytes or CPU: no two products share an
//! operand, and each product's blocks already fill `N`. Both parties' work and both directions
//! already run at once, and the CPU is the bound on this machine.
//!
//! ## Security
//!
//! Semi-honest, non-colluding servers; RLWE at 128 bits (`N = 16384`, `log Q ≈ 250 ≤ 438`,
//! ternary secret, `σ = 3.2`). The querier learns its share `X_a·V_b − R` (uniform) and
//! ciphertexts whose `c_1` is pseudorandom (re-randomization under its own public key) and whose
//! decryptable noise is flooded ([`super::flood`]). The flood width of each response is sized
//! from its public shape (plaintext entries summed, never the data) for a run of at most `2^40`
//! flooded coefficients per responder, which the [`HeKeys`] ledger enforces: everything a party
//! receives over a run is within statistical distance `2^-41` of its simulation, and
//! [`run_flooding`] gives the tighter figure of a given request list (SecureML Table II about
//! `2^-64`, 15 epochs of a 784-128-128-10 MLP on MNIST about `2^-51`). The responder learns only
//! ciphertexts under the querier's key. Elementwise and AND triples still come from OT
//! ([`super::gilboa`], [`super::and`]): [`crate::triples::HeSource`] is
//! [`crate::triples::OtSource`] with the matrix cross terms replaced by this module's.

use super::flood::{self, FloodLedger};
use super::rlwe::{
    respond, ExpandedQuery, Ntt, Poly, PublicKey, Query, Response, RlweParams, SecretKey,
    MAX_RESPONSE_NNZ, PRIMES, SEED_BYTES,
};
use crate::compute::offload;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::ring::RingMatrix;
use crate::triples::{Lhs, MaskId, TripleRequest};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroize;

/// Bytes-equivalent of one NTT in [`choose_blocks`]'s cost (about 10 µs of CPU against ~1 GB/s).
const NTT_COST_BYTES: usize = 10_000;

/// The block shape of a product `X (n × k) · V (k × m)` and the counts it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Rows of `X`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of `V`.
    pub m: usize,
    /// Block rows `n'`.
    pub bn: usize,
    /// Block inner size `k'`.
    pub bk: usize,
    /// Block columns `m'`.
    pub bm: usize,
    /// k-blocks summed per response.
    pub group: usize,
}

impl Blocks {
    /// Number of n-blocks.
    pub fn nn(&self) -> usize {
        self.n.div_ceil(self.bn)
    }
    /// Number of k-blocks.
    pub fn nk(&self) -> usize {
        self.k.div_ceil(self.bk)
    }
    /// Number of m-blocks.
    pub fn nm(&self) -> usize {
        self.m.div_ceil(self.bm)
    }
    /// Groups of k-blocks (responses per (n-block, m-block)).
    pub fn groups(&self) -> usize {
        self.nk().div_ceil(self.group)
    }
    /// Query ciphertexts.
    pub fn queries(&self) -> usize {
        self.nk() * self.nm()
    }
    /// Plaintexts.
    pub fn plaintexts(&self) -> usize {
        self.nn() * self.nk()
    }
    /// Response ciphertexts.
    pub fn responses(&self) -> usize {
        self.nn() * self.nm() * self.groups()
    }

    /// Output coefficients of response `(nb, mb, ·)`: `(position, row, column)` of the valid ones.
    pub fn outputs(&self, nb: usize, mb: usize) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.bn * self.bm);
        for i in 0..self.bn {
            let row = nb * self.bn + i;
            if row >= self.n {
                break;
            }
            for c in 0..self.bm {
                let col = mb * self.bm + c;
                if col >= self.m {
                    break;
                }
                out.push((i * self.bk * self.bm + c * self.bk + self.bk - 1, row, col));
            }
        }
        out
    }

    /// Plaintext entries response `(nb, ·, g)` sums, from the shape alone (edge blocks count
    /// their real rows and columns): this sets its flooding width.
    pub fn response_nnz(&self, nb: usize, g: usize) -> usize {
        let rows = self.bn.min(self.n - nb * self.bn);
        let kbs = g * self.group..((g + 1) * self.group).min(self.nk());
        kbs.map(|kb| rows * self.bk.min(self.k - kb * self.bk))
            .sum()
    }

    /// Every response of this product as `(flooded output coefficients, nnz)`, in response order.
    pub fn flooded(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (nm, groups) = (self.nm(), self.groups());
        (0..self.responses()).map(move |ri| {
            let (g, nbm) = (ri % groups, ri / groups);
            let (nb, mb) = (nbm / nm, nbm % nm);
            (self.outputs(nb, mb).len(), self.response_nnz(nb, g))
        })
    }

    /// Bytes each party sends for this product (queries and responses).
    pub fn bytes(&self, p: &RlweParams) -> usize {
        let mut resp = 0;
        for nb in 0..self.nn() {
            let rows = self.bn.min(self.n - nb * self.bn);
            for mb in 0..self.nm() {
                let cols = self.bm.min(self.m - mb * self.bm);
                resp += self.groups() * p.response_bytes(rows * cols);
            }
        }
        self.queries() * p.query_bytes() + resp
    }

    /// Bytes sent plus the NTT work in bytes-equivalents: what [`choose_blocks`] minimizes and
    /// what [`crate::triples::choice`] prices.
    pub(crate) fn cost(&self, p: &RlweParams) -> usize {
        let products = self.nn() * self.nk() * self.nm();
        let ntts = 4 * self.plaintexts() + 12 * self.responses() + 8 * self.queries() + products;
        self.bytes(p) + NTT_COST_BYTES * PRIMES / 4 * ntts
    }
}

/// The block shape for `X (n × k) · V (k × m)` that minimizes [`Blocks::bytes`] plus an estimate
/// of the NTT work (both parties compute it identically).
pub fn choose_blocks(p: &RlweParams, n: usize, k: usize, m: usize) -> Blocks {
    let deg = p.degree();
    let mut best: Option<(usize, Blocks)> = None;
    for bk in 1..=k.min(deg) {
        // Only the smallest k' for a given number of k-blocks matters.
        if bk > 1 && k.div_ceil(bk) == k.div_ceil(bk - 1) {
            continue;
        }
        for bm in 1..=m.min(deg / bk) {
            if bm > 1 && m.div_ceil(bm) == m.div_ceil(bm - 1) {
                continue;
            }
            let bn = n.min(deg / (bk * bm));
            if bn == 0 {
                continue;
            }
            let group = (MAX_RESPONSE_NNZ / (bn * bk)).max(1);
            let b = Blocks {
                n,
                k,
                m,
                bn,
                bk,
                bm,
                group,
            };
            let c = b.cost(p);
            if best.as_ref().is_none_or(|(bc, _)| c < *bc) {
                best = Some((c, b));
            }
        }
    }
    best.expect("a 1 × 1 × 1 block always fits").1
}

/// This party's HE keys: its secret key and the peer's public key; and the ledger of the
/// coefficients it floods as a responder in this run.
pub struct HeKeys {
    params: Arc<RlweParams>,
    sk: SecretKey,
    peer_pk: PublicKey,
    ledger: FloodLedger,
}

impl std::fmt::Debug for HeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeKeys({:?})", self.params)
    }
}

impl HeKeys {
    /// Generates a key pair and exchanges public keys with the peer (both parties call it).
    pub async fn exchange<C: Channel>(
        ch: &mut C,
        params: Arc<RlweParams>,
        rng: &mut ChaCha20Rng,
    ) -> Result<Self> {
        let mut seed = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut seed);
        let p = params.clone();
        let (sk, pk_bytes) = offload(move || {
            let mut g = ChaCha20Rng::from_seed(seed);
            seed.zeroize();
            let sk = SecretKey::generate(&p, &mut g);
            let pk = sk.public_key(&p, &mut g).to_bytes(&p);
            (sk, pk)
        })
        .await;
        let peer = ch
            .exchange_frame(pk_bytes, params.public_key_bytes())
            .await?;
        let peer_pk = PublicKey::from_bytes(&params, &peer)?;
        Ok(Self {
            params,
            sk,
            peer_pk,
            ledger: FloodLedger::default(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &RlweParams {
        &self.params
    }
}

fn fresh_seeds(rng: &mut impl RngCore, count: usize) -> Vec<[u8; SEED_BYTES]> {
    (0..count)
        .map(|_| {
            let mut s = [0u8; SEED_BYTES];
            rng.fill_bytes(&mut s);
            s
        })
        .collect()
}

/// Querier, step 1: encrypts the blocks of `v` (`k × m`), one query per (k-block, m-block), in
/// the order `kb·nm + mb`. `seeds` (one per query) key the encryption randomness.
pub fn make_queries(
    p: &RlweParams,
    sk: &SecretKey,
    b: &Blocks,
    v: &RingMatrix,
    seeds: &[[u8; SEED_BYTES]],
) -> Vec<Vec<u8>> {
    let nm = b.nm();
    (0..b.queries())
        .into_par_iter()
        .map(|qi| {
            let (kb, mb) = (qi / nm, qi % nm);
            let mut msg = vec![0u64; b.bm * b.bk];
            for c in 0..b.bm {
                let col = mb * b.bm + c;
                if col >= b.m {
                    break;
                }
                for j in 0..b.bk {
                    let r = kb * b.bk + j;
                    if r >= b.k {
                        break;
                    }
                    msg[c * b.bk + j] = v[(r, col)];
                }
            }
            let mut g = ChaCha20Rng::from_seed(seeds[qi]);
            let q = sk.encrypt(p, &msg, &mut g);
            msg.zeroize();
            q.to_bytes(p)
        })
        .collect()
}

/// The plaintext `ŵ` of block `(nb, kb)` of `x` in NTT form (its `n'·k'` entries placed sparsely).
fn plaintext(p: &RlweParams, b: &Blocks, x: &RingMatrix, nb: usize, kb: usize) -> Poly<Ntt> {
    let mut w = Vec::with_capacity(b.bn * b.bk);
    for i in 0..b.bn {
        let row = nb * b.bn + i;
        if row >= b.n {
            break;
        }
        for j in 0..b.bk {
            let r = kb * b.bk + j;
            if r >= b.k {
                break;
            }
            w.push((i * b.bk * b.bm + b.bk - 1 - j, x[(row, r)] as i64));
        }
    }
    let out = Poly::from_sparse_signed(p, &w, PRIMES).into_ntt(p);
    w.zeroize();
    out
}

/// Response `ri` (order `(nb·nm + mb)·groups + g`) from the expanded queries and the plaintexts
/// of its n-block `pts` (indexed by k-block).
#[allow(clippy::too_many_arguments)]
fn respond_one(
    p: &RlweParams,
    peer_pk: &PublicKey,
    b: &Blocks,
    qs: &[ExpandedQuery],
    pts: &[Poly<Ntt>],
    ri: usize,
    seed: &[u8; SEED_BYTES],
    ledger: &FloodLedger,
) -> Result<(Vec<u8>, Vec<u64>)> {
    let (nm, groups) = (b.nm(), b.groups());
    let (g, nbm) = (ri % groups, ri / groups);
    let (nb, mb) = (nbm / nm, nbm % nm);
    let kbs = g * b.group..((g + 1) * b.group).min(b.nk());
    let products: Vec<(&ExpandedQuery, &Poly<Ntt>)> =
        kbs.map(|kb| (&qs[kb * nm + mb], &pts[kb])).collect();
    let outputs: Vec<usize> = b.outputs(nb, mb).iter().map(|o| o.0).collect();
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let nnz = b.response_nnz(nb, g);
    let (resp, shares) = respond(p, peer_pk, &products, nnz, &outputs, ledger, &mut rng)?;
    Ok((resp.to_bytes(p), shares))
}

/// Responder, step 2: parses the peer's queries and answers them with this party's `x`
/// (`n × k`), charging the flooded coefficients to `ledger`. Returns the responses (order
/// `(nb·nm + mb)·groups + g`) and this party's share of the cross term (`n × m`, the sum of its
/// `R`s).
pub fn make_responses(
    p: &RlweParams,
    peer_pk: &PublicKey,
    b: &Blocks,
    x: &RingMatrix,
    queries: Vec<Vec<u8>>,
    seeds: &[[u8; SEED_BYTES]],
    ledger: &FloodLedger,
) -> Result<(Vec<Vec<u8>>, RingMatrix)> {
    if queries.len() != b.queries() {
        return Err(MpcError::Malformed {
            reason: format!("{} HE queries, expected {}", queries.len(), b.queries()),
        });
    }
    let qs: Vec<ExpandedQuery> = queries
        .into_par_iter()
        .map(|q| Query::from_bytes(p, &q).map(|q| q.expand(p)))
        .collect::<Result<_>>()?;
    // One n-block at a time: its `nk` plaintexts live only while its responses are made (a
    // product's plaintexts all at once were hundreds of MB, the bulk of the page faults).
    let per_nb = b.nm() * b.groups();
    let made: Vec<Vec<(Vec<u8>, Vec<u64>)>> = (0..b.nn())
        .into_par_iter()
        .map(|nb| {
            let pts: Vec<Poly<Ntt>> = (0..b.nk())
                .into_par_iter()
                .map(|kb| plaintext(p, b, x, nb, kb))
                .collect();
            (nb * per_nb..(nb + 1) * per_nb)
                .into_par_iter()
                .map(|ri| respond_one(p, peer_pk, b, &qs, &pts, ri, &seeds[ri], ledger))
                .collect::<Result<_>>()
        })
        .collect::<Result<_>>()?;
    let made: Vec<(Vec<u8>, Vec<u64>)> = made.into_iter().flatten().collect();
    let (nm, groups) = (b.nm(), b.groups());
    let mut z = RingMatrix::zeros((b.n, b.m));
    let mut out = Vec::with_capacity(made.len());
    for (ri, (bytes, shares)) in made.into_iter().enumerate() {
        let nbm = ri / groups;
        for (&(_, row, col), r) in b.outputs(nbm / nm, nbm % nm).iter().zip(shares) {
            z[(row, col)] = z[(row, col)].wrapping_add(r);
        }
        out.push(bytes);
    }
    Ok((out, z))
}

/// Querier, step 3: decrypts the responses to its queries into its share of the cross term.
pub fn read_responses(
    p: &RlweParams,
    sk: &SecretKey,
    b: &Blocks,
    responses: Vec<Vec<u8>>,
) -> Result<RingMatrix> {
    if responses.len() != b.responses() {
        return Err(MpcError::Malformed {
            reason: format!(
                "{} HE responses, expected {}",
                responses.len(),
                b.responses()
            ),
        });
    }
    let (nm, groups) = (b.nm(), b.groups());
    let vals: Vec<Vec<u64>> = responses
        .into_par_iter()
        .enumerate()
        .map(|(ri, bytes)| {
            let nbm = ri / groups;
            let outs: Vec<usize> = b.outputs(nbm / nm, nbm % nm).iter().map(|o| o.0).collect();
            let r = Response::from_bytes(p, &bytes, outs.len())?;
            sk.decrypt(p, &r, &outs)
        })
        .collect::<Result<_>>()?;
    let mut z = RingMatrix::zeros((b.n, b.m));
    for (ri, v) in vals.into_iter().enumerate() {
        let nbm = ri / groups;
        for (&(_, row, col), x) in b.outputs(nbm / nm, nbm % nm).iter().zip(v) {
            z[(row, col)] = z[(row, col)].wrapping_add(x);
        }
    }
    Ok(z)
}

/// This party's share of `X_0·V_1 + X_1·V_0` where it holds `x` (`n × k`) and `v` (`k × m`) and
/// the peer holds the other shares of the same shapes: two exchanges (queries, responses).
pub async fn cross_matmul_he<C: Channel>(
    ch: &mut C,
    keys: &Arc<HeKeys>,
    x: &RingMatrix,
    v: &RingMatrix,
    rng: &mut ChaCha20Rng,
) -> Result<RingMatrix> {
    let ((n, k), (k2, m)) = (x.dim(), v.dim());
    if k != k2 {
        return Err(MpcError::ShapeMismatch {
            op: "cross_matmul_he",
            left: x.dim(),
            right: v.dim(),
        });
    }
    let p = keys.params.clone();
    let b = choose_blocks(&p, n, k, m);
    let qseeds = fresh_seeds(rng, b.queries());
    let rseeds = fresh_seeds(rng, b.responses());
    let (keys2, v) = (keys.clone(), v.clone());
    let mine = offload(move || {
        let mut qseeds = qseeds;
        let q = make_queries(&keys2.params, &keys2.sk, &b, &v, &qseeds);
        qseeds.zeroize();
        q
    })
    .await;
    let mut peer = Vec::with_capacity(mine.len());
    for q in mine {
        let got = ch.exchange_frame(q, p.query_bytes()).await?;
        peer.push(got);
    }
    let (keys2, x) = (keys.clone(), x.clone());
    let (resp, mut z) = offload(move || {
        let mut rseeds = rseeds;
        let k = &keys2;
        let r = make_responses(&k.params, &k.peer_pk, &b, &x, peer, &rseeds, &k.ledger);
        rseeds.zeroize();
        r
    })
    .await?;
    let mut answers = Vec::with_capacity(resp.len());
    for (ri, r) in resp.into_iter().enumerate() {
        let nbm = ri / b.groups();
        let outs = b.outputs(nbm / b.nm(), nbm % b.nm()).len();
        answers.push(ch.exchange_frame(r, p.response_bytes(outs)).await?);
    }
    let keys2 = keys.clone();
    let mine = offload(move || read_responses(&keys2.params, &keys2.sk, &b, answers)).await?;
    for (a, b) in z.iter_mut().zip(mine.iter()) {
        *a = a.wrapping_add(*b);
    }
    Ok(z)
}

/// The `(n, k, m)` shape of every matrix cross term `requests` make, in order (masks registered
/// earlier in the same list; a mask from outside it is refused).
pub fn cross_term_shapes(requests: &[TripleRequest]) -> Result<Vec<(usize, usize, usize)>> {
    let mut dims: HashMap<MaskId, (usize, usize)> = HashMap::new();
    let mut out = Vec::new();
    for r in requests {
        match r {
            TripleRequest::Mask { id, rows, cols } => {
                dims.insert(*id, (*rows, *cols));
            }
            TripleRequest::Matmul { lhs, cols } => out.push(match lhs {
                Lhs::Fresh { rows, inner } => (*rows, *inner, *cols),
                Lhs::Mask {
                    id,
                    rows,
                    transpose,
                } => {
                    let (_, d) = dims
                        .get(id)
                        .copied()
                        .ok_or_else(|| MpcError::Preprocessing {
                            expected: format!("mask #{id} registered before use"),
                            found: "unknown mask".into(),
                        })?;
                    if *transpose {
                        (d, rows.len(), *cols)
                    } else {
                        (rows.len(), d, *cols)
                    }
                }
            }),
            TripleRequest::Elementwise { .. }
            | TripleRequest::And { .. }
            | TripleRequest::LeafOt { .. }
            | TripleRequest::Rot { .. } => {}
        }
    }
    Ok(out)
}

/// Whole-run flooding for `requests` made by [`crate::triples::HeSource`]: the output
/// coefficients each responder floods, and `log2` of the statistical distance between what each
/// querier receives and its simulation (the sum over those coefficients, each from the same block
/// plan and widths the responder uses). Each party is responder for one of the two cross terms of every matrix
/// triple, so both figures hold for either party.
pub fn run_flooding(p: &RlweParams, requests: &[TripleRequest]) -> Result<(u64, f64)> {
    // A training run repeats a few shapes thousands of times: plan each shape once.
    let mut times: HashMap<(usize, usize, usize), usize> = HashMap::new();
    for s in cross_term_shapes(requests)? {
        *times.entry(s).or_default() += 1;
    }
    let mut responses = Vec::new();
    for ((n, k, m), t) in times {
        let b = choose_blocks(p, n, k, m);
        responses.extend(b.flooded().map(|(outs, nnz)| (outs * t, nnz)));
    }
    let count = responses.iter().map(|r| r.0 as u64).sum();
    Ok((count, flood::run_distance_log2(p.degree(), responses)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring;

    fn keys(p: &Arc<RlweParams>, seed: u64) -> (SecretKey, PublicKey) {
        let mut g = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::generate(p, &mut g);
        let pk = sk.public_key(p, &mut g);
        (sk, pk)
    }

    /// One cross term X_a·V_b through the three sans-I/O steps.
    fn cross_once(p: &Arc<RlweParams>, x: &RingMatrix, v: &RingMatrix) -> (Blocks, RingMatrix) {
        let (sk, pk) = keys(p, 7);
        let b = choose_blocks(p, x.nrows(), x.ncols(), v.ncols());
        let mut g = ChaCha20Rng::seed_from_u64(8);
        let ledger = FloodLedger::default();
        let qs = make_queries(p, &sk, &b, v, &fresh_seeds(&mut g, b.queries()));
        let (resp, r) = make_responses(
            p,
            &pk,
            &b,
            x,
            qs,
            &fresh_seeds(&mut g, b.responses()),
            &ledger,
        )
        .unwrap();
        let d = read_responses(p, &sk, &b, resp).unwrap();
        (b, ring::add(&r.view(), &d.view()))
    }

    /// Homomorphic products equal the plain products over Z_2^64 — a matrix–vector product, a
    /// matrix–matrix product with several blocks in every dimension, and an inner dimension above
    /// N (the k-blocks summed in the encrypted domain).
    #[test]
    fn packed_products_equal_plain_products() {
        let p = Arc::new(RlweParams::standard());
        let mut g = ChaCha20Rng::seed_from_u64(1);
        for (n, k, m) in [(5, 7, 1), (37, 300, 19), (3, 9000, 1), (1, 1, 1)] {
            let x = ring::random(&mut g, n, k);
            let v = ring::random(&mut g, k, m);
            let (b, z) = cross_once(&p, &x, &v);
            assert!(b.bn * b.bk * b.bm <= p.degree());
            assert_eq!(z, ring::matmul(&x.view(), &v.view()), "{n}x{k}x{m}: {b:?}");
            if k > p.degree() {
                assert!(b.nk() > 1);
            }
        }
    }

    /// A hand-made block shape with several groups of k-blocks per output block (responses are
    /// summed across groups by both parties), partial edge blocks in every dimension.
    #[test]
    fn grouped_responses_sum_to_the_product() {
        let p = Arc::new(RlweParams::standard());
        let (sk, pk) = keys(&p, 9);
        let mut g = ChaCha20Rng::seed_from_u64(10);
        let b = Blocks {
            n: 5,
            k: 40,
            m: 3,
            bn: 2,
            bk: 8,
            bm: 2,
            group: 2,
        };
        assert_eq!((b.nk(), b.groups(), b.responses()), (5, 3, 18));
        let x = ring::random(&mut g, 5, 40);
        let v = ring::random(&mut g, 40, 3);
        let qs = make_queries(&p, &sk, &b, &v, &fresh_seeds(&mut g, b.queries()));
        let ledger = FloodLedger::default();
        let seeds = fresh_seeds(&mut g, b.responses());
        let (resp, r) = make_responses(&p, &pk, &b, &x, qs, &seeds, &ledger).unwrap();
        // Every flooded coefficient was charged: 5 × 3 outputs in each of 3 groups.
        assert_eq!(ledger.used(), 45);
        let nnz: Vec<usize> = b.flooded().map(|f| f.1).collect();
        // Rows 2, 2, 1 per n-block; k-blocks of 8 in groups of 2, 2, 1.
        assert_eq!(&nnz[..6], &[32, 32, 16, 32, 32, 16]);
        assert_eq!(nnz[12..15], [16, 16, 8]);
        let d = read_responses(&p, &sk, &b, resp.clone()).unwrap();
        assert_eq!(
            ring::add(&r.view(), &d.view()),
            ring::matmul(&x.view(), &v.view())
        );
        // A missing response is refused.
        assert!(read_responses(&p, &sk, &b, resp[1..].to_vec()).is_err());
    }

    /// Block choices for the SecureML Table II shapes and their per-party bytes.
    #[test]
    fn block_choice_is_valid_and_compact() {
        let p = RlweParams::standard();
        for (n, k, m) in [(128, 1000, 1), (1000, 128, 1), (128, 784, 128), (1, 1, 1)] {
            let b = choose_blocks(&p, n, k, m);
            assert!(b.bn * b.bk * b.bm <= p.degree() && b.bn <= n && b.bk <= k && b.bm <= m);
            assert!(b.group * b.bn * b.bk <= MAX_RESPONSE_NNZ);
            let mut seen = std::collections::HashSet::new();
            for nb in 0..b.nn() {
                for mb in 0..b.nm() {
                    for (pos, row, col) in b.outputs(nb, mb) {
                        assert!(pos < p.degree() && pos >= b.bk - 1);
                        assert!(seen.insert((row, col)));
                    }
                }
            }
            assert_eq!(seen.len(), n * m);
        }
        let fwd = choose_blocks(&p, 128, 1000, 1).bytes(&p);
        let bwd = choose_blocks(&p, 1000, 128, 1).bytes(&p);
        assert!(fwd + bwd < 3_400_000, "{fwd} + {bwd}");
    }
}
