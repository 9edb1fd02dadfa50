//! What the example binaries (`src/bin/`) share beyond the `market-node` crate: logging and
//! paths ([`cli`]) and progress bars ([`progress`]). The binaries parse arguments and print;
//! everything else lives in the library crates.

pub mod cli;
pub mod progress;
