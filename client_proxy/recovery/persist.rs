// SPDX-License-Identifier: GPL-2.0

//! The persisted syscall log (DESIGN §3.1): a copy of the compacted log in a client-local
//! file (`log_file` parameter), so that `tetherctl log` can show it without the module and a
//! client restart can tell what was in flight.
//!
//! A work item on the module's workqueue (next to the connection worker) renders the log
//! every `log_persist_ms` and, when the text changed, writes it out. Format:
//!
//! ```text
//! tether-client-log v1 generation=N <the log's first line: calls=... processes=... ...>
//! <the debugfs `log` text, unchanged>
//! end
//! ```
//!
//! `generation` counts the distinct texts this module instance wrote (1 is the log at
//! load). The text goes to `<log_file>.tmp`, which is fsynced and then renamed over
//! `<log_file>`: after a crash `<log_file>` is the previous or the new version, never a mix
//! (a file without its `end` line is not one of ours). At load the previous instance's file
//! is kept as `<log_file>.prev`. Unload stops the worker and writes once more, in `rmmod`.
//! A missing directory is not created: the failure is reported once (until a write works
//! again) and the module runs on.

use core::fmt::{self, Write};
use kernel::{
    alloc::KVVec,
    error::to_result,
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    time::{delay::fsleep, Delta},
};

use crate::state::Shared;

mod ffi {
    use kernel::ffi::{c_char, c_int, c_void};

    /// `struct file`, only ever handled through pointers.
    #[repr(C)]
    pub(super) struct file {
        _opaque: [u8; 0],
        _pin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
    }

    extern "C" {
        pub(super) fn tether_log_file() -> *const c_char;
        pub(super) fn tether_logfile_open(
            path: *const c_char,
            create: bool,
            res: *mut *mut file,
        ) -> c_int;
        pub(super) fn tether_logfile_write(f: *mut file, buf: *const c_void, len: usize) -> c_int;
        pub(super) fn tether_logfile_sync(f: *mut file) -> c_int;
        pub(super) fn tether_logfile_rename(f: *mut file, name: *const c_char) -> c_int;
        pub(super) fn tether_logfile_close(f: *mut file);
    }
}

/// Room kept below `PATH_MAX` for the `.tmp` and `.prev` suffixes.
const PATH_MAX: usize = crate::syscalls::paths::PATH_MAX - 8;
/// Granularity of the worker's sleep, so that unload is noticed soon.
const SLEEP_SLICE_MS: u32 = 50;

/// A file opened by `tether_logfile_open()`.
///
/// # Invariants
///
/// `0` is a file this value opened and closes exactly once, on drop.
struct KFile(*mut ffi::file);

impl KFile {
    /// Opens `path` (NUL-terminated): to write it (created 0600, truncated) if `create`,
    /// else only to name it (an `O_PATH` file, for a rename).
    fn open(path: &[u8], create: bool) -> Result<Self> {
        if path.last() != Some(&0) {
            return Err(EINVAL);
        }
        let mut file = core::ptr::null_mut();
        // SAFETY: `path` is NUL-terminated (checked above) and `file` is a valid place for
        // the result.
        to_result(unsafe { ffi::tether_logfile_open(path.as_ptr().cast(), create, &mut file) })?;
        // INVARIANT: the open worked, so `file` is a file we now own.
        Ok(Self(file))
    }

    /// Writes all of `buf` from offset 0.
    fn write_all(&self, buf: &[u8]) -> Result {
        // SAFETY: By the type invariant `self.0` is an open file; `buf` is valid for reads of
        // `buf.len()` bytes during the call.
        to_result(unsafe { ffi::tether_logfile_write(self.0, buf.as_ptr().cast(), buf.len()) })
    }

    /// Puts the file's data and metadata on stable storage.
    fn sync(&self) -> Result {
        // SAFETY: By the type invariant `self.0` is an open file.
        to_result(unsafe { ffi::tether_logfile_sync(self.0) })
    }

    /// Renames the file to `name` (NUL-terminated, one path component) in its directory,
    /// replacing what is there.
    fn rename(&self, name: &[u8]) -> Result {
        if name.last() != Some(&0) {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariant `self.0` is an open file; `name` is NUL-terminated
        // (checked above).
        to_result(unsafe { ffi::tether_logfile_rename(self.0, name.as_ptr().cast()) })
    }
}

impl Drop for KFile {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `self.0` is open and this is its only close.
        unsafe { ffi::tether_logfile_close(self.0) };
    }
}

/// A growing byte buffer as a formatting target; an allocation failure is a format error.
struct Sink(KVVec<u8>);

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| fmt::Error)
    }
}

/// The log as its debugfs file shows it.
struct Shown<'a>(&'a Arc<Shared>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Shared::show_log(self.0, f)
    }
}

/// What [`Persist::state`] guards.
struct State {
    /// The last text rendered, and whether it still has to be written.
    last: KVVec<u8>,
    dirty: bool,
    /// Distinct texts rendered so far (the header's `generation`).
    generation: u64,
    /// The error of the last failed write, while writes keep failing (reported once).
    failing: Option<Error>,
}

/// The persisted copy of the log.
///
/// # Invariants
///
/// `path`, `tmp`, `name` and `prev` are NUL-terminated: `path` an absolute path whose last
/// component `name` is a file name, `tmp` and `prev` the same path with `.tmp` and `.prev`
/// appended, `prev_name` the last component of `prev`.
#[pin_data]
pub(crate) struct Persist {
    path: KVec<u8>,
    tmp: KVec<u8>,
    prev: KVec<u8>,
    name: KVec<u8>,
    prev_name: KVec<u8>,
    interval_ms: u32,
    #[pin]
    state: Mutex<State>,
}

/// `parts` concatenated, with a NUL at the end.
fn cstring(parts: &[&[u8]]) -> Result<KVec<u8>> {
    let mut v = KVec::new();
    for p in parts {
        v.extend_from_slice(p, GFP_KERNEL)?;
    }
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// A path shown as text, for messages (bytes that are not printable ASCII escaped).
struct Text<'a>(&'a [u8]);

impl kernel::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in self.0.strip_suffix(&[0]).unwrap_or(self.0) {
            if c.is_ascii_graphic() || c == b' ' {
                f.write_char(c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

impl Persist {
    /// From the module parameters; `None` when `log_file` is empty (not persisted). A path
    /// that cannot name a file (relative, ending in `/`, `.` or `..`, too long) fails the
    /// load with `EINVAL`.
    pub(crate) fn from_params(interval_ms: u32) -> Result<Option<Arc<Self>>> {
        // SAFETY: No preconditions; the result is NULL or a NUL-terminated string that
        // lives as long as the module (a read-only parameter).
        let raw = unsafe { ffi::tether_log_file() };
        if raw.is_null() {
            return Ok(None);
        }
        // SAFETY: `raw` is a non-null NUL-terminated string that outlives this function.
        let path = unsafe { CStr::from_char_ptr(raw) }.to_bytes();
        if path.is_empty() {
            return Ok(None);
        }
        let name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
        if path.first() != Some(&b'/')
            || matches!(name, b"" | b"." | b"..")
            || path.len() > PATH_MAX
        {
            pr_err!(
                "log_file={} is not an absolute path of a file (at most {} bytes)\n",
                Text(path),
                PATH_MAX
            );
            return Err(EINVAL);
        }
        let (full, tmp) = (cstring(&[path])?, cstring(&[path, b".tmp"])?);
        let prev = cstring(&[path, b".prev"])?;
        let (name, prev_name) = (cstring(&[name])?, cstring(&[name, b".prev"])?);
        let p = Arc::pin_init(
            pin_init!(Self {
                path: full,
                tmp,
                prev,
                name,
                prev_name,
                interval_ms,
                state <- new_mutex!(
                    State {
                        last: KVVec::new(),
                        dirty: false,
                        generation: 0,
                        failing: None,
                    },
                    "Persist::state"
                ),
            }),
            GFP_KERNEL,
        )?;
        Ok(Some(p))
    }

    /// At load: the previous instance's file, if any, becomes `<log_file>.prev`, so that
    /// what it had in flight is still there to see. Failures are reported, not fatal.
    pub(crate) fn keep_previous(&self) {
        let kept = KFile::open(&self.path, false).and_then(|f| f.rename(&self.prev_name));
        match kept {
            Ok(()) => pr_info!("the previous syscall log is kept as {}\n", Text(&self.prev)),
            Err(e) if e == ENOENT => (),
            Err(e) => pr_notice!(
                "cannot keep the previous syscall log {} as {}: error {}\n",
                Text(&self.path),
                Text(&self.prev),
                e.to_errno()
            ),
        }
    }

    /// Writes the log out if its text changed since the last write (or that write failed).
    pub(crate) fn write(&self, shared: &Arc<Shared>) {
        let mut st = self.state.lock();
        let mut body = Sink(KVVec::new());
        // The text is rendered under the log's locks, the file written without them.
        let shown = write!(body, "{}", Shown(shared));
        if shown.is_err() {
            // Out of memory: try again next time.
            return;
        }
        if body.0[..] != st.last[..] {
            st.last = body.0;
            st.generation = st.generation.saturating_add(1);
            st.dirty = true;
        }
        if !st.dirty {
            return;
        }
        match self.write_file(&st.last, st.generation) {
            Ok(()) => {
                st.dirty = false;
                if st.failing.take().is_some() {
                    pr_info!("syscall log written to {} again\n", Text(&self.path));
                }
            }
            Err((step, e)) => {
                if st.failing != Some(e) {
                    pr_notice!(
                        "cannot persist the syscall log to {}: {} failed: error {} (retrying every {} ms)\n",
                        Text(&self.path),
                        step,
                        e.to_errno(),
                        self.interval_ms
                    );
                    st.failing = Some(e);
                }
            }
        }
    }

    /// Writes header, `body` and `end` to the temporary file, syncs it and renames it over
    /// `log_file`. On failure, names the step that failed.
    fn write_file(&self, body: &[u8], generation: u64) -> Result<(), (&'static str, Error)> {
        let first = body.split(|&c| c == b'\n').next().unwrap_or(&[]);
        let mut out = Sink(KVVec::new());
        write!(out, "tether-client-log v1 generation={generation} ")
            .map_err(|_| ("allocation", ENOMEM))?;
        let append = |out: &mut Sink, b: &[u8]| out.0.extend_from_slice(b, GFP_KERNEL);
        append(&mut out, first)
            .and_then(|()| append(&mut out, b"\n"))
            .and_then(|()| append(&mut out, body))
            .and_then(|()| append(&mut out, b"end\n"))
            .map_err(|_| ("allocation", ENOMEM))?;
        let f = KFile::open(&self.tmp, true).map_err(|e| ("open of the .tmp file", e))?;
        f.write_all(&out.0).map_err(|e| ("write", e))?;
        f.sync().map_err(|e| ("fsync", e))?;
        f.rename(&self.name).map_err(|e| ("rename", e))
    }
}

/// The background writer: runs until the module is unloaded (the unload writes once more).
pub(crate) fn run(shared: Arc<Shared>, persist: Arc<Persist>) {
    while !shared.is_stopping() {
        persist.write(&shared);
        let mut left = persist.interval_ms;
        while left > 0 && !shared.is_stopping() {
            let step = left.min(SLEEP_SLICE_MS);
            fsleep(Delta::from_millis(i64::from(step)));
            left = left.saturating_sub(step);
        }
    }
}
