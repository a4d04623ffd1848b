//! Every integration test in one binary, so that wasmtime, Cranelift and
//! LaunchDarkly's SDK are linked once: the built components in wasmtime (and
//! under `wasmtime serve`) against moto (SigV4 checking on) and dynalite,
//! started by `scripts/test.sh`. Run one module with `cargo test -p
//! ld-dynamodb-tests --test it edge::`.

mod big_segments;
mod build;
mod cache;
mod cli;
mod data_store;
mod docs;
mod edge;
mod evaluate_cli;
mod evaluator;
mod evalx;
mod events;
mod faults;
mod hardening;
mod https;
mod iam;
mod imports;
mod interop;
mod library;
mod pool;
mod rust_sdk;
mod scripts;
mod sync;
mod validation;
mod wit_versions;
