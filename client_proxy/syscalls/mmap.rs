// SPDX-License-Identifier: GPL-2.0

//! Implements remote `mmap(2)`: a mapping of a remote file is a copy of its bytes.
//!
//! Until remote paging exists (DESIGN §4) the client maps, in place of the remote file, a
//! file of its own shmem holding the bytes read from the server when the mapping is made
//! (`mapcopy.c`). That is what reading through a mapping needs (`git` reading its index
//! and packs, `ld.so` mapping a library that lives on the server):
//! - `MAP_PRIVATE`, any protection: a private mapping of the copy (its writes stay in the
//!   process, as with the file);
//! - `MAP_SHARED` without `PROT_WRITE`: a shared mapping of the copy that can never become
//!   writable (`mprotect` fails with `EACCES`, as for a file open read-only);
//! - `MAP_SHARED` with `PROT_WRITE` fails with `ENODEV`, as for a file without an `mmap`
//!   operation (its writes would have to reach the server); a rate-limited notice in dmesg
//!   names the process.
//!
//! The copy ends where the file ended, so a page wholly past that end gets `SIGBUS`, as it
//! would with the file. Known differences: the mapping does not see later changes of the
//! file (by this process or anyone), the whole range is read when the mapping is made, and
//! `/proc/PID/maps` names the copy (`/tether-map`), not the file.

use core::ptr::NonNull;
use kernel::{alloc::KVVec, error::to_result, ffi, prelude::*};

use super::io::{verify_area, PIECE};
use super::proxy::Proxy;
use super::{call, done, Dispatch, Outcome};
use crate::link::rpc::request;
use crate::num::{arg_i32, count_i64, len_u64, len_usize, reg_i64, wire_len};
use crate::proto::syscall::{BufDesc, DIR_OUT, DIR_RET};
use crate::proto::sysno;

extern "C" {
    fn tether_proxy_mmap_refused(fd: ffi::c_int);
    fn tether_mapcopy_new() -> *mut ffi::c_void;
    fn tether_mapcopy_write(
        f: *mut ffi::c_void,
        buf: *const ffi::c_void,
        len: usize,
        pos: ffi::c_longlong,
    ) -> ffi::c_int;
    fn tether_mapcopy_map(
        f: *mut ffi::c_void,
        addr: *mut usize,
        len: usize,
        prot: usize,
        flags: usize,
    ) -> ffi::c_int;
    fn tether_mapcopy_put(f: *mut ffi::c_void);
}

/// `mmap` flags and protections (x86-64 uapi `asm-generic/mman-common.h`).
const MAP_SHARED: u64 = 0x01;
const MAP_TYPE: u64 = 0x0f;
const MAP_ANONYMOUS: u64 = 0x20;
const PROT_WRITE: u64 = 0x2;
/// Offsets must be multiples of the page size (4 KiB on x86-64).
const PAGE_MASK: u64 = 0xfff;

/// Implements remote `mmap(2)` of a remote file as a mapping of a copy (module
/// documentation); anything else runs locally.
pub(crate) fn mmap(a: &[u64; 6]) -> Dispatch {
    if a[3] & MAP_ANONYMOUS != 0 {
        return Dispatch::Local;
    }
    let Some(p) = Proxy::get(a[4]) else {
        return Dispatch::Local;
    };
    done(map_copy(&p, a))
}

/// Maps a copy of `len = a[1]` bytes of `p` at offset `a[5]` as `mmap(a[0], len, a[2],
/// a[3], fd, a[5])`, after the checks Linux makes before it looks at the file's `mmap`
/// operation, in its order.
fn map_copy(p: &Proxy, a: &[u64; 6]) -> Outcome {
    let (addr, len, prot, flags, off) = (a[0], a[1], a[2], a[3], a[5]);
    if off & PAGE_MASK != 0 || len == 0 {
        return Err(EINVAL);
    }
    let shared = flags & MAP_TYPE == MAP_SHARED;
    if shared && prot & PROT_WRITE != 0 && !p.writable() {
        return Err(EACCES);
    }
    if !p.readable() {
        return Err(EACCES);
    }
    if shared && prot & PROT_WRITE != 0 {
        // SAFETY: No preconditions.
        unsafe { tether_proxy_mmap_refused(arg_i32(a[4])) };
        return Err(ENODEV);
    }
    let start = i64::try_from(off).map_err(|_| EOVERFLOW)?;
    verify_area(start, len).map_err(|_| EOVERFLOW)?;
    let copy = MapCopy::new()?;
    let mut buf = KVVec::new();
    buf.resize(len_usize(len.min(PIECE))?, 0u8, GFP_KERNEL)?;
    let mut at = 0u64;
    while at < len {
        let n = len.saturating_sub(at).min(PIECE);
        let piece = buf.get_mut(..len_usize(n)?).ok_or(EINVAL)?;
        // `verify_area` made sure that the range's end fits `loff_t`.
        let pos = start.checked_add(count_i64(at)?).ok_or(EOVERFLOW)?;
        let desc = BufDesc {
            arg: 1,
            dir: DIR_OUT | DIR_RET,
            len: wire_len(piece.len())?,
        };
        let req = request(
            sysno::PREAD64,
            [p.sfd_arg(), 0, n, reg_i64(pos), 0, 0],
            &[desc],
        );
        let got = call(p.rpid, &req, &[], &mut [&mut *piece])?.min(n);
        if got == 0 {
            break;
        }
        copy.write(piece.get(..len_usize(got)?).ok_or(EINVAL)?, at)?;
        at = at.checked_add(got).ok_or(EOVERFLOW)?;
    }
    copy.map(addr, len, prot, flags)
}

/// A copy of a remote file's bytes (`mapcopy.c`).
///
/// # Invariants
///
/// `self.0` is a `struct file` of shmem on which this holds a reference.
struct MapCopy(NonNull<ffi::c_void>);

impl MapCopy {
    /// An empty copy.
    fn new() -> Result<Self> {
        // SAFETY: No preconditions.
        let f = unsafe { tether_mapcopy_new() };
        // INVARIANT: a non-NULL result is a new shmem file with one reference, ours.
        NonNull::new(f).map(Self).ok_or(ENOMEM)
    }

    /// Writes `data` into the copy at `pos`.
    fn write(&self, data: &[u8], pos: u64) -> Result {
        let pos = ffi::c_longlong::try_from(pos).map_err(|_| EFBIG)?;
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); `data` is
        // valid for reads of `data.len()` bytes for the duration of the call.
        to_result(unsafe {
            tether_mapcopy_write(self.0.as_ptr(), data.as_ptr().cast(), data.len(), pos)
        })
    }

    /// Maps the copy as `mmap(addr, len, prot, flags, copy, 0)`; returns the address.
    fn map(self, addr: u64, len: u64, prot: u64, flags: u64) -> Outcome {
        let (len, prot, flags) = (len_usize(len)?, len_usize(prot)?, len_usize(flags)?);
        let mut at = len_usize(addr)?;
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); `at` is a
        // valid, writable `unsigned long` for the duration of the call.
        to_result(unsafe { tether_mapcopy_map(self.0.as_ptr(), &mut at, len, prot, flags) })?;
        Ok(len_u64(at))
    }
}

impl Drop for MapCopy {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a file we hold a reference on (type invariant), given back
        // here once.
        unsafe { tether_mapcopy_put(self.0.as_ptr()) };
    }
}
