// SPDX-License-Identifier: GPL-2.0

//! The generic handler: every call whose spec in the call table (`proto::calls`) says how
//! its arguments travel.

use kernel::{alloc::KVVec, prelude::*, uaccess::UserPtr, uaccess::UserSlice};

use super::paths::{is_local, PathArg};
use super::proxy::Proxy;
use super::{call, done, errno, rpid, Dispatch, Outcome, MAX_IO};
use crate::link::rpc::request;
use crate::num::{arg_i32, len_u64, user_addr, wire_len};
use crate::proto::calls::{self, Arg, Len, Spec, AT_FDCWD};
use crate::proto::syscall::{BufDesc, DIR_IN, DIR_OUT, DIR_RET};

/// Implements the remote version of call `nr` as its spec in the call table
/// ([`calls::CALLS`]) says: reads paths and input buffers from the task, maps fds, runs the
/// call in the process's shadow, copies output buffers back.
pub(crate) fn generic(nr: u32, a: &[u64; 6]) -> Dispatch {
    let Some(spec) = calls::spec(nr) else {
        return errno(ENOSYS);
    };
    match generic_inner(spec, a) {
        Ok(Some(ret)) => done(ret),
        Ok(None) => Dispatch::Local,
        Err(e) => errno(e),
    }
}

pub(crate) fn buf_len(len: Len, a: &[u64; 6]) -> usize {
    let n = match len {
        Len::Fixed(n) => u64::from(n),
        Len::Arg(i) => a.get(usize::from(i)).copied().unwrap_or(0),
    };
    usize::try_from(n).map_or(MAX_IO, |n| n.min(MAX_IO))
}

/// One buffer argument of a generic call: what goes to the server, what comes back.
pub(crate) struct Buf {
    desc: BufDesc,
    input: KVVec<u8>,
    output: KVVec<u8>,
}

/// Runs a generic call: `None` when it stays local, else its outcome.
pub(crate) fn generic_inner(spec: &Spec, a: &[u64; 6]) -> Result<Option<Outcome>> {
    let mut args = *a;
    let mut kinds = [Arg::Val; 6];
    for (i, k) in kinds.iter_mut().enumerate() {
        // A command no shadow runs (fcntl): not forwarded.
        *k = spec.arg(i, a).ok_or(EINVAL)?;
    }
    let mut paths: [Option<PathArg>; 6] = Default::default();
    for ((arg, &ai), slot) in kinds.iter().zip(a).zip(&mut paths) {
        if matches!(arg, Arg::Path | Arg::Str) && ai != 0 {
            let path = PathArg::from_user(ai)?;
            if matches!(arg, Arg::Path) && is_local(path.bytes()) {
                return Ok(None);
            }
            *slot = Some(path);
        }
    }
    let mut bufs: KVec<Buf> = KVec::new();
    for (i, (arg, &ai)) in kinds.iter().zip(a).enumerate() {
        let Some(slot) = args.get_mut(i) else {
            return Err(EINVAL);
        };
        let (dir, len) = match *arg {
            Arg::Val | Arg::ByCommand => continue,
            Arg::Fd => match Proxy::get(ai) {
                Some(p) => {
                    *slot = p.sfd_arg();
                    continue;
                }
                None => return Ok(None),
            },
            Arg::DirFd(p) => {
                // Without a path (`utimensat(fd, NULL, ...)`) the dirfd is the file itself.
                let path = paths.get(usize::from(p)).and_then(Option::as_ref);
                if path.is_none_or(|p| !p.is_absolute()) && arg_i32(ai) != AT_FDCWD {
                    match Proxy::get(ai) {
                        Some(p) => *slot = p.sfd_arg(),
                        None => return Ok(None),
                    }
                }
                continue;
            }
            Arg::Path | Arg::Str => match paths.get(i).and_then(Option::as_ref) {
                Some(path) => (DIR_IN, path.buf.len()),
                None => continue,
            },
            // A null buffer stays null: the call decides what that means.
            Arg::In(_) | Arg::InOut(_) | Arg::Out(_) | Arg::OutRet(_) if ai == 0 => continue,
            Arg::In(len) => (DIR_IN, buf_len(len, a)),
            Arg::InOut(len) => (DIR_IN | DIR_OUT, buf_len(len, a)),
            Arg::Out(len) => (DIR_OUT, buf_len(len, a)),
            Arg::OutRet(len) => (DIR_OUT | DIR_RET, buf_len(len, a)),
        };
        // The server checks that a length argument is its buffer's length (capped here).
        if let Arg::In(Len::Arg(j))
        | Arg::InOut(Len::Arg(j))
        | Arg::Out(Len::Arg(j))
        | Arg::OutRet(Len::Arg(j)) = *arg
        {
            if let Some(v) = args.get_mut(usize::from(j)) {
                *v = len_u64(len);
            }
        }
        let mut buf = Buf {
            desc: BufDesc {
                arg: u8::try_from(i).map_err(|_| EINVAL)?,
                dir,
                len: wire_len(len)?,
            },
            input: KVVec::new(),
            output: KVVec::new(),
        };
        if let Some(path) = paths.get(i).and_then(Option::as_ref) {
            buf.input.extend_from_slice(&path.buf, GFP_KERNEL)?;
        } else if dir & DIR_IN != 0 {
            UserSlice::new(UserPtr::from_addr(user_addr(ai)?), len)
                .read_all(&mut buf.input, GFP_KERNEL)?;
        }
        if dir & DIR_OUT != 0 {
            buf.output.resize(len, 0, GFP_KERNEL)?;
        }
        bufs.push(buf, GFP_KERNEL)?;
    }
    if bufs.len() > crate::proto::syscall::MAX_BUFS {
        return Err(EINVAL);
    }
    let mut descs = [BufDesc::default(); crate::proto::syscall::MAX_BUFS];
    for (d, b) in descs.iter_mut().zip(bufs.iter()) {
        *d = b.desc;
    }
    let req = request(spec.nr, args, &descs[..bufs.len()]);
    let ret = {
        let mut ins: KVec<&[u8]> = KVec::new();
        let mut outs: KVec<&mut [u8]> = KVec::new();
        for b in bufs.iter_mut() {
            if b.desc.dir & DIR_IN != 0 {
                ins.push(&b.input[..], GFP_KERNEL)?;
            }
            if b.desc.dir & DIR_OUT != 0 {
                outs.push(&mut b.output[..], GFP_KERNEL)?;
            }
        }
        call(rpid(), &req, &ins, &mut outs)
    };
    if let Ok(ret) = ret {
        for b in bufs.iter().filter(|b| b.desc.dir & DIR_OUT != 0) {
            let n = if b.desc.dir & DIR_RET != 0 {
                usize::try_from(ret).map_or(b.output.len(), |r| r.min(b.output.len()))
            } else {
                b.output.len()
            };
            let addr = a.get(usize::from(b.desc.arg)).copied().ok_or(EINVAL)?;
            let data = b.output.get(..n).ok_or(EINVAL)?;
            UserSlice::new(UserPtr::from_addr(user_addr(addr)?), n)
                .writer()
                .write_slice(data)?;
        }
    }
    Ok(Some(ret))
}
