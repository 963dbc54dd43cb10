// SPDX-License-Identifier: GPL-2.0

//! Implements remote `fcntl(2)`: record locks and file status flags.

use super::generic::generic;
use super::proxy::Proxy;
use super::Dispatch;
use crate::num::arg_u32;
use crate::proto::calls::{F_GETFL, F_SETFL, LOCK_CMDS};
use crate::proto::sysno;
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
        cmd if LOCK_CMDS.contains(&cmd) => generic(sysno::FCNTL, a),
        _ => Dispatch::Local,
    }
}
