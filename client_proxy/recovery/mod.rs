// SPDX-License-Identifier: GPL-2.0

//! Crash survival: the journal of what the server holds for each process (`journal.rs`),
//! retained writes (`retain.rs`), replay and redo after a server restart (`replay.rs`), the
//! journal persisted to a local file (`persist.rs`, `logfile.c`).

pub(crate) mod journal;
pub(crate) mod persist;
pub(crate) mod replay;
pub(crate) mod retain;
