// SPDX-License-Identifier: GPL-2.0

//! The route table: what happens to each system call of a tethered task.
//!
//! One table indexed by x86-64 syscall number, consulted for every syscall of a tethered
//! task (see `hook.c`) in [`tether_route`]. 32-bit (ia32, x32) syscalls of tethered tasks
//! are refused with `ENOSYS`: their numbers and layouts are not the table's, and they would
//! bypass the proxy.

use kernel::bindings;
use kernel::error::{code::ENOSYS, Error};

use crate::num::{ret_isize, ret_reg};
use crate::proto::calls;
use crate::proto::sysno::*;
use crate::syscalls::{cwd, dir, fcntl, generic, io, names, open, Dispatch, Handler};
use crate::{intercept::hook, syscalls::copy, syscalls::mmap, syscalls::shmap};

/// What happens to one system call of a tethered task.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// Runs on this machine, unchanged (memory, signals, futex, clocks, scheduling, ...).
    Local,
    /// Decided by a handler of its own: runs on the server when it concerns remote files.
    Remote(Handler),
    /// Runs on the server when it concerns remote files, as its spec in the call table
    /// (`proto::calls`) says ([`generic::generic`]).
    Generic,
    /// Fails with this error: the call would bypass the proxy (e.g. io_uring).
    Deny(Error),
}

/// One routed system call.
struct Entry {
    nr: u32,
    /// The call's name (for people: `tetherctl`, logs).
    #[allow(dead_code)]
    name: &'static str,
    route: Route,
}

/// `route!(NR, "name", ROUTE)`: the entry of system call `sysno::NR`.
macro_rules! route {
    ($nr:ident, $name:literal, $route:ident $(($arg:expr))?) => {
        Entry {
            nr: $nr,
            name: $name,
            route: Route::$route $(($arg))?,
        }
    };
}

/// The calls that are not `Local`.
#[rustfmt::skip]
const ROUTED: [Entry; 86] = [
    route!(READ, "read", Remote(io::read)),
    route!(WRITE, "write", Remote(io::write)),
    route!(OPEN, "open", Remote(open::open)),
    route!(STAT, "stat", Generic),
    route!(FSTAT, "fstat", Generic),
    route!(LSTAT, "lstat", Generic),
    route!(LSEEK, "lseek", Remote(io::lseek)),
    route!(MMAP, "mmap", Remote(mmap::mmap)),
    route!(MUNMAP, "munmap", Remote(shmap::munmap)),
    route!(PREAD64, "pread64", Remote(io::pread64)),
    route!(PWRITE64, "pwrite64", Remote(io::pwrite64)),
    route!(READV, "readv", Remote(io::readv)),
    route!(WRITEV, "writev", Remote(io::writev)),
    route!(ACCESS, "access", Generic),
    route!(MSYNC, "msync", Remote(shmap::msync)),
    route!(SENDFILE, "sendfile", Remote(copy::sendfile)),
    route!(FCNTL, "fcntl", Remote(fcntl::fcntl)),
    route!(FLOCK, "flock", Remote(fcntl::flock)),
    route!(FSYNC, "fsync", Remote(shmap::fsync)),
    route!(FDATASYNC, "fdatasync", Remote(shmap::fdatasync)),
    route!(TRUNCATE, "truncate", Generic),
    route!(FTRUNCATE, "ftruncate", Generic),
    route!(GETCWD, "getcwd", Generic),
    route!(CHDIR, "chdir", Remote(cwd::chdir)),
    route!(FCHDIR, "fchdir", Remote(cwd::fchdir)),
    route!(RENAME, "rename", Remote(names::rename)),
    route!(MKDIR, "mkdir", Generic),
    route!(RMDIR, "rmdir", Generic),
    route!(CREAT, "creat", Remote(open::creat)),
    route!(LINK, "link", Generic),
    route!(UNLINK, "unlink", Remote(names::unlink)),
    route!(SYMLINK, "symlink", Generic),
    route!(READLINK, "readlink", Generic),
    route!(CHMOD, "chmod", Generic),
    route!(FCHMOD, "fchmod", Generic),
    route!(CHOWN, "chown", Generic),
    route!(FCHOWN, "fchown", Generic),
    route!(LCHOWN, "lchown", Generic),
    route!(UMASK, "umask", Remote(cwd::umask)),
    route!(MKNOD, "mknod", Generic),
    route!(STATFS, "statfs", Generic),
    route!(FSTATFS, "fstatfs", Generic),
    route!(PRCTL, "prctl", Remote(hook::prctl)),
    route!(SETXATTR, "setxattr", Generic),
    route!(LSETXATTR, "lsetxattr", Generic),
    route!(FSETXATTR, "fsetxattr", Generic),
    route!(GETXATTR, "getxattr", Generic),
    route!(LGETXATTR, "lgetxattr", Generic),
    route!(FGETXATTR, "fgetxattr", Generic),
    route!(LISTXATTR, "listxattr", Generic),
    route!(LLISTXATTR, "llistxattr", Generic),
    route!(FLISTXATTR, "flistxattr", Generic),
    route!(REMOVEXATTR, "removexattr", Generic),
    route!(LREMOVEXATTR, "lremovexattr", Generic),
    route!(FREMOVEXATTR, "fremovexattr", Generic),
    route!(GETDENTS64, "getdents64", Remote(dir::getdents64)),
    route!(EXIT_GROUP, "exit_group", Remote(shmap::exit_group)),
    route!(OPENAT, "openat", Remote(open::openat)),
    route!(MKDIRAT, "mkdirat", Generic),
    route!(MKNODAT, "mknodat", Generic),
    route!(FCHOWNAT, "fchownat", Generic),
    route!(NEWFSTATAT, "newfstatat", Generic),
    route!(UNLINKAT, "unlinkat", Remote(names::unlinkat)),
    route!(RENAMEAT, "renameat", Remote(names::renameat)),
    route!(LINKAT, "linkat", Generic),
    route!(SYMLINKAT, "symlinkat", Generic),
    route!(READLINKAT, "readlinkat", Generic),
    route!(FCHMODAT, "fchmodat", Generic),
    route!(FACCESSAT, "faccessat", Generic),
    route!(SYNC_FILE_RANGE, "sync_file_range", Generic),
    route!(UTIMENSAT, "utimensat", Generic),
    route!(FALLOCATE, "fallocate", Generic),
    route!(SYNCFS, "syncfs", Generic),
    route!(PREADV, "preadv", Remote(io::preadv)),
    route!(PWRITEV, "pwritev", Remote(io::pwritev)),
    route!(RENAMEAT2, "renameat2", Remote(names::renameat2)),
    route!(COPY_FILE_RANGE, "copy_file_range", Remote(copy::copy_file_range)),
    route!(PREADV2, "preadv2", Remote(io::preadv2)),
    route!(PWRITEV2, "pwritev2", Remote(io::pwritev2)),
    route!(STATX, "statx", Generic),
    // An io_uring would run I/O without passing through the proxy.
    route!(IO_URING_SETUP, "io_uring_setup", Deny(ENOSYS)),
    route!(IO_URING_ENTER, "io_uring_enter", Deny(ENOSYS)),
    route!(IO_URING_REGISTER, "io_uring_register", Deny(ENOSYS)),
    route!(OPENAT2, "openat2", Remote(open::openat2)),
    route!(FACCESSAT2, "faccessat2", Generic),
    route!(FCHMODAT2, "fchmodat2", Generic),
];

const fn build() -> [Route; NR_SYSCALLS] {
    let mut table = [Route::Local; NR_SYSCALLS];
    let mut rest: &[Entry] = &ROUTED;
    while let [e, tail @ ..] = rest {
        // Every call the generic handler forwards is one a shadow runs: the client's and
        // the server's tables agree, or the module does not build.
        if let Route::Generic = e.route {
            assert!(calls::is_call(e.nr), "a Generic route without a call spec");
        }
        table[e.nr as usize] = e.route;
        rest = tail;
    }
    table
}

/// The route of every syscall number.
static TABLE: [Route; NR_SYSCALLS] = build();

/// The route of syscall `nr`.
pub(crate) fn route(nr: usize) -> Route {
    TABLE.get(nr).copied().unwrap_or(Route::Local)
}

extern "C" {
    fn tether_in_compat_syscall() -> bool;
}

/// Where every syscall of a tethered task lands first (from `tether_dispatch()` in `hook.c`).
/// Returns whether the call is done: its return value is then in `regs->ax` and the kernel
/// skips the syscall; otherwise it runs locally as usual.
///
/// # Safety
///
/// `regs` points to the calling task's syscall registers, at syscall entry.
#[no_mangle]
unsafe extern "C" fn tether_route(regs: *mut bindings::pt_regs) -> bool {
    // SAFETY: `regs` is valid and only this task uses it during the call, as the caller
    // guarantees.
    let r = unsafe { &mut *regs };
    // SAFETY: No preconditions; current is at syscall entry.
    let dispatch = if unsafe { tether_in_compat_syscall() } {
        Dispatch::Done(ret_isize(Err(ENOSYS)))
    } else {
        let args = [
            r.di as u64,
            r.si as u64,
            r.dx as u64,
            r.r10 as u64,
            r.r8 as u64,
            r.r9 as u64,
        ];
        match route(r.orig_ax) {
            Route::Local => Dispatch::Local,
            Route::Deny(e) => Dispatch::Done(ret_isize(Err(e))),
            Route::Remote(handler) => handler(&args),
            Route::Generic => generic::generic(u32::try_from(r.orig_ax).unwrap_or(u32::MAX), &args),
        }
    };
    match dispatch {
        Dispatch::Local => false,
        Dispatch::Done(ret) => {
            r.ax = ret_reg(ret);
            true
        }
    }
}
