// SPDX-License-Identifier: GPL-2.0

//! Retained writes (DESIGN §3.2): the data of every remote write the server answered but
//! has not made durable yet, so that a replay can write it again (§3.4 step 4).
//!
//! The server answers a write once the data is in its page cache. The client keeps the
//! write's request (and with it the data), the file's server path and the writer's
//! identity until one of these says the data is on disk:
//! - a `SERVER_FLUSHED {up_to_seq}` that covers the write's seq ([`Retained::flushed`]);
//! - a remote `syncfs`, or a committed call (the call table's `Effect::Commits`:
//!   namespace, size and attribute changes) whose reply says the server synced the whole
//!   export for it (`REPLY_SYNCED_ALL`), answered after the write was
//!   ([`Retained::committed`]);
//! - a remote `fsync`/`fdatasync` of the same file, answered after it; an `unlink` of the
//!   name the write went to, or a rename from or onto it ([`Retained::synced`]): the
//!   server's commit of those synced the file (or it is gone).
//!
//! The server commits a call name by name (the file, the directories holding its names)
//! where that covers what the client drops, and syncs the whole export where it would not:
//! size changes (a truncation through one name would let data kept for another name of the
//! same file come back), renames of directories and symlinks, removals of a symlink (a
//! name whose file lives on under another has that file synced first). So a kept write's
//! path still names its file, and writing the kept data again (in seq order, at the
//! recorded offsets) is idempotent: it never undoes a later rename or truncate. Writes to
//! FIFOs are not kept: they cannot be replayed.

use core::fmt;
use kernel::{alloc::KVVec, prelude::*};

use crate::proto::process::ProcAttrs;
use crate::recovery::journal::BStr;

/// One retained write.
pub(crate) struct WriteRec {
    /// The seq the server knows the write by: its call's, or its last replay's.
    pub(crate) seq: u64,
    /// Order of retention (see [`Retained::stamp`]).
    stamp: u64,
    /// The file's server path (absolute) when it was written.
    pub(crate) path: KVVec<u8>,
    pub(crate) off: i64,
    /// The writer's identity, for the shadow that writes the data again.
    pub(crate) attrs: Option<ProcAttrs>,
    /// The request that carried the data: the data is `body[at..at + len]`.
    body: KVVec<u8>,
    at: usize,
    len: usize,
}

impl WriteRec {
    /// The data written.
    pub(crate) fn data(&self) -> &[u8] {
        self.at
            .checked_add(self.len)
            .and_then(|end| self.body.get(self.at..end))
            .unwrap_or(&[])
    }
}

/// The retained writes, oldest first.
pub(crate) struct Retained {
    recs: KVec<WriteRec>,
    bytes: usize,
    next_stamp: u64,
    /// Writes (and bytes) retained since load, and written again by replays.
    pub(crate) kept: u64,
    pub(crate) redone: u64,
    pub(crate) redone_bytes: u64,
}

impl Retained {
    pub(crate) const fn new() -> Self {
        Self {
            recs: KVec::new(),
            bytes: 0,
            next_stamp: 0,
            kept: 0,
            redone: 0,
            redone_bytes: 0,
        }
    }

    /// The stamp the next retained write gets: a call submitted now makes durable the
    /// writes retained before it, those with a lower stamp.
    pub(crate) fn stamp(&self) -> u64 {
        self.next_stamp
    }

    /// Retains `len` bytes at `body[at..]` written at `off` into `path` by call `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn keep(
        &mut self,
        seq: u64,
        path: KVVec<u8>,
        off: i64,
        attrs: Option<ProcAttrs>,
        body: KVVec<u8>,
        at: usize,
        len: usize,
    ) -> Result {
        if at.checked_add(len).is_none_or(|end| body.len() < end) {
            return Err(EINVAL);
        }
        let next_stamp = self.next_stamp.checked_add(1).ok_or(EOVERFLOW)?;
        self.recs.push(
            WriteRec {
                seq,
                stamp: self.next_stamp,
                path,
                off,
                attrs,
                body,
                at,
                len,
            },
            GFP_KERNEL,
        )?;
        self.next_stamp = next_stamp;
        self.bytes = self.bytes.saturating_add(len);
        // A statistic.
        self.kept = self.kept.saturating_add(1);
        Ok(())
    }

    fn drop_where(&mut self, gone: impl Fn(&WriteRec) -> bool) {
        let mut bytes = 0usize;
        self.recs.retain(|r| {
            let keep = !gone(r);
            if keep {
                bytes = bytes.saturating_add(r.len);
            }
            keep
        });
        self.bytes = bytes;
    }

    /// A `SERVER_FLUSHED` covers the writes up to seq `up_to`.
    pub(crate) fn flushed(&mut self, up_to: u64) {
        self.drop_where(|r| r.seq <= up_to);
    }

    /// A call that makes every earlier write durable, submitted when the next stamp was
    /// `before`, succeeded.
    pub(crate) fn committed(&mut self, before: u64) {
        self.drop_where(|r| r.stamp < before);
    }

    /// An `fsync` of the file at `path` (or an `unlink` or rename of that name, which the
    /// server committed), submitted when the next stamp was `before`, succeeded.
    pub(crate) fn synced(&mut self, path: &[u8], before: u64) {
        self.drop_where(|r| r.stamp < before && r.path[..] == *path);
    }

    /// The retained writes and bytes.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.recs.len(), self.bytes)
    }

    /// The debugfs `log` file's part: a summary line, then the oldest writes.
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        writeln!(
            f,
            "retained writes={} bytes={}",
            self.recs.len(),
            self.bytes
        )?;
        for r in self.recs.iter().take(SHOWN) {
            writeln!(
                f,
                "  write seq={} off={} len={} path={}",
                r.seq,
                r.off,
                r.len,
                BStr(&r.path)
            )?;
        }
        if self.recs.len() > SHOWN {
            writeln!(f, "  ... {} more", self.recs.len().saturating_sub(SHOWN))?;
        }
        Ok(())
    }

    /// Takes the retained writes out, to write them again; [`Retained::put_back`] returns
    /// them (with the seqs of the new writes).
    pub(crate) fn take(&mut self) -> KVec<WriteRec> {
        self.bytes = 0;
        core::mem::take(&mut self.recs)
    }

    /// Returns writes taken by [`Retained::take`]: they are older than any retained since.
    pub(crate) fn put_back(&mut self, mut recs: KVec<WriteRec>) -> Result {
        recs.reserve(self.recs.len(), GFP_KERNEL)?;
        for r in self.recs.drain_all() {
            recs.push_within_capacity(r).map_err(|_| ENOMEM)?;
        }
        self.recs = recs;
        self.bytes = self.recs.iter().map(|r| r.len).sum();
        Ok(())
    }
}
