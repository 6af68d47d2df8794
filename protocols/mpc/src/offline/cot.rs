//! Where the OT consumers ([`super::and`], [`super::leaf`], [`super::rot`], [`super::gilboa`]) get
//! their correlated OTs: IKNP alone, or the silent extension ([`super::silent`]) bootstrapped from
//! it, chosen by [`OtExtension`]. Both give the same [`ReceiverBlocks`]/[`SenderBlocks`]
//! (`q_j = t_j ⊕ r_j·Δ`, an instance index per COT), which the consumers hash into random or
//! Z_2^64-correlated OTs with the one correlation-robust hash ([`super::iknp`]'s `rot`/`cot`).
//!
//! * [`random_both`]: COTs with random choices, both directions (AND triples, leaf OTs, the
//!   multiplexer's random OTs): IKNP draws the choices from the caller's generator and sends 16
//!   bytes per COT; the silent extension hands out its pseudorandom choices and sends nothing per
//!   COT beyond its GGM messages.
//! * [`extend_both`]: COTs with chosen choices (Gilboa products): IKNP as it is; silent COTs
//!   derandomized with one bit per COT ([`super::silent::derandomize`]).

use super::iknp::{self, OtPair, ReceiverBlocks, SenderBlocks};
use super::silent::{derandomize, SilentPair, SilentParams, FERRET};
use crate::error::{MpcError, Result};
use crate::net::Channel;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// Which OT extension makes the offline phase's correlated OTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtExtension {
    /// IKNP/ALSZ alone: 16 bytes per OT and direction.
    Iknp,
    /// Ferret-style silent OT (LPN) bootstrapped from IKNP: about 0.06 bytes per random COT.
    #[default]
    Silent,
}

impl std::str::FromStr for OtExtension {
    type Err = MpcError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "iknp" => Ok(Self::Iknp),
            "silent" => Ok(Self::Silent),
            other => Err(MpcError::Malformed {
                reason: format!("ot_extension = {other:?}: expected \"iknp\" or \"silent\""),
            }),
        }
    }
}

impl std::fmt::Display for OtExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Iknp => "iknp",
            Self::Silent => "silent",
        })
    }
}

/// A party's correlated-OT engines: IKNP in both directions, and the silent extension on top
/// when selected.
#[derive(Debug)]
pub struct Cots {
    /// IKNP, both roles (the silent extension's bootstrap, or the engine itself).
    pub iknp: OtPair,
    silent: Option<SilentPair>,
}

impl Cots {
    /// Sets up IKNP in both directions (both parties call it, with the same `kind`); the silent
    /// extension, if selected, bootstraps on first use with Ferret's parameters.
    pub async fn setup<C: Channel, R: RngCore + CryptoRng>(
        ch: &mut C,
        rng: &mut R,
        kind: OtExtension,
    ) -> Result<Self> {
        Self::setup_with(ch, rng, kind, FERRET).await
    }

    /// As [`Cots::setup`] with the silent extension's parameter chain given.
    pub async fn setup_with<C: Channel, R: RngCore + CryptoRng>(
        ch: &mut C,
        rng: &mut R,
        kind: OtExtension,
        params: SilentParams,
    ) -> Result<Self> {
        let iknp = iknp::setup_pair(ch, rng).await?;
        let silent = match kind {
            OtExtension::Iknp => None,
            OtExtension::Silent => Some(SilentPair::new(params, rng)?),
        };
        Ok(Self { iknp, silent })
    }

    /// The extension in use.
    pub fn kind(&self) -> OtExtension {
        match self.silent {
            Some(_) => OtExtension::Silent,
            None => OtExtension::Iknp,
        }
    }
}

/// `64 · words` COTs with random choices in each direction (both parties call it with the same
/// `words`): this party's receiver blocks and sender blocks.
pub async fn random_both<C: Channel, R: RngCore>(
    ch: &mut C,
    cots: &mut Cots,
    words: usize,
    rng: &mut R,
) -> Result<(ReceiverBlocks, SenderBlocks)> {
    match &mut cots.silent {
        Some(s) => s.take(ch, &mut cots.iknp, words).await,
        None => {
            let mut choices = vec![0u64; words];
            crate::ring::fill_random(rng, &mut choices);
            iknp::extend_both(ch, &mut cots.iknp, choices).await
        }
    }
}

/// COTs with the chosen `choices` (packed, `64 · choices.len()` instances) in each direction.
pub async fn extend_both<C: Channel>(
    ch: &mut C,
    cots: &mut Cots,
    choices: Vec<u64>,
) -> Result<(ReceiverBlocks, SenderBlocks)> {
    match &mut cots.silent {
        Some(s) => {
            let (mut r, mut q) = s.take(ch, &mut cots.iknp, choices.len()).await?;
            derandomize(ch, &mut r, &mut q, choices).await?;
            Ok((r, q))
        }
        None => iknp::extend_both(ch, &mut cots.iknp, choices).await,
    }
}
