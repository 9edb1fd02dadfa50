//! Moving deal data from client to provider.
//!
//! Planned role: resumable transfers with persisted state and progress events, over HTTP(S)
//! pull as Boost does it and over libp2p (`/fil/storage/transfer/1.0.0`), with bounded
//! memory and SSRF protection. Not implemented yet: this crate has no API.
