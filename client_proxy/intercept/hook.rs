// SPDX-License-Identifier: GPL-2.0

//! Tethered tasks: the set, exec-time marking, and the syscall hooks (`hook.c`).

use core::fmt;
use kernel::{bindings, ffi::c_long, prelude::*};

use crate::num::{reg_i32, ret_isize, user_reg};
use crate::syscalls::exec::{self, ExecCall};
use crate::syscalls::shmap;
use crate::syscalls::Dispatch;

/// A `__x64_sys_*` function.
type SysFn = unsafe extern "C" fn(*const bindings::pt_regs) -> c_long;

mod ffi {
    use kernel::bindings::{gfp_t, pid_t};
    use kernel::ffi::{c_int, c_uint};

    extern "C" {
        pub(super) fn tether_hook_start() -> c_int;
        pub(super) fn tether_hook_stop();
        pub(super) fn tether_is_tethered(pid: pid_t) -> bool;
        pub(super) fn tether_tether(pid: pid_t, gfp: gfp_t) -> c_int;
        pub(super) fn tether_untether(pid: pid_t);
        pub(super) fn tether_nr_tethered() -> c_uint;
        pub(super) fn tether_tethered_pids(out: *mut pid_t, max: c_uint) -> c_int;
        pub(super) fn tether_exe_marked() -> bool;
    }
}

/// The installed hooks; dropping them removes them.
///
/// # Invariants
///
/// The hooks are installed while a value exists (there is at most one).
pub(crate) struct Hooks(());

impl Hooks {
    /// Hooks syscall dispatch, exec, fork and exit.
    pub(crate) fn start() -> Result<Self> {
        // SAFETY: No preconditions; `Hooks` exists at most once (see the invariants).
        kernel::error::to_result(unsafe { ffi::tether_hook_start() })?;
        // INVARIANT: the hooks were installed just now.
        Ok(Self(()))
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        // SAFETY: The hooks were installed by `start`; this removes them and waits until no
        // task runs in them any more.
        unsafe { ffi::tether_hook_stop() };
    }
}

fn current_pid() -> bindings::pid_t {
    kernel::current!().pid()
}

/// Whether task `pid` is tethered.
pub(crate) fn is_tethered(pid: bindings::pid_t) -> bool {
    // SAFETY: Reads the XArray under RCU; any pid value is fine.
    unsafe { ffi::tether_is_tethered(pid) }
}

/// Tethers task `pid` (from process context).
pub(crate) fn tether(pid: bindings::pid_t) -> Result {
    // SAFETY: Any pid value is fine; GFP_KERNEL is allowed in process context.
    kernel::error::to_result(unsafe { ffi::tether_tether(pid, bindings::GFP_KERNEL) })
}

fn untether(pid: bindings::pid_t) {
    // SAFETY: Any pid value is fine.
    unsafe { ffi::tether_untether(pid) }
}

/// `execve`/`execveat` of every task (from `tether_exec_entry()` in `hook.c`): runs it; on
/// success the task is tethered when it was already (tethering survives exec) or when its
/// new executable carries the loader flag.
///
/// # Safety
///
/// `orig` is the hooked `__x64_sys_execve` or `__x64_sys_execveat` and `regs` the calling
/// task's syscall registers.
#[no_mangle]
unsafe extern "C" fn tether_exec(regs: *const bindings::pt_regs, orig: SysFn) -> c_long {
    let before = current_pid();
    let was = is_tethered(before);
    // Its shared mappings of remote files go with its address space: written back now,
    // forgotten once the exec succeeded.
    let shmaps = was.then(crate::state::client).flatten();
    let rpid = crate::syscalls::rpid();
    if let Some(shared) = &shmaps {
        shmap::write_back_process(shared, rpid);
    }
    // SAFETY: As the caller guarantees.
    let r = unsafe { &*regs };
    // A tethered task may exec a file on the server (`syscalls/exec.rs`).
    let remote = was.then(|| {
        let at = r.orig_ax == bindings::__NR_execveat as usize;
        let call = ExecCall {
            at,
            dirfd: r.di as u64,
            path: if at { r.si } else { r.di } as u64,
            argv: if at { r.dx } else { r.si } as u64,
            flags: if at { r.r8 as u64 } else { 0 },
        };
        exec::exec(&call, |file, argv| {
            let mut regs = *r;
            if at {
                regs.di = user_reg(reg_i32(crate::proto::calls::AT_FDCWD));
                regs.si = user_reg(file);
                regs.dx = user_reg(argv);
                regs.r8 = 0;
            } else {
                regs.di = user_reg(file);
                regs.si = user_reg(argv);
            }
            // SAFETY: As the caller guarantees, on a copy of the registers that names
            // another file and argument vector. The ftrace hook sees this module as the
            // caller and lets the call through.
            unsafe { orig(&regs) }
        })
    });
    // SAFETY: As above.
    let ret = remote.flatten().unwrap_or_else(|| unsafe { orig(regs) });
    if ret != 0 {
        return ret;
    }
    if let Some(shared) = &shmaps {
        shmap::forget_process(shared, rpid);
    }
    let now = current_pid();
    if was && now != before {
        // A non-leader thread exec'd and took over the thread group leader's pid.
        untether(before);
    }
    // SAFETY: Called by the task that just exec'd, as `tether_exe_marked` requires.
    if !was && !unsafe { ffi::tether_exe_marked() } {
        return ret;
    }
    match tether(now) {
        Err(_) => pr_notice!("cannot tether pid {}: out of memory\n", now),
        Ok(()) if !was => pr_info!(
            "pid {} tethered: its executable carries trusted.tether.loader\n",
            now
        ),
        Ok(()) => (),
    }
    ret
}

/// The `tether` file: writing a pid tethers that task (`tetherctl run`).
pub(crate) fn tether_store<T>(_: &T, text: &[u8]) -> Result {
    let pid: bindings::pid_t = core::str::from_utf8(text)
        .map_err(|_| EINVAL)?
        .trim()
        .parse()
        .map_err(|_| EINVAL)?;
    if pid <= 0 {
        return Err(EINVAL);
    }
    tether(pid)?;
    pr_info!("pid {} tethered on request\n", pid);
    Ok(())
}

/// The `tasks` file: the number of tethered tasks, then their pids.
pub(crate) fn show_tasks<T>(_: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut pids = [0 as bindings::pid_t; 128];
    let max = u32::try_from(pids.len()).unwrap_or(0);
    // SAFETY: `pids` has room for `pids.len()` entries.
    let n = unsafe { ffi::tether_tethered_pids(pids.as_mut_ptr(), max) };
    // SAFETY: No preconditions.
    writeln!(f, "tethered={}", unsafe { ffi::tether_nr_tethered() })?;
    for pid in pids.iter().take(usize::try_from(n).unwrap_or(0)) {
        writeln!(f, "{pid}")?;
    }
    Ok(())
}

/// `prctl(2)` of tethered tasks: `PR_SET_SYSCALL_USER_DISPATCH` would turn off the dispatch
/// flag that routes the task's syscalls (`hook.c`), so it is refused; the rest runs locally.
pub(crate) fn prctl(args: &[u64; 6]) -> Dispatch {
    const PR_SET_SYSCALL_USER_DISPATCH: u64 = 59;
    if args[0] == PR_SET_SYSCALL_USER_DISPATCH {
        Dispatch::Done(ret_isize(Err(EPERM)))
    } else {
        Dispatch::Local
    }
}
