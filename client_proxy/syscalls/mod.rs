// SPDX-License-Identifier: GPL-2.0

//! Remote system calls: the handlers the route table names, one file per family, and the
//! proxy files (`proxy.c`, `proxy.rs`) that stand for remote fds in the client's fd table.
//!
//! Every handler has the same signature: it gets the call's six arguments and either runs
//! the call on the server (through the process's shadow) or lets it run locally. Paths
//! under a local prefix (`/dev`, `/proc`, `/sys`) and fds that are not proxy files stay
//! local; remote fds are proxy files whose offsets live on the client.
//!
//! Every value a task passes is checked before it is used in arithmetic or converted (see
//! `num.rs`); the crate's lints (`client_main.rs`) keep it so.

use kernel::prelude::*;

use crate::link::rpc;
use crate::num::{outcome, ret_isize};
use crate::proto::syscall::SyscallReq;
use crate::state::client;

pub(crate) mod copy;
pub(crate) mod cwd;
pub(crate) mod dir;
pub(crate) mod exec;
pub(crate) mod fcntl;
pub(crate) mod generic;
pub(crate) mod io;
pub(crate) mod mapcopy;
pub(crate) mod mmap;
pub(crate) mod names;
pub(crate) mod open;
pub(crate) mod paths;
pub(crate) mod proxy;
pub(crate) mod shmap;

/// Largest data transfer per remote call (the rest of a frame is headers).
pub(crate) const MAX_IO: usize = 512 * 1024;

/// The outcome of a handler.
pub(crate) enum Dispatch {
    /// Run the original system call on this machine.
    Local,
    /// The call's return value (`-errno` on failure), for the task's `regs->ax`.
    Done(isize),
}

/// What a remote call gives, on one channel: its non-negative result, or the errno it
/// failed with, whether the server's file system said so or the client did (bad user
/// memory, no memory, no server). Every function below that runs a call returns it;
/// [`done`] turns it into the task's return value once.
pub(crate) type Outcome = Result<u64>;

/// A remote-call handler: gets the six syscall arguments.
pub(crate) type Handler = fn(&[u64; 6]) -> Dispatch;

/// The calling process's id on the server: its thread-group id (a pid: never negative).
pub(crate) fn rpid() -> u32 {
    u32::try_from(kernel::current!().tgid()).unwrap_or_default()
}

/// A failed call's return value.
pub(crate) fn errno(e: Error) -> Dispatch {
    done(Err(e))
}

/// A call's return value: its result or `-errno`.
pub(crate) fn done(r: Outcome) -> Dispatch {
    Dispatch::Done(ret_isize(r))
}

/// Runs `req` in process `rpid`'s shadow: the call's result, or its errno (from the
/// server, or a failure to get it there and back).
pub(crate) fn call(rpid: u32, req: &SyscallReq, ins: &[&[u8]], outs: &mut [&mut [u8]]) -> Outcome {
    let shared = client().ok_or(EIO)?;
    outcome(rpc::call(&shared, rpid, req, ins, outs)?)
}
