//! `/dev/tether_shadow`: the ioctl interface between the server module and its shadows.
//!
//! A shadow (`tether-shadow`) names itself by the token the module started (or forked) it
//! with, which it finds in its environment (`TETHER_TOKEN`), never on its command line.
//! - `NEXT` ([`NextArgs`]) waits for the next request of the shadow's client process on
//!   the caller's lane: a `CLIENT_SYSTEM_CALL` body the module already checked against
//!   [`calls`](super::calls) ([`OP_CALL`]), or a client `fork` ([`OP_FORK`]: fork, the
//!   child serves `fork_token` as pid `fork_pid` when that pid is free). Returns 0 when
//!   the shadow must exit.
//! - **Lanes.** A shadow runs the calls of its client process's threads at once, one
//!   shadow thread per client thread: its first thread serves [`LANE_MAIN`] (the leader),
//!   a spawner thread (started on [`OP_SPAWNER`] when the process starts its first
//!   thread) serves [`LANE_SPAWNER`] and starts a thread for each other client thread that
//!   makes a call ([`OP_THREAD`]), which serves the lane named by that thread's id until
//!   [`OP_LANE_END`].
//! - `REPLY` ([`ReplyArgs`]) sends a `SERVER_REPLY` body for the request `seq`.
//! - `REPLY_NEXT` ([`ReplyNextArgs`]) is `REPLY` then `NEXT` in one system call: a busy
//!   shadow answers one request and takes the next without a second trip into the kernel.
//! - `KEEPER` (a `u64` token) registers the caller as its session's pid-namespace keeper.
//!
//! The first `NEXT` or `REPLY` on an open device file binds it to its token's session: the
//! file (shared by the shadows forked from it) serves that session's tokens only.

use super::frame::MAX_FRAME;

/// The fd a shadow keeps its device open at.
pub const DEV_FD: u32 = 1023;
/// The fd a shadow keeps the export root open at (it `syncfs`es it to commit).
pub const ROOT_FD: u32 = 1022;

/// [`NextArgs::op`]: run the request body.
pub const OP_CALL: u32 = 0;
/// [`NextArgs::op`]: the client process forked.
pub const OP_FORK: u32 = 1;
/// [`NextArgs::op`] (to the [`LANE_MAIN`] thread): start the spawner thread, which serves
/// [`LANE_SPAWNER`].
pub const OP_SPAWNER: u32 = 2;
/// [`NextArgs::op`] (to the spawner): start a thread serving lane `fork_pid`.
pub const OP_THREAD: u32 = 3;
/// [`NextArgs::op`] (to a lane's thread): its client thread exited; stop serving the lane.
pub const OP_LANE_END: u32 = 4;

/// [`NextArgs::lane`] of the shadow's first thread: the calls of the client process's
/// leader (and of every thread, while the process has one).
pub const LANE_MAIN: u32 = 0;
/// [`NextArgs::lane`] of the spawner: starts the threads of the other lanes.
pub const LANE_SPAWNER: u32 = u32::MAX;

/// Largest request or reply body a shadow handles.
pub const MAX_BODY: u32 = MAX_FRAME;

/// Argument of [`SHADOW_NEXT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextArgs {
    /// In: the shadow's token.
    pub token: u64,
    /// In: user buffer for the request body.
    pub buf: u64,
    /// In: its size.
    pub cap: u32,
    /// Out: the body's length.
    pub len: u32,
    /// Out: the request's sequence number, to pass to `REPLY`.
    pub seq: u64,
    /// Out: [`OP_CALL`], [`OP_FORK`], [`OP_SPAWNER`], [`OP_THREAD`] or [`OP_LANE_END`].
    pub op: u32,
    /// Out, [`OP_FORK`]: the client child's pid; [`OP_THREAD`]: the lane.
    pub fork_pid: u32,
    /// Out, [`OP_FORK`]: the token the child shadow serves.
    pub fork_token: u64,
    /// In: the lane the calling thread serves: [`LANE_MAIN`], [`LANE_SPAWNER`], or the
    /// client thread id whose calls it runs.
    pub lane: u32,
    /// In: a lane whose thread the caller could not start ([`LANE_SPAWNER`] from the main
    /// thread, another from the spawner), 0 for none: its calls go to [`LANE_MAIN`].
    pub failed_lane: u32,
}

/// Argument of [`SHADOW_REPLY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplyArgs {
    /// The shadow's token.
    pub token: u64,
    /// User buffer holding the reply body.
    pub buf: u64,
    /// Its length.
    pub len: u32,
    /// Signals the shadow got while it ran the call: bit `n` for signal `n` (1..=31).
    pub signals: u32,
    /// The request's sequence number.
    pub seq: u64,
}

/// Argument of [`SHADOW_REPLY_NEXT`]: a `REPLY`, then a `NEXT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplyNextArgs {
    /// The reply to send.
    pub reply: ReplyArgs,
    /// The next request (in and out as for `NEXT`).
    pub next: NextArgs,
}

/// `_IOC(dir, type, nr, size)` of `include/uapi/asm-generic/ioctl.h`.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    // The sizes here are small structures: they fit the 14-bit size field (a constant
    // evaluation fails otherwise; `try_from` is not `const`).
    assert!(size < 1 << 14);
    #[allow(clippy::cast_possible_truncation)]
    let size = size as u32;
    (dir << 30) | (size << 16) | ((b'T' as u32) << 8) | nr
}
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `NEXT`: `_IOWR('T', 2, struct tether_next_args)`.
pub const SHADOW_NEXT: u32 = ioc(IOC_READ | IOC_WRITE, 2, core::mem::size_of::<NextArgs>());
/// `REPLY`: `_IOW('T', 3, struct tether_reply_args)`.
pub const SHADOW_REPLY: u32 = ioc(IOC_WRITE, 3, core::mem::size_of::<ReplyArgs>());
/// `REPLY_NEXT`: `_IOWR('T', 5, struct tether_reply_next_args)`.
pub const SHADOW_REPLY_NEXT: u32 = ioc(
    IOC_READ | IOC_WRITE,
    5,
    core::mem::size_of::<ReplyNextArgs>(),
);
/// `KEEPER`: `_IOW('T', 4, uint64_t)`.
pub const SHADOW_KEEPER: u32 = ioc(IOC_WRITE, 4, core::mem::size_of::<u64>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(core::mem::size_of::<NextArgs>(), 56);
        assert_eq!(core::mem::size_of::<ReplyArgs>(), 32);
        assert_eq!(core::mem::size_of::<ReplyNextArgs>(), 88);
        assert_eq!(core::mem::offset_of!(ReplyNextArgs, next), 32);
        // As the C macros compute them.
        assert_eq!(SHADOW_KEEPER, 0x4008_5404);
        assert_eq!(SHADOW_REPLY, 0x4020_5403);
        assert_eq!(SHADOW_NEXT, 0xc038_5402);
        assert_eq!(SHADOW_REPLY_NEXT, 0xc058_5405);
    }
}
