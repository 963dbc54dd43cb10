// SPDX-License-Identifier: GPL-2.0

//! The route table: what happens to each system call of a tethered task.
//!
//! One table indexed by x86-64 syscall number. Calls the table leaves `Local` are never
//! hooked and cost nothing; the others are hooked at their `__x64_sys_<name>` entry
//! (see `hook.c`) and land in [`tether_route`].

use kernel::{bindings, ffi::c_long, prelude::*};

use crate::fs::{self, Arg::*, Dispatch, Handler, Len, Spec};
use crate::hook;

/// What happens to one system call of a tethered task.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// Runs on this machine, unchanged (memory, signals, futex, clocks, scheduling, ...).
    Local,
    /// Runs on the server when it concerns remote files, by a handler of its own.
    Remote(Handler),
    /// Runs on the server when it concerns remote files, as the spec says ([`fs::generic`]).
    Generic(&'static Spec),
    /// Fails with this errno: the call would bypass the proxy (e.g. io_uring).
    Deny(u32),
    /// `execve`/`execveat`, hooked for every task: exec of a file carrying
    /// `trusted.tether.loader` tethers the task.
    Exec,
}

/// One routed system call.
struct Entry {
    nr: usize,
    /// The hooked kernel function, `__x64_sys_<name>`.
    sym: &'static CStr,
    route: Route,
}

/// Table size: above every x86-64 syscall number of Linux 7.3.
pub(crate) const NR_SYSCALLS: usize = 512;

/// The calls that are not `Local`, by x86-64 number (the numbers are the stable ABI).
#[rustfmt::skip]
const ROUTED: [Entry; 79] = [
    Entry { nr: 0, sym: c"__x64_sys_read", route: Route::Remote(fs::read) },
    Entry { nr: 1, sym: c"__x64_sys_write", route: Route::Remote(fs::write) },
    Entry { nr: 2, sym: c"__x64_sys_open", route: Route::Remote(fs::open) },
    Entry { nr: 4, sym: c"__x64_sys_newstat", route: Route::Generic(&Spec::new(4, [Path, Out(STAT)])) },
    Entry { nr: 5, sym: c"__x64_sys_newfstat", route: Route::Generic(&Spec::new(5, [Fd, Out(STAT)])) },
    Entry { nr: 6, sym: c"__x64_sys_newlstat", route: Route::Generic(&Spec::new(6, [Path, Out(STAT)])) },
    Entry { nr: 8, sym: c"__x64_sys_lseek", route: Route::Remote(fs::lseek) },
    Entry { nr: 17, sym: c"__x64_sys_pread64", route: Route::Generic(&Spec::new(17, [Fd, OutRet(Len::Arg(2))])) },
    Entry { nr: 18, sym: c"__x64_sys_pwrite64", route: Route::Generic(&Spec::new(18, [Fd, In(Len::Arg(2))])) },
    Entry { nr: 19, sym: c"__x64_sys_readv", route: Route::Remote(fs::readv) },
    Entry { nr: 20, sym: c"__x64_sys_writev", route: Route::Remote(fs::writev) },
    Entry { nr: 21, sym: c"__x64_sys_access", route: Route::Generic(&Spec::new(21, [Path])) },
    Entry { nr: 59, sym: c"__x64_sys_execve", route: Route::Exec },
    Entry { nr: 72, sym: c"__x64_sys_fcntl", route: Route::Remote(fs::fcntl) },
    Entry { nr: 73, sym: c"__x64_sys_flock", route: Route::Generic(&Spec::new(73, [Fd])) },
    Entry { nr: 74, sym: c"__x64_sys_fsync", route: Route::Generic(&Spec::new(74, [Fd])) },
    Entry { nr: 75, sym: c"__x64_sys_fdatasync", route: Route::Generic(&Spec::new(75, [Fd])) },
    Entry { nr: 76, sym: c"__x64_sys_truncate", route: Route::Generic(&Spec::new(76, [Path])) },
    Entry { nr: 77, sym: c"__x64_sys_ftruncate", route: Route::Generic(&Spec::new(77, [Fd])) },
    Entry { nr: 79, sym: c"__x64_sys_getcwd", route: Route::Generic(&Spec::new(79, [OutRet(Len::Arg(1))])) },
    Entry { nr: 80, sym: c"__x64_sys_chdir", route: Route::Remote(fs::chdir) },
    Entry { nr: 81, sym: c"__x64_sys_fchdir", route: Route::Remote(fs::fchdir) },
    Entry { nr: 82, sym: c"__x64_sys_rename", route: Route::Generic(&Spec::new(82, [Path, Path])) },
    Entry { nr: 83, sym: c"__x64_sys_mkdir", route: Route::Generic(&Spec::new(83, [Path])) },
    Entry { nr: 84, sym: c"__x64_sys_rmdir", route: Route::Generic(&Spec::new(84, [Path])) },
    Entry { nr: 85, sym: c"__x64_sys_creat", route: Route::Remote(fs::creat) },
    Entry { nr: 86, sym: c"__x64_sys_link", route: Route::Generic(&Spec::new(86, [Path, Path])) },
    Entry { nr: 87, sym: c"__x64_sys_unlink", route: Route::Generic(&Spec::new(87, [Path])) },
    Entry { nr: 88, sym: c"__x64_sys_symlink", route: Route::Generic(&Spec::new(88, [Str, Path])) },
    Entry { nr: 89, sym: c"__x64_sys_readlink", route: Route::Generic(&Spec::new(89, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 90, sym: c"__x64_sys_chmod", route: Route::Generic(&Spec::new(90, [Path])) },
    Entry { nr: 91, sym: c"__x64_sys_fchmod", route: Route::Generic(&Spec::new(91, [Fd])) },
    Entry { nr: 92, sym: c"__x64_sys_chown", route: Route::Generic(&Spec::new(92, [Path])) },
    Entry { nr: 93, sym: c"__x64_sys_fchown", route: Route::Generic(&Spec::new(93, [Fd])) },
    Entry { nr: 94, sym: c"__x64_sys_lchown", route: Route::Generic(&Spec::new(94, [Path])) },
    Entry { nr: 95, sym: c"__x64_sys_umask", route: Route::Generic(&Spec::new(95, [])) },
    Entry { nr: 133, sym: c"__x64_sys_mknod", route: Route::Generic(&Spec::new(133, [Path])) },
    Entry { nr: 137, sym: c"__x64_sys_statfs", route: Route::Generic(&Spec::new(137, [Path, Out(STATFS)])) },
    Entry { nr: 138, sym: c"__x64_sys_fstatfs", route: Route::Generic(&Spec::new(138, [Fd, Out(STATFS)])) },
    Entry { nr: 188, sym: c"__x64_sys_setxattr", route: Route::Generic(&Spec::new(188, [Path, Str, In(Len::Arg(3))])) },
    Entry { nr: 189, sym: c"__x64_sys_lsetxattr", route: Route::Generic(&Spec::new(189, [Path, Str, In(Len::Arg(3))])) },
    Entry { nr: 190, sym: c"__x64_sys_fsetxattr", route: Route::Generic(&Spec::new(190, [Fd, Str, In(Len::Arg(3))])) },
    Entry { nr: 191, sym: c"__x64_sys_getxattr", route: Route::Generic(&Spec::new(191, [Path, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 192, sym: c"__x64_sys_lgetxattr", route: Route::Generic(&Spec::new(192, [Path, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 193, sym: c"__x64_sys_fgetxattr", route: Route::Generic(&Spec::new(193, [Fd, Str, OutRet(Len::Arg(3))])) },
    Entry { nr: 194, sym: c"__x64_sys_listxattr", route: Route::Generic(&Spec::new(194, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 195, sym: c"__x64_sys_llistxattr", route: Route::Generic(&Spec::new(195, [Path, OutRet(Len::Arg(2))])) },
    Entry { nr: 196, sym: c"__x64_sys_flistxattr", route: Route::Generic(&Spec::new(196, [Fd, OutRet(Len::Arg(2))])) },
    Entry { nr: 197, sym: c"__x64_sys_removexattr", route: Route::Generic(&Spec::new(197, [Path, Str])) },
    Entry { nr: 198, sym: c"__x64_sys_lremovexattr", route: Route::Generic(&Spec::new(198, [Path, Str])) },
    Entry { nr: 199, sym: c"__x64_sys_fremovexattr", route: Route::Generic(&Spec::new(199, [Fd, Str])) },
    Entry { nr: 217, sym: c"__x64_sys_getdents64", route: Route::Generic(&Spec::new(217, [Fd, OutRet(Len::Arg(2))])) },
    Entry { nr: 257, sym: c"__x64_sys_openat", route: Route::Remote(fs::openat) },
    Entry { nr: 258, sym: c"__x64_sys_mkdirat", route: Route::Generic(&Spec::new(258, [DirFd(1), Path])) },
    Entry { nr: 259, sym: c"__x64_sys_mknodat", route: Route::Generic(&Spec::new(259, [DirFd(1), Path])) },
    Entry { nr: 260, sym: c"__x64_sys_fchownat", route: Route::Generic(&Spec::new(260, [DirFd(1), Path])) },
    Entry { nr: 262, sym: c"__x64_sys_newfstatat", route: Route::Generic(&Spec::new(262, [DirFd(1), Path, Out(STAT)])) },
    Entry { nr: 263, sym: c"__x64_sys_unlinkat", route: Route::Generic(&Spec::new(263, [DirFd(1), Path])) },
    Entry { nr: 264, sym: c"__x64_sys_renameat", route: Route::Generic(&Spec::new(264, [DirFd(1), Path, DirFd(3), Path])) },
    Entry { nr: 265, sym: c"__x64_sys_linkat", route: Route::Generic(&Spec::new(265, [DirFd(1), Path, DirFd(3), Path])) },
    Entry { nr: 266, sym: c"__x64_sys_symlinkat", route: Route::Generic(&Spec::new(266, [Str, DirFd(2), Path])) },
    Entry { nr: 267, sym: c"__x64_sys_readlinkat", route: Route::Generic(&Spec::new(267, [DirFd(1), Path, OutRet(Len::Arg(3))])) },
    Entry { nr: 268, sym: c"__x64_sys_fchmodat", route: Route::Generic(&Spec::new(268, [DirFd(1), Path])) },
    Entry { nr: 269, sym: c"__x64_sys_faccessat", route: Route::Generic(&Spec::new(269, [DirFd(1), Path])) },
    Entry { nr: 280, sym: c"__x64_sys_utimensat", route: Route::Generic(&Spec::new(280, [DirFd(1), Path, In(Len::Fixed(32))])) },
    Entry { nr: 285, sym: c"__x64_sys_fallocate", route: Route::Generic(&Spec::new(285, [Fd])) },
    Entry { nr: 295, sym: c"__x64_sys_preadv", route: Route::Remote(fs::preadv) },
    Entry { nr: 296, sym: c"__x64_sys_pwritev", route: Route::Remote(fs::pwritev) },
    Entry { nr: 316, sym: c"__x64_sys_renameat2", route: Route::Generic(&Spec::new(316, [DirFd(1), Path, DirFd(3), Path])) },
    Entry { nr: 322, sym: c"__x64_sys_execveat", route: Route::Exec },
    Entry { nr: 327, sym: c"__x64_sys_preadv2", route: Route::Remote(fs::preadv) },
    Entry { nr: 328, sym: c"__x64_sys_pwritev2", route: Route::Remote(fs::pwritev) },
    Entry { nr: 332, sym: c"__x64_sys_statx", route: Route::Generic(&Spec::new(332, [DirFd(1), Path, Val, Val, Out(STATX)])) },
    // An io_uring would run I/O without passing through the proxy.
    Entry { nr: 425, sym: c"__x64_sys_io_uring_setup", route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 426, sym: c"__x64_sys_io_uring_enter", route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 427, sym: c"__x64_sys_io_uring_register", route: Route::Deny(bindings::ENOSYS) },
    Entry { nr: 437, sym: c"__x64_sys_openat2", route: Route::Remote(fs::openat2) },
    Entry { nr: 439, sym: c"__x64_sys_faccessat2", route: Route::Generic(&Spec::new(439, [DirFd(1), Path])) },
    Entry { nr: 452, sym: c"__x64_sys_fchmodat2", route: Route::Generic(&Spec::new(452, [DirFd(1), Path])) },
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

/// NULL-terminated lists of the functions to hook: for tethered tasks only, for every task.
/// (Used only while the hooks are installed: ftrace keeps its own copy.)
pub(crate) struct HookLists {
    pub(crate) routed: [*const kernel::ffi::c_char; ROUTED.len() + 1],
    pub(crate) all_tasks: [*const kernel::ffi::c_char; ROUTED.len() + 1],
}

impl HookLists {
    pub(crate) fn new() -> Self {
        let mut lists = Self {
            routed: [core::ptr::null(); ROUTED.len() + 1],
            all_tasks: [core::ptr::null(); ROUTED.len() + 1],
        };
        let (mut r, mut a) = (0, 0);
        for e in &ROUTED {
            match e.route {
                Route::Local => (),
                Route::Exec => {
                    lists.all_tasks[a] = e.sym.as_char_ptr();
                    a += 1;
                }
                Route::Deny(_) | Route::Remote(_) | Route::Generic(_) => {
                    lists.routed[r] = e.sym.as_char_ptr();
                    r += 1;
                }
            }
        }
        lists
    }
}

/// Where a hooked call lands (from `tether_sys()` in `hook.c`).
///
/// # Safety
///
/// `regs` points to the calling task's syscall registers and `orig` is the hooked
/// `__x64_sys_*` function.
#[no_mangle]
unsafe extern "C" fn tether_route(regs: *const bindings::pt_regs, orig: hook::SysFn) -> c_long {
    // SAFETY: `regs` is valid for the duration of the call, as the caller guarantees.
    let r = unsafe { &*regs };
    let args = [
        r.di as u64,
        r.si as u64,
        r.dx as u64,
        r.r10 as u64,
        r.r8 as u64,
        r.r9 as u64,
    ];
    let dispatch = match route(r.orig_ax) {
        Route::Local => Dispatch::Local,
        Route::Deny(errno) => Dispatch::Done(-(errno as c_long)),
        Route::Exec => return hook::exec(regs, orig),
        Route::Remote(handler) => handler(&args),
        Route::Generic(spec) => fs::generic(spec, &args),
    };
    match dispatch {
        Dispatch::Local => hook::call(orig, regs),
        Dispatch::Done(ret) => ret,
    }
}
