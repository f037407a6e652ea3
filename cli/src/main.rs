//! The `keystrata` command.
fn main() {}
