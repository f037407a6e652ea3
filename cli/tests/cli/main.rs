//! The `keystrata` binary, run as a user runs it: every command, its
//! `--json` output parsed and checked, pipes, a 20 MB stream, and every
//! error path with its exit code and message, against age and passphrase
//! roots in temporary directories (and a PKCS#11 token and `minisign`
//! where the peers are there; under KEYSTRATA_REQUIRE_PEERS=1 their
//! absence fails).

mod common;
mod docs;
mod errors;
mod keychain;
mod meta;
mod migrate;
mod plugin;
mod rewrap;
mod seal;
mod sign;
mod stores;
mod stream;
