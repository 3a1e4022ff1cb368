//! # Candle sources
//!
//! Two sources feed the same [`Router`](candlewick_core::Router) (the
//! Binance adapter may instead feed any [`Destination`], such as the
//! cluster's candle publisher):
//!
//! - [`replay`]: a candle file (or the bundled data) paced in real time at a
//!   chosen speed-up, or as fast as the workers take it. `candlewick run`'s
//!   offline default.
//! - [`binance`]: Binance's combined kline streams over WebSocket, with REST
//!   backfill of every gap. Its REST client ([`binance::RestClient`],
//!   [`binance::KlinePager`]) also serves `candlewick fetch`; [`grid`] says
//!   where klines open and names the holes in a series.
//!
//! ## Exactly once, across disconnects and restarts
//!
//! A source remembers, per stream, the open time of the last closed candle
//! it routed (at start: the store's committed offset). On every (re)connect
//! it first backfills, over REST, every closed candle after that, then reads
//! the live stream, where anything at or before it is a duplicate (counted,
//! skipped) and anything beyond the next expected candle opens a gap that is
//! backfilled before the frame is routed. So the routed sequence has no gap
//! and no duplicate; and the worker's
//! `StreamState::apply` (`candlewick_state`) refuses a
//! candle at or before its offset, so even a source that re-sends after an
//! engine restart never applies a candle twice.
//!
//! ## Where requests may go
//!
//! Every exchange URL passes [`Allowlist::check`] before any request: the
//! host must be listed, the scheme must be `wss`/`https`, and plain
//! `ws`/`http` is allowed only to loopback when the config says so (for the
//! simulator in tests). A typo or a tampered config cannot send requests
//! anywhere else.
#![forbid(unsafe_code)]

mod allowlist;
pub mod binance;
mod destination;
mod error;
pub mod grid;
pub mod replay;

pub use allowlist::Allowlist;
pub use destination::Destination;
pub use error::IngestError;
