//! tether wire protocol (host build).
//!
//! The protocol itself lives in `proto.rs` and its submodules, which the kernel modules
//! compile as source (`#[path = "../rust/src/proto.rs"] mod proto;`). This file only adds the
//! crate-level attributes of the host build.
#![no_std]

#[path = "proto.rs"]
mod proto;
pub use proto::*;

// Host only: the modules use the kernel's HMAC-SHA256.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "fixed-size blocks: every index is below a constant bound, every addition wraps on purpose"
)]
pub mod hmac;
