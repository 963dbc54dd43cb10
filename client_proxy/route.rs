// SPDX-License-Identifier: GPL-2.0

//! The route table: what happens to each system call of a tethered task.
//!
//! One table indexed by x86-64 syscall number. Calls the table leaves `Local` are never
//! hooked and cost nothing; the others are hooked at their `__x64_sys_<name>` entry
//! (see `hook.c`) and land in [`tether_route`].

use kernel::{bindings, ffi::c_long, prelude::*};

use crate::fs::{self, Dispatch, Handler};
use crate::hook;

/// What happens to one system call of a tethered task.
#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// Runs on this machine, unchanged (memory, signals, futex, clocks, scheduling, ...).
    Local,
    /// Runs on the server when it concerns remote files (see `fs.rs`).
    Remote(Handler),
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
const ROUTED: [Entry; 25] = [
    Entry {
        nr: 0,
        sym: c"__x64_sys_read",
        route: Route::Remote(fs::read),
    },
    Entry {
        nr: 1,
        sym: c"__x64_sys_write",
        route: Route::Remote(fs::write),
    },
    Entry {
        nr: 2,
        sym: c"__x64_sys_open",
        route: Route::Remote(fs::open),
    },
    Entry {
        nr: 5,
        sym: c"__x64_sys_newfstat",
        route: Route::Remote(fs::fstat),
    },
    Entry {
        nr: 8,
        sym: c"__x64_sys_lseek",
        route: Route::Remote(fs::lseek),
    },
    Entry {
        nr: 17,
        sym: c"__x64_sys_pread64",
        route: Route::Remote(fs::pread64),
    },
    Entry {
        nr: 18,
        sym: c"__x64_sys_pwrite64",
        route: Route::Remote(fs::pwrite64),
    },
    Entry {
        nr: 74,
        sym: c"__x64_sys_fsync",
        route: Route::Remote(fs::fsync),
    },
    Entry {
        nr: 75,
        sym: c"__x64_sys_fdatasync",
        route: Route::Remote(fs::fdatasync),
    },
    Entry {
        nr: 77,
        sym: c"__x64_sys_ftruncate",
        route: Route::Remote(fs::ftruncate),
    },
    Entry {
        nr: 79,
        sym: c"__x64_sys_getcwd",
        route: Route::Remote(fs::getcwd),
    },
    Entry {
        nr: 80,
        sym: c"__x64_sys_chdir",
        route: Route::Remote(fs::chdir),
    },
    Entry {
        nr: 81,
        sym: c"__x64_sys_fchdir",
        route: Route::Remote(fs::fchdir),
    },
    Entry {
        nr: 83,
        sym: c"__x64_sys_mkdir",
        route: Route::Remote(fs::mkdir),
    },
    Entry {
        nr: 84,
        sym: c"__x64_sys_rmdir",
        route: Route::Remote(fs::rmdir),
    },
    Entry {
        nr: 87,
        sym: c"__x64_sys_unlink",
        route: Route::Remote(fs::unlink),
    },
    Entry {
        nr: 217,
        sym: c"__x64_sys_getdents64",
        route: Route::Remote(fs::getdents64),
    },
    Entry {
        nr: 257,
        sym: c"__x64_sys_openat",
        route: Route::Remote(fs::openat),
    },
    Entry {
        nr: 262,
        sym: c"__x64_sys_newfstatat",
        route: Route::Remote(fs::newfstatat),
    },
    Entry {
        nr: 332,
        sym: c"__x64_sys_statx",
        route: Route::Remote(fs::statx),
    },
    Entry {
        nr: 59,
        sym: c"__x64_sys_execve",
        route: Route::Exec,
    },
    Entry {
        nr: 322,
        sym: c"__x64_sys_execveat",
        route: Route::Exec,
    },
    // An io_uring would run I/O without passing through the proxy.
    Entry {
        nr: 425,
        sym: c"__x64_sys_io_uring_setup",
        route: Route::Deny(bindings::ENOSYS),
    },
    Entry {
        nr: 426,
        sym: c"__x64_sys_io_uring_enter",
        route: Route::Deny(bindings::ENOSYS),
    },
    Entry {
        nr: 427,
        sym: c"__x64_sys_io_uring_register",
        route: Route::Deny(bindings::ENOSYS),
    },
];

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
                Route::Deny(_) | Route::Remote(_) => {
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
    let nr = unsafe { (*regs).orig_ax };
    match route(nr) {
        Route::Local => hook::call(orig, regs),
        Route::Deny(errno) => -(errno as c_long),
        Route::Exec => hook::exec(regs, orig),
        Route::Remote(handler) => {
            // SAFETY: As above.
            let r = unsafe { &*regs };
            match handler(&[
                r.di as u64,
                r.si as u64,
                r.dx as u64,
                r.r10 as u64,
                r.r8 as u64,
                r.r9 as u64,
            ]) {
                Dispatch::Local => hook::call(orig, regs),
                Dispatch::Done(ret) => ret,
            }
        }
    }
}
