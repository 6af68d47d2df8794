//! # party — the Dyad party server and its transports
//!
//! * [`transport`]: authenticated, encrypted links between the parties (QUIC or TLS 1.3 over TCP
//!   with pinned self-signed certificates) implementing [`mpc::net::Channel`], identities, and
//!   in-process loopback pairs for experiments.
//!
//! This crate may open sockets and files; the protocol crates it drives never do.

pub mod transport;
