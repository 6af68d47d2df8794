//! The MSB of a shared Z_2^64 value by a millionaires' comparison over random 1-out-of-2^m OT
//! (the CrypTFlow2 / Cheetah line: Rathee et al., CCS 2020, §3; Huang et al., USENIX Security
//! 2022), with far fewer correlated bits than the GMW adder of [`super::adder`].
//!
//! ## Construction
//!
//! With `x = x0 + x1 mod 2^64`, `a = x0 mod 2^63` and `b = x1 mod 2^63`, the carry into bit 63 is
//! `[a + b ≥ 2^63] = [u < v]` for `u = 2^63 − 1 − a` (P0's, the complement of its 63 low bits)
//! and `v = b` (P1's), so `msb(x) = x0_63 ⊕ x1_63 ⊕ [u < v]` — exact for every ring element.
//! `u` and `v` are cut into `q = ⌈63/m⌉` blocks of m bits. For every block, `lt = [u_k < v_k]`
//! and `eq = [u_k = v_k]` are XOR-shared by one 1-out-of-2^m OT with 2-bit messages, derandomized
//! from a random one ([`crate::triples::LeafOts`]): the receiver (holding `y`, random choice `c`)
//! sends `s = y ⊕ c`; the sender (holding `w`, random table `R`, random share `r`) sends
//! `T[j] = R[j ⊕ s] ⊕ f(w, j) ⊕ r` for every j, and the receiver's share is `T[y] ⊕ R[c]`. Half
//! of the leaves have P0 as sender and half P1, so both parties send alike. Then a tree combines
//! blocks pairwise, `lt = lt_hi ⊕ eq_hi ∧ lt_lo` (the two terms are exclusive) and
//! `eq = eq_hi ∧ eq_lo`, one round of bit-sliced GMW AND gates per level; the `eq` of the lowest
//! node is never needed and not computed.
//!
//! ## Cost (m = 4, per value and party)
//!
//! Rounds: 2 (leaf OTs) + ⌈log2 q⌉ (tree) = 6, against the adder's 7. Online: 8 shifts of 4 bits,
//! 8 tables of 16 two-bit messages and 26 AND gates (2 bits each) = 42.5 bytes sent (adder:
//! 45.25). Offline by OT: 8 leaf OTs of 4 random OTs each per direction (32 random OTs, 512
//! bytes of IKNP columns sent) and 26 AND triples (one random OT received per triple, 416 bytes
//! sent), 928 bytes; the adder's 181 AND triples cost 2,896. From the dealer P1 receives
//! 4 + 3.25 = 7.25 bytes (adder: 22.6). The online bytes, rounds and requests are asserted in
//! the tests (`cost_matches_the_module_docs`).
//!
//! Measured (`experiments/configs/relu-bench.toml`: a 128 × 128 ReLU layer, OT triples over TLS
//! on loopback, both parties on one 2-core machine at load average ≈ 7.5, so times are noisy
//! upper bounds; two runs): offline bytes sent per ReLU 5,472 with the adder, 3,504 / 3,416 /
//! 3,360 with m = 4 / 5 / 6 — the comparison itself 2,896 → 928; the rest was the select's two
//! elementwise triples (Gilboa products), since replaced by the OT multiplexer (module `mux`). Offline time per ReLU 212 / 197 µs
//! (adder) against 95 / 148 µs (m = 4). Online bytes 77.3 → 74.5 / 93.1 / 128.1; online time per
//! ReLU 0.48 / 1.04 µs (adder) against 2.7 / 1.6 µs (m = 4): the leaf tables cost more CPU than
//! the adder's few extra bytes save on loopback. m = 4 is the default: m = 5 and 6 save 2–4 %
//! offline for 25–72 % more online bytes.
//!
//! ## Security
//!
//! Semi-honest, non-colluding parties. A leaf sender sees `s = y ⊕ c` with `c` uniform and
//! unknown to it; a leaf receiver sees the table, whose entries other than `T[y]` are masked by
//! the messages of the random OT it did not choose (uniform given its view: [`crate::offline::leaf`],
//! whose random OTs rest on IKNP with a correlation-robust hash, or the dealer), and `T[y]` by
//! the sender's share `r`. The tree opens only Beaver-masked values. No range assumption.

use super::bits::{and_gates, pack_bits, words_for, BitShare};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::offline::exchange_bytes;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::{check_leaf_bits, LeafOts, TripleRequest};

/// Default leaf width m (see the module docs for the cost).
pub const LEAF_BITS: u8 = 4;

const LOW: u64 = (1 << 63) - 1;

/// Leaf instances of one call: `t = k·n + i` is block `k` of value `i`; instances below `half`
/// have P0 as OT sender, the others P1 (one padding instance when `n·q` is odd).
#[derive(Debug, Clone, Copy)]
struct Layout {
    n: usize,
    m: usize,
    q: usize,
    half: usize,
}

impl Layout {
    fn new(n: usize, bits: u8) -> Self {
        let m = bits as usize;
        let q = 63usize.div_ceil(m);
        Self {
            n,
            m,
            q,
            half: (n * q).div_ceil(2),
        }
    }

    /// The instance of slot `e` of the OTs sent by `sender`.
    fn instance(&self, sender: Role, e: usize) -> usize {
        match sender {
            Role::P0 => e,
            Role::P1 => self.half + e,
        }
    }

    /// Every block of `ops` by instance (`2·half` entries, the padding instance zero).
    fn blocks(&self, ops: &[u64]) -> Vec<usize> {
        let mut out = Vec::with_capacity(2 * self.half);
        for k in 0..self.q {
            out.extend(
                ops.iter()
                    .map(|x| ((x >> (k * self.m)) & ((1 << self.m) - 1)) as usize),
            );
        }
        out.resize(2 * self.half, 0);
        out
    }
}

/// The leaf function a sender tabulates: `[u < v] | [u = v] << 1`, where P0 holds `u` and P1 `v`.
fn leaf_value(sender: Role, own: usize, j: usize) -> u8 {
    let (u, v) = match sender {
        Role::P0 => (own, j),
        Role::P1 => (j, own),
    };
    u8::from(u < v) | (u8::from(u == v) << 1)
}

/// A bit stream, LSB first, in little-endian words.
#[derive(Default)]
struct BitStream {
    words: Vec<u64>,
    len: usize,
}

impl BitStream {
    /// Appends the low `width` bits of `v` (`width` ≤ 128, `v` has no higher bits).
    fn push(&mut self, v: u128, width: usize) {
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        self.push64(lo, width.min(64));
        if width > 64 {
            self.push64(hi, width - 64);
        }
    }

    fn push64(&mut self, v: u64, width: usize) {
        let off = self.len % 64;
        if off == 0 {
            self.words.push(0);
        }
        *self.words.last_mut().expect("pushed") |= v << off;
        if off > 0 && off + width > 64 {
            self.words.push(v >> (64 - off));
        }
        self.len += width;
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut b: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        b.truncate(self.len.div_ceil(8));
        b
    }
}

/// The `width`-bit field (`width` ≤ 64) at bit `bit` of a [`BitStream`]'s bytes.
fn field(bytes: &[u8], bit: usize, width: usize) -> usize {
    let start = bit / 8;
    let end = (start + 16).min(bytes.len());
    let mut buf = [0u8; 16];
    buf[..end - start].copy_from_slice(&bytes[start..end]);
    let v = (u128::from_le_bytes(buf) >> (bit % 8)) as u64;
    (v & (u64::MAX >> (64 - width))) as usize
}

/// Exchanges one flight of exactly `len` bytes each way (`what` names it in the error).
pub(super) async fn flight<C: Channel>(
    cx: &mut Session<'_, C>,
    mine: Vec<u8>,
    len: usize,
    what: &str,
) -> Result<Vec<u8>> {
    debug_assert_eq!(mine.len(), len);
    let theirs = exchange_bytes(cx.ch, mine).await?;
    if theirs.len() != len {
        return Err(MpcError::Malformed {
            reason: format!("{what} flight of {} bytes, expected {len}", theirs.len()),
        });
    }
    Ok(theirs)
}

/// Packs 2-bit messages `msg(j)`, `j < size ≤ 64`, into two words (message `j` at bit `2j`).
fn packed(size: usize, msg: impl Fn(usize) -> u8) -> [u64; 2] {
    let mut t = [0u64; 2];
    for j in 0..size {
        t[j >> 5] |= u64::from(msg(j)) << (2 * (j & 31));
    }
    t
}

/// This party's derandomized tables for its sender slots, given the peer's shifts: entry `j` of
/// slot `e` is `R[j ⊕ s] ⊕ f(own, j) ⊕ r`, 2 bits each.
fn tables(role: Role, lay: Layout, blocks: &[usize], ots: &LeafOts, shifts: &[u8]) -> Vec<u8> {
    let (m, size) = (lay.m, 1usize << lay.m);
    let f: Vec<[u64; 2]> = (0..size)
        .map(|own| packed(size, |j| leaf_value(role, own, j)))
        .collect();
    let spread = packed(size, |_| 1);
    let mut out = BitStream::default();
    for e in 0..lay.half {
        let own = blocks[lay.instance(role, e)];
        let (s, r) = (field(shifts, e * m, m), u64::from(ots.mask[e]));
        let row = &ots.table[e * size..(e + 1) * size];
        let t = packed(size, |j| row[j ^ s]);
        let w = |h: usize| t[h] ^ f[own][h] ^ (r * spread[h]);
        out.push(u128::from(w(0)) | u128::from(w(1)) << 64, 2 * size);
    }
    out.into_bytes()
}

/// Both leaf flights: this party's 2-bit shares `lt | eq << 1` of every leaf instance.
async fn leaves<C: Channel>(
    cx: &mut Session<'_, C>,
    lay: Layout,
    ops: &[u64],
    ots: &LeafOts,
) -> Result<Vec<u8>> {
    let (role, m, half, size) = (cx.role, lay.m, lay.half, 1usize << lay.m);
    let peer = role.peer();
    let blocks = lay.blocks(ops);
    let mut shifts = BitStream::default();
    for e in 0..half {
        let s = blocks[lay.instance(peer, e)] ^ usize::from(ots.choice[e]);
        shifts.push(s as u128, m);
    }
    let theirs = flight(cx, shifts.into_bytes(), (half * m).div_ceil(8), "leaf OT").await?;
    let mine = tables(role, lay, &blocks, ots, &theirs);
    let theirs = flight(cx, mine, (half * size * 2).div_ceil(8), "leaf OT").await?;
    let mut out = vec![0u8; 2 * half];
    for e in 0..half {
        out[lay.instance(role, e)] = ots.mask[e];
        let t = lay.instance(peer, e);
        out[t] = field(&theirs, 2 * (e * size + blocks[t]), 2) as u8 ^ ots.chosen[e];
    }
    Ok(out)
}

/// A node of the combination tree: bit-sliced shares of `lt` and, unless it is the lowest
/// node, of `eq`.
struct Node {
    lt: Vec<u64>,
    eq: Option<Vec<u64>>,
}

/// Combines the leaves level by level (one round each) into the shares of `[u < v]`.
async fn combine<C: Channel>(cx: &mut Session<'_, C>, mut nodes: Vec<Node>) -> Result<Vec<u64>> {
    while nodes.len() > 1 {
        let mut it = std::mem::take(&mut nodes).into_iter();
        let mut pairs = Vec::new();
        while let Some(lo) = it.next() {
            match it.next() {
                Some(hi) => pairs.push((hi, lo)),
                None => nodes.push(lo),
            }
        }
        let eq_hi = |hi: &Node| hi.eq.clone().expect("only the lowest node lacks eq");
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (hi, lo) in &pairs {
            x.extend(eq_hi(hi));
            y.extend_from_slice(&lo.lt);
        }
        for (hi, lo) in pairs.iter().filter(|(_, lo)| lo.eq.is_some()) {
            x.extend(eq_hi(hi));
            y.extend_from_slice(lo.eq.as_deref().expect("filtered"));
        }
        let out = and_gates(cx, &x, &y).await?;
        let w = pairs[0].0.lt.len();
        let (lt_terms, mut eqs) = (
            out[..pairs.len() * w].chunks(w),
            out[pairs.len() * w..].chunks(w),
        );
        let mut level = Vec::with_capacity(pairs.len() + nodes.len());
        for ((hi, lo), term) in pairs.into_iter().zip(lt_terms) {
            let lt = hi.lt.iter().zip(term).map(|(a, b)| a ^ b).collect();
            let eq = lo
                .eq
                .map(|_| eqs.next().expect("one per pair with eq").to_vec());
            level.push(Node { lt, eq });
        }
        level.append(&mut nodes);
        nodes = level;
    }
    Ok(nodes.pop().map(|n| n.lt).unwrap_or_default())
}

/// MSB of a flat vector of this party's shares by the millionaires' comparison with `bits`-bit
/// leaves, as packed XOR-share words.
pub(crate) async fn msb_flat_with<C: Channel>(
    cx: &mut Session<'_, C>,
    values: &[u64],
    bits: u8,
) -> Result<Vec<u64>> {
    check_leaf_bits(bits)?;
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let lay = Layout::new(values.len(), bits);
    let ots = cx.pre.next_leaf(lay.half, bits)?;
    let ops: Vec<u64> = match cx.role {
        Role::P0 => values.iter().map(|x| !x & LOW).collect(),
        Role::P1 => values.iter().map(|x| x & LOW).collect(),
    };
    let leaf = leaves(cx, lay, &ops, &ots).await?;
    let n = lay.n;
    let nodes = (0..lay.q)
        .map(|k| {
            let share =
                |s: u32| pack_bits(leaf[k * n..(k + 1) * n].iter().map(|&b| u64::from(b >> s)));
            Node {
                lt: share(0),
                eq: (k > 0).then(|| share(1)),
            }
        })
        .collect();
    let lt = combine(cx, nodes).await?;
    let top = pack_bits(values.iter().map(|x| x >> 63));
    debug_assert_eq!(top.len(), words_for(n));
    Ok(top.iter().zip(&lt).map(|(a, b)| a ^ b).collect())
}

/// MSB by the millionaires' comparison with the default leaf width [`LEAF_BITS`].
pub(crate) async fn msb_flat<C: Channel>(
    cx: &mut Session<'_, C>,
    values: &[u64],
) -> Result<Vec<u64>> {
    msb_flat_with(cx, values, LEAF_BITS).await
}

/// XOR shares of the most significant bit of a shared matrix by the millionaires' comparison
/// with `bits`-bit leaves (1 to [`crate::triples::MAX_LEAF_BITS`]): `2 + ⌈log2 ⌈63/bits⌉⌉` rounds,
/// exact for every ring element. [`super::msb`] (the GMW adder) computes the same bits.
pub async fn msb_millionaire<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    bits: u8,
) -> Result<BitShare> {
    let values: Vec<u64> = x.view().iter().copied().collect();
    let words = msb_flat_with(cx, &values, bits).await?;
    Ok(BitShare::from_words(x.dim(), words))
}

/// The preprocessing [`msb_millionaire`] consumes for a `dim`-shaped input: one
/// [`TripleRequest::LeafOt`], then one `And` block per tree level.
pub fn msb_millionaire_requests(dim: (usize, usize), bits: u8) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("msb_millionaire {dim:?} {bits}"), |cx| {
        msb_millionaire(cx, &z, bits)
    })
}
