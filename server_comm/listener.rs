// SPDX-License-Identifier: GPL-2.0

//! The accept loop: admits clients on the allow-list and starts a connection worker for
//! each (`conn::serve`: handshake, then a new or resumed session).

use kernel::{prelude::*, sync::atomic::Relaxed, sync::Arc, time::Delta};

use crate::conn;
use crate::proto::error::ProtoError;
use crate::server::Shared;
use crate::transport::{OwnedQueue, Socket};

/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL_MS: u32 = 200;

/// Source ports below this are reserved: only privileged processes can bind them.
const RESERVED_PORTS: u32 = 1024;
/// Send timeout of a connection until its worker sets its own: a refusal must not wait for
/// a peer that grants no send credit.
const ADMIT_SEND_MS: u32 = 200;

/// Starts the accept loop on `queue`.
pub(crate) fn start(queue: &OwnedQueue, shared: Arc<Shared>, listener: Arc<Socket>) -> Result {
    listener.set_timeouts(ACCEPT_POLL_MS, 0);
    let q = queue.queue();
    // The queue outlives its work items: the module destroys it only after they return.
    let qptr: *const kernel::workqueue::Queue = q;
    let qref = QueueRef(qptr);
    q.try_spawn(GFP_KERNEL, move || run(&qref, &shared, &listener))?;
    Ok(())
}

/// A pointer to the module's queue, handed to the accept loop that runs on it.
///
/// # Invariants
///
/// Points to a queue that is destroyed only after every work item on it has returned.
struct QueueRef(*const kernel::workqueue::Queue);

// SAFETY: A `Queue` may be used from any thread.
unsafe impl Send for QueueRef {}

fn run(qref: &QueueRef, shared: &Arc<Shared>, listener: &Socket) {
    // SAFETY: By the type invariant the queue outlives this work item, which holds the
    // reference only while it runs.
    let queue = unsafe { &*qref.0 };
    while !shared.is_stopping() {
        let (sock, peer, port) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e == EAGAIN || e == EINTR || e == ERESTARTSYS => continue,
            Err(e) => {
                if !shared.is_stopping() {
                    pr_err!("accept failed: {:?}\n", e);
                    kernel::time::delay::fsleep(Delta::from_millis(100));
                }
                continue;
            }
        };
        let sock = match Arc::new(sock, GFP_KERNEL) {
            Ok(s) => s,
            Err(_) => continue,
        };
        sock.set_timeouts(shared.config.heartbeat_ms, ADMIT_SEND_MS);
        if !shared.exports.allowed(peer) {
            conn::refuse(
                shared,
                &sock,
                peer,
                ProtoError::NotAllowed,
                fmt!("peer not allowed"),
            );
            continue;
        }
        if port >= RESERVED_PORTS && !shared.config.insecure {
            shared.port_refusals.add(1, Relaxed);
            conn::refuse(
                shared,
                &sock,
                peer,
                ProtoError::AuthFailed,
                fmt!(
                    "source port {} is not reserved (< {}; insecure=1 admits any)",
                    port,
                    RESERVED_PORTS
                ),
            );
            continue;
        }
        if shared.is_stopping() {
            break;
        }
        // Counted until the connection's handshake ends (`conn::serve`).
        let max = i32::try_from(shared.config.max_handshakes).unwrap_or(i32::MAX);
        if shared.handshaking.fetch_add(1, Relaxed) >= max {
            shared.handshaking.add(-1, Relaxed);
            shared.limit_refusals.add(1, Relaxed);
            conn::refuse(
                shared,
                &sock,
                peer,
                ProtoError::Busy,
                fmt!(
                    "{} connections are waiting for their HELLO (max_handshakes)",
                    shared.config.max_handshakes
                ),
            );
            continue;
        }
        shared.accepted.add(1, Relaxed);
        let (sh, so) = (shared.clone(), sock.clone());
        if queue
            .try_spawn(GFP_KERNEL, move || conn::serve(sh, so, peer))
            .is_err()
        {
            shared.handshaking.add(-1, Relaxed);
            conn::refuse(
                shared,
                &sock,
                peer,
                ProtoError::BadValue,
                fmt!("out of memory"),
            );
        }
    }
}
