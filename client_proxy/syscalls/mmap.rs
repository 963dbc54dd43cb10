// SPDX-License-Identifier: GPL-2.0

//! Implements the remote-file check of `mmap(2)`.
//!
//! Until remote paging exists (DESIGN.md §4) a proxy file has no `mmap` operation, so the
//! kernel refuses to map a remote file with `ENODEV` (after its usual checks, which may
//! answer `EACCES` or `EINVAL` first). This handler only makes that visible: a
//! rate-limited notice in dmesg names the process.

use crate::num::arg_i32;
use crate::syscalls::proxy::Proxy;
use crate::syscalls::Dispatch;

extern "C" {
    fn tether_proxy_mmap_refused(fd: kernel::ffi::c_int);
}

/// `MAP_ANONYMOUS` (x86-64): such a mapping has no file.
const MAP_ANONYMOUS: u64 = 0x20;

/// `mmap(2)`: always runs locally; a mapping of a remote file is reported.
pub(crate) fn mmap(a: &[u64; 6]) -> Dispatch {
    if a[3] & MAP_ANONYMOUS == 0 && Proxy::get(a[4]).is_some() {
        // SAFETY: No preconditions.
        unsafe { tether_proxy_mmap_refused(arg_i32(a[4])) };
    }
    Dispatch::Local
}
