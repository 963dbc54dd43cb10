// SPDX-License-Identifier: GPL-2.0

//! Shared-key authentication of both modules (see `rust/src/auth.rs` for the exchange):
//! the key from `key_file=` (kept by the C shim, `auth_shim.c`, never printed, wiped at
//! unload), HMAC-SHA256 of the kernel's `lib/crypto`, nonces, and the rate limit of
//! refusal log lines.

use kernel::prelude::*;

use crate::proto::auth::{key_from_file, MAC_LEN, MAX_KEY_LEN, NONCE_LEN};

mod ffi {
    use kernel::ffi::{c_char, c_int, c_uint, c_void};

    extern "C" {
        pub(super) fn tether_key_file() -> *const c_char;
        pub(super) fn tether_key_read(buf: *mut u8, max: usize) -> c_int;
        pub(super) fn tether_key_set(key: *const u8, len: usize);
        pub(super) fn tether_key_clear();
        pub(super) fn tether_wipe(buf: *mut c_void, len: usize);
        pub(super) fn tether_hmac(
            parts: *const *const u8,
            lens: *const usize,
            n: c_uint,
            out: *mut u8,
        );
        pub(super) fn tether_mac_eq(a: *const u8, b: *const u8) -> bool;
        pub(super) fn tether_random_bytes(buf: *mut u8, len: usize);
        pub(super) fn tether_refusal_ratelimit() -> bool;
        pub(super) fn tether_badframe_ratelimit() -> bool;
    }
}

/// Most pieces one MAC covers.
const MAX_PARTS: usize = 5;
/// Key file bytes read at most: the longest key plus trailing white space.
const KEY_FILE_MAX: usize = MAX_KEY_LEN + 64;

/// The `key_file=` parameter.
fn key_file() -> &'static CStr {
    // SAFETY: The shim returns the module parameter (or a static empty string): a
    // NUL-terminated string that lives as long as the module.
    unsafe { CStr::from_char_ptr(ffi::tether_key_file()) }
}

/// The shared key, loaded at module load and wiped when dropped (unload).
///
/// # Invariants
///
/// While a `Key` exists the shim holds the key; at most one exists.
pub(crate) struct Key(());

impl Key {
    /// Loads the key from `key_file=`. `Ok(None)` when `no_auth` is set (the module then
    /// neither asks for nor gives proofs; one warning says so). Errors name the file and
    /// the reason, never the content.
    pub(crate) fn load(no_auth: bool) -> Result<Option<Self>> {
        if no_auth {
            pr_warn!("no_auth=1: connections are NOT authenticated (no shared key)\n");
            return Ok(None);
        }
        let mut buf = [0u8; KEY_FILE_MAX];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { ffi::tether_key_read(buf.as_mut_ptr(), buf.len()) };
        let res = kernel::error::to_result(n).and_then(|()| {
            let n = usize::try_from(n).map_err(|_| EINVAL)?;
            key_from_file(buf.get(..n).ok_or(EINVAL)?).map_err(|_| EINVAL)
        });
        let ret = match res {
            Ok(key) => {
                // SAFETY: `key` is readable for its length.
                unsafe { ffi::tether_key_set(key.as_ptr(), key.len()) };
                // INVARIANT: the shim holds the key now.
                Ok(Some(Self(())))
            }
            Err(e) => {
                let why = if e == ENOENT {
                    "missing (create it on both machines, e.g. 32 random bytes as hex, mode 0600; or load with no_auth=1 to run unauthenticated)"
                } else if e == EACCES {
                    "readable or writable by others (chmod o-rwx)"
                } else if e == EINVAL {
                    "not a regular file, or its key is not 16..=256 bytes"
                } else if e == EFBIG {
                    "too long"
                } else {
                    "unreadable"
                };
                pr_err!("key file {} {} ({:?}): not loaded\n", key_file(), why, e);
                Err(e)
            }
        };
        // SAFETY: `buf` is writable for its length.
        unsafe { ffi::tether_wipe(buf.as_mut_ptr().cast(), buf.len()) };
        ret
    }

    /// HMAC-SHA256 of the concatenation of `parts` (at most five) under the key.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut ptrs = [core::ptr::null::<u8>(); MAX_PARTS];
        let mut lens = [0usize; MAX_PARTS];
        let mut n = 0u32;
        for ((p, l), part) in ptrs.iter_mut().zip(lens.iter_mut()).zip(parts) {
            *p = part.as_ptr();
            *l = part.len();
            n = n.saturating_add(1);
        }
        let mut out = [0u8; MAC_LEN];
        // SAFETY: By the type invariant the shim holds the key; the first `n` entries of
        // `ptrs`/`lens` describe readable slices; `out` has room for a SHA-256 digest.
        unsafe { ffi::tether_hmac(ptrs.as_ptr(), lens.as_ptr(), n, out.as_mut_ptr()) };
        out
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: No preconditions; the key is not used after this `Key` is gone.
        unsafe { ffi::tether_key_clear() };
    }
}

/// Whether two MACs are equal, in constant time.
pub(crate) fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    // SAFETY: Both point to `MAC_LEN` (the SHA-256 digest size) readable bytes.
    unsafe { ffi::tether_mac_eq(a.as_ptr(), b.as_ptr()) }
}

/// A fresh random nonce.
pub(crate) fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    // SAFETY: `n` is writable for its length.
    unsafe { ffi::tether_random_bytes(n.as_mut_ptr(), n.len()) };
    n
}

/// Whether a refusal may be logged now (at most 20 lines per 5 s per module).
pub(crate) fn may_log_refusal() -> bool {
    // SAFETY: No preconditions.
    unsafe { ffi::tether_refusal_ratelimit() }
}

/// Whether a connection that broke the protocol may be logged now (at most 100 lines per
/// 5 s per module).
pub(crate) fn may_log_bad_frame() -> bool {
    // SAFETY: No preconditions.
    unsafe { ffi::tether_badframe_ratelimit() }
}
