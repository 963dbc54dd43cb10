// SPDX-License-Identifier: GPL-2.0

//! The route table: what happens to each system call of a tethered task.
//!
//! One table indexed by x86-64 syscall number, consulted for every syscall of a tethered
//! task (see `hook.c`) in [`tether_route`]. 32-bit (ia32, x32) syscalls of tethered tasks
//! are refused with `ENOSYS`: their numbers and layouts are not the table's, and they would
//! bypass the proxy.

use kernel::bindings;

use crate::fs::{self, Arg::*, Dispatch, Handler, Len, Spec};
use crate::{copy, hook, mmap};

/// What happens to one system call of a tethered task.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// Runs on this machine, unchanged (memory, signals, futex, clocks, scheduling, ...).
    Local,
    /// Decided by a handler of its own: runs on the server when it concerns remote files.
    Remote(Handler),
    /// Runs on the server when it concerns remote files, as the spec says ([`fs::generic`]).
    Generic(&'static Spec),
    /// Fails with this errno: the call would bypass the proxy (e.g. io_uring).
    Deny(u32),
}

/// One routed system call.
struct Entry {
    nr: usize,
    route: Route,
}

/// Table size: above every x86-64 syscall number of Linux 7.3.
pub(crate) const NR_SYSCALLS: usize = 512;

/// The calls that are not `Local`, by x86-64 number (the numbers are the stable ABI).
#[rustfmt::skip]
const ROUTED: [Entry; 83] = [
    Entry { nr: 0, route: Route::Remote(fs::read) },
    Entry { nr: 1, route: Route::Remote(fs::write) },
    Entry { nr: 2, route: Route::Remote(fs::open) },
    Entry { nr: 4, route: Route::Generic(&Spec::new(4, [Path, Out(STAT)])) },
    Entry { nr: 5, route: Route::Generic(&Spec::new(5, [Fd, Out(STAT)])) },
    Entry { nr: 6, route: Route::Generic(&Spec::new(6, [Path, Out(STAT)])) },
    Entry { nr: 8, route: Route::Remote(fs::lseek) },
    Entry { nr: 9, route: Route::Remote(mmap::mmap) },
    Entry { nr: 17, route: Route::Remote(fs::pread64) },
    Entry { nr: 18, route: Route::Remote(fs::pwrite64) },
    Entry { nr: 19, route: Route::Remote(fs::readv) },
    Entry { nr: 20, route: Route::Remote(fs::writev) },
    Entry { nr: 21, route: Route::Generic(&Spec::new(21, [Path])) },
    Entry { nr: 40, route: Route::Remote(copy::sendfile) },
    Entry { nr: 72, route: Route::Remote(fs::fcntl) },
    Entry { nr: 73, route: Route::Generic(&Spec::new(73, [Fd])) },
    Entry { nr: 74, route: Route::Generic(&Spec::new(74, [Fd])) },
    Entry { nr: 75, route: Route::Generic(&Spec::new(75, [Fd])) },
    Entry { nr: 76, route: Route::Generic(&Spec::new(76, [Path])) },
    Entry { nr: 77, route: Route::Generic(&Spec::new(77, [Fd])) },
    Entry { nr: 79, route: Route::Generic(&Spec::new(79, [OutRet(Len::Arg(1))])) },
    Entry { nr: 80, route: Route::Remote(fs::chdir) },
    Entry { nr: 81, route: Route::Remote(fs::fchdir) },
    Entry { nr: 82, route: Route::Remote(fs::rename) },
    Entry { nr: 83, route: Route::Generic(&Spec::new(83, [Path])) },
    Entry { nr: 84, route: Route::Generic(&Spec::new(84, [Path])) },
    Entry { nr: 85, route: Route::Remote(fs::creat) },
    Entry { nr: 86, route: Route::Generic(&Spec::new(86, [Path, Path])) },
    Entry { nr: 87, route: Route::Generic(&Spec::new(87, [Path])) },
    Entry { nr: 88, route: Route::Generic(&Spec::new(88, [Str, Path])) },
    Entry { nr: 89, route: Route::Generic(&Spec::new(89, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 90, route: Route::Generic(&Spec::new(90, [Path])) },
    Entry { nr: 91, route: Route::Generic(&Spec::new(91, [Fd])) },
    Entry { nr: 92, route: Route::Generic(&Spec::new(92, [Path])) },
    Entry { nr: 93, route: Route::Generic(&Spec::new(93, [Fd])) },
    Entry { nr: 94, route: Route::Generic(&Spec::new(94, [Path])) },
    Entry { nr: 95, route: Route::Remote(fs::umask) },
    Entry { nr: 133, route: Route::Generic(&Spec::new(133, [Path])) },
    Entry { nr: 137, route: Route::Generic(&Spec::new(137, [Path, Out(STATFS)])) },
    Entry { nr: 138, route: Route::Generic(&Spec::new(138, [Fd, Out(STATFS)])) },
    Entry { nr: 157, route: Route::Remote(hook::prctl) },
    Entry { nr: 188, route: Route::Generic(&Spec::new(188, [Path, Str, In(Len::Arg(3))])) },
    Entry { nr: 189, route: Route::Generic(&Spec::new(189, [Path, Str, In(Len::Arg(3))])) },
    Entry { nr: 190, route: Route::Generic(&Spec::new(190, [Fd, Str, In(Len::Arg(3))])) },
    Entry { nr: 191, route: Route::Generic(&Spec::new(191, [Path, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 192, route: Route::Generic(&Spec::new(192, [Path, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 193, route: Route::Generic(&Spec::new(193, [Fd, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 194, route: Route::Generic(&Spec::new(194, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 195, route: Route::Generic(&Spec::new(195, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 196, route: Route::Generic(&Spec::new(196, [Fd, OutRet(Len::Arg(2))])) },
    Entry { nr: 197, route: Route::Generic(&Spec::new(197, [Path, Str])) },
    Entry { nr: 198, route: Route::Generic(&Spec::new(198, [Path, Str])) },
    Entry { nr: 199, route: Route::Generic(&Spec::new(199, [Fd, Str])) },
    Entry { nr: 217, route: Route::Remote(fs::getdents64) },
    Entry { nr: 257, route: Route::Remote(fs::openat) },
    Entry { nr: 258, route: Route::Generic(&Spec::new(258, [DirFd(1), Path])) },
    Entry { nr: 259, route: Route::Generic(&Spec::new(259, [DirFd(1), Path])) },
    Entry { nr: 260, route: Route::Generic(&Spec::new(260, [DirFd(1), Path])) },
    Entry { nr: 262, route: Route::Generic(&Spec::new(262, [DirFd(1), Path, Out(STAT)])) },
    Entry { nr: 263, route: Route::Generic(&Spec::new(263, [DirFd(1), Path])) },
    Entry { nr: 264, route: Route::Remote(fs::renameat) },
    Entry { nr: 265, route: Route::Generic(&Spec::new(265, [DirFd(1), Path, DirFd(3), Path])) },
    Entry { nr: 266, route: Route::Generic(&Spec::new(266, [Str, DirFd(2), Path])) },
    Entry { nr: 267, route: Route::Generic(&Spec::new(267, [DirFd(1), Path, OutRet(Len::Arg(3))])) },
    Entry { nr: 268, route: Route::Generic(&Spec::new(268, [DirFd(1), Path])) },
    Entry { nr: 269, route: Route::Generic(&Spec::new(269, [DirFd(1), Path])) },
    Entry { nr: 277, route: Route::Generic(&Spec::new(277, [Fd])) },
    Entry { nr: 280, route: Route::Generic(&Spec::new(280, [DirFd(1), Path, In(Len::Fixed(32))])) },
    Entry { nr: 285, route: Route::Generic(&Spec::new(285, [Fd])) },
    Entry { nr: 306, route: Route::Generic(&Spec::new(306, [Fd])) },
    Entry { nr: 295, route: Route::Remote(fs::preadv) },
    Entry { nr: 296, route: Route::Remote(fs::pwritev) },
    Entry { nr: 316, route: Route::Remote(fs::renameat2) },
    Entry { nr: 326, route: Route::Remote(copy::copy_file_range) },
    Entry { nr: 327, route: Route::Remote(fs::preadv) },
    Entry { nr: 328, route: Route::Remote(fs::pwritev) },
    Entry { nr: 332, route: Route::Generic(&Spec::new(332, [DirFd(1), Path, Val, Val, Out(STATX)])) },
    // An io_uring would run I/O without passing through the proxy.
    Entry { nr: 425, route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 426, route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 427, route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 437, route: Route::Remote(fs::openat2) },
    Entry { nr: 439, route: Route::Generic(&Spec::new(439, [DirFd(1), Path])) },
    Entry { nr: 452, route: Route::Generic(&Spec::new(452, [DirFd(1), Path])) },
];

/// Sizes of the structures calls fill in (x86-64).
const STAT: Len = Len::Fixed(144);
const STATFS: Len = Len::Fixed(120);
const STATX: Len = Len::Fixed(256);

const fn build() -> [Route; NR_SYSCALLS] {
    let mut table = [Route::Local; NR_SYSCALLS];
    let mut i = 0;
    while i < ROUTED.len() {
        table[ROUTED[i].nr] = ROUTED[i].route;
        i += 1;
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
        Dispatch::Done(-(bindings::ENOSYS as isize))
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
            Route::Deny(errno) => Dispatch::Done(-(errno as isize)),
            Route::Remote(handler) => handler(&args),
            Route::Generic(spec) => fs::generic(spec, &args),
        }
    };
    match dispatch {
        Dispatch::Local => false,
        Dispatch::Done(ret) => {
            r.ax = ret as usize;
            true
        }
    }
}
