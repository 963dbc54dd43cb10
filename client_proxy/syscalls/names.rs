// SPDX-License-Identifier: GPL-2.0

//! Implements remote `rename(2)`, `renameat(2)`, `renameat2(2)`, `unlink(2)` and
//! `unlinkat(2)`: the calls that take a name from a file. The journal follows the files a
//! rename moves; the writes retained for a name a call removed or moved are dropped once
//! it succeeded, as the server's commit made their data durable (the shadow's commit, in
//! `userspace-tools/tether-shadow.c`, syncs the whole export when it cannot: then the reply
//! says so and everything retained before the call goes, `rpc.rs`).

use kernel::{alloc::KVVec, bindings, prelude::*};

use super::cwd::journal_failed;
use super::generic::generic;
use super::paths::PathArg;
use super::proxy::Proxy;
use super::{rpid, Dispatch};
use crate::num::{arg_i32, reg_i32};
use crate::proto::calls::AT_FDCWD;
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
    let Some(shared) = client() else {
        return generic(nr, a);
    };
    let paths = rename_paths(&shared, at);
    let id = paths.as_ref().ok().and_then(|(o, n)| {
        let begun = shared.log.lock().begin_rename(o, n);
        journal_failed(begun.map(|_| ()), "rename", rpid());
        begun.ok()
    });
    let stamp = shared.retained.lock().stamp();
    let d = generic(nr, a);
    let mut log = shared.log.lock();
    if let Some(id) = id {
        log.end_rename(id);
    }
    if let (Dispatch::Done(0), Ok((o, n))) = (&d, &paths) {
        if log
            .renamed(o, n, flags & u64::from(bindings::RENAME_EXCHANGE) != 0)
            .is_err()
        {
            pr_notice!(
                "syscall log: no memory to follow a rename of pid {}\n",
                rpid()
            );
        }
        let mut retained = shared.retained.lock();
        retained.synced(o, stamp);
        retained.synced(n, stamp);
    }
    d
}

/// Implements remote `unlink(2)`.
pub(crate) fn unlink(a: &[u64; 6]) -> Dispatch {
    unlinking(sysno::UNLINK, a, reg_i32(AT_FDCWD), a[0], 0)
}

/// Implements remote `unlinkat(2)`.
pub(crate) fn unlinkat(a: &[u64; 6]) -> Dispatch {
    unlinking(sysno::UNLINKAT, a, a[0], a[1], a[2])
}

/// Runs unlink call `nr` of `(dirfd, path)` with `flags`; once a file's name is gone, so
/// are the writes retained for it.
fn unlinking(nr: u32, a: &[u64; 6], dirfd: u64, path: u64, flags: u64) -> Dispatch {
    let Some(shared) = client() else {
        return generic(nr, a);
    };
    let name = (flags & u64::from(bindings::AT_REMOVEDIR) == 0)
        .then(|| resolved(&shared, dirfd, path).ok())
        .flatten();
    let stamp = shared.retained.lock().stamp();
    let d = generic(nr, a);
    if let (Dispatch::Done(0), Some(name)) = (&d, &name) {
        shared.retained.lock().synced(name, stamp);
    }
    d
}

/// The absolute server path of `path` at `dirfd`, as the calling process resolves it.
fn resolved(shared: &Shared, dirfd: u64, path: u64) -> Result<KVVec<u8>> {
    let path = PathArg::from_user(path)?;
    let dir = (!path.is_absolute() && arg_i32(dirfd) != AT_FDCWD)
        .then(|| Proxy::get(dirfd).map(|p| p.sfd))
        .flatten();
    shared.log.lock().resolve(rpid(), dir, path.bytes())
}

/// The absolute server paths of a rename's `(olddirfd, oldpath, newdirfd, newpath)`.
pub(crate) fn rename_paths(shared: &Shared, at: [u64; 4]) -> Result<(KVVec<u8>, KVVec<u8>)> {
    Ok((
        resolved(shared, at[0], at[1])?,
        resolved(shared, at[2], at[3])?,
    ))
}
