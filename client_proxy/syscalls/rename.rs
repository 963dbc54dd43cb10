// SPDX-License-Identifier: GPL-2.0

//! Implements remote `rename(2)`, `renameat(2)`, `renameat2(2)`: the journal follows the
//! files they move.

use kernel::{alloc::KVVec, prelude::*};

use super::generic::generic;
use super::paths::{PathArg, AT_FDCWD};
use super::proxy::Proxy;
use super::{rpid, Dispatch};
use crate::num::{arg_i32, reg_i32};
use crate::proto::sysno;
use crate::state::client;
use crate::state::Shared;

/// Implements remote `rename(2)`; the log's open files and cwds follow.
pub(crate) fn rename(a: &[u64; 6]) -> Dispatch {
    let cwd = reg_i32(AT_FDCWD);
    renaming(sysno::RENAME, a, [cwd, a[0], cwd, a[1]], 0)
}

/// Implements remote `renameat(2)`; the log's open files and cwds follow.
pub(crate) fn renameat(a: &[u64; 6]) -> Dispatch {
    renaming(sysno::RENAMEAT, a, [a[0], a[1], a[2], a[3]], 0)
}

/// Implements remote `renameat2(2)`; the log's open files and cwds follow.
pub(crate) fn renameat2(a: &[u64; 6]) -> Dispatch {
    renaming(sysno::RENAMEAT2, a, [a[0], a[1], a[2], a[3]], a[4])
}

/// Runs rename call `nr` of `(olddirfd, oldpath, newdirfd, newpath)` with `flags`. The
/// log knows it while it is out (a replay then may find the files it moved under their new
/// names: its reply may be lost with the server after it ran) and follows it once it
/// succeeded.
pub(crate) fn renaming(nr: u32, a: &[u64; 6], at: [u64; 4], flags: u64) -> Dispatch {
    const RENAME_EXCHANGE: u64 = 2;
    let Some(shared) = client() else {
        return generic(nr, a);
    };
    let paths = rename_paths(&shared, at);
    let id = paths
        .as_ref()
        .ok()
        .and_then(|(o, n)| shared.log.lock().begin_rename(o, n).ok());
    let d = generic(nr, a);
    let mut log = shared.log.lock();
    if let Some(id) = id {
        log.end_rename(id);
    }
    if let (Dispatch::Done(0), Ok((o, n))) = (&d, &paths) {
        if log.renamed(o, n, flags & RENAME_EXCHANGE != 0).is_err() {
            pr_notice!(
                "syscall log: no memory to follow a rename of pid {}\n",
                rpid()
            );
        }
    }
    d
}

/// The absolute server paths of a rename's `(olddirfd, oldpath, newdirfd, newpath)`.
pub(crate) fn rename_paths(shared: &Shared, at: [u64; 4]) -> Result<(KVVec<u8>, KVVec<u8>)> {
    let (old, new) = (PathArg::from_user(at[1])?, PathArg::from_user(at[3])?);
    // The dirfds' server fds, looked up before the log is locked (`Proxy::get` takes it).
    let dir = |fd: u64, path: &PathArg| {
        (!path.is_absolute() && arg_i32(fd) != AT_FDCWD)
            .then(|| Proxy::get(fd).map(|p| p.sfd))
            .flatten()
    };
    let (odir, ndir) = (dir(at[0], &old), dir(at[2], &new));
    let rpid = rpid();
    let mut log = shared.log.lock();
    let o = log.resolve(rpid, odir, old.bytes())?;
    let n = log.resolve(rpid, ndir, new.bytes())?;
    Ok((o, n))
}
