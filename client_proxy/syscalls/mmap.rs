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
//! - `MAP_SHARED` with `PROT_WRITE`: a mapping of the file's one shared copy on this
//!   client, written back to the server (`shmap.rs`).
//!
//! The copy ends where the file ended, so a page wholly past that end gets `SIGBUS`, as it
//! would with the file. Known differences: a read-only or private mapping does not see later changes of the
//! file (by this process or anyone), the whole range is read when the mapping is made, and
//! `/proc/PID/maps` names the copy (`/tether-map`), not the file.

use kernel::prelude::*;

use super::io::verify_area;
use super::mapcopy::{MapCopy, PAGE_MASK};
use super::proxy::Proxy;
use super::shmap;
use super::{done, Dispatch, Outcome};

/// `mmap` flags and protections (x86-64 uapi `asm-generic/mman-common.h`).
const MAP_SHARED: u64 = 0x01;
const MAP_TYPE: u64 = 0x0f;
const MAP_ANONYMOUS: u64 = 0x20;
const PROT_WRITE: u64 = 0x2;

/// Implements remote `mmap(2)` of a remote file as a mapping of a copy (module
/// documentation); anything else runs locally.
pub(crate) fn mmap(a: &[u64; 6]) -> Dispatch {
    if a[3] & MAP_ANONYMOUS != 0 {
        return Dispatch::Local;
    }
    let Some(p) = Proxy::get(a[4]) else {
        return Dispatch::Local;
    };
    done(map_copy(p, a))
}

/// Maps a copy of `len = a[1]` bytes of `p` at offset `a[5]` as `mmap(a[0], len, a[2],
/// a[3], fd, a[5])`, after the checks Linux makes before it looks at the file's `mmap`
/// operation, in its order.
fn map_copy(p: Proxy, a: &[u64; 6]) -> Outcome {
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
    let start = i64::try_from(off).map_err(|_| EOVERFLOW)?;
    verify_area(start, len).map_err(|_| EOVERFLOW)?;
    if shared && prot & PROT_WRITE != 0 {
        return shmap::map(p, a);
    }
    let copy = MapCopy::new(b"tether-map")?;
    copy.fill(p.rpid, p.sfd_arg(), start, len)?;
    copy.map(addr, len, prot, flags)
}
