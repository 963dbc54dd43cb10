// SPDX-License-Identifier: GPL-2.0

//! Checked conversions for the values a tethered task or the server controls (cf.
//! nova-core's `num.rs`): syscall arguments arrive as six `u64` registers and are read the
//! way the kernel's syscall wrappers read them (`int`, `unsigned int`, `loff_t`, `size_t`);
//! results go back as `isize`. No `as` cast here can overflow: a conversion is either a
//! documented reinterpretation of the same bits or a checked one.

use kernel::{bindings, prelude::*};

/// An argument the kernel takes as `unsigned int` (an fd, a `whence`, a `getdents64`
/// count, an iovec count): the low 32 bits of the register, as the syscall wrapper
/// truncates it.
pub(crate) fn arg_u32(v: u64) -> u32 {
    let [a, b, c, d, ..] = v.to_le_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// An argument the kernel takes as `int` (an fd of `copy_file_range`/`sendfile`, a
/// `dirfd`): the low 32 bits of the register, as a signed value.
pub(crate) fn arg_i32(v: u64) -> i32 {
    i32::from_ne_bytes(arg_u32(v).to_ne_bytes())
}

/// An argument the kernel takes as `loff_t` or `off_t` (64-bit signed): the register's
/// bits, reinterpreted.
pub(crate) fn arg_i64(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

/// A signed value sent to the server in a `u64` register or field: its bits, reinterpreted
/// (the shadow reads them back as the signed type).
pub(crate) fn reg_i64(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

/// An `int` sent to the server in a `u64` register: sign-extended, as the C calling
/// convention passes it.
pub(crate) fn reg_i32(v: i32) -> u64 {
    reg_i64(i64::from(v))
}

/// A value for a task's register (`pt_regs` fields are `usize`): the same 64 bits (x86-64:
/// `usize` and `u64` have the same width; a register is 64 bits, and this does not build
/// where they differ).
pub(crate) const fn user_reg(v: u64) -> usize {
    usize::from_ne_bytes(v.to_ne_bytes())
}

/// A syscall's return value for the task's `regs->ax` (`-errno` on failure): its bits, as
/// the register holds them.
pub(crate) const fn ret_reg(v: isize) -> usize {
    usize::from_ne_bytes(v.to_ne_bytes())
}

/// A user address for [`kernel::uaccess::UserPtr`] (a `usize`; `u64` and `usize` have the
/// same width on every architecture the module builds for).
pub(crate) fn user_addr(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| EFAULT)
}

/// A length for a local buffer: `EINVAL` if it does not fit (it always does on 64-bit).
pub(crate) fn len_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| EINVAL)
}

/// A local length as `u64` (never fails on 64-bit; saturates otherwise).
pub(crate) fn len_u64(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// A buffer length for the wire (`BufDesc::len`): `EINVAL` above 4 GiB (every caller caps
/// its buffers far below).
pub(crate) fn wire_len(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| EINVAL)
}

/// `access_ok(addr, len)` on x86-64 (`arch/x86/include/asm/uaccess_64.h`): the range lies
/// in user space and does not wrap. The kernel checks it before `rw_verify_area()`, so a
/// length no user buffer can have fails with `EFAULT` first.
pub(crate) fn access_ok(addr: u64, len: u64) -> bool {
    // SAFETY: `USER_PTR_MAX` is set once during boot, before any module loads, and only read
    // afterwards.
    let max = unsafe { bindings::USER_PTR_MAX };
    let max = u64::try_from(max).unwrap_or(0);
    addr.checked_add(len).is_some_and(|end| end <= max)
}

/// The largest error number (`MAX_ERRNO`).
const MAX_ERRNO: i64 = 4095;

/// A syscall's raw return value (`-errno` on failure) as one outcome: `Err` holds the
/// errno, `Ok` the non-negative value. A value below `-MAX_ERRNO` is no errno: the server
/// broke the protocol (`EPROTO`).
pub(crate) fn outcome(ret: i64) -> Result<u64> {
    if let Ok(v) = u64::try_from(ret) {
        return Ok(v);
    }
    if ret < -MAX_ERRNO {
        return Err(EPROTO);
    }
    let errno = i32::try_from(ret).map_err(|_| EPROTO)?;
    // `errno` lies in `-MAX_ERRNO..0`, the range `from_errno` accepts without a warning.
    Err(Error::from_errno(errno))
}

/// The value a syscall returns to the task (`regs->ax`): the result, or `-errno`. A result
/// that does not fit (none does: results are lengths and offsets up to `i64::MAX`) is
/// `EOVERFLOW`.
pub(crate) fn ret_isize(r: Result<u64>) -> isize {
    let err = |e: Error| isize::try_from(e.to_errno()).unwrap_or(isize::MIN);
    match r {
        Ok(v) => isize::try_from(v).unwrap_or_else(|_| err(EOVERFLOW)),
        Err(e) => err(e),
    }
}

/// A byte count the task sees as a result (`ssize_t`) or adds to an offset (`loff_t`):
/// `EOVERFLOW` above `i64::MAX` (callers cap counts at `MAX_RW_COUNT`, so it never is).
pub(crate) fn count_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| EOVERFLOW)
}

/// A non-negative file position as `u64`.
pub(crate) fn pos_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| EINVAL)
}
