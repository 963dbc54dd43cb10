// SPDX-License-Identifier: GPL-2.0

//! tether server module: runs the system calls of tethered client processes.
//!
//! `listener.rs` accepts vsock connections from the CIDs the export table allows
//! (`exports.rs`: each client's root and id mapping); `conn.rs` is one worker per
//! connection: handshake, heartbeats (a client silent for three intervals is dropped),
//! then its session's frames, whose requests `dispatch.rs` checks against the call table
//! and queues. A session (`session.rs`) outlives a lost connection for `resume_ms` with its
//! reply cache (`reply_cache.rs`: a re-sent request is answered, never run twice) and its
//! durability marks (`durability.rs`). Each client process has a shadow, a `tether-shadow`
//! process that makes its calls and talks to the module through `/dev/tether_shadow`
//! (`shadow.rs`); the registry (`shadows.rs`) finds shadows by token or by session and pid;
//! `keeper.rs` gives each session a pid namespace and a cgroup. `flusher.rs` syncs the
//! export, sends `SERVER_FLUSHED` and ends sessions not resumed in time; `faults.rs` holds
//! the test fault points. `server.rs` is the module state: configuration, the session
//! registry, counters, `/sys/kernel/tether_server` (and debugfs `control`).

// Every value a client or a shadow chose is checked before arithmetic or a conversion,
// here and in the shared `rust/` files.
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
#![deny(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use kernel::prelude::*;

// Shared with the other tether module (and, for `proto`, the host crate): each uses a subset.
#[path = "../rust/kernel/auth.rs"]
mod auth;
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

mod conn;
mod dispatch;
mod durability;
mod exports;
mod faults;
mod flusher;
mod keeper;
mod listener;
mod reply_cache;
mod server;
mod session;
mod shadow;
mod shadows;

module! {
    type: server::TetherServer,
    name: "tether_server",
    authors: ["tether developers"],
    description: "tether: runs the OS side of applications tethered from another machine",
    license: "GPL",
    params: {
        port: u32 {
            default: 7777,
            description: "vsock port to listen on",
        },
        tcp_port: u32 {
            default: 0,
            description: "TCP port to listen on as well, on every IPv4 address (0: vsock only); a TCP client needs an export entry for its address, and the shared key (refused with no_auth=1)",
        },
        heartbeat_ms: u32 {
            default: 500,
            description: "heartbeat interval in ms; a client silent for 3 intervals is dropped (40..=60000, as on the client)",
        },
        max_frame: u32 {
            default: 1048576,
            description: "largest frame body accepted, in bytes (512..1048576)",
        },
        split: u32 {
            default: 3584,
            description: "largest single vsock send, in bytes (vhost-device-vsock 0.3.0 needs <= 3584)",
        },
        max_sessions: u32 {
            default: 64,
            description: "most sessions served at once (connected or kept for resumption)",
        },
        flush_ms: u32 {
            default: 1000,
            description: "the flusher syncs the export root and acks durability (SERVER_FLUSHED) every flush_ms ms (10..=600000)",
        },
        flush_dirty_kb: u32 {
            default: 8192,
            description: "the flusher also runs once clients sent this many KiB of request data since the last sync (0: only by time)",
        },
        resume_ms: u32 {
            default: 30000,
            description: "a session whose connection is lost keeps its shadows this long for the same client to resume it (0: end at once)",
        },
        reply_cache: u32 {
            default: 256,
            description: "replies kept per session to answer re-sent requests (1..=65536)",
        },
        reply_cache_kb: u32 {
            default: 4096,
            description: "bytes of replies kept per session, in KiB (the newest reply is always kept)",
        },
        max_pending: u32 {
            default: 4096,
            description: "most requests of one session queued or running at once; more are refused with EAGAIN (1..=1048576)",
        },
        max_shadows: u32 {
            default: 1024,
            description: "most shadows (client processes) of one session; more are refused with EAGAIN (1..=1048576)",
        },
        max_shadow_threads: u32 {
            default: 256,
            description: "most threads of one session's shadows besides each shadow's first (threads running the calls of one client thread each, and a spawner per multi-threaded process); they count in the session cgroup's pids.max, and calls of threads past it run on their process's first shadow thread, in turn; 0: every process's calls run in turn (0..=65536)",
        },
        session_memory_mb: u32 {
            default: 0,
            description: "memory of one session's shadows in MiB, page cache included (memory.max of its cgroup tether/session-N, with cgroup v2 at /sys/fs/cgroup); 0: charged there, not limited (0..=4194304)",
        },
        max_queued_kb: u32 {
            default: 16384,
            description: "most request data queued for one shadow, in KiB; more is refused with EAGAIN (a single request always fits)",
        },
        insecure: bool {
            default: false,
            description: "admit clients from any vsock source port (default: only reserved ports below 1024, which only privileged client processes can bind, like NFS's secure option)",
        },
        no_auth: bool {
            default: false,
            description: "serve without the shared key (key_file=): any process that reaches the port from an allowed CID is a client",
        },
        handshake_ms: u32 {
            default: 5000,
            description: "a connection must complete its handshake (CHALLENGE, HELLO) within this many ms (100..=60000)",
        },
        max_handshakes: u32 {
            default: 16,
            description: "most connections waiting for their HELLO at once; more are refused (1..=1024)",
        },
        max_sessions_per_cid: u32 {
            default: 32,
            description: "most sessions of one client CID (connected or kept for resumption); more are refused (1..=max_sessions)",
        },
    },
}
