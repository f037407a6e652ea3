//! The C ABI's pure pointer layer (`ffi/src/abi.rs`: error objects,
//! buffers, argument and caller-sized output helpers), compiled alone so
//! that `cargo +nightly miri test -p keystrata-ffi-miri` (make miri) checks
//! its unsafe code under Miri in seconds.
//!
//! The same tests run inside keystrata-ffi too (`cargo test -p
//! keystrata-ffi`, and `cargo +nightly miri test -p keystrata-ffi abi::`,
//! which works but first builds aws-lc and the whole core under Miri: about
//! eight minutes on a cold cache). This crate has no crypto dependency, so
//! nothing but the module itself and `zeroize` is interpreted.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]
// Helpers only the extern fns of keystrata-ffi call are unused here.
#![allow(dead_code)]

#[path = "../src/abi.rs"]
pub mod abi;
