//! # party — the Dyad party server, its transports and clients
//!
//! * [`transport`]: authenticated, encrypted links between the parties (QUIC or TLS 1.3 over TCP
//!   with pinned self-signed certificates) implementing [`mpc::net::Channel`], identities, and
//!   in-process loopback pairs for experiments.
//! * [`proto`]: the messages between clients and parties and between the parties.
//! * [`store`]: the crash-safe dataset and model store with two-phase-commit states.
//! * [`server`]: `party serve` — peer link, client endpoint, job runner.
//! * [`client`]: the client side (used by `share-upload` and `party job`).
//! * [`deploy`]: the model owner's side of deploying a 2PC-trained ST-GCN to the inference
//!   service, and of revealing a trained model in the model-file format.
//! * [`infer`]: encrypted ST-GCN inference — its messages, the client's key generation,
//!   encryption and decryption, input files, and the `he-infer` session driver (the server side
//!   is [`server::infer`]).
//! * [`fuzzing`]: every decoder of bytes from the network or disk, as fuzz entry points.
//! * [`input`]: the data owner's file (CSV, NPY, MNIST IDX) read and range-checked for upload.
//! * [`logging`]: the binaries' log output and its `RUST_LOG` filter.
//! * [`model_file`]: the ST-GCN model ↔ share-column conversion of trained model entries, and
//!   the `NAME.json` + `NAME.safetensors` model files.
//! * [`testing`]: loopback ports for tests that start party and dealer processes.
//! * [`linear_model`]: the `dyad-model/1` file of a revealed linear model or MLP (weights,
//!   intercept, training parameters, dataset version) and its one loader.
//!
//! This crate may open sockets and files; the protocol crates it drives never do.

pub mod client;
pub mod deploy;
pub mod fuzzing;
pub mod ids;
pub mod infer;
pub mod input;
pub mod linear_model;
pub mod logging;
pub mod model_file;
pub mod proto;
pub mod rowkeys;
pub mod server;
pub mod store;
pub mod testing;
pub mod transport;
