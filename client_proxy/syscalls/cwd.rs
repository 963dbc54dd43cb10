// SPDX-License-Identifier: GPL-2.0

//! Implements remote `chdir(2)`, `fchdir(2)`, `umask(2)`: process state the journal keeps
//! for replay.

use kernel::prelude::*;

use super::generic::generic;
use super::paths::PathArg;
use super::proxy::Proxy;
use super::{rpid, Dispatch};
use crate::num::arg_u32;
use crate::proto::sysno;
use crate::state::client;

/// Implements remote `chdir(2)`; the log keeps the new cwd.
pub(crate) fn chdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::CHDIR, a);
    if let (Dispatch::Done(0), Some(shared)) = (&d, client()) {
        let rpid = rpid();
        let logged = PathArg::from_user(a[0]).and_then(|path| {
            let mut log = shared.log.lock();
            log.resolve(rpid, None, path.bytes())
                .and_then(|abs| log.chdir(rpid, abs))
        });
        journal_failed(logged, "chdir", rpid);
    }
    d
}

/// Reports a journal update that failed (no memory, or the task changed its path argument
/// meanwhile): the call's result stands, but a replay after a server crash restores the
/// state the journal has.
pub(crate) fn journal_failed(r: Result, what: &str, rpid: u32) {
    if let Err(e) = r {
        pr_notice!(
            "syscall log: cannot record the {} of pid {} ({:?}): a replay restores the previous state\n",
            what,
            rpid,
            e
        );
    }
}

/// Implements remote `umask(2)`; the log keeps the mask for replay.
pub(crate) fn umask(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::UMASK, a);
    if let (Dispatch::Done(old), Some(shared)) = (&d, client()) {
        if *old >= 0 {
            let rpid = rpid();
            let logged = shared.log.lock().umask(rpid, arg_u32(a[0]) & 0o777);
            journal_failed(logged, "umask", rpid);
        }
    }
    d
}

/// Implements remote `fchdir(2)`; the log keeps the new cwd.
pub(crate) fn fchdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::FCHDIR, a);
    if let (Dispatch::Done(0), Some(p), Some(shared)) = (&d, Proxy::get(a[0]), client()) {
        let logged = shared.log.lock().fchdir(p.rpid, p.sfd);
        journal_failed(logged, "fchdir", p.rpid);
    }
    d
}
