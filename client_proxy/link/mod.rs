// SPDX-License-Identifier: GPL-2.0

//! The link to the server: the connection worker and its receive loop (`connection.rs`),
//! calls in flight (`rpc.rs`), process identities (`attrs.rs`), link benchmarks (`bench.rs`).
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
#![deny(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

pub(crate) mod attrs;
pub(crate) mod bench;
pub(crate) mod connection;
pub(crate) mod rpc;
