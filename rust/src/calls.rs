//! The shadow ABI: every call a shadow makes for its client, and how each argument travels.
//!
//! One table, [`CALLS`], indexed by call number, is the whole contract:
//! - the client builds a `CLIENT_SYSTEM_CALL` from it (its generic handler forwards every
//!   call whose spec it names, reading paths and input buffers from the task);
//! - the server checks every request against it before a shadow sees it ([`check`]): an
//!   unknown number is `ENOSYS`; a pointer argument must be a buffer of the spec's direction
//!   and length, or null; a scalar argument never carries a buffer. So a shadow never turns
//!   a number the client chose into an address;
//! - `tether-shadow` gets the numbers it may run and what each commits from the C header
//!   `userspace-tools/tether_abi.h`, generated from this file (a host test fails when the
//!   header is stale: `TETHER_BLESS=1 cargo test` writes it again).
//!
//! A call number is an x86-64 system call number ([`sysno`](super::sysno)) or one of the
//! shadow calls ([`APPEND`], [`GETDENTS`], [`REOPEN`]): steps the shadow makes as one,
//! numbered from the top of the `u32` range where no system call lives.

use super::syscall::{BufDesc, SyscallReq, DIR_IN, DIR_OUT, DIR_RET};
use super::sysno::*;

/// Shadow call: `write(fd, buf, len)` then `lseek(fd, 0, SEEK_CUR)` into the 8-byte output
/// buffer at argument 3 (`-1` when the file has no offset): an append and where it landed.
pub const APPEND: u32 = u32::MAX - 1;
/// Shadow call: `lseek(fd, pos, SEEK_SET)` with the client's position (argument 4), then
/// `getdents64(fd, buf, len)`, then where the listing ended into the 8-byte output buffer
/// at argument 3: the client keeps a directory's position.
pub const GETDENTS: u32 = u32::MAX - 2;
/// Shadow call for a replay: `openat(dirfd, path, flags, mode)` without `O_CREAT`,
/// `O_EXCL` or `O_TRUNC`; when only the mode bits of a regular file the caller owns refuse
/// the access, the owner's bits are lent for the open (and given back at once). A replay
/// reopens a file its process created read-only, or writes its retained data again
/// (`O_WRONLY|O_CREAT` with mode 0444: git's objects, tar's read-only files). The owner
/// could `chmod` the file itself: the lending grants nothing it does not have.
pub const REOPEN: u32 = u32::MAX - 3;

/// Longest path or string argument, with its NUL (`PATH_MAX`, `include/uapi/linux/limits.h`).
pub const PATH_MAX: u32 = 4096;
/// `AT_FDCWD` (`include/uapi/linux/fcntl.h`).
pub const AT_FDCWD: i32 = -100;
/// `O_CREAT`, `O_TRUNC` (`include/uapi/asm-generic/fcntl.h`).
pub const O_CREAT: u64 = 0o100;
/// See [`O_CREAT`].
pub const O_TRUNC: u64 = 0o1000;
/// `S_IFMT`, `S_IFCHR`, `S_IFBLK` (`include/uapi/linux/stat.h`).
pub const S_IFMT: u64 = 0o170000;
/// See [`S_IFMT`].
pub const S_IFCHR: u64 = 0o020000;
/// See [`S_IFMT`].
pub const S_IFBLK: u64 = 0o060000;

/// The fds a shadow keeps for itself: its device (1023) and the export root (1022). A
/// call that would close or replace one of them is refused with `EBADF`.
pub const SHADOW_RESERVED_FD: u64 = 1022;

/// x86-64 sizes of the structures calls fill in.
pub const STAT_LEN: u32 = 144;
/// `struct statfs`.
pub const STATFS_LEN: u32 = 120;
/// `struct statx`.
pub const STATX_LEN: u32 = 256;
/// `struct flock`.
pub const FLOCK_LEN: u32 = 32;
/// `struct timespec[2]`.
pub const TIMES_LEN: u32 = 32;

/// How a call argument travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A scalar, passed as is.
    Val,
    /// An fd of the shadow's (the client maps a proxy file to its server fd; any other fd
    /// keeps the whole call local).
    Fd,
    /// The dirfd of the path in argument `.0`: `AT_FDCWD` and absolute paths keep it as
    /// is, else like [`Arg::Fd`].
    DirFd(u8),
    /// A NUL-terminated path read by the call (a local path keeps the call local); null
    /// stays null.
    Path,
    /// A NUL-terminated string that is not resolved as a path (a symlink's target, an
    /// extended attribute's name).
    Str,
    /// A buffer read by the call.
    In(Len),
    /// A buffer written by the call, copied back whole.
    Out(Len),
    /// A buffer read and written by the call.
    InOut(Len),
    /// A buffer written by the call whose first `ret` bytes are copied back.
    OutRet(Len),
    /// `fcntl`'s third argument: what it is depends on the command ([`fcntl_arg`]).
    ByCommand,
}

/// The length of a buffer argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// A fixed size (a structure).
    Fixed(u32),
    /// The value of argument `.0`, which must equal the buffer's length.
    Arg(u8),
}

/// What a successful call makes durable on the server (DESIGN §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing (reads, and data writes: the flusher makes those durable).
    None,
    /// It changes the namespace, a size or attributes: the shadow commits it (`syncfs` of
    /// the export) before answering, and with it every write answered before.
    Commits,
    /// An open: commits like [`Effect::Commits`] when it creates or truncates.
    CommitsIfCreates,
    /// `syncfs`: every write answered before it.
    SyncsAll,
    /// `fsync`/`fdatasync`: the writes to the file open as argument 0.
    SyncsFile,
}

/// How the server runs one call for a client.
#[derive(Debug)]
pub struct Spec {
    /// Its number: an x86-64 system call number or a shadow call.
    pub nr: u32,
    /// Its name, for logs and the generated header.
    pub name: &'static str,
    /// How each argument travels.
    pub args: [Arg; 6],
    /// What it makes durable.
    pub effect: Effect,
}

impl Spec {
    /// A spec whose arguments past `args` are scalars.
    // Only evaluated at build time, where an out-of-bounds index is a build error.
    #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
    pub const fn new<const N: usize>(
        nr: u32,
        name: &'static str,
        args: [Arg; N],
        effect: Effect,
    ) -> Self {
        let mut all = [Arg::Val; 6];
        let mut i = 0;
        while i < N && i < 6 {
            all[i] = args[i];
            i += 1;
        }
        Self {
            nr,
            name,
            args: all,
            effect,
        }
    }

    /// How argument `i` travels in a call with `args` ([`Arg::ByCommand`] resolved; `None`
    /// for an `fcntl` command no shadow runs).
    pub fn arg(&self, i: usize, args: &[u64; 6]) -> Option<Arg> {
        match self.args.get(i).copied()? {
            Arg::ByCommand => fcntl_arg(args.get(1).copied()?),
            a => Some(a),
        }
    }
}

/// The `fcntl` commands a shadow runs and what their third argument is: the status flags
/// (`F_GETFL`, `F_SETFL`: a scalar) and the record locks (`F_GETLK`, `F_SETLK`, `F_SETLKW`
/// and their OFD forms: a `struct flock`). The other commands act on the client's own fd
/// (close-on-exec, duplicates) or are not forwarded.
pub fn fcntl_arg(cmd: u64) -> Option<Arg> {
    match cmd {
        F_GETFL | F_SETFL => Some(Arg::Val),
        c if LOCK_CMDS.contains(&c) => Some(Arg::InOut(Len::Fixed(FLOCK_LEN))),
        _ => None,
    }
}

/// `fcntl` commands (`include/uapi/asm-generic/fcntl.h`).
pub const F_GETFL: u64 = 3;
/// See [`F_GETFL`].
pub const F_SETFL: u64 = 4;
/// The status flags `F_SETFL` changes (`fs/fcntl.c` `SETFL_MASK` without `FASYNC`, which a
/// remote file does not support): `O_APPEND`, `O_NONBLOCK`, `O_DIRECT`, `O_NOATIME`.
pub const SETFL_MASK: u32 = 0o2000 | 0o4000 | 0o40000 | 0o1000000;
/// The record lock commands (`include/uapi/asm-generic/fcntl.h`).
pub const F_GETLK: u64 = 5;
/// See [`F_GETLK`].
pub const F_SETLK: u64 = 6;
/// See [`F_GETLK`].
pub const F_SETLKW: u64 = 7;
/// See [`F_GETLK`].
pub const F_OFD_GETLK: u64 = 36;
/// See [`F_GETLK`].
pub const F_OFD_SETLK: u64 = 37;
/// See [`F_GETLK`].
pub const F_OFD_SETLKW: u64 = 38;
/// Every record lock command.
pub const LOCK_CMDS: [u64; 6] = [
    F_GETLK,
    F_SETLK,
    F_SETLKW,
    F_OFD_GETLK,
    F_OFD_SETLK,
    F_OFD_SETLKW,
];

use Arg::*;
use Effect::{Commits, CommitsIfCreates, SyncsAll, SyncsFile};
const NONE: Effect = Effect::None;
const STAT_BUF: Arg = Out(Len::Fixed(STAT_LEN));

/// Every call a shadow runs for its client.
pub static CALLS: [Spec; 75] = TABLE;

#[rustfmt::skip]
const TABLE: [Spec; 75] = [
    Spec::new(READ, "read", [Fd, OutRet(Len::Arg(2))], NONE),
    Spec::new(WRITE, "write", [Fd, In(Len::Arg(2))], NONE),
    Spec::new(OPEN, "open", [Path], CommitsIfCreates),
    Spec::new(CLOSE, "close", [Fd], NONE),
    Spec::new(STAT, "stat", [Path, STAT_BUF], NONE),
    Spec::new(FSTAT, "fstat", [Fd, STAT_BUF], NONE),
    Spec::new(LSTAT, "lstat", [Path, STAT_BUF], NONE),
    Spec::new(LSEEK, "lseek", [Fd], NONE),
    Spec::new(PREAD64, "pread64", [Fd, OutRet(Len::Arg(2))], NONE),
    Spec::new(PWRITE64, "pwrite64", [Fd, In(Len::Arg(2))], NONE),
    Spec::new(ACCESS, "access", [Path], NONE),
    Spec::new(FCNTL, "fcntl", [Fd, Val, ByCommand], NONE),
    Spec::new(FLOCK, "flock", [Fd], NONE),
    Spec::new(FSYNC, "fsync", [Fd], SyncsFile),
    Spec::new(FDATASYNC, "fdatasync", [Fd], SyncsFile),
    Spec::new(TRUNCATE, "truncate", [Path], Commits),
    Spec::new(FTRUNCATE, "ftruncate", [Fd], Commits),
    Spec::new(GETCWD, "getcwd", [OutRet(Len::Arg(1))], NONE),
    Spec::new(CHDIR, "chdir", [Path], NONE),
    Spec::new(FCHDIR, "fchdir", [Fd], NONE),
    Spec::new(RENAME, "rename", [Path, Path], Commits),
    Spec::new(MKDIR, "mkdir", [Path], Commits),
    Spec::new(RMDIR, "rmdir", [Path], Commits),
    Spec::new(CREAT, "creat", [Path], Commits),
    Spec::new(LINK, "link", [Path, Path], Commits),
    Spec::new(UNLINK, "unlink", [Path], Commits),
    Spec::new(SYMLINK, "symlink", [Str, Path], Commits),
    Spec::new(READLINK, "readlink", [Path, OutRet(Len::Arg(2))], NONE),
    Spec::new(CHMOD, "chmod", [Path], Commits),
    Spec::new(FCHMOD, "fchmod", [Fd], Commits),
    Spec::new(CHOWN, "chown", [Path], Commits),
    Spec::new(FCHOWN, "fchown", [Fd], Commits),
    Spec::new(LCHOWN, "lchown", [Path], Commits),
    Spec::new(UMASK, "umask", [], NONE),
    Spec::new(MKNOD, "mknod", [Path], Commits),
    Spec::new(STATFS, "statfs", [Path, Out(Len::Fixed(STATFS_LEN))], NONE),
    Spec::new(FSTATFS, "fstatfs", [Fd, Out(Len::Fixed(STATFS_LEN))], NONE),
    Spec::new(SETXATTR, "setxattr", [Path, Str, In(Len::Arg(3))], Commits),
    Spec::new(LSETXATTR, "lsetxattr", [Path, Str, In(Len::Arg(3))], Commits),
    Spec::new(FSETXATTR, "fsetxattr", [Fd, Str, In(Len::Arg(3))], Commits),
    Spec::new(GETXATTR, "getxattr", [Path, Str, OutRet(Len::Arg(3))], NONE),
    Spec::new(LGETXATTR, "lgetxattr", [Path, Str, OutRet(Len::Arg(3))], NONE),
    Spec::new(FGETXATTR, "fgetxattr", [Fd, Str, OutRet(Len::Arg(3))], NONE),
    Spec::new(LISTXATTR, "listxattr", [Path, OutRet(Len::Arg(2))], NONE),
    Spec::new(LLISTXATTR, "llistxattr", [Path, OutRet(Len::Arg(2))], NONE),
    Spec::new(FLISTXATTR, "flistxattr", [Fd, OutRet(Len::Arg(2))], NONE),
    Spec::new(REMOVEXATTR, "removexattr", [Path, Str], Commits),
    Spec::new(LREMOVEXATTR, "lremovexattr", [Path, Str], Commits),
    Spec::new(FREMOVEXATTR, "fremovexattr", [Fd, Str], Commits),
    Spec::new(OPENAT, "openat", [DirFd(1), Path], CommitsIfCreates),
    Spec::new(MKDIRAT, "mkdirat", [DirFd(1), Path], Commits),
    Spec::new(MKNODAT, "mknodat", [DirFd(1), Path], Commits),
    Spec::new(FCHOWNAT, "fchownat", [DirFd(1), Path], Commits),
    Spec::new(NEWFSTATAT, "newfstatat", [DirFd(1), Path, STAT_BUF], NONE),
    Spec::new(UNLINKAT, "unlinkat", [DirFd(1), Path], Commits),
    Spec::new(RENAMEAT, "renameat", [DirFd(1), Path, DirFd(3), Path], Commits),
    Spec::new(LINKAT, "linkat", [DirFd(1), Path, DirFd(3), Path], Commits),
    Spec::new(SYMLINKAT, "symlinkat", [Str, DirFd(2), Path], Commits),
    Spec::new(READLINKAT, "readlinkat", [DirFd(1), Path, OutRet(Len::Arg(3))], NONE),
    Spec::new(FCHMODAT, "fchmodat", [DirFd(1), Path], Commits),
    Spec::new(FACCESSAT, "faccessat", [DirFd(1), Path], NONE),
    Spec::new(SYNC_FILE_RANGE, "sync_file_range", [Fd], NONE),
    Spec::new(UTIMENSAT, "utimensat", [DirFd(1), Path, In(Len::Fixed(TIMES_LEN))], Commits),
    Spec::new(FALLOCATE, "fallocate", [Fd], Commits),
    Spec::new(DUP3, "dup3", [Fd, Fd], NONE),
    Spec::new(SYNCFS, "syncfs", [Fd], SyncsAll),
    Spec::new(RENAMEAT2, "renameat2", [DirFd(1), Path, DirFd(3), Path], Commits),
    Spec::new(COPY_FILE_RANGE, "copy_file_range",
              [Fd, In(Len::Fixed(8)), Fd, In(Len::Fixed(8))], Commits),
    Spec::new(STATX, "statx", [DirFd(1), Path, Val, Val, Out(Len::Fixed(STATX_LEN))], NONE),
    Spec::new(OPENAT2, "openat2", [DirFd(1), Path, In(Len::Arg(3))], CommitsIfCreates),
    Spec::new(FACCESSAT2, "faccessat2", [DirFd(1), Path], NONE),
    Spec::new(FCHMODAT2, "fchmodat2", [DirFd(1), Path], Commits),
    Spec::new(APPEND, "append", [Fd, In(Len::Arg(2)), Val, Out(Len::Fixed(8))], NONE),
    Spec::new(GETDENTS, "getdents", [Fd, OutRet(Len::Arg(2)), Val, Out(Len::Fixed(8))], NONE),
    Spec::new(REOPEN, "reopen", [DirFd(1), Path], NONE),
];

const NO_CALL: u8 = u8::MAX;

/// `INDEX[nr]`: the position of system call `nr` in [`CALLS`], or [`NO_CALL`].
static INDEX: [u8; NR_SYSCALLS] = index_table();

// Only evaluated at build time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn index_table() -> [u8; NR_SYSCALLS] {
    let mut t = [NO_CALL; NR_SYSCALLS];
    let mut i = 0;
    while i < TABLE.len() {
        let nr = TABLE[i].nr as usize;
        if nr < NR_SYSCALLS {
            assert!(t[nr] == NO_CALL, "a call is in CALLS twice");
            assert!(i < NO_CALL as usize);
            // `i < NO_CALL` (a `u8`), asserted just above; `try_from` is not `const`.
            #[allow(clippy::cast_possible_truncation)]
            {
                t[nr] = i as u8;
            }
        }
        i += 1;
    }
    t
}

/// Whether a shadow runs call `nr` (for build-time checks of other tables).
// Only evaluated at build time, where an out-of-bounds index is a build error.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub const fn is_call(nr: u32) -> bool {
    let mut i = 0;
    while i < TABLE.len() {
        if TABLE[i].nr == nr {
            return true;
        }
        i += 1;
    }
    false
}

/// The position of call `nr` in [`CALLS`], if a shadow runs it.
pub fn index(nr: u32) -> Option<usize> {
    match nr {
        APPEND | GETDENTS | REOPEN => CALLS.iter().rposition(|s| s.nr == nr),
        _ => {
            let i = usize::from(*INDEX.get(usize::try_from(nr).ok()?)?);
            (i < CALLS.len()).then_some(i)
        }
    }
}

/// The spec of call `nr`, if a shadow runs it.
pub fn spec(nr: u32) -> Option<&'static Spec> {
    CALLS.get(index(nr)?)
}

/// The open flags of an open call (`open`, `openat`, `openat2`: `struct open_how` starts
/// with them, `how` is its bytes); `None` for any other call.
pub fn open_flags(nr: u32, args: &[u64; 6], how: Option<&[u8]>) -> Option<u64> {
    match nr {
        OPEN => args.get(1).copied(),
        OPENAT => args.get(2).copied(),
        OPENAT2 => Some(
            how.and_then(|h| h.get(..8))
                .and_then(|f| f.try_into().ok())
                .map_or(0, u64::from_le_bytes),
        ),
        _ => None,
    }
}

/// What call `spec` with `args` (and, for `openat2`, its `struct open_how` in `how`) makes
/// durable once it succeeded.
pub fn effect(spec: &Spec, args: &[u64; 6], how: Option<&[u8]>) -> Effect {
    match spec.effect {
        CommitsIfCreates => {
            let flags = open_flags(spec.nr, args, how).unwrap_or(0);
            if flags & (O_CREAT | O_TRUNC) != 0 {
                Commits
            } else {
                Effect::None
            }
        }
        e => e,
    }
}

/// Why the server refuses a request before any shadow sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No shadow runs this call (`ENOSYS`).
    NoSuchCall,
    /// Its buffers do not match the call's spec (`EINVAL`).
    BadArgs,
    /// It would close or replace one of the shadow's own fds (`EBADF`).
    ReservedFd,
    /// It would create a device node (`EPERM`): a device in the export would open the
    /// server's devices from inside the export root.
    Device,
}

impl Refusal {
    /// The errno the client's call gets (`include/uapi/asm-generic/errno*.h`).
    pub const fn errno(self) -> u32 {
        match self {
            Refusal::NoSuchCall => 38,
            Refusal::BadArgs => 22,
            Refusal::ReservedFd => 9,
            Refusal::Device => 1,
        }
    }
}

/// Whether buffer direction `dir` is how argument kind `arg` travels.
fn dir_matches(arg: Arg, dir: u8) -> Option<Len> {
    let (want, len) = match arg {
        Path | Str => (DIR_IN, Len::Fixed(0)),
        In(l) => (DIR_IN, l),
        Out(l) => (DIR_OUT, l),
        InOut(l) => (DIR_IN | DIR_OUT, l),
        OutRet(l) => (DIR_OUT | DIR_RET, l),
        Val | Fd | DirFd(_) | ByCommand => return None,
    };
    (dir == want).then_some(len)
}

/// Checks a decoded request (`data`: its input bytes, as [`SyscallReq::decode`] returned
/// them) against its call's spec: every buffer is at a pointer argument, in the spec's
/// direction and of its length (a path or string: at most [`PATH_MAX`] bytes, ending with
/// its only NUL); every pointer argument without a buffer is null; the output fits a reply
/// of `max_out` bytes; no fd argument names a shadow's own fd; no device node is made.
pub fn check(req: &SyscallReq, data: &[u8], max_out: u32) -> Result<&'static Spec, Refusal> {
    let spec = spec(req.nr).ok_or(Refusal::NoSuchCall)?;
    let mut kinds = [Val; 6];
    for (i, k) in kinds.iter_mut().enumerate() {
        *k = spec.arg(i, &req.args).ok_or(Refusal::BadArgs)?;
    }
    let mut with_buf = [false; 6];
    let mut in_at = 0usize;
    let mut out_total = 0u64;
    for b in req.bufs() {
        check_buf(b, &kinds, &req.args, &mut with_buf)?;
        if b.dir & DIR_IN != 0 {
            let len = usize::try_from(b.len).map_err(|_| Refusal::BadArgs)?;
            let end = in_at.checked_add(len).ok_or(Refusal::BadArgs)?;
            let bytes = data.get(in_at..end).ok_or(Refusal::BadArgs)?;
            let arg = kinds.get(usize::from(b.arg)).copied();
            if matches!(arg, Some(Path | Str)) && !is_c_string(bytes) {
                return Err(Refusal::BadArgs);
            }
            in_at = end;
        }
        if b.dir & DIR_OUT != 0 {
            out_total = out_total.saturating_add(u64::from(b.len));
        }
    }
    if out_total > u64::from(max_out) {
        return Err(Refusal::BadArgs);
    }
    for ((k, &buffered), &v) in kinds.iter().zip(&with_buf).zip(&req.args) {
        let pointer = !matches!(k, Val | Fd | DirFd(_));
        if pointer && !buffered && v != 0 {
            return Err(Refusal::BadArgs);
        }
        if matches!(k, Fd) && (v & 0xffff_ffff) >= SHADOW_RESERVED_FD {
            return Err(Refusal::ReservedFd);
        }
    }
    let mode = match req.nr {
        MKNOD => req.args.get(1),
        MKNODAT => req.args.get(2),
        _ => None,
    };
    let mode = mode.copied().unwrap_or(0);
    if matches!(mode & S_IFMT, S_IFCHR | S_IFBLK) {
        return Err(Refusal::Device);
    }
    Ok(spec)
}

/// Checks one buffer descriptor against the argument kinds; marks its argument.
fn check_buf(
    b: &BufDesc,
    kinds: &[Arg; 6],
    args: &[u64; 6],
    with_buf: &mut [bool; 6],
) -> Result<(), Refusal> {
    let i = usize::from(b.arg);
    let kind = *kinds.get(i).ok_or(Refusal::BadArgs)?;
    let seen = with_buf.get_mut(i).ok_or(Refusal::BadArgs)?;
    if *seen {
        return Err(Refusal::BadArgs);
    }
    *seen = true;
    let len = dir_matches(kind, b.dir).ok_or(Refusal::BadArgs)?;
    let ok = match (kind, len) {
        (Path | Str, _) => b.len >= 1 && b.len <= PATH_MAX,
        (_, Len::Fixed(n)) => b.len == n,
        (_, Len::Arg(j)) => args
            .get(usize::from(j))
            .is_some_and(|&v| v == u64::from(b.len)),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::BadArgs)
    }
}

/// Whether `b` is a C string: its last byte its only NUL.
fn is_c_string(b: &[u8]) -> bool {
    matches!(b.split_last(), Some((0, rest)) if !rest.contains(&0))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::syscall::MAX_BUFS;
    use super::*;
    use core::fmt::Write;
    use std::string::String;

    fn req(nr: u32, args: [u64; 6], bufs: &[BufDesc]) -> SyscallReq {
        let mut r = SyscallReq {
            nr,
            args,
            nbufs: bufs.len() as u32,
            ..Default::default()
        };
        r.bufs[..bufs.len()].copy_from_slice(bufs);
        r
    }

    fn buf(arg: u8, dir: u8, len: u32) -> BufDesc {
        BufDesc { arg, dir, len }
    }

    #[test]
    fn every_call_once_and_found() {
        for (i, s) in CALLS.iter().enumerate() {
            assert_eq!(spec(s.nr).map(|f| f.name), Some(s.name));
            assert_eq!(index(s.nr), Some(i));
            assert_eq!(
                CALLS.iter().filter(|t| t.nr == s.nr).count(),
                1,
                "{}",
                s.name
            );
            let bufs = s
                .args
                .iter()
                .filter(|a| !matches!(a, Val | Fd | DirFd(_) | ByCommand))
                .count();
            assert!(bufs <= MAX_BUFS, "{}", s.name);
        }
        assert!(spec(IO_URING_SETUP).is_none());
        assert!(spec(u32::MAX).is_none());
        assert!(spec(9999).is_none());
    }

    #[test]
    fn checks_requests() {
        let path = b"/etc/x\0";
        let open = req(
            OPENAT,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            &[buf(1, DIR_IN, 7)],
        );
        assert_eq!(check(&open, path, 1 << 20).map(|s| s.nr), Ok(OPENAT));
        // No NUL, or one inside.
        assert_eq!(
            check(&open, b"/etc/xy", 1 << 20).err(),
            Some(Refusal::BadArgs)
        );
        assert_eq!(
            check(&open, b"/e\0c/x\0", 1 << 20).err(),
            Some(Refusal::BadArgs)
        );
        // A pointer without a buffer must be null.
        let raw = req(PREAD64, [3, 0x10, 8, 0, 0, 0], &[]);
        assert_eq!(check(&raw, &[], 1 << 20).err(), Some(Refusal::BadArgs));
        let null = req(PREAD64, [3, 0, 8, 0, 0, 0], &[]);
        assert!(check(&null, &[], 1 << 20).is_ok());
        // The length argument must be the buffer's length.
        let long = req(PREAD64, [3, 0, 9, 0, 0, 0], &[buf(1, DIR_OUT | DIR_RET, 8)]);
        assert_eq!(check(&long, &[], 1 << 20).err(), Some(Refusal::BadArgs));
        let ok = req(PREAD64, [3, 0, 8, 0, 0, 0], &[buf(1, DIR_OUT | DIR_RET, 8)]);
        assert!(check(&ok, &[], 1 << 20).is_ok());
        assert_eq!(check(&ok, &[], 7).err(), Some(Refusal::BadArgs));
        // Wrong direction, a buffer at a scalar, two buffers at one argument.
        let wrong = req(PREAD64, [3, 0, 8, 0, 0, 0], &[buf(1, DIR_IN, 8)]);
        assert_eq!(
            check(&wrong, &[0; 8], 1 << 20).err(),
            Some(Refusal::BadArgs)
        );
        let scalar = req(PREAD64, [3, 0, 8, 0, 0, 0], &[buf(3, DIR_OUT, 8)]);
        assert_eq!(check(&scalar, &[], 1 << 20).err(), Some(Refusal::BadArgs));
        // The append shadow call must have its 8-byte output buffer.
        let append = req(APPEND, [3, 0, 1, 0x10, 0, 0], &[buf(1, DIR_IN, 1)]);
        assert_eq!(check(&append, b"x", 1 << 20).err(), Some(Refusal::BadArgs));
        // Unknown and internal numbers, reserved fds, devices, fcntl commands.
        for nr in [u32::MAX, IO_URING_SETUP, 9] {
            let r = req(nr, [0; 6], &[]);
            assert_eq!(check(&r, &[], 1 << 20).err(), Some(Refusal::NoSuchCall));
        }
        let close = req(CLOSE, [1023, 0, 0, 0, 0, 0], &[]);
        assert_eq!(check(&close, &[], 1 << 20).err(), Some(Refusal::ReservedFd));
        let dup = req(DUP3, [3, 1022, 0, 0, 0, 0], &[]);
        assert_eq!(check(&dup, &[], 1 << 20).err(), Some(Refusal::ReservedFd));
        let dev = req(
            MKNOD,
            [0, S_IFBLK | 0o600, 0, 0, 0, 0],
            &[buf(0, DIR_IN, 7)],
        );
        assert_eq!(check(&dev, path, 1 << 20).err(), Some(Refusal::Device));
        let own = req(FCNTL, [3, 8 /* F_SETOWN */, 0x10, 0, 0, 0], &[]);
        assert_eq!(check(&own, &[], 1 << 20).err(), Some(Refusal::BadArgs));
        let lk = req(FCNTL, [3, 6, 0, 0, 0, 0], &[buf(2, DIR_IN | DIR_OUT, 32)]);
        assert!(check(&lk, &[0; 32], 1 << 20).is_ok());
    }

    #[test]
    fn effects() {
        let openat = spec(OPENAT).unwrap();
        assert_eq!(effect(openat, &[0, 0, 0, 0, 0, 0], None), Effect::None);
        assert_eq!(effect(openat, &[0, 0, O_CREAT, 0, 0, 0], None), Commits);
        let how = (O_TRUNC | 1).to_le_bytes();
        assert_eq!(effect(spec(OPENAT2).unwrap(), &[0; 6], Some(&how)), Commits);
        assert_eq!(effect(spec(FSYNC).unwrap(), &[0; 6], None), SyncsFile);
        assert_eq!(effect(spec(RENAME).unwrap(), &[0; 6], None), Commits);
    }

    /// The C header `tether-shadow.c` includes: what it may run and what it commits, the
    /// request and reply layout, the device's ioctls.
    fn c_header() -> String {
        use super::super::device::*;
        use super::super::syscall::{SyscallReply, MAX_BUFS, REPLY_SYNCED_ALL};
        let mut h = String::from(
            "/* SPDX-License-Identifier: GPL-2.0 */\n\
             /* Generated from rust/src/calls.rs and rust/src/device.rs by their host tests\n \
             * (TETHER_BLESS=1 cargo test in rust/): do not edit. */\n\
             #ifndef TETHER_ABI_H\n#define TETHER_ABI_H\n#include <stdint.h>\n\n",
        );
        let defs: [(&str, u64); 25] = [
            ("TETHER_REQ_HEAD", SyscallReq::head_len(0) as u64),
            ("TETHER_BUF_DESC_LEN", 8),
            ("TETHER_REP_HEAD", SyscallReply::head_len(0) as u64),
            ("TETHER_MAX_BUFS", MAX_BUFS as u64),
            ("TETHER_REPLY_SYNCED_ALL", REPLY_SYNCED_ALL.into()),
            ("TETHER_DIR_IN", DIR_IN.into()),
            ("TETHER_DIR_OUT", DIR_OUT.into()),
            ("TETHER_DIR_RET", DIR_RET.into()),
            ("TETHER_CALL_APPEND", APPEND.into()),
            ("TETHER_CALL_GETDENTS", GETDENTS.into()),
            ("TETHER_CALL_REOPEN", REOPEN.into()),
            ("TETHER_DEV_FD", DEV_FD.into()),
            ("TETHER_ROOT_FD", ROOT_FD.into()),
            ("TETHER_OP_CALL", OP_CALL.into()),
            ("TETHER_OP_FORK", OP_FORK.into()),
            ("TETHER_OP_SPAWNER", OP_SPAWNER.into()),
            ("TETHER_OP_THREAD", OP_THREAD.into()),
            ("TETHER_OP_LANE_END", OP_LANE_END.into()),
            ("TETHER_LANE_MAIN", LANE_MAIN.into()),
            ("TETHER_LANE_SPAWNER", LANE_SPAWNER.into()),
            ("TETHER_SHADOW_NEXT", SHADOW_NEXT.into()),
            ("TETHER_SHADOW_REPLY", SHADOW_REPLY.into()),
            ("TETHER_SHADOW_KEEPER", SHADOW_KEEPER.into()),
            ("TETHER_SHADOW_REPLY_NEXT", SHADOW_REPLY_NEXT.into()),
            ("TETHER_MAX_BODY", MAX_BODY.into()),
        ];
        for (n, v) in defs {
            writeln!(h, "#define {n} {v:#x}u").unwrap();
        }
        h.push_str(
            "\n/* What a call makes durable once it succeeded (rust/src/calls.rs, Effect). */\n\
              enum tether_effect { TETHER_NONE, TETHER_COMMITS, TETHER_COMMITS_IF_CREATES,\n\
              \t\t     TETHER_SYNCS_ALL, TETHER_SYNCS_FILE };\n\n\
              struct tether_call { uint32_t nr; uint8_t effect; const char *name; };\n\n\
              /* Every call a shadow runs; the server module has checked each request's\n \
              * buffers against the same table before the shadow sees it. */\n\
              static const struct tether_call tether_calls[] = {\n",
        );
        for s in CALLS.iter() {
            let e = match s.effect {
                Effect::None => "TETHER_NONE",
                Commits => "TETHER_COMMITS",
                CommitsIfCreates => "TETHER_COMMITS_IF_CREATES",
                SyncsAll => "TETHER_SYNCS_ALL",
                SyncsFile => "TETHER_SYNCS_FILE",
            };
            writeln!(h, "\t{{ {}u, {e}, \"{}\" }},", s.nr, s.name).unwrap();
        }
        h.push_str("};\n\n");
        write!(
            h,
            "/* The device's ioctl arguments (rust/src/device.rs). */\n\
             struct tether_next_args {{\n\tuint64_t token;\t/* in */\n\tuint64_t buf;\t/* in */\n\
             \tuint32_t cap;\t/* in */\n\tuint32_t len;\t/* out */\n\tuint64_t seq;\t/* out */\n\
             \tuint32_t op;\t/* out: TETHER_OP_* */\n\tuint32_t fork_pid;\t/* out: OP_FORK */\n\
             \tuint64_t fork_token;\t/* out: OP_FORK */\n\tuint32_t lane;\t/* in */\n\
             \tuint32_t failed_lane;\t/* in */\n}};\n\
             _Static_assert(sizeof(struct tether_next_args) == {}, \"next_args\");\n\n\
             struct tether_reply_args {{\n\tuint64_t token;\n\tuint64_t buf;\n\tuint32_t len;\n\
             \tuint32_t signals;\n\tuint64_t seq;\n}};\n\
             _Static_assert(sizeof(struct tether_reply_args) == {}, \"reply_args\");\n\n\
             struct tether_reply_next_args {{\n\tstruct tether_reply_args reply;\n\
             \tstruct tether_next_args next;\n}};\n\
             _Static_assert(sizeof(struct tether_reply_next_args) == {}, \"reply_next_args\");\n\n\
             #endif\n",
            core::mem::size_of::<NextArgs>(),
            core::mem::size_of::<ReplyArgs>(),
            core::mem::size_of::<ReplyNextArgs>()
        )
        .unwrap();
        h
    }

    /// `userspace-tools/tether_abi.h` is what [`c_header`] renders.
    #[test]
    fn c_header_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../userspace-tools/tether_abi.h"
        );
        let want = c_header();
        if std::env::var_os("TETHER_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "{path} is stale: run TETHER_BLESS=1 cargo test in rust/"
        );
    }
}
