// SPDX-License-Identifier: GPL-2.0

//! A session's reply cache (DESIGN §7, "Reply cache"): the requests queued or running,
//! and the last replies, so that a request the client sends again (after a lost connection)
//! is answered, not run twice. Bounded by entries and bytes, but the newest reply is always
//! kept; a request older than every cached reply and not pending may have run: `Stale`.

use kernel::{alloc::KVVec, prelude::*};

/// One cached reply.
pub(crate) struct Cached {
    pub(crate) seq: u64,
    pub(crate) rpid: u32,
    /// `SERVER_SIGNAL`s that go before the reply (bit `n` for signal `n`).
    pub(crate) signals: u32,
    pub(crate) body: KVVec<u8>,
}

/// What a request's seq says about it.
pub(crate) enum Seen {
    /// Never seen: run it (it is now pending).
    New,
    /// Answered before: answered again from the cache ([`ReplyCache::get`]).
    Answered,
    /// Queued or running: its reply goes out when ready.
    Pending,
    /// Older than the oldest cached reply and not pending: it may have run; refused.
    Stale,
    /// New, but `max_pending` requests are queued or running: refused with `EAGAIN`, not
    /// run.
    Full,
}

/// The replies kept and the requests in progress of one session.
pub(crate) struct ReplyCache {
    /// The last replies, oldest first.
    entries: KVec<Cached>,
    /// Bytes of reply bodies in `entries`.
    bytes: usize,
    /// Highest seq evicted.
    floor: u64,
    /// Seqs of requests queued or running.
    pending: KVec<u64>,
    /// Bounds: entries and bytes.
    max: usize,
    max_bytes: usize,
}

impl ReplyCache {
    /// An empty cache of at most `max` replies and `max_bytes` bytes (but always one).
    pub(crate) const fn new(max: usize, max_bytes: usize) -> Self {
        Self {
            entries: KVec::new(),
            bytes: 0,
            floor: 0,
            pending: KVec::new(),
            max,
            max_bytes,
        }
    }

    /// Looks `seq` up; a new one becomes pending (unless `max_pending` are).
    pub(crate) fn lookup(&mut self, seq: u64, max_pending: usize) -> Result<Seen> {
        if self.get(seq).is_some() {
            return Ok(Seen::Answered);
        }
        if self.pending.contains(&seq) {
            return Ok(Seen::Pending);
        }
        if seq <= self.floor {
            return Ok(Seen::Stale);
        }
        if self.pending.len() >= max_pending {
            return Ok(Seen::Full);
        }
        self.pending.push(seq, GFP_KERNEL)?;
        Ok(Seen::New)
    }

    /// The cached reply of `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&Cached> {
        self.entries.iter().find(|c| c.seq == seq)
    }

    /// Forgets the pending request `seq` (answered, or it will get no reply).
    pub(crate) fn unpend(&mut self, seq: u64) {
        self.pending.retain(|s| *s != seq);
    }

    /// Keeps `reply` (its body copied, or `None` when there was no memory for the copy:
    /// then a re-send of `seq` is refused as stale), evicting the oldest beyond the bounds.
    /// Returns whether it was kept.
    pub(crate) fn insert(&mut self, seq: u64, reply: Option<Cached>) -> bool {
        self.unpend(seq);
        let Some(reply) = reply else {
            self.floor = self.floor.max(seq);
            return false;
        };
        let len = reply.body.len();
        if self.entries.push(reply, GFP_KERNEL).is_err() {
            self.floor = self.floor.max(seq);
            return false;
        }
        self.bytes = self.bytes.saturating_add(len);
        while self.entries.len() > 1
            && (self.entries.len() > self.max || self.bytes > self.max_bytes)
        {
            if let Ok(old) = self.entries.remove(0) {
                self.bytes = self.bytes.saturating_sub(old.body.len());
                self.floor = self.floor.max(old.seq);
            }
        }
        true
    }

    /// Forgets everything (the session ended).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.pending.clear();
    }

    /// Replies kept, and requests in progress.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}
