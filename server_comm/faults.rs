// SPDX-License-Identifier: GPL-2.0

//! Deterministic fault points (a test knob, docs/DESIGN.md §3.5): the server resets the
//! machine, as a power cut would (no sync), at exactly one named point of its work, for
//! the Nth matching call after it was armed. Armed by debugfs `control` (`crash_at POINT
//! CALL [N]`, `crash_at off`) or at load by the `crash_at=POINT,CALL[,N]` parameter (so a
//! replacement server is armed before any client can reach it). `hold_flush on` stops the
//! flusher's rounds, so written data stays unflushed as long as a test needs.
//!
//! Points (hooks in `dispatch.rs`, `shadow.rs`, `flusher.rs`):
//! - `on_receive`: a call request was admitted, before any shadow runs it;
//! - `before_reply` (aliases `after_exec`, `after_commit`): the shadow answered (a committed
//!   call's `syncfs` is done), the reply frame is not sent yet;
//! - `after_reply`: the reply frame went out (the reset waits [`AFTER_REPLY_MS`], so that
//!   the frame leaves the machine);
//! - `in_flush`: the flusher's sync succeeded, no `SERVER_FLUSHED` went out yet (call
//!   `any` only: it counts flush rounds);
//! - `in_redo`: as `before_reply`, for calls of the client's redo shadow (`REDO_RPID`);
//! - `in_replay`: as `before_reply`, for the other calls of a session this server created
//!   for a client that asked to resume a session it did not have (the client replays).

use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Mutex,
    },
    time::{delay::fsleep, Delta},
};

use crate::proto::calls;

/// How long `after_reply` waits before the reset, so that the reply leaves the machine.
pub(crate) const AFTER_REPLY_MS: i64 = 200;

/// A named fault point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// A call request was admitted, before any shadow runs it.
    OnReceive,
    /// The shadow answered; the reply frame is not sent yet.
    BeforeReply,
    /// The reply frame went out.
    AfterReply,
    /// The flusher's sync succeeded; no `SERVER_FLUSHED` went out yet.
    InFlush,
    /// As [`Point::BeforeReply`], for calls of the client's redo shadow.
    InRedo,
    /// As [`Point::BeforeReply`], for the other calls of a session created for a client
    /// that asked to resume a session this server did not have.
    InReplay,
}

impl Point {
    /// The point called `name` (`None`: no such point).
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "on_receive" => Self::OnReceive,
            "before_reply" | "after_exec" | "after_commit" => Self::BeforeReply,
            "after_reply" => Self::AfterReply,
            "in_flush" => Self::InFlush,
            "in_redo" => Self::InRedo,
            "in_replay" => Self::InReplay,
            _ => return None,
        })
    }

    /// Its name (the canonical one of its aliases).
    fn name(self) -> &'static str {
        match self {
            Self::OnReceive => "on_receive",
            Self::BeforeReply => "before_reply",
            Self::AfterReply => "after_reply",
            Self::InFlush => "in_flush",
            Self::InRedo => "in_redo",
            Self::InReplay => "in_replay",
        }
    }
}

/// The armed fault point.
#[derive(Clone, Copy)]
struct Armed {
    point: Point,
    /// The call number it waits for (`None`: any call, or any flush round).
    call: Option<u32>,
    /// The matching event that resets the machine (1: the first after arming).
    nth: u32,
    /// Matching events so far.
    seen: u32,
}

impl Armed {
    /// The armed call's name.
    fn call_name(&self) -> &'static str {
        self.call.and_then(calls::spec).map_or("any", |s| s.name)
    }
}

extern "C" {
    /// The `crash_at=` parameter (shim.c): NULL when not given.
    fn tether_crash_at_param() -> *const kernel::ffi::c_char;
    /// `emergency_restart()` (shim.c): resets the machine without syncing.
    fn tether_emergency_restart();
}

/// The fault points' state (one armed point at a time) and the `hold_flush` knob.
#[pin_data]
pub(crate) struct Faults {
    /// Whether a point is armed: the hooks' fast path, without the lock.
    active: Atomic<bool>,
    /// The flusher does no rounds while set.
    pub(crate) hold_flush: Atomic<bool>,
    #[pin]
    armed: Mutex<Option<Armed>>,
}

impl Faults {
    /// Nothing armed, flushing not held.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            active: Atomic::new(false),
            hold_flush: Atomic::new(false),
            armed <- new_mutex!(None, "Faults::armed"),
        })
    }

    /// Arms the point given by the `crash_at=` parameter (`POINT,CALL[,N]`), if any.
    pub(crate) fn arm_from_param(&self) -> Result {
        // SAFETY: No preconditions: the shim returns NULL or the parameter's
        // NUL-terminated string, which lives (read-only, 0444) as long as the module.
        let p = unsafe { tether_crash_at_param() };
        if p.is_null() {
            return Ok(());
        }
        // SAFETY: `p` is a NUL-terminated string that outlives this call (above).
        let text = unsafe { CStr::from_char_ptr(p) };
        let text = text.to_str().map_err(|_| EINVAL)?;
        if text.is_empty() {
            return Ok(());
        }
        let mut words: KVec<&str> = KVec::new();
        for w in text.split(',') {
            words.push(w, GFP_KERNEL)?;
        }
        self.arm(&words)
            .inspect_err(|_| pr_err!("crash_at={} is not POINT,CALL[,N]\n", text))
    }

    /// `crash_at` of debugfs `control`: `words` are `off`, or `POINT CALL [N]`.
    pub(crate) fn arm(&self, words: &[&str]) -> Result {
        let armed = match *words {
            ["off"] => None,
            [point, call] => Some(Self::parse(point, call, "1")?),
            [point, call, nth] => Some(Self::parse(point, call, nth)?),
            _ => return Err(EINVAL),
        };
        let mut a = self.armed.lock();
        *a = armed;
        self.active.store(a.is_some(), Relaxed);
        if let Some(x) = &*a {
            pr_notice!(
                "crash point {} {} #{} armed: the machine resets there (test knob)\n",
                x.point.name(),
                x.call_name(),
                x.nth
            );
        }
        Ok(())
    }

    /// A point from its words (`CALL` is a name from the call table, or `any`).
    fn parse(point: &str, call: &str, nth: &str) -> Result<Armed> {
        let point = Point::parse(point).ok_or(EINVAL)?;
        let call = match call {
            "any" => None,
            name => Some(
                calls::CALLS
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or(EINVAL)?
                    .nr,
            ),
        };
        // A flush round has no call.
        if point == Point::InFlush && call.is_some() {
            return Err(EINVAL);
        }
        let nth: u32 = nth.parse().map_err(|_| EINVAL)?;
        if nth == 0 {
            return Err(EINVAL);
        }
        Ok(Armed {
            point,
            call,
            nth,
            seen: 0,
        })
    }

    /// Event `point` of call `call` (`None`: not a call, e.g. a fork or a flush round)
    /// happened: resets the machine when it is the armed point's Nth match.
    pub(crate) fn reached(&self, point: Point, call: Option<u32>) {
        if !self.active.load(Relaxed) {
            return;
        }
        let hit = {
            let mut a = self.armed.lock();
            let Some(x) = &mut *a else {
                return;
            };
            if x.point != point || (x.call.is_some() && x.call != call) {
                return;
            }
            x.seen = x.seen.saturating_add(1);
            if x.seen < x.nth {
                return;
            }
            let hit = *x;
            *a = None;
            self.active.store(false, Relaxed);
            hit
        };
        if point == Point::AfterReply {
            fsleep(Delta::from_millis(AFTER_REPLY_MS));
        }
        pr_emerg!(
            "crash point {} {} #{} reached: resetting the machine\n",
            hit.point.name(),
            hit.call_name(),
            hit.nth
        );
        // SAFETY: No preconditions (the shim calls `emergency_restart()`, which may run in
        // any context and does not return when the machine resets).
        unsafe { tether_emergency_restart() };
    }

    /// The debugfs `state` lines: `crash_at=off` or `crash_at=POINT,CALL,N`, and
    /// `hold_flush=0|1`.
    pub(crate) fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self.armed.lock() {
            Some(x) => writeln!(f, "crash_at={},{},{}", x.point.name(), x.call_name(), x.nth)?,
            None => writeln!(f, "crash_at=off")?,
        }
        writeln!(f, "hold_flush={}", u8::from(self.hold_flush.load(Relaxed)))
    }
}
