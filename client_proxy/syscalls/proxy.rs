// SPDX-License-Identifier: GPL-2.0

//! Proxy files: the client files (`proxy.c`, anon inodes) that stand for remote fds: the
//! process, server fd, offset and flags of each.

use kernel::{bindings, error::Error, sync::atomic::Relaxed};

use crate::num::{arg_i32, reg_i32};

use super::rpid;
use crate::state::client;

/// A proxy file (a reference to it) and what it stands for.
pub(crate) struct Proxy {
    file: *mut ffi::file,
    pub(crate) rpid: u32,
    pub(crate) sfd: i32,
}

// SAFETY: A reference to a `struct file` may be used and given back from any task (a
// shared mapping's proxy is kept in `Shared::shmaps` and dropped by whichever task ends it).
unsafe impl Send for Proxy {}

mod ffi {
    use kernel::ffi::{c_int, c_uint};

    /// `struct file`, only ever handled through pointers.
    #[repr(C)]
    pub(super) struct file {
        _opaque: [u8; 0],
        _pin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
    }

    extern "C" {
        pub(super) fn tether_proxy_install(rpid: u32, sfd: c_int, flags: c_uint) -> c_int;
        pub(super) fn tether_proxy_get(fd: c_int, rpid: *mut u32, sfd: *mut c_int) -> *mut file;
        pub(super) fn tether_proxy_put(f: *mut file);
        pub(super) fn tether_proxy_dup(f: *mut file) -> *mut file;
        pub(super) fn tether_proxy_pos(f: *mut file) -> *mut i64;
        pub(super) fn tether_proxy_flags(f: *mut file) -> c_uint;
        pub(super) fn tether_proxy_setfl(f: *mut file, arg: c_uint);
    }
}

impl Proxy {
    /// Installs a new proxy file for server fd `sfd` of process `rpid`, opened with
    /// `flags`, in the calling task's fd table: its client fd, or `-errno`.
    pub(crate) fn install(rpid: u32, sfd: i32, flags: u32) -> i32 {
        // SAFETY: No preconditions beyond valid values.
        unsafe { ffi::tether_proxy_install(rpid, sfd, flags) }
    }

    /// The proxy file behind `fd`, if it is one.
    ///
    /// Calls on it go to the calling process's shadow: a forked child's shadow, forked from
    /// its parent's, has the same server fds (the proxy's own `rpid`, the opener, is only
    /// for the close at release).
    pub(crate) fn get(fd: u64) -> Option<Self> {
        let (mut opener, mut sfd) = (0, 0);
        // SAFETY: The out-pointers are valid; any fd value is fine (the kernel takes an fd
        // argument as `unsigned int`: its low 32 bits).
        let file = unsafe { ffi::tether_proxy_get(arg_i32(fd), &mut opener, &mut sfd) };
        // Not `then_some`: it would build (and drop, i.e. put) a proxy for a null file.
        if file.is_null() {
            return None;
        }
        let p = Self {
            file,
            rpid: rpid(),
            sfd,
        };
        // A file replay could not reopen stays with the client kernel, whose proxy file
        // answers reads and writes with EIO (`proxy.c`); its server slot is empty.
        let lost = client().is_some_and(|s| {
            s.divergences.load(Relaxed) != 0 && s.log.lock().is_lost(p.rpid, p.sfd)
        });
        (!lost).then_some(p)
    }

    /// Another reference to the same proxy file, for the same process.
    pub(crate) fn dup(&self) -> Self {
        Self {
            // SAFETY: `file` is a live proxy file we hold a reference to; the new value
            // owns the reference the shim takes.
            file: unsafe { ffi::tether_proxy_dup(self.file) },
            rpid: self.rpid,
            sfd: self.sfd,
        }
    }

    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: `file` is a live proxy file we hold a reference to.
        unsafe { *ffi::tether_proxy_pos(self.file) }
    }

    pub(crate) fn set_pos(&self, pos: i64) {
        // SAFETY: As in `pos`.
        unsafe { *ffi::tether_proxy_pos(self.file) = pos };
    }

    /// The proxy file's `f_flags`: the access mode and the `F_SETFL` status flags.
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: As in `pos`.
        unsafe { ffi::tether_proxy_flags(self.file) }
    }

    /// Whether it was opened for reading (`FMODE_READ`; access mode 3 allows neither).
    pub(crate) fn readable(&self) -> bool {
        matches!(
            self.flags() & bindings::O_ACCMODE,
            bindings::O_RDONLY | bindings::O_RDWR
        )
    }

    /// Whether it was opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        matches!(
            self.flags() & bindings::O_ACCMODE,
            bindings::O_WRONLY | bindings::O_RDWR
        )
    }

    /// Its server fd, as a syscall argument.
    pub(crate) fn sfd_arg(&self) -> u64 {
        reg_i32(self.sfd)
    }

    /// The write error this fd has to report, if any (`Log::write_failed`): the next
    /// write, `fsync` or close gets it, once. The log is looked at only after a redo failed
    /// since load.
    pub(crate) fn take_write_error(&self) -> Option<Error> {
        let shared = client().filter(|s| s.redo_errors.load(Relaxed) != 0)?;
        let err = shared.log.lock().take_write_error(self.rpid, self.sfd);
        err
    }

    /// Sets the `F_SETFL` status flags as `setfl()` in `fs/fcntl.c` does.
    pub(crate) fn set_status_flags(&self, arg: u32) {
        // SAFETY: As in `pos`; the shim takes the file's `f_lock`.
        unsafe { ffi::tether_proxy_setfl(self.file, arg) };
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SAFETY: We own the reference `tether_proxy_get` took.
        unsafe { ffi::tether_proxy_put(self.file) };
    }
}
