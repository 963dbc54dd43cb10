//! tether wire protocol (host build).
//!
//! The protocol itself lives in `proto.rs` and its submodules, which the kernel modules
//! compile as source (`#[path = "../rust/src/proto.rs"] mod proto;`). This file only adds the
//! crate-level attributes of the host build.
#![no_std]

#[path = "proto.rs"]
mod proto;
pub use proto::*;
