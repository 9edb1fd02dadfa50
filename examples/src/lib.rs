//! Example binaries of fil-market-rs; see `src/bin/`.
