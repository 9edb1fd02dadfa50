//! Where piece bytes live and the index of what is where.
//!
//! Planned role: a `PieceStore` trait (put a piece from a stream while computing its commP
//! in the same pass, ranged reads, stat, delete, list) with filesystem and S3 backends, and a
//! SQLite index mapping piece CIDs to deals and sectors, payload roots to pieces, and each
//! piece's CAR blocks to their offsets. Not implemented yet: this crate has no API.
