//! The OT multiplexer: `b·x` for a XOR-shared bit `b = b0 ⊕ b1` and an additively shared
//! `x = x0 + x1 ∈ Z_2^64`, from one random 1-out-of-2 OT per direction (CrypTFlow2, Rathee et
//! al., CCS 2020, §4.1, "multiplexer"; the correlated-OT derandomization of
//! Asharov–Lindell–Schneider–Zohner, CCS 2013, §5.4).
//!
//! ## Construction
//!
//! `b·x = b·x0 + b·x1`; each term is one correlated OT with the holder of `x_i` as sender and
//! the other party choosing with its bit. For `b·x0`, P0's two messages indexed by P1's bit `c`
//! are `m_c = (b0 ⊕ c)·x0 − r0`, whose difference `m_1 − m_0 = (1 − 2 b0)·x0 = Δ` is a
//! correlation, so one message suffices. From a random OT (P0 holds `k_0, k_1`, P1 a random
//! choice `ρ` and `k_ρ`, [`crate::triples::RandomOts`]):
//!
//! 1. the receiver sends `e = b1 ⊕ ρ` (1 bit);
//! 2. the sender sends `d = k_e − k_{1⊕e} + Δ` (64 bits) and keeps `b0·x0 − k_e`;
//! 3. the receiver outputs `k_ρ + b1·d`, which is `k_e` if `b1 = 0` (then `ρ = e`) and
//!    `k_{1⊕e} + d = k_e + Δ` if `b1 = 1`.
//!
//! The two outputs add up to `b0·x0 + b1·(1 − 2 b0)·x0 = (b0 ⊕ b1)·x0`. The term `b·x1` is the
//! same with the roles swapped, in the same flights, and each party adds its two outputs. Exact
//! for every bit and every ring element (no truncation, no range assumption).
//!
//! ## Cost (per value and party)
//!
//! Two flights (the message depends on the receiver's correction): 1 bit + 8 bytes sent,
//! 8.125 bytes, against 32 bytes and one flight for two Beaver products
//! ([`super::select_beaver`]). Preprocessing: one random OT per direction
//! ([`TripleRequest::Rot`]) — by IKNP 16 bytes of columns sent per party (one extension as
//! receiver), against 2 × 1,288 bytes of Gilboa products for the Beaver select; from the dealer
//! P1 receives 16 bytes and P0 nothing, as for two elementwise triples. The bytes and flights are
//! asserted in the tests (`cost_matches_the_documented_table`).
//!
//! Measured (`experiments/configs/relu-bench.toml`, a 128 × 128 ReLU layer, OT triples over TLS on
//! loopback, both parties on one 2-core machine at load average 7.4, so times are noisy): with
//! m = 4 leaves, offline bytes per ReLU and party 3,504 (Beaver select) → 944 (multiplexer),
//! online bytes 74.5 → 50.6, rounds 7 → 8; offline µs per ReLU 154 → 38 and 47 → 22 (two
//! runs), online 2.1 → 1.9 and 1.5 → 2.0 (on loopback the extra round can cost more than the
//! 24 bytes saved).
//!
//! Every shared-bit product of [`crate::nonlinear`] (ReLU and its derivative in backprop through
//! [`select`], the piecewise sigmoid, clamp) uses this multiplexer with every triple source: with
//! OT or HE triples it removes almost all of the select's offline bytes, and with the dealer it
//! sends a quarter of the online bytes for one more flight. The Beaver select stays as the
//! reference. Not converted: the B2A conversions of the reciprocal, `ln` and the softmax
//! normalization ([`super::b2a`] and its batched form), still one Beaver product per bit.
//!
//! ## Security
//!
//! Semi-honest, non-colluding parties. The sender sees `e = b1 ⊕ ρ`, uniform because `ρ` is a
//! random choice it does not know. The receiver sees `d = k_e − k_{1⊕e} + Δ`, which contains the
//! message `k_{1⊕ρ}` it did not choose (pseudorandom given its view: IKNP with the tweakable
//! correlation-robust hash, [`crate::offline::rot`]; or uniform, from the dealer), so `d` is
//! uniform. The outputs are additive shares, each uniform on its own (`k_ρ + b1·d` and
//! `b0·x0 − k_e` carry a random-OT message), and neither party sees the other's. Every random OT
//! is consumed once: a block popped from the pool ([`crate::triples::Preprocessing::next_rot`])
//! is used for exactly one multiplexer entry per instance and dropped.

use super::bits::{pack_bits, BitShare};
use super::convert::{bits_of, flat, share_of};
use super::millionaire::flight;
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::session::Session;
use crate::share::Share;
use crate::triples::TripleRequest;
use std::ops::Range;

#[cfg(doc)]
use super::select_beaver;

/// The multiplexer entries of one round: this party's bit and value shares.
#[derive(Default)]
pub(crate) struct MuxRound {
    bits: Vec<u64>,
    x: Vec<u64>,
}

impl MuxRound {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues `b·x` per entry (`bits`: this party's 0/1 shares, `x` its arithmetic shares); the
    /// range picks the results out of [`MuxRound::run`]'s output.
    pub(crate) fn push(&mut self, bits: &[u64], x: &[u64]) -> Range<usize> {
        debug_assert_eq!(bits.len(), x.len());
        let at = self.bits.len();
        self.bits.extend_from_slice(bits);
        self.x.extend_from_slice(x);
        at..self.bits.len()
    }

    /// Runs every queued entry in two flights; returns this party's shares of the products.
    pub(crate) async fn run<C: Channel>(self, cx: &mut Session<'_, C>) -> Result<Vec<u64>> {
        let n = self.bits.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let ots = cx.pre.next_rot(n)?;
        // Flight 1: this party's corrections as receiver, e = b ⊕ ρ.
        let e: Vec<u64> = pack_bits((0..n).map(|i| self.bits[i] ^ ots.choice_bit(i)));
        let theirs = flight(cx, words_to_bytes(&e, n), n.div_ceil(8), "mux correction").await?;
        let peer_e = |i: usize| usize::from((theirs[i / 8] >> (i % 8)) & 1 == 1);
        // Flight 2: as sender, d = k_e − k_{1⊕e} + (1 − 2b)·x; keep b·x − k_e.
        let mut own = Vec::with_capacity(n);
        let mut msg = Vec::with_capacity(8 * n);
        for i in 0..n {
            let (b, x, k, e) = (self.bits[i], self.x[i], ots.pairs[i], peer_e(i));
            let delta = x.wrapping_mul(1u64.wrapping_sub(b << 1));
            let d = k[e].wrapping_sub(k[1 ^ e]).wrapping_add(delta);
            msg.extend_from_slice(&d.to_le_bytes());
            own.push(b.wrapping_mul(x).wrapping_sub(k[e]));
        }
        let theirs = flight(cx, msg, 8 * n, "mux message").await?;
        // As receiver: k_ρ + b·d.
        for (i, d) in theirs.chunks_exact(8).enumerate() {
            let d = u64::from_le_bytes(d.try_into().expect("8 bytes"));
            let got = ots.chosen[i].wrapping_add(self.bits[i].wrapping_mul(d));
            own[i] = own[i].wrapping_add(got);
        }
        Ok(own)
    }
}

/// The first `n` bits of packed words, as bytes.
fn words_to_bytes(words: &[u64], n: usize) -> Vec<u8> {
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.truncate(n.div_ceil(8));
    b
}

/// The preprocessing [`select`] consumes for `dim`-shaped operands: one block of random OTs.
pub fn select_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let (b, x) = (BitShare::zeros(dim), Share::zeros(dim.0, dim.1));
    planned!(format!("select {dim:?}"), |cx| select(cx, &b, &x))
}

/// Secure select `b · x` (x where the shared bit is 1, else 0) by the OT multiplexer: exact, two
/// flights, 8.125 bytes sent per entry and party, one random OT per entry and direction.
/// `select(b, x − y) + y` chooses between two shared values; ReLU's backward pass is
/// `select(drelu, grad)` with the derivative from [`super::relu_with_derivative`].
pub async fn select<C: Channel>(cx: &mut Session<'_, C>, b: &BitShare, x: &Share) -> Result<Share> {
    if b.dim() != x.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "select",
            left: b.dim(),
            right: x.dim(),
        });
    }
    let (bits, xs) = (bits_of(b), flat(x));
    let mut round = MuxRound::new();
    round.push(&bits, &xs);
    Ok(share_of(x.dim(), round.run(cx).await?))
}
