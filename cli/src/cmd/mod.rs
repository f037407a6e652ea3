//! One module per group of commands.

pub mod derive;
pub mod keychain;
pub mod rewrap;
pub mod seal;
pub mod sign;
pub mod stream;
