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
//! - [`fill_random`]: random bytes from the kernel's vDSO `getrandom`
//!   (Linux 6.11 and later; fork-safe by the kernel's design), falling back
//!   to the system call. About 30 ns for a nonce instead of about 200.
//! - [`without_sigpipe`], [`block_sigpipe_on_this_thread`]: network I/O
//!   that cannot kill a C program with `SIGPIPE` when a peer goes away.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod fork;
mod random;
mod sigpipe;
mod vdso;

pub use fork::fork_generation;
pub use random::{fill_random, vdso_getrandom_available};
pub use sigpipe::{block_sigpipe_on_this_thread, without_sigpipe};
