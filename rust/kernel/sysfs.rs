// SPDX-License-Identifier: GPL-2.0

//! A module's directory in sysfs, `/sys/kernel/NAME`: the stable interface to its state and
//! configuration, which `tetherctl` reads and writes (debugfs keeps the live log, the bench
//! and the test controls).
//! Shared by both modules.
//!
//! Each file is a `bin_attribute`, so that a table (one line per session, task or export
//! entry) may be longer than the page a plain attribute is limited to. sysfs reads such a
//! file a page per call; so that a reader gets one consistent text, as `seq_file` gives
//! debugfs readers, a read at offset 0 formats the whole text with the file's [`Show`]
//! callback and keeps it as the file's snapshot, and reads further on through the same open
//! file copy out of that snapshot (another open file's read at offset 0 replaces it; a
//! reader that finds it replaced gets a fresh text). A write hands the bytes of one
//! `write(2)` to the file's [`Store`] callback.

use core::{fmt, ptr::NonNull};
use kernel::{bindings, new_mutex, prelude::*, str::CStr, sync::Mutex};

/// Formats a file's text.
pub(crate) type Show<D> = fn(&D, &mut fmt::Formatter<'_>) -> fmt::Result;

/// Applies one `write(2)` to a file (its bytes, at most a page).
pub(crate) type Store<D> = fn(&D, &[u8]) -> Result;

/// `bin_attribute::read` and `write`.
type BinRw = unsafe extern "C" fn(
    *mut bindings::file,
    *mut bindings::kobject,
    *const bindings::bin_attribute,
    *mut kernel::ffi::c_char,
    bindings::loff_t,
    usize,
) -> isize;

/// Readable by root.
const ROOT_READ: u16 = 0o400;
/// Writable by root.
const ROOT_WRITE: u16 = 0o200;

/// One file of a [`Dir`]: its name and callbacks. Root may read a file that shows and
/// write one that stores; nobody else may do either.
pub(crate) struct FileSpec<D> {
    /// The file's name in the directory.
    pub(crate) name: &'static CStr,
    /// What a read shows (`None`: write-only).
    pub(crate) show: Option<Show<D>>,
    /// What a write does (`None`: read-only).
    pub(crate) store: Option<Store<D>>,
}

impl<D> FileSpec<D> {
    /// A read-only file.
    pub(crate) const fn read(name: &'static CStr, show: Show<D>) -> Self {
        Self {
            name,
            show: Some(show),
            store: None,
        }
    }

    /// A write-only file.
    pub(crate) const fn write(name: &'static CStr, store: Store<D>) -> Self {
        Self {
            name,
            show: None,
            store: Some(store),
        }
    }

    /// A file that is read and written.
    pub(crate) const fn read_write(name: &'static CStr, show: Show<D>, store: Store<D>) -> Self {
        Self {
            name,
            show: Some(show),
            store: Some(store),
        }
    }
}

/// The text a read at offset 0 made, and the open file (its address) that made it.
type Snapshot = Option<(usize, KVec<u8>)>;

/// A file as sysfs sees it, with its callbacks.
///
/// # Invariants
///
/// `data` points to the `D` of the [`Dir`] that owns this attribute, alive as long as the
/// attribute is.
#[repr(C)]
struct Attr<D> {
    /// First field: sysfs hands the callbacks a pointer to it, which is a pointer to `Self`.
    bin: bindings::bin_attribute,
    show: Option<Show<D>>,
    store: Option<Store<D>>,
    data: *const D,
    /// Taken before any lock the [`Show`] callback takes.
    snapshot: Pin<KBox<Mutex<Snapshot>>>,
}

/// `/sys/kernel/NAME` and its files, removed on drop.
///
/// # Invariants
///
/// `kobj` is a kobject made by `kobject_create_and_add` whose reference `self` owns; the
/// first `created` entries of `attrs` are files of it. `attrs` is never resized, so the
/// attributes sysfs points to stay where they are; `data` is boxed for the same reason.
pub(crate) struct Dir<D> {
    kobj: NonNull<bindings::kobject>,
    attrs: KVec<Attr<D>>,
    created: usize,
    _data: KBox<D>,
}

// SAFETY: The raw pointers in `Dir` are to the kobject, which sysfs lets any thread remove,
// and to `Dir`'s own boxed `data`, which is `Send + Sync` by the bound.
unsafe impl<D: Send + Sync> Send for Dir<D> {}
// SAFETY: `&Dir` gives access to nothing; the callbacks only get `&D`, and `D: Sync`.
unsafe impl<D: Send + Sync> Sync for Dir<D> {}

/// A callback's errno as sysfs wants it.
fn errno(e: Error) -> isize {
    isize::try_from(e.to_errno()).unwrap_or(-1)
}

/// A `fmt::Write` that appends to a vector; fails when out of memory.
struct Text(KVec<u8>);

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| fmt::Error)
    }
}

/// Runs a [`Show`] callback as `Display`.
struct Shown<'a, D>(Show<D>, &'a D);

impl<D> fmt::Display for Shown<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(self.1, f)
    }
}

impl<D> Attr<D> {
    /// The attribute behind the pointer sysfs passes to a callback.
    ///
    /// # Safety
    ///
    /// `attr` is the `bin` of a live `Attr<D>`.
    unsafe fn from_bin<'a>(attr: *const bindings::bin_attribute) -> &'a Self {
        // SAFETY: By the precondition, and `bin` is the first field of a `repr(C)` struct.
        unsafe { &*attr.cast::<Self>() }
    }

    /// The whole text of the file.
    fn format(&self, show: Show<D>) -> Result<KVec<u8>> {
        // SAFETY: By the type invariant, `data` outlives the attribute.
        let data = unsafe { &*self.data };
        let mut text = Text(KVec::new());
        fmt::write(&mut text, format_args!("{}", Shown(show, data))).map_err(|_| ENOMEM)?;
        Ok(text.0)
    }

    /// `bin_attribute::read`: copies out the part at `off` of the open file's snapshot (made
    /// now at offset 0, or when the snapshot is another open file's).
    ///
    /// # Safety
    ///
    /// Called by sysfs for a file of a live [`Dir`], with `buf` valid for `count` bytes.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        _kobj: *mut bindings::kobject,
        attr: *const bindings::bin_attribute,
        buf: *mut kernel::ffi::c_char,
        off: bindings::loff_t,
        count: usize,
    ) -> isize {
        // SAFETY: sysfs passes the attribute of this file, which lives until the file is
        // removed; removal waits for this call.
        let this = unsafe { Self::from_bin(attr) };
        let Some(show) = this.show else {
            return errno(EIO);
        };
        let Ok(off) = usize::try_from(off) else {
            return errno(EINVAL);
        };
        let mut snapshot = this.snapshot.lock();
        let reader = file.addr();
        let text = match &mut *snapshot {
            Some((made_for, text)) if *made_for == reader && off != 0 => text,
            slot => match this.format(show) {
                Ok(text) => &mut slot.insert((reader, text)).1,
                Err(e) => return errno(e),
            },
        };
        let part = text.get(off..).unwrap_or(&[]);
        let n = part.len().min(count);
        // SAFETY: `buf` is valid for `count >= n` bytes (the precondition) and `part` for
        // `n`; one is sysfs's buffer, the other ours, so they do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(part.as_ptr(), buf.cast::<u8>(), n) };
        isize::try_from(n).unwrap_or_else(|_| errno(EOVERFLOW))
    }

    /// `bin_attribute::write`: hands the bytes to the [`Store`] callback.
    ///
    /// # Safety
    ///
    /// Called by sysfs for a file of a live [`Dir`], with `buf` valid for `count` bytes.
    unsafe extern "C" fn write(
        _file: *mut bindings::file,
        _kobj: *mut bindings::kobject,
        attr: *const bindings::bin_attribute,
        buf: *mut kernel::ffi::c_char,
        _off: bindings::loff_t,
        count: usize,
    ) -> isize {
        // SAFETY: As in `read`.
        let this = unsafe { Self::from_bin(attr) };
        let Some(store) = this.store else {
            return errno(EIO);
        };
        // SAFETY: By the type invariant, `data` outlives the attribute.
        let data = unsafe { &*this.data };
        // SAFETY: `buf` is valid for `count` bytes (the precondition).
        let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        match store(data, bytes) {
            Ok(()) => isize::try_from(count).unwrap_or_else(|_| errno(EOVERFLOW)),
            Err(e) => errno(e),
        }
    }
}

impl<D: Send + Sync> Dir<D> {
    /// Makes `/sys/kernel/NAME` with `files`, each calling back with `data`.
    pub(crate) fn new(name: &'static CStr, data: D, files: &[FileSpec<D>]) -> Result<Self> {
        let data = KBox::new(data, GFP_KERNEL)?;
        let mut attrs = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for spec in files {
            let mut bin = bindings::bin_attribute::default();
            bin.attr.name = spec.name.as_char_ptr();
            bin.attr.mode =
                spec.show.map_or(0, |_| ROOT_READ) | spec.store.map_or(0, |_| ROOT_WRITE);
            #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
            {
                // What `sysfs_bin_attr_init` does: a static key for lockdep.
                bin.attr.key = kernel::static_lock_class!().as_ptr();
            }
            let (read, write): (BinRw, BinRw) = (Attr::<D>::read, Attr::<D>::write);
            bin.read = spec.show.map(|_| read);
            bin.write = spec.store.map(|_| write);
            // INVARIANT: `data` is boxed and owned by the `Dir` that owns the attributes.
            attrs.push(
                Attr {
                    bin,
                    show: spec.show,
                    store: spec.store,
                    data: &raw const *data,
                    snapshot: KBox::pin_init(
                        new_mutex!(None, "sysfs::Attr::snapshot"),
                        GFP_KERNEL,
                    )?,
                },
                GFP_KERNEL,
            )?;
        }
        // SAFETY: `name` is a C string; `kernel_kobj` is set up at boot and never freed.
        let kobj =
            unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), bindings::kernel_kobj) };
        // INVARIANT: `kobj` is new and its reference ours; no file is created yet.
        let mut dir = Self {
            kobj: NonNull::new(kobj).ok_or(ENOMEM)?,
            attrs,
            created: 0,
            _data: data,
        };
        for (a, n) in dir.attrs.iter().zip(1..) {
            // SAFETY: `kobj` is alive (the invariant) and `a.bin` is initialised above; it
            // stays where it is until `dir` removes the file (drop).
            kernel::error::to_result(unsafe {
                bindings::sysfs_create_bin_file(dir.kobj.as_ptr(), &a.bin)
            })?;
            // INVARIANT: the files of the first `n` attributes exist.
            dir.created = n;
        }
        Ok(dir)
    }
}

impl<D> Drop for Dir<D> {
    fn drop(&mut self) {
        for a in self.attrs.iter().take(self.created) {
            // SAFETY: By the invariant this file exists; removal waits for its callbacks.
            unsafe { bindings::sysfs_remove_bin_file(self.kobj.as_ptr(), &a.bin) };
        }
        // SAFETY: By the invariant `self` owns this reference; the files are gone.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
    }
}
