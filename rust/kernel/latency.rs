// SPDX-License-Identifier: GPL-2.0

//! Where the time of remote calls goes, per call of the call table (`proto::calls`): how
//! many ran, and their total and longest time. The client measures from submit to reply
//! (the whole remote call), the server from handing the request to the shadow to its reply
//! (the system call and any commit): the difference is the link and the dispatch. Debugfs
//! `calls` in both modules; `tetherctl calls` prints the table of each module loaded on
//! its machine.

use core::fmt;

use kernel::{
    sync::atomic::{Atomic, Relaxed},
    time::{Instant, Monotonic},
};

use crate::proto::calls::{self, CALLS};

/// One call's figures.
struct Slot {
    count: Atomic<u64>,
    total_ns: Atomic<u64>,
    max_ns: Atomic<u64>,
}

/// A stage on the path of every call, measured on one machine (docs/DESIGN.md §2).
#[derive(Clone, Copy)]
pub(crate) enum Stage {
    /// Client: from the task's submit to its request sent.
    Send,
    /// Client: from the request sent to the reply received by the connection worker (the
    /// link both ways and everything on the server).
    Wait,
    /// Client: from the reply received to the waiting task running again.
    Wake,
    /// Server: from the request received to the shadow picking it up.
    Queue,
    /// Server: from the shadow's reply to the reply frame sent.
    Reply,
}

const STAGES: [&str; 5] = [
    "stage_send",
    "stage_wait",
    "stage_wake",
    "stage_queue",
    "stage_reply",
];

/// The figures of every call of the table, in its order.
pub(crate) struct Latency {
    slots: [Slot; CALLS.len()],
    /// The first call of each process, whatever it is (it waits for the process's shadow
    /// to start), apart from the rest.
    first: Slot,
    /// Every call, by [`Stage`].
    stages: [Slot; STAGES.len()],
}

impl Latency {
    pub(crate) fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| Slot::new()),
            first: Slot::new(),
            stages: core::array::from_fn(|_| Slot::new()),
        }
    }

    /// A call went through `stage` from `from` to `to`.
    pub(crate) fn stage(&self, stage: Stage, from: Instant<Monotonic>, to: Instant<Monotonic>) {
        if let Some(slot) = self.stages.get(stage as usize) {
            // Two instants of one clock are in 0..=KTIME_MAX: their difference never
            // overflows (the `Sub` impl's invariant).
            #[allow(clippy::arithmetic_side_effects)]
            let d = to - from;
            slot.add(u64::try_from(d.as_nanos()).unwrap_or(0));
        }
    }

    /// Call `nr`, started at `since`, has its reply (`first`: the process's first call).
    pub(crate) fn record(&self, nr: u32, since: Instant<Monotonic>, first: bool) {
        let slot = if first {
            &self.first
        } else {
            match calls::index(nr).and_then(|i| self.slots.get(i)) {
                Some(slot) => slot,
                None => return,
            }
        };
        slot.add(u64::try_from(since.elapsed().as_nanos()).unwrap_or(0));
    }

    /// Debugfs `calls`: a header, then `NAME COUNT TOTAL_US AVG_US MAX_US` per call that ran,
    /// `first_call ...` for the processes' first calls, `stage_... ...` per stage.
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "call count total_us avg_us max_us")?;
        for (spec, slot) in CALLS.iter().zip(self.slots.iter()) {
            slot.show(f, spec.name)?;
        }
        self.first.show(f, "first_call")?;
        for (name, slot) in STAGES.iter().zip(self.stages.iter()) {
            slot.show(f, name)?;
        }
        Ok(())
    }
}

impl Slot {
    fn new() -> Self {
        Self {
            count: Atomic::new(0),
            total_ns: Atomic::new(0),
            max_ns: Atomic::new(0),
        }
    }

    /// Counts one call that took `ns`.
    fn add(&self, ns: u64) {
        self.count.add(1, Relaxed);
        self.total_ns.add(ns, Relaxed);
        let mut max = self.max_ns.load(Relaxed);
        while ns > max {
            match self.max_ns.cmpxchg(max, ns, Relaxed) {
                Ok(_) => break,
                Err(now) => max = now,
            }
        }
    }

    /// Its line of [`Latency::show`], if any call was counted.
    fn show(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Ok(());
        }
        let total_us = self.total_ns.load(Relaxed) / 1000;
        writeln!(
            f,
            "{} {} {} {} {}",
            name,
            count,
            total_us,
            total_us.checked_div(count).unwrap_or(0),
            self.max_ns.load(Relaxed) / 1000
        )
    }
}
