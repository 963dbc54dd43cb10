// SPDX-License-Identifier: GPL-2.0

//! Implements remote `getdents64(2)` from the client's directory position.

use kernel::{alloc::KVVec, prelude::*, uaccess::UserPtr, uaccess::UserSlice};

use super::proxy::Proxy;
use super::{call, done, Dispatch, Outcome, MAX_IO};
use crate::link::rpc::request;
use crate::num::{arg_u32, len_u64, reg_i64, user_addr, wire_len};
use crate::proto::calls;
use crate::proto::syscall::{BufDesc, DIR_OUT, DIR_RET};

/// Implements remote `getdents64(2)`: the listing goes on from the proxy file's position,
/// which the client keeps as for a regular file, so that `lseek`/`rewinddir` work and a
/// restarted server goes on with a listing where the crashed one was.
pub(crate) fn getdents64(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    // The count is an `unsigned int`; more than `MAX_IO` at once is never needed.
    let count = usize::try_from(arg_u32(a[2])).map_or(MAX_IO, |c| c.min(MAX_IO));
    done(getdents64_inner(&p, a[1], count))
}

pub(crate) fn getdents64_inner(p: &Proxy, buf: u64, n: usize) -> Outcome {
    let descs = [
        BufDesc {
            arg: 1,
            dir: DIR_OUT | DIR_RET,
            len: wire_len(n)?,
        },
        BufDesc {
            arg: 3,
            dir: DIR_OUT,
            len: 8,
        },
    ];
    let req = request(
        calls::GETDENTS,
        [p.sfd_arg(), 0, len_u64(n), 0, reg_i64(p.pos()), 0],
        &descs,
    );
    let mut out = KVVec::new();
    out.resize(n, 0, GFP_KERNEL)?;
    let mut end = [0u8; 8];
    let ret = call(p.rpid, &req, &[], &mut [&mut out[..], &mut end[..]])?;
    let len = usize::try_from(ret)
        .ok()
        .filter(|&l| l <= n)
        .ok_or(EPROTO)?;
    let end = i64::from_le_bytes(end);
    if end < 0 {
        return Err(EPROTO);
    }
    let data = out.get(..len).ok_or(EPROTO)?;
    UserSlice::new(UserPtr::from_addr(user_addr(buf)?), len)
        .writer()
        .write_slice(data)?;
    p.set_pos(end);
    Ok(ret)
}
