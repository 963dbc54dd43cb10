// SPDX-License-Identifier: GPL-2.0

//! The flusher: makes the data of answered calls durable and tells each client so
//! (`SERVER_FLUSHED`, DESIGN §3.2), and ends sessions whose client did not come back.
//!
//! Every `flush_ms`, or once `flush_dirty_kb` of request data arrived, it records each
//! session's highest answered seq, syncs the export root's file system (`syncfs`: the
//! shadows write through ordinary system calls, so that covers all of them) and, when the
//! sync succeeded and no writeback error was reported since the previous one, sends each
//! session `SERVER_FLUSHED {up_to_seq, boot_verifier}`. A failed sync is never acked: the
//! boot verifier rotates and every session hears the new value, so that its client sends
//! again what it retained.

use kernel::{
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    time::{delay::fsleep, Delta, Instant, Monotonic},
};

use crate::faults::Point;
use crate::server::Shared;
use crate::transport::random_u64;

/// Granularity of the flusher's sleep (unload, dirty threshold and expiry checks).
const SLICE_MS: i64 = 20;

extern "C" {
    fn tether_sync_open() -> kernel::ffi::c_int;
    fn tether_sync_root() -> kernel::ffi::c_int;
    fn tether_sync_release();
}

/// The export root, held open for the flusher's syncs from load to unload.
///
/// # Invariants
///
/// The shim's root file is open while this exists, and only one exists.
pub(crate) struct RootFile(());

impl RootFile {
    /// Opens the export root (in the loading process's context: its root and mounts).
    pub(crate) fn open() -> Result<Self> {
        // SAFETY: No preconditions; called once, at load.
        kernel::error::to_result(unsafe { tether_sync_open() })?;
        Ok(Self(()))
    }
}

impl Drop for RootFile {
    fn drop(&mut self) {
        // SAFETY: The flusher, the file's only other user, has returned: the module drops
        // this after its queue, or before ever starting the flusher.
        unsafe { tether_sync_release() };
    }
}

/// The flusher's loop; returns when the module is unloaded.
pub(crate) fn run(shared: Arc<Shared>) {
    let cfg = &shared.config;
    let mut last = Instant::<Monotonic>::now();
    while !shared.is_stopping() {
        fsleep(Delta::from_millis(SLICE_MS));
        if cfg.resume_ms > 0 {
            shared.expire_sessions();
        }
        let dirty = shared.dirty.load(Relaxed);
        let due = last.elapsed().as_millis() >= i64::from(cfg.flush_ms)
            || (cfg.flush_dirty_bytes > 0 && dirty >= cfg.flush_dirty_bytes);
        // While `hold_flush` is on (a test knob) written data stays unflushed, except for a
        // round asked for explicitly (debugfs `flush`, `fail_flush`): a test can then make
        // the next round the failing one without a normal round slipping in before it.
        let asked = shared.flush_now.xchg(false, Relaxed);
        let held = shared.faults.hold_flush.load(Relaxed);
        if (asked || (due && !held)) && !shared.is_stopping() {
            flush(&shared);
            last = Instant::now();
        }
    }
}

/// One round: mark, sync, ack (or rotate the verifier).
fn flush(shared: &Shared) {
    shared.dirty.store(0, Relaxed);
    let sessions = shared.sessions();
    let mut needed = false;
    for s in sessions.iter() {
        needed |= s.sync_start();
    }
    let inject = shared.inject_sync_error.xchg(false, Relaxed);
    if !needed && !inject {
        for s in sessions.iter() {
            s.sync_done(true, shared.verifier());
        }
        return;
    }
    let start = Instant::<Monotonic>::now();
    // SAFETY: Called only from this thread (the flusher), as the shim requires; the file
    // is open (`RootFile` outlives the flusher).
    let mut ret = unsafe { tether_sync_root() };
    let took = u64::try_from(start.elapsed().as_micros_ceil()).unwrap_or(u64::MAX);
    shared.last_flush_us.store(took, Relaxed);
    shared.syncs.add(1, Relaxed);
    if inject && ret == 0 {
        pr_notice!("simulating a writeback error (debugfs fail_flush)\n");
        ret = EIO.to_errno();
    }
    let ok = ret == 0;
    if !ok {
        shared.sync_errors.add(1, Relaxed);
        let old = shared.verifier();
        let new = random_u64();
        shared.boot_verifier.store(new, Relaxed);
        pr_err!(
            "sync of the export root failed ({}): nothing since the last flush is acked; boot verifier {:#x} -> {:#x}, clients send their retained data again\n",
            ret,
            old,
            new
        );
    }
    if ok {
        shared.faults.reached(Point::InFlush, None);
    }
    let verifier = shared.verifier();
    for s in sessions.iter() {
        if s.sync_done(ok, verifier) {
            shared.flushed_sent.add(1, Relaxed);
        }
    }
}
