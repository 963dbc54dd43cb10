// SPDX-License-Identifier: GPL-2.0

//! Copies of remote files in the client's shmem (`mapcopy.c`): what a mapping of a remote
//! file maps (`mmap.rs`) and what an exec of one runs (`exec.rs`) until remote paging
//! exists (DESIGN §4).

use core::ptr::NonNull;
use kernel::{alloc::KVVec, error::to_result, ffi, prelude::*};

use super::io::PIECE;
use super::{call, Outcome};
use crate::link::rpc::request;
use crate::num::{count_i64, len_u64, len_usize, reg_i64, wire_len};
use crate::proto::syscall::{BufDesc, DIR_OUT, DIR_RET};
use crate::proto::sysno;

extern "C" {
    fn tether_mapcopy_new(name: *const ffi::c_char) -> *mut ffi::c_void;
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
        pgoff: usize,
        writable: bool,
    ) -> ffi::c_int;
    fn tether_mapcopy_read(
        f: *mut ffi::c_void,
        buf: *mut ffi::c_void,
        len: usize,
        pos: ffi::c_longlong,
    ) -> ffi::c_int;
    fn tether_mapcopy_install(f: *mut ffi::c_void) -> ffi::c_int;
    fn tether_mapcopy_put(f: *mut ffi::c_void);
}

/// Reads up to `buf.len()` bytes at `pos` of server fd `sfd` of process `rpid`; returns
/// the bytes read.
pub(crate) fn pread(rpid: u32, sfd: u64, buf: &mut [u8], pos: i64) -> Result<usize> {
    let n = len_u64(buf.len());
    let desc = BufDesc {
        arg: 1,
        dir: DIR_OUT | DIR_RET,
        len: wire_len(buf.len())?,
    };
    let req = request(sysno::PREAD64, [sfd, 0, n, reg_i64(pos), 0, 0], &[desc]);
    len_usize(call(rpid, &req, &[], &mut [buf])?.min(n))
}

/// The page size (x86-64): mapping offsets are multiples of it.
pub(crate) const PAGE: u64 = 4096;
/// The bits of an offset below [`PAGE`].
pub(crate) const PAGE_MASK: u64 = PAGE - 1;

/// A copy of a remote file's bytes.
///
/// # Invariants
///
/// `self.0` is a `struct file` of shmem on which this holds a reference.
pub(crate) struct MapCopy(NonNull<ffi::c_void>);

impl MapCopy {
    /// An empty copy whose file is called `name` (a program run from it is called so).
    pub(crate) fn new(name: &[u8]) -> Result<Self> {
        // NUL-terminated, at most `NAME_MAX` bytes.
        let mut buf = [0u8; 256];
        let n = name.len().min(255);
        buf.get_mut(..n)
            .ok_or(EINVAL)?
            .copy_from_slice(name.get(..n).ok_or(EINVAL)?);
        // SAFETY: `buf` is a NUL-terminated string valid for the duration of the call.
        let f = unsafe { tether_mapcopy_new(buf.as_ptr().cast()) };
        // INVARIANT: a non-NULL result is a new shmem file with one reference, ours.
        NonNull::new(f).map(Self).ok_or(ENOMEM)
    }

    /// Writes `data` into the copy at `pos`.
    pub(crate) fn write(&self, data: &[u8], pos: u64) -> Result {
        let pos = ffi::c_longlong::try_from(pos).map_err(|_| EFBIG)?;
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); `data` is
        // valid for reads of `data.len()` bytes for the duration of the call.
        to_result(unsafe {
            tether_mapcopy_write(self.0.as_ptr(), data.as_ptr().cast(), data.len(), pos)
        })
    }

    /// Fills the copy with `len` bytes (less at the end of the file) from offset `start`
    /// of server fd `sfd` of process `rpid`; returns the bytes copied.
    pub(crate) fn fill(&self, rpid: u32, sfd: u64, start: i64, len: u64) -> Outcome {
        self.fill_at(rpid, sfd, (start, len), 0, |_| Ok(()))
    }

    /// As [`MapCopy::fill`], into the copy from its offset `dst` on; `seen` gets each piece
    /// once it is in the copy.
    pub(crate) fn fill_at(
        &self,
        rpid: u32,
        sfd: u64,
        (start, len): (i64, u64),
        dst: u64,
        mut seen: impl FnMut(&[u8]) -> Result,
    ) -> Outcome {
        let mut buf = KVVec::new();
        buf.resize(len_usize(len.min(PIECE))?, 0u8, GFP_KERNEL)?;
        let mut at = 0u64;
        while at < len {
            let n = len.saturating_sub(at).min(PIECE);
            let piece = buf.get_mut(..len_usize(n)?).ok_or(EINVAL)?;
            let pos = start.checked_add(count_i64(at)?).ok_or(EOVERFLOW)?;
            let got = pread(rpid, sfd, piece, pos)?;
            if got == 0 {
                break;
            }
            let data = piece.get(..got).ok_or(EINVAL)?;
            self.write(data, dst.checked_add(at).ok_or(EOVERFLOW)?)?;
            seen(data)?;
            at = at.checked_add(len_u64(got)).ok_or(EOVERFLOW)?;
        }
        Ok(at)
    }

    /// Maps the copy as `mmap(addr, len, prot, flags, copy, 0)`, through a read-only file
    /// of it (a shared mapping can never become writable); returns the address.
    pub(crate) fn map(self, addr: u64, len: u64, prot: u64, flags: u64) -> Outcome {
        self.map_at(addr, len, prot, flags, 0, false)
    }

    /// Maps the copy as `mmap(addr, len, prot, flags, copy, off)`, through a read-only file
    /// of it unless `writable`; returns the address. The mapping holds its own reference.
    pub(crate) fn map_at(
        &self,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        off: u64,
        writable: bool,
    ) -> Outcome {
        let (len, prot, flags) = (len_usize(len)?, len_usize(prot)?, len_usize(flags)?);
        let pgoff = len_usize(off / PAGE)?;
        let mut at = len_usize(addr)?;
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); `at` is a
        // valid, writable `unsigned long` for the duration of the call.
        to_result(unsafe {
            tether_mapcopy_map(self.0.as_ptr(), &mut at, len, prot, flags, pgoff, writable)
        })?;
        Ok(len_u64(at))
    }

    /// Reads the copy's bytes at `pos` into `buf`; returns the bytes read (fewer at its
    /// end).
    pub(crate) fn read(&self, buf: &mut [u8], pos: u64) -> Result<usize> {
        let pos = ffi::c_longlong::try_from(pos).map_err(|_| EFBIG)?;
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); `buf` is
        // valid for writes of `buf.len()` bytes for the duration of the call.
        let n = unsafe {
            tether_mapcopy_read(self.0.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), pos)
        };
        to_result(n.min(0))?;
        usize::try_from(n).map_err(|_| EIO)
    }

    /// Installs the copy in the calling task's fd table (close-on-exec); returns the fd.
    pub(crate) fn install(&self) -> Result<i32> {
        // SAFETY: `self.0` is a file we hold a reference on (type invariant); the fd table
        // gets a reference of its own.
        let fd = unsafe { tether_mapcopy_install(self.0.as_ptr()) };
        to_result(fd.min(0)).map(|()| fd)
    }
}

// SAFETY: A reference to a `struct file` may be used and given back from any task.
unsafe impl Send for MapCopy {}
// SAFETY: Every method takes `&self` and only reads, writes or maps the file, which the
// file system (shmem) serializes itself.
unsafe impl Sync for MapCopy {}

impl Drop for MapCopy {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a file we hold a reference on (type invariant), given back
        // here once.
        unsafe { tether_mapcopy_put(self.0.as_ptr()) };
    }
}
