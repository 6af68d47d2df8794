//! The local core of one IKNP extension, a *group* at a time: up to [`GROUP`] superblocks of
//! [`TILES`] tiles of 128 OTs (128 KiB of rows, which stay in the core's L2 cache).
//!
//! For each of the 128 base-OT columns, the column PRG ([`ColumnPrg`], AES-128-CTR) encrypts one
//! counter block per tile of the group in a single batch (64 blocks: one pass of the VAES
//! backend, whose batch a single superblock's 16 would not fill); the blocks
//! go into the tiles' rows (receiver: `t`, and the message `u = G(k^0) ⊕ G(k^1) ⊕ r`; sender:
//! `q = G(k^{Δ_i}) ⊕ Δ_i·u`, with Δ_i applied as a mask, not a branch). Each tile is then
//! transposed in place ([`transpose_tile`]) into the rows of its 128 OTs. Nothing is allocated.
//!
//! Message layout (a permutation of IKNP's columns, the same bits): superblock after superblock;
//! within a superblock of `n` tiles, column after column, each column's `n` blocks of 16
//! little-endian bytes. So every superblock's part of the message is one contiguous slice of
//! [`TILE_BYTES`]` · n` bytes, and groups of superblocks are processed independently; the
//! grouping is local (the layout is that of single superblocks).
//!
//! Keystream: tile `k` of an extension whose first keystream block is `counter` uses block
//! `counter + k` of every column, as a whole-column expansion would.

use crate::offline::base::BASE_OTS;
use crate::offline::hash::{Block128, ColumnPrg, BATCH};
use crate::offline::transpose::transpose_tile;

/// Tiles of 128 OTs per superblock (the unit of the message layout).
pub(crate) const TILES: usize = 16;
/// OTs per full superblock.
pub(crate) const SUPER_OTS: usize = 128 * TILES;
/// Bytes of the receiver's message per tile: one 16-byte block per column.
pub(crate) const TILE_BYTES: usize = 16 * BASE_OTS;
/// Bytes of the receiver's message per full superblock.
pub(crate) const SUPER_BYTES: usize = TILE_BYTES * TILES;
/// Superblocks per group (the unit of work; `GROUP · TILES` = [`BATCH`] keystream blocks per
/// column).
pub(crate) const GROUP: usize = BATCH / TILES;
/// Tiles per full group.
pub(crate) const GROUP_TILES: usize = GROUP * TILES;
/// OTs per full group.
pub(crate) const GROUP_OTS: usize = GROUP * SUPER_OTS;
/// Bytes of the receiver's message per full group.
pub(crate) const GROUP_BYTES: usize = GROUP * SUPER_BYTES;

/// Tiles in a group whose message part is `u_len` bytes; panics unless it is a whole number
/// between 1 and [`GROUP_TILES`] (callers cut the message themselves).
fn tiles_of(u_len: usize) -> usize {
    let n = u_len / TILE_BYTES;
    assert!(
        u_len.is_multiple_of(TILE_BYTES) && (1..=GROUP_TILES).contains(&n),
        "IKNP group of {u_len} message bytes"
    );
    n
}

/// Byte offset of column `i`'s block for tile `k` in the message part of a group of `n` tiles
/// (full superblocks of [`TILES`] tiles, then the rest).
fn msg_at(n: usize, i: usize, k: usize) -> usize {
    let s = k / TILES;
    let tiles = TILES.min(n - s * TILES);
    s * SUPER_BYTES + 16 * (i * tiles + k % TILES)
}

/// The 128 rows of tile `k` in `rows` (which holds `128 · n` rows).
fn tile_mut(rows: &mut [Block128], k: usize) -> &mut [Block128; 128] {
    (&mut rows[128 * k..128 * (k + 1)])
        .try_into()
        .expect("a tile is 128 rows")
}

/// Receiver: fills `u` (this group's message part, `n` tiles) and `rows[..128 n]` with the rows
/// `t_j`, from the choice words of these tiles (`choices`, two per tile; a missing last word
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
    let r: [u128; GROUP_TILES] = core::array::from_fn(|k| word(2 * k) | (word(2 * k + 1) << 64));
    let (mut k0, mut k1) = ([0u128; GROUP_TILES], [0u128; GROUP_TILES]);
    for (i, [g0, g1]) in cols.iter().enumerate() {
        g0.blocks(counter, &mut k0[..n]);
        g1.blocks(counter, &mut k1[..n]);
        for k in 0..n {
            rows[128 * k + i] = k0[k];
            let at = msg_at(n, i, k);
            u[at..at + 16].copy_from_slice(&(k0[k] ^ k1[k] ^ r[k]).to_le_bytes());
        }
    }
    for k in 0..n {
        transpose_tile(tile_mut(rows, k));
    }
}

/// Sender: `rows[..128 n]` gets the rows `q_j = t_j ⊕ r_j·Δ` of the group whose message part is
/// `u`.
pub(crate) fn sender_tiles(
    cols: &[ColumnPrg],
    delta: u128,
    counter: u64,
    u: &[u8],
    rows: &mut [Block128],
) {
    let n = tiles_of(u.len());
    let mut ks = [0u128; GROUP_TILES];
    for (i, g) in cols.iter().enumerate() {
        g.blocks(counter, &mut ks[..n]);
        let mask = ((delta >> i) & 1).wrapping_neg();
        for k in 0..n {
            let at = msg_at(n, i, k);
            let uk = u128::from_le_bytes(u[at..at + 16].try_into().expect("16-byte block"));
            rows[128 * k + i] = ks[k] ^ (uk & mask);
        }
    }
    for k in 0..n {
        transpose_tile(tile_mut(rows, k));
    }
}
