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
//! 4 + 3.25 = 7.25 bytes (adder: 22.6). These figures are asserted in this module's tests; the
//! `experiments` task `relu-offline` measures them with time for every m.
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

    /// Block of `ops` at instance `t` (zero for the padding instance).
    fn block(&self, ops: &[u64], t: usize) -> usize {
        if t >= self.n * self.q {
            return 0;
        }
        let (k, i) = (t / self.n, t % self.n);
        ((ops[i] >> (k * self.m)) & ((1 << self.m) - 1)) as usize
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

/// Packs `width`-bit values LSB first.
fn pack(vals: impl IntoIterator<Item = u8>, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, v) in vals.into_iter().enumerate() {
        let bit = i * width;
        if out.len() < (bit + width).div_ceil(8) {
            out.resize((bit + width).div_ceil(8), 0);
        }
        let w = u16::from(v) << (bit % 8);
        out[bit / 8] |= w as u8;
        if bit % 8 + width > 8 {
            out[bit / 8 + 1] |= (w >> 8) as u8;
        }
    }
    out
}

/// The `i`-th `width`-bit value of a [`pack`]ed stream.
fn unpack(bytes: &[u8], width: usize, i: usize) -> usize {
    let bit = i * width;
    let lo = usize::from(bytes[bit / 8]);
    let hi = bytes.get(bit / 8 + 1).map_or(0, |&b| usize::from(b));
    ((lo | hi << 8) >> (bit % 8)) & ((1 << width) - 1)
}

/// Exchanges one flight of exactly `len` bytes each way.
async fn flight<C: Channel>(cx: &mut Session<'_, C>, mine: Vec<u8>, len: usize) -> Result<Vec<u8>> {
    debug_assert_eq!(mine.len(), len);
    let theirs = exchange_bytes(cx.ch, mine).await?;
    if theirs.len() != len {
        return Err(MpcError::Malformed {
            reason: format!("leaf OT flight of {} bytes, expected {len}", theirs.len()),
        });
    }
    Ok(theirs)
}

/// Both leaf flights: this party's 2-bit shares `lt | eq << 1` of every leaf instance.
async fn leaves<C: Channel>(
    cx: &mut Session<'_, C>,
    lay: Layout,
    ops: &[u64],
    ots: &LeafOts,
) -> Result<Vec<u8>> {
    let (role, m, half) = (cx.role, lay.m, lay.half);
    let peer = role.peer();
    let shifts = (0..half).map(|e| (lay.block(ops, lay.instance(peer, e)) as u8) ^ ots.choice[e]);
    let theirs = flight(cx, pack(shifts, m), (half * m).div_ceil(8)).await?;
    let size = 1usize << m;
    let mut tables = Vec::with_capacity(half * size);
    for e in 0..half {
        let own = lay.block(ops, lay.instance(role, e));
        let (s, r) = (unpack(&theirs, m, e), ots.mask[e]);
        let row = &ots.table[e * size..(e + 1) * size];
        tables.extend((0..size).map(|j| row[j ^ s] ^ leaf_value(role, own, j) ^ r));
    }
    let theirs = flight(cx, pack(tables, 2), (half * size * 2).div_ceil(8)).await?;
    let mut out = vec![0u8; 2 * half];
    for e in 0..half {
        out[lay.instance(role, e)] = ots.mask[e];
        let t = lay.instance(peer, e);
        let y = lay.block(ops, t);
        out[t] = unpack(&theirs, 2, e * size + y) as u8 ^ ots.chosen[e];
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
