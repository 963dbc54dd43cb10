// SPDX-License-Identifier: GPL-2.0

//! Implements remote `fcntl(2)` (record locks and file status flags) and `flock(2)`. The
//! locks taken are logged, so that a replay takes them again (`journal.rs`, `Lock`).

use kernel::{bindings, prelude::*, uaccess::UserPtr, uaccess::UserSlice};

use super::generic::generic;
use super::proxy::Proxy;
use super::Dispatch;
use crate::num::{arg_u32, user_addr};
use crate::proto::calls::{
    F_GETFL, F_OFD_SETLK, F_OFD_SETLKW, F_SETFL, F_SETLK, F_SETLKW, LOCK_CMDS,
};
use crate::proto::sysno;
use crate::recovery::journal::{Lock, FLOCK_SIZE};
use crate::state::client;

/// Implements remote `fcntl(2)`: record locks (`F_GETLK`, `F_SETLK`, `F_SETLKW` and their
/// OFD forms) and the file status flags run on the server's file. `F_GETFL` returns the
/// server file's flags (what the open made of them: `O_LARGEFILE`, `O_DIRECT`, ...);
/// `F_SETFL` sets them there and, once the server accepted them, on the proxy file too,
/// where `write` looks for `O_APPEND`, and in the log, so that a replay reopens the file
/// with them. The other commands work on the proxy file itself:
/// `F_GETFD`/`F_SETFD` (close-on-exec is per client fd), `F_DUPFD`/`F_DUPFD_CLOEXEC` (a
/// client fd for the same proxy file, so the same server fd and offset).
pub(crate) fn fcntl(a: &[u64; 6]) -> Dispatch {
    match a[1] {
        F_GETFL => generic(sysno::FCNTL, a),
        F_SETFL => {
            let Some(p) = Proxy::get(a[0]) else {
                return Dispatch::Local;
            };
            let d = generic(sysno::FCNTL, a);
            if let Dispatch::Done(0) = d {
                // The kernel takes `F_SETFL`'s argument as `unsigned int`.
                p.set_status_flags(arg_u32(a[2]));
                if let Some(shared) = client() {
                    shared
                        .log
                        .lock()
                        .set_status_flags(p.rpid, p.sfd, arg_u32(a[2]));
                }
            }
            d
        }
        cmd @ (F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW) => {
            let d = generic(sysno::FCNTL, a);
            if let Dispatch::Done(0) = d {
                // Taken again without waiting: nobody else can hold it on the new server
                // before the replay ends.
                let cmd = if matches!(cmd, F_SETLK | F_SETLKW) {
                    F_SETLK
                } else {
                    F_OFD_SETLK
                };
                let mut flock = [0u8; FLOCK_SIZE];
                let read = user_addr(a[2]).and_then(|at| {
                    UserSlice::new(UserPtr::from_addr(at), FLOCK_SIZE)
                        .reader()
                        .read_slice(&mut flock)
                });
                if read.is_ok() {
                    log_lock(a[0], Lock::Record { cmd, flock });
                }
            }
            d
        }
        cmd if LOCK_CMDS.contains(&cmd) => generic(sysno::FCNTL, a),
        _ => Dispatch::Local,
    }
}

/// Implements remote `flock(2)`.
pub(crate) fn flock(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::FLOCK, a);
    if let Dispatch::Done(0) = d {
        // The kernel takes the operation as `unsigned int`.
        log_lock(a[0], Lock::Flock(arg_u32(a[1]) & !bindings::LOCK_NB));
    }
    d
}

/// Logs `lock`, taken through client fd `fd`.
fn log_lock(fd: u64, lock: Lock) {
    let (Some(p), Some(shared)) = (Proxy::get(fd), client()) else {
        return;
    };
    if shared.log.lock().locked(p.rpid, p.sfd, lock).is_err() {
        pr_notice!(
            "syscall log: a lock of pid {} on server fd {} not recorded: a replay will not take it again\n",
            p.rpid,
            p.sfd
        );
    }
}
