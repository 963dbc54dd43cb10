// SPDX-License-Identifier: GPL-2.0

//! tether client module: runs the OS side of tethered applications on a tether server.
//!
//! A task is tethered when it execs a file marked `trusted.tether.loader` or is named in
//! `/sys/kernel/tether_client/tether`; its children are too. `intercept/` sends each of its system calls
//! through the syscall-user-dispatch hook (`hook.c`) to the route table, which runs it
//! locally or hands it to its handler in `syscalls/` (one file per family): the handler
//! runs it on the server, in the process's shadow, and remote fds are proxy files in the
//! task's fd table. `link/` is the connection: one worker connects over vsock (the next of
//! `servers=` when one fails), does the handshake, exchanges heartbeats, notices a dead
//! server within three intervals and reconnects with backoff; its one receive loop hands
//! each reply to the task waiting for it. `recovery/` is crash survival: the journal of
//! what the server holds, the writes it has not made durable yet, their replay on a
//! restarted server, and the journal persisted to `log_file`. `state.rs` holds the module
//! state (configuration, counters, `/sys/kernel/tether_client`), `num.rs` the checked
//! conversions of syscall arguments.

// Every value a task or the server chose is checked before arithmetic or a conversion
// (`num.rs`), here and in the shared `rust/` files.
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
#![deny(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use kernel::prelude::*;

// Shared with the other tether module (and, for `proto`, the host crate): each uses a subset.
#[path = "../rust/kernel/global.rs"]
mod global;
#[allow(dead_code)]
#[path = "../rust/kernel/latency.rs"]
mod latency;
#[allow(dead_code, unreachable_pub)]
#[path = "../rust/src/proto.rs"]
mod proto;
#[allow(dead_code)]
#[path = "../rust/kernel/sysfs.rs"]
mod sysfs;
#[allow(dead_code)]
#[path = "../rust/kernel/transport.rs"]
mod transport;
// The refusal rate limits are the server's.
#[allow(dead_code)]
#[path = "../rust/kernel/auth.rs"]
mod auth;

// Checked conversions of syscall arguments and results.
mod num;
// The module's state (configuration, the connection's state, the journal, sysfs, debugfs).
mod state;
// Which syscalls of a tethered task run where: the syscall-user-dispatch hook, the route
// table.
mod intercept;
// The connection to the server: handshake, heartbeats, one receive loop, calls in flight,
// identities, the link benchmark.
mod link;
// The remote syscalls, one file per family, and the proxy files that stand for remote fds.
mod syscalls;
// Crash survival: the journal of what the server holds, retained writes, replay and redo,
// the persisted journal.
mod recovery;

module! {
    type: state::TetherClient,
    name: "tether_client",
    authors: ["tether developers"],
    description: "tether: runs the OS side of tethered applications on a server machine",
    license: "GPL",
    params: {
        server_cid: u32 {
            default: 4,
            description: "vsock CID of the tether server",
        },
        port: u32 {
            default: 7777,
            description: "vsock port of the tether server",
        },
        heartbeat_ms: u32 {
            default: 500,
            description: "heartbeat interval in ms; the server is declared dead after 3 silent intervals (40..=60000, as on the server)",
        },
        max_frame: u32 {
            default: 1048576,
            description: "largest frame body accepted, in bytes (512..1048576)",
        },
        split: u32 {
            default: 3584,
            description: "largest single vsock send, in bytes (vhost-device-vsock 0.3.0 needs <= 3584)",
        },
        reconnect_max_ms: u32 {
            default: 2000,
            description: "longest wait between reconnection attempts, in ms (backoff doubles from 50)",
        },
        log_persist_ms: u32 {
            default: 1000,
            description: "how often the syscall log is written to log_file when it changed, in ms (10..=600000)",
        },
        no_auth: bool {
            default: false,
            description: "connect without the shared key (key_file=): only to a server loaded with no_auth=1; the server is not authenticated either",
        },
    },
}
