// SPDX-License-Identifier: GPL-2.0

//! A session's pid namespace (DESIGN §2.4). Each session's shadows run in a pid namespace of
//! their own, each as the pid of its client process (`clone3` with `set_tid`): a pid the
//! server reports (a lock holder's `l_pid` from `F_GETLK`) is the one the client knows, and
//! a replay on a restarted or another server recreates every shadow with the same pid.
//!
//! The namespace's init is a keeper process (`tether-shadow --keeper`, started like a
//! shadow): it registers itself with the session's keeper token (`KEEPER` ioctl), then only
//! reaps the shadows orphaned to it. It lives as long as the session: killing it at the
//! session's end kills whatever is left in the namespace. Without a keeper (it could not be
//! started) shadows run in the initial namespace with any pid, as the client does not
//! depend on their pids.
//!
//! Where the server has cgroup v2 (at `/sys/fs/cgroup`), the keeper's helper also makes the
//! session a cgroup, `tether/session-N`: the keeper and every shadow of the session start
//! in it (`clone3` with `CLONE_INTO_CGROUP`), so their processes, memory and page cache are
//! charged to the session and bounded by its `pids.max` (twice `max_shadows`, plus the
//! keeper, plus `max_shadow_threads`: the shadows' threads besides their first) and `memory.max` (`session_memory_mb`). The helper (`tether-session`) stays the
//! keeper's parent and removes the cgroup once the keeper is killed.
//!
//! Lock order: `Shared::inner` → `Keeper::state` (the `state` file); `Keeper::state`
//! is held while the keeper's user-mode helper starts, never with another lock.

use crate::server::Config;
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{aref::ARef, CondVar, Mutex},
    task::Task,
    time::msecs_to_jiffies,
};

/// How long a new keeper may take to register (a user-mode helper: seconds on a loaded
/// machine).
const KEEPER_TIMEOUT_MS: u32 = 10_000;

/// Where a session's keeper is.
enum State {
    /// Not started yet.
    None,
    /// Started, not registered yet.
    Starting,
    /// Registered.
    Running(ARef<Task>),
    /// Could not be started, or killed: shadows go to the initial namespace.
    Gone,
}

/// The keeper of one session's pid namespace.
///
/// # Invariants
/// A `State::Running` task registered with `token`: it is the init of the session's pid
/// namespace, which only the keeper process started with `token` can do.
#[pin_data]
pub(crate) struct Keeper {
    /// Names the keeper process to this module.
    token: u64,
    #[pin]
    state: Mutex<State>,
    /// Signalled when the keeper registers or is given up.
    #[pin]
    ready: CondVar,
}

extern "C" {
    fn tether_spawn_keeper(token: u64, pids_max: u32, memory_mb: u32) -> kernel::ffi::c_int;
    /// Takes a `struct task_struct *`.
    fn tether_kill(task: *mut kernel::ffi::c_void);
}

impl Keeper {
    pub(crate) fn new(token: u64) -> impl PinInit<Self> {
        pin_init!(Self {
            token,
            state <- new_mutex!(State::None, "Keeper::state"),
            ready <- new_condvar!("Keeper::ready"),
        })
    }

    /// The (global) pid of the keeper, started on first use with the session's cgroup
    /// limits from `config`; `None` when there is none.
    pub(crate) fn pid(&self, session: u32, config: &Config) -> Option<i32> {
        let mut state = self.state.lock();
        if matches!(*state, State::None) {
            *state = State::Starting;
            // A backstop to `max_shadows` (which the registry counts, with a clean errno):
            // room for the keeper and for shadows that exited but are not reaped yet; and
            // the bound of the shadows' other threads (a thread that cannot start makes its
            // process's calls run in turn).
            let pids_max = u32::try_from(config.max_shadows)
                .unwrap_or(u32::MAX)
                .saturating_mul(2)
                .saturating_add(1)
                .saturating_add(u32::try_from(config.max_shadow_threads).unwrap_or(u32::MAX));
            // SAFETY: No preconditions: the shim starts the shadow binary as a keeper.
            let r = unsafe { tether_spawn_keeper(self.token, pids_max, config.session_memory_mb) };
            if r != 0 {
                pr_notice!(
                    "session {}: cannot start the pid namespace keeper ({}): shadows get any pid\n",
                    session,
                    r
                );
                *state = State::Gone;
            }
        }
        while matches!(*state, State::Starting) {
            let wait = self
                .ready
                .wait_interruptible_timeout(&mut state, msecs_to_jiffies(KEEPER_TIMEOUT_MS));
            if !matches!(wait, kernel::sync::CondVarTimeoutResult::Woken { .. })
                && matches!(*state, State::Starting)
            {
                pr_notice!(
                    "session {}: the pid namespace keeper did not register: shadows get any pid\n",
                    session
                );
                *state = State::Gone;
            }
        }
        drop(state);
        self.running()
    }

    /// The (global) pid of the keeper if it runs, without starting one.
    pub(crate) fn running(&self) -> Option<i32> {
        match &*self.state.lock() {
            State::Running(task) => Some(task.pid()),
            _ => None,
        }
    }

    /// Registers the calling process as the keeper when `token` is this keeper's.
    pub(crate) fn register(&self, token: u64) -> bool {
        if token != self.token {
            return false;
        }
        let mut state = self.state.lock();
        if !matches!(*state, State::Starting) {
            return false;
        }
        // INVARIANT: Only the keeper started with `token` knows it.
        *state = State::Running(ARef::from(&**kernel::current!()));
        self.ready.notify_all();
        true
    }

    /// Kills the keeper, and with it the namespace's processes (the session ended).
    pub(crate) fn kill(&self) {
        let old = core::mem::replace(&mut *self.state.lock(), State::Gone);
        if let State::Running(task) = old {
            // SAFETY: `task` is a live task we hold a reference to.
            unsafe { tether_kill(task.as_ptr().cast()) };
        }
        self.ready.notify_all();
    }
}
