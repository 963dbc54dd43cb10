// SPDX-License-Identifier: GPL-2.0

//! The identity and file-size limit of a tethered process, mirrored to its shadow.
//!
//! Before each remote call of a process the calling thread's ids, supplementary groups and
//! `RLIMIT_FSIZE` are compared with what its shadow was last given (the syscall log keeps
//! it, per session); when they differ, or the session is new, a `CLIENT_ATTRS` goes out
//! ahead of the call. So `setuid`/`setgroups`/`setrlimit`/`prlimit` (by the process or by
//! another one) and `su`-like programs need no routes of their own: whatever the process
//! is when it makes a remote call is what its shadow is for that call. The server maps
//! the ids by its policy (`squash_root`).

use kernel::prelude::*;

use crate::link::rpc;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::process::{ProcAttrs, MAX_GROUPS};
use crate::state::Shared;
use crate::transport::Sender;

extern "C" {
    fn tether_current_attrs(
        ids: *mut u32,
        fsize: *mut u64,
        groups: *mut u32,
        max: kernel::ffi::c_uint,
    ) -> kernel::ffi::c_uint;
}

/// The calling thread's identity and file-size limit.
fn current() -> ProcAttrs {
    let mut a = ProcAttrs::default();
    let (mut ids, mut fsize) = ([0u32; 6], [0u64; 2]);
    let max = u32::try_from(MAX_GROUPS).unwrap_or(0);
    // SAFETY: `ids` holds 6 ids, `fsize` 2 limits and `a.groups` `MAX_GROUPS` ids; the shim
    // writes no more.
    let n = unsafe {
        tether_current_attrs(
            ids.as_mut_ptr(),
            fsize.as_mut_ptr(),
            a.groups.as_mut_ptr(),
            max,
        )
    };
    [a.uid, a.euid, a.fsuid, a.gid, a.egid, a.fsgid] = ids;
    [a.fsize_cur, a.fsize_max] = fsize;
    if n as usize > MAX_GROUPS {
        pr_notice!(
            "pid {} has {} supplementary groups: its shadow gets the first {}\n",
            kernel::current!().tgid(),
            n,
            MAX_GROUPS
        );
    }
    a.ngroups = n.min(max);
    a
}

/// Makes sure the shadow of `rpid` (the calling process) has the caller's identity and
/// file-size limit before the caller's next call goes out on `tx` (whose lock the caller
/// holds) in `session`: sends a `CLIENT_ATTRS` when they changed or the session is new.
pub(crate) fn sync(shared: &Shared, tx: &mut Sender, session: u32, rpid: u32) -> Result {
    let now = current();
    if shared.log.lock().attrs(rpid) == Some((session, now)) {
        return Ok(());
    }
    send(shared, tx, session, rpid, &now)
}

/// Sends `attrs` for the shadow of `rpid` and records them in the log.
pub(crate) fn send(
    shared: &Shared,
    tx: &mut Sender,
    session: u32,
    rpid: u32,
    attrs: &ProcAttrs,
) -> Result {
    send_only(tx, session, rpid, attrs)?;
    if shared.log.lock().set_attrs(rpid, session, attrs).is_err() {
        pr_notice!(
            "syscall log: no memory to record the identity of pid {}\n",
            rpid
        );
    }
    Ok(())
}

/// Sends `attrs` for the shadow of `rpid` (one that is no process of the log's).
pub(crate) fn send_only(tx: &mut Sender, session: u32, rpid: u32, attrs: &ProcAttrs) -> Result {
    let mut body = [0u8; ProcAttrs::MAX_LEN];
    let n = attrs.encode(&mut body).map_err(|_| EINVAL)?;
    let hdr = Header {
        session,
        rpid,
        seq: rpc::next_seq(),
        ..Header::new(Kind::ClientAttrs, 0)
    };
    tx.send(hdr, body.get(..n).ok_or(EINVAL)?)
}
