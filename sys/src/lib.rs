//! # keystrata-sys
//!
//! The operating-system facts keystrata's core needs and cannot get from
//! safe Rust. The core crate is `#![forbid(unsafe_code)]`; the little
//! `unsafe` those facts need lives here, in one small module per fact,
//! each with its safety argument.
//!
//! - [`fork_generation`]: a counter that a child process sees change right
//!   after `fork()`, so state that must not be shared between a parent and
//!   its child (a reserved block of usage counts, a connection's event
//!   loop) can tell it was inherited. Reading it is one atomic load.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod fork;

pub use fork::fork_generation;
