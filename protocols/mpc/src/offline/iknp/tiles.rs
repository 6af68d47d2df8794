//! The local core of one IKNP extension, a *superblock* at a time: up to [`TILES`] tiles of 128
//! OTs (32 KiB of rows, which stay in the core's caches).
//!
//! For each of the 128 base-OT columns, the column PRG ([`ColumnPrg`], AES-128-CTR) encrypts one
//! counter block per tile in a single batch (two rounds of AES-NI's eight-way pipeline); the blocks
//! go into the tiles' rows (receiver: `t`, and the message `u = G(k^0) ⊕ G(k^1) ⊕ r`; sender:
//! `q = G(k^{Δ_i}) ⊕ Δ_i·u`, with Δ_i applied as a mask, not a branch). Each tile is then
//! transposed in place ([`transpose_tile`]) into the rows of its 128 OTs. Nothing is allocated.
//!
//! Message layout (a permutation of IKNP's columns, the same bits): superblock after superblock;
//! within a superblock of `n` tiles, column after column, each column's `n` blocks of 16
//! little-endian bytes. So every superblock's part of the message is one contiguous slice of
//! [`TILE_BYTES`]` · n` bytes, and superblocks are processed independently.
//!
//! Keystream: tile `k` of an extension whose first keystream block is `counter` uses block
//! `counter + k` of every column, as a whole-column expansion would.

use crate::offline::base::BASE_OTS;
use crate::offline::hash::{Block128, ColumnPrg};
use crate::offline::transpose::transpose_tile;

/// Tiles of 128 OTs per superblock (the AES batch of every column PRG).
pub(crate) const TILES: usize = 16;
/// OTs per full superblock.
pub(crate) const SUPER_OTS: usize = 128 * TILES;
/// Bytes of the receiver's message per tile: one 16-byte block per column.
pub(crate) const TILE_BYTES: usize = 16 * BASE_OTS;
/// Bytes of the receiver's message per full superblock.
pub(crate) const SUPER_BYTES: usize = TILE_BYTES * TILES;

/// Tiles in a superblock whose message part is `u_len` bytes; panics unless it is a whole
/// number between 1 and [`TILES`] (callers cut the message themselves).
fn tiles_of(u_len: usize) -> usize {
    let n = u_len / TILE_BYTES;
    assert!(
        u_len % TILE_BYTES == 0 && (1..=TILES).contains(&n),
        "IKNP superblock of {u_len} message bytes"
    );
    n
}

/// The 128 rows of tile `k` in `rows` (which holds `128 · n` rows).
fn tile_mut(rows: &mut [Block128], k: usize) -> &mut [Block128; 128] {
    (&mut rows[128 * k..128 * (k + 1)])
        .try_into()
        .expect("a tile is 128 rows")
}

/// Receiver: fills `u` (this superblock's message part, `n` tiles) and `rows[..128 n]` with the
/// rows `t_j`, from the choice words of these tiles (`choices`, two per tile; a missing last word
/// counts as zero).
pub(crate) fn receiver_tiles(
    cols: &[[ColumnPrg; 2]],
    counter: u64,
    choices: &[u64],
    u: &mut [u8],
    rows: &mut [Block128],
) {
    let n = tiles_of(u.len());
    let word = |i: usize| choices.get(i).copied().unwrap_or(0) as u128;
    let r: [u128; TILES] = core::array::from_fn(|k| word(2 * k) | (word(2 * k + 1) << 64));
    let (mut k0, mut k1) = ([0u128; TILES], [0u128; TILES]);
    for (i, ([g0, g1], col)) in cols.iter().zip(u.chunks_exact_mut(16 * n)).enumerate() {
        g0.blocks(counter, &mut k0[..n]);
        g1.blocks(counter, &mut k1[..n]);
        for (k, dst) in col.chunks_exact_mut(16).enumerate() {
            rows[128 * k + i] = k0[k];
            dst.copy_from_slice(&(k0[k] ^ k1[k] ^ r[k]).to_le_bytes());
        }
    }
    for k in 0..n {
        transpose_tile(tile_mut(rows, k));
    }
}

/// Sender: `rows[..128 n]` gets the rows `q_j = t_j ⊕ r_j·Δ` of the superblock whose message
/// part is `u`.
pub(crate) fn sender_tiles(
    cols: &[ColumnPrg],
    delta: u128,
    counter: u64,
    u: &[u8],
    rows: &mut [Block128],
) {
    let n = tiles_of(u.len());
    let mut ks = [0u128; TILES];
    for (i, (g, col)) in cols.iter().zip(u.chunks_exact(16 * n)).enumerate() {
        g.blocks(counter, &mut ks[..n]);
        let mask = ((delta >> i) & 1).wrapping_neg();
        for (k, src) in col.chunks_exact(16).enumerate() {
            let uk = u128::from_le_bytes(src.try_into().expect("16-byte block"));
            rows[128 * k + i] = ks[k] ^ (uk & mask);
        }
    }
    for k in 0..n {
        transpose_tile(tile_mut(rows, k));
    }
}
