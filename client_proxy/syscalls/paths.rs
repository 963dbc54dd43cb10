// SPDX-License-Identifier: GPL-2.0

//! Path arguments: copied from the task, local or remote (`local_prefixes`), and the
//! dirfd a path is resolved against on the server.

use kernel::{alloc::KVVec, prelude::*, uaccess::UserPtr, uaccess::UserSlice};

use super::proxy::Proxy;
use crate::num::{arg_i32, user_addr, wire_len};
use crate::proto::calls::AT_FDCWD;
use crate::proto::syscall::{BufDesc, DIR_IN};

extern "C" {
    pub(crate) fn tether_local_prefixes() -> *const kernel::ffi::c_char;
}

/// Whether `path` lies under one of the `local_prefixes` (module parameter).
pub(crate) fn is_local(path: &[u8]) -> bool {
    // `/dev/../etc` is not under `/dev`: compare the path with its dot components resolved.
    let normalized;
    let path = if path.first() == Some(&b'/') && path.windows(2).any(|w| w == b"/.") {
        normalized = normalize(path);
        match &normalized {
            Ok(p) => &p[..],
            // Without memory to tell, the path goes to the server, never wrongly local.
            Err(_) => return false,
        }
    } else {
        path
    };
    // SAFETY: The parameter is a NUL-terminated string that lives as long as the module.
    let prefixes = unsafe { CStr::from_char_ptr(tether_local_prefixes()) };
    prefixes
        .to_bytes()
        .split(|&c| c == b':')
        .filter(|p| !p.is_empty())
        .any(|p| path.starts_with(p) && matches!(path.get(p.len()), None | Some(b'/')))
}

/// Longest path argument, with its NUL (`PATH_MAX`).
pub(crate) const PATH_MAX: usize = crate::proto::calls::PATH_MAX as usize;
/// A path argument copied from the task, with its NUL.
pub(crate) struct PathArg {
    pub(crate) buf: KVVec<u8>,
}

impl PathArg {
    pub(crate) fn from_user(ptr: u64) -> Result<Self> {
        let mut buf = KVVec::new();
        buf.resize(PATH_MAX, 0, GFP_KERNEL)?;
        let len = UserSlice::new(UserPtr::from_addr(user_addr(ptr)?), PATH_MAX)
            .reader()
            .strcpy_into_buf(&mut buf)?
            .to_bytes_with_nul()
            .len();
        buf.truncate(len);
        Ok(Self { buf })
    }

    /// The path without its NUL.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.split_last().map_or(&[], |(_, p)| p)
    }

    pub(crate) fn is_absolute(&self) -> bool {
        self.bytes().first() == Some(&b'/')
    }

    /// Its descriptor as input buffer of argument `arg`.
    pub(crate) fn desc(&self, arg: u8) -> Result<BufDesc> {
        Ok(BufDesc {
            arg,
            dir: DIR_IN,
            len: wire_len(self.buf.len())?,
        })
    }
}

/// Resolves a `(dirfd, path)` pair: `None` when the call stays local, else the dirfd to
/// use on the server.
pub(crate) fn remote_dirfd(dirfd: u64, path: &PathArg) -> Option<u64> {
    if is_local(path.bytes()) {
        return None;
    }
    if path.is_absolute() || arg_i32(dirfd) == AT_FDCWD {
        return Some(dirfd);
    }
    Proxy::get(dirfd).map(|p| p.sfd_arg())
}

/// `base` joined with `rel` (unless `rel` is absolute), with `.`, `..` and repeated
/// slashes resolved textually.
pub(crate) fn join(base: &[u8], rel: &[u8]) -> Result<KVVec<u8>> {
    let mut out = KVVec::new();
    let parts = if rel.first() == Some(&b'/') {
        [&b""[..], rel]
    } else {
        [base, rel]
    };
    for part in parts.iter().flat_map(|p| p.split(|&c| c == b'/')) {
        match part {
            b"" | b"." => (),
            b".." => {
                let cut = out.iter().rposition(|&c| c == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            name => {
                out.push(b'/', GFP_KERNEL)?;
                out.extend_from_slice(name, GFP_KERNEL)?;
            }
        }
    }
    if out.is_empty() {
        out.push(b'/', GFP_KERNEL)?;
    }
    Ok(out)
}

/// `path` with `.`, `..` and repeated slashes resolved textually, from `/`.
pub(crate) fn normalize(path: &[u8]) -> Result<KVVec<u8>> {
    join(b"/", path)
}
