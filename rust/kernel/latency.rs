// SPDX-License-Identifier: GPL-2.0

//! Where the time of remote calls goes, per call of the call table (`proto::calls`): how
//! many ran, and their total and longest time. The client measures from submit to reply
//! (the whole remote call), the server from handing the request to the shadow to its reply
//! (the system call and any commit): the difference is the link and the dispatch. Debugfs
//! `calls` in both modules; `tetherctl calls` prints both side by side.

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

/// The figures of every call of the table, in its order.
pub(crate) struct Latency {
    slots: [Slot; CALLS.len()],
    /// The first call of each process, whatever it is (it waits for the process's shadow
    /// to start), apart from the rest.
    first: Slot,
}

impl Latency {
    pub(crate) fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| Slot::new()),
            first: Slot::new(),
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
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(0);
        slot.count.add(1, Relaxed);
        slot.total_ns.add(ns, Relaxed);
        let mut max = slot.max_ns.load(Relaxed);
        while ns > max {
            match slot.max_ns.cmpxchg(max, ns, Relaxed) {
                Ok(_) => break,
                Err(now) => max = now,
            }
        }
    }

    /// Debugfs `calls`: a header, then `NAME COUNT TOTAL_US AVG_US MAX_US` per call that ran,
    /// and `first_call ...` for the processes' first calls.
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "call count total_us avg_us max_us")?;
        for (spec, slot) in CALLS.iter().zip(self.slots.iter()) {
            slot.show(f, spec.name)?;
        }
        self.first.show(f, "first_call")
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
