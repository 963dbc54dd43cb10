// SPDX-License-Identifier: GPL-2.0

//! A session's durability marks (DESIGN §7, `SERVER_FLUSHED`): what the flusher may
//! promise to be on disk. Every call of the session with `seq <= up_to_seq` whose reply
//! the client received before the frame is durable. Client seqs are not sent in seq order,
//! so "highest answered seq" alone would over-promise for a lower seq still in transit: the
//! mark is taken before the sync, and `up_to_seq` stays below any call answered while the
//! sync ran.

/// The marks of one session.
pub(crate) struct Durability {
    /// Highest seq answered.
    answered_max: u64,
    /// A sync started after `answered_max` was `mark`; `late_min` is the lowest seq
    /// answered since.
    syncing: bool,
    mark: u64,
    late_min: u64,
    /// The last `SERVER_FLUSHED` sent: its `up_to_seq` and verifier.
    pub(crate) acked: u64,
    pub(crate) acked_verifier: u64,
}

impl Durability {
    pub(crate) const fn new() -> Self {
        Self {
            answered_max: 0,
            syncing: false,
            mark: 0,
            late_min: u64::MAX,
            acked: 0,
            acked_verifier: 0,
        }
    }

    /// Call `seq` was answered.
    pub(crate) fn answered(&mut self, seq: u64) {
        self.answered_max = self.answered_max.max(seq);
        if self.syncing {
            self.late_min = self.late_min.min(seq);
        }
    }

    /// A sync starts: marks the highest answered seq. Whether there are answers not acked.
    pub(crate) fn start(&mut self) -> bool {
        self.syncing = true;
        self.mark = self.answered_max;
        self.late_min = u64::MAX;
        self.mark > self.acked
    }

    /// The sync ended (`ok`: it succeeded): the `up_to_seq` to send with `verifier`, or
    /// `None` when no frame is due (nothing new covered, verifier unchanged, or no sync
    /// was started).
    pub(crate) fn finish(&mut self, ok: bool, verifier: u64) -> Option<u64> {
        if !self.syncing {
            return None;
        }
        self.syncing = false;
        let up_to = if ok {
            self.mark
                .min(self.late_min.saturating_sub(1))
                .max(self.acked)
        } else {
            self.acked
        };
        (up_to != self.acked || verifier != self.acked_verifier).then_some(up_to)
    }

    /// `SERVER_FLUSHED {up_to, verifier}` went out.
    pub(crate) fn sent(&mut self, up_to: u64, verifier: u64) {
        self.acked = up_to;
        self.acked_verifier = verifier;
    }

    /// Highest seq answered (the `state` file).
    pub(crate) fn answered_max(&self) -> u64 {
        self.answered_max
    }
}
