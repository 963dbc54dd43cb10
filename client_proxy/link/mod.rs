// SPDX-License-Identifier: GPL-2.0

//! The link to the server: the connection worker and its receive loop (`connection.rs`),
//! calls in flight (`rpc.rs`), process identities (`attrs.rs`), link benchmarks (`bench.rs`).

pub(crate) mod attrs;
pub(crate) mod bench;
pub(crate) mod connection;
pub(crate) mod rpc;
