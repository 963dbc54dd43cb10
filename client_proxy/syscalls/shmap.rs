// SPDX-License-Identifier: GPL-2.0

//! Implements shared writable mappings of remote files (`mmap(2)` with `MAP_SHARED` and
//! `PROT_WRITE`), and the calls that write them back: `msync(2)`, `munmap(2)`,
//! `fsync(2)`/`fdatasync(2)`, and a process's exit and `execve(2)`.
//!
//! Until remote paging exists (DESIGN §4), the client keeps one **shared copy** per remote
//! file mapped this way: a file of its shmem holding the file's bytes at their own offsets
//! (`mapcopy.rs`), read from the server when a mapping first needs them. Every shared
//! writable mapping of that file on this client maps the same copy, so the client's
//! processes see each other's stores at once, as with one page cache (SQLite's `-shm` index
//! in WAL mode, Python's `mmap`). Next to the copy the client keeps the bytes as the server
//! last had them; a **write-back** compares the copy with them page by page and sends the
//! pages that differ as `pwrite64` calls of the mapping process, retained for crash replay
//! like any write (`io.rs`). Write-backs happen:
//! - at `msync` of a range of the mapping (any flags) and at `munmap` of it;
//! - at `fsync`/`fdatasync` of the fd the mapping was made from, before the call goes out;
//! - when the process exits: at `exit_group`, before it dies, or, when it dies otherwise
//!   (a signal), before its exit reaches the server (`rpc.rs`); and before it calls
//!   `execve`.
//!
//! Each mapping keeps its proxy file (so its server fd) open, as a mapping keeps its file,
//! until it is unmapped or its process exits or execs. Known differences from a local
//! file:
//! - `read`/`write` calls go to the server: they do not see stores not yet written back,
//!   and a mapping does not see later writes made through an fd or by other machines
//!   (like NFS without close-to-open);
//! - a mapping does not grow with the file: a page wholly past the end the file had when
//!   it was mapped gets `SIGBUS`;
//! - a file open with `O_APPEND` cannot be mapped so (`ENODEV`: its write-backs would
//!   append);
//! - a forked child's stores through an inherited mapping reach the server with its
//!   parent's write-backs; a `mremap`ed mapping is written back at exit only.

use kernel::{
    alloc::KVVec,
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

use super::io::{piece_done, retain, At, PIECE};
use super::mapcopy::{MapCopy, PAGE};
use super::proxy::Proxy;
use super::{call, rpid, Dispatch, Outcome};
use crate::link::rpc::{self, request};
use crate::num::{count_i64, len_u64, len_usize, reg_i64, wire_len};
use crate::proto::syscall::{BufDesc, DIR_IN, DIR_OUT};
use crate::proto::sysno;
use crate::state::{client, Shared};

/// The shared copies of the client and their mappings (`Shared::shmaps`). Its lock is
/// held only to look things up: remote calls run under a file's own lock
/// ([`SharedFile::clean`]), so a write-back that waits for the server delays only the
/// mappings of that file.
pub(crate) struct SharedMaps {
    /// Every file some mapping maps (and, briefly, one being mapped).
    files: KVec<Arc<SharedFile>>,
    maps: KVec<Mapping>,
}

/// One remote file mapped shared and writable on this client.
#[pin_data]
struct SharedFile {
    /// The file's identity on the server (`st_dev`, `st_ino`).
    dev: u64,
    ino: u64,
    /// The bytes every mapping maps.
    copy: MapCopy,
    /// `mmap` calls between finding the file and recording their mapping (under
    /// `Shared::shmaps`): the file stays in the table meanwhile.
    mapping: Atomic<i32>,
    /// The bytes as the server last had them, from offset 0: what a write-back compares
    /// the copy with. Its length is how much of the file the copy holds. Held while the
    /// copy is filled or written back.
    #[pin]
    clean: Mutex<KVVec<u8>>,
}

/// One mapping of a [`SharedFile`].
struct Mapping {
    file: Arc<SharedFile>,
    /// The fd it was made from (its process, `proxy.rpid`, writes back through it).
    proxy: Proxy,
    addr: u64,
    len: u64,
    /// Its offset in the file.
    off: u64,
}

impl Mapping {
    /// Whether it overlaps `[addr, addr + len)` of its process's address space.
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        addr < self.addr.saturating_add(self.len) && self.addr < addr.saturating_add(len)
    }

    /// Whether `[addr, addr + len)` covers all of it.
    fn within(&self, addr: u64, len: u64) -> bool {
        addr <= self.addr && self.addr.saturating_add(self.len) <= addr.saturating_add(len)
    }
}

/// What one write-back of a mapping needs, taken out of [`SharedMaps`].
struct WriteBack {
    file: Arc<SharedFile>,
    proxy: Proxy,
    off: u64,
    len: u64,
}

impl SharedMaps {
    pub(crate) fn new() -> Self {
        Self {
            files: KVec::new(),
            maps: KVec::new(),
        }
    }

    /// Forgets the mappings `gone` selects and the files left without one.
    fn forget(&mut self, shared: &Shared, gone: impl Fn(&Mapping) -> bool) {
        self.maps.retain(|m| !gone(m));
        let maps = &self.maps;
        self.files.retain(|f| {
            f.mapping.load(Relaxed) != 0 || maps.iter().any(|m| Arc::ptr_eq(&m.file, f))
        });
        shared
            .shmap_count
            .store(u32::try_from(self.maps.len()).unwrap_or(u32::MAX), Relaxed);
    }

    /// The write-backs of the mappings `which` selects.
    fn select(&self, which: impl Fn(&Mapping) -> bool) -> Result<KVec<WriteBack>> {
        let mut out = KVec::new();
        for m in self.maps.iter().filter(|m| which(m)) {
            let w = WriteBack {
                file: m.file.clone(),
                proxy: m.proxy.dup(),
                off: m.off,
                len: m.len,
            };
            out.push(w, GFP_KERNEL)?;
        }
        Ok(out)
    }
}

/// Writes back every mapping `which` selects (outside the table's lock); the first error,
/// if any.
fn write_back_selected(shared: &Shared, which: impl Fn(&Mapping) -> bool) -> Result {
    let work = shared.shmaps.lock().select(which)?;
    let mut first = Ok(());
    for w in work.iter() {
        let r = write_back(
            &w.file.copy,
            &mut w.file.clean.lock(),
            &w.proxy,
            w.off,
            w.len,
        );
        if let Err(e) = r {
            pr_notice!(
                "cannot write back a shared mapping of server fd {} of pid {}: {:?}\n",
                w.proxy.sfd,
                w.proxy.rpid,
                e
            );
        }
        first = first.and(r);
    }
    first
}

/// The identity (`st_dev`, `st_ino`) and size of the file open as proxy `p`.
fn identity(p: &Proxy) -> Result<(u64, u64, u64)> {
    let mut st = [0u8; 144];
    let desc = BufDesc {
        arg: 1,
        dir: DIR_OUT,
        len: wire_len(st.len())?,
    };
    let req = request(sysno::FSTAT, [p.sfd_arg(), 0, 0, 0, 0, 0], &[desc]);
    call(p.rpid, &req, &[], &mut [&mut st])?;
    // `struct stat` (x86-64): st_dev at 0, st_ino at 8, st_size at 48.
    let field = |at: usize| {
        st.get(at..at.saturating_add(8))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(EPROTO)
    };
    Ok((field(0)?, field(8)?, field(48)?))
}

/// Maps `len = a[1]` bytes of `p` at offset `a[5]` shared and writable, as `mmap(a[0], len,
/// a[2], a[3], fd, a[5])` (the caller made Linux's checks): through the file's shared copy,
/// filled from the server as far as the mapping and the file reach.
pub(crate) fn map(p: Proxy, a: &[u64; 6]) -> Outcome {
    let (addr, len, prot, flags, off) = (a[0], a[1], a[2], a[3], a[5]);
    // Its write-backs are `pwrite64`s, which an `O_APPEND` file would append.
    if p.flags() & kernel::bindings::O_APPEND != 0 {
        return Err(ENODEV);
    }
    let (dev, ino, size) = identity(&p)?;
    let need = off.checked_add(len).ok_or(EOVERFLOW)?.min(size);
    let shared = client().ok_or(EIO)?;
    let file = {
        let mut maps = shared.shmaps.lock();
        let file = match maps.files.iter().find(|f| f.dev == dev && f.ino == ino) {
            Some(f) => f.clone(),
            None => {
                let copy = MapCopy::new(b"tether-shm")?;
                let f = Arc::pin_init(
                    pin_init!(SharedFile {
                        dev,
                        ino,
                        copy,
                        mapping: Atomic::new(0),
                        clean <- new_mutex!(KVVec::new(), "SharedFile::clean"),
                    }),
                    GFP_KERNEL,
                )?;
                maps.files.push(f.clone(), GFP_KERNEL)?;
                f
            }
        };
        file.mapping.add(1, Relaxed);
        file
    };
    let r =
        fill(&file, &p, need).and_then(|()| file.copy.map_at(addr, len, prot, flags, off, true));
    let mut maps = shared.shmaps.lock();
    file.mapping.add(-1, Relaxed);
    if let Ok(at) = r {
        let m = Mapping {
            file,
            proxy: p,
            addr: at,
            len,
            off,
        };
        if maps.maps.push(m, GFP_KERNEL).is_err() {
            pr_notice!("shared mapping: no memory to record it: it is not written back\n");
        }
    }
    // A file whose first mapping failed goes.
    maps.forget(&shared, |_| false);
    r
}

/// Fills `file`'s copy from `p` up to `need` bytes (less if the file is shorter).
fn fill(file: &SharedFile, p: &Proxy, need: u64) -> Result {
    let mut clean = file.clean.lock();
    let have = len_u64(clean.len());
    if have < need {
        let start = (count_i64(have)?, need.saturating_sub(have));
        file.copy
            .fill_at(p.rpid, p.sfd_arg(), start, have, |data| {
                Ok(clean.extend_from_slice(data, GFP_KERNEL)?)
            })?;
    }
    Ok(())
}

/// Writes the pages of `[off, off + len)` whose bytes in `copy` differ from `clean` to
/// the server, through `p`, and records them as clean.
fn write_back(copy: &MapCopy, clean: &mut KVVec<u8>, p: &Proxy, off: u64, len: u64) -> Result {
    let end = off.saturating_add(len).min(len_u64(clean.len()));
    let mut buf = KVVec::new();
    buf.resize(len_usize(PIECE)?, 0u8, GFP_KERNEL)?;
    let mut at = off;
    while at < end {
        let n = len_usize(end.saturating_sub(at).min(PIECE))?;
        let piece = buf.get_mut(..n).ok_or(EINVAL)?;
        let got = copy.read(piece, at)?;
        let piece = piece.get(..got).ok_or(EINVAL)?;
        let start = len_usize(at)?;
        let old = clean
            .get_mut(start..start.saturating_add(got))
            .ok_or(EINVAL)?;
        // Runs of pages that differ, each one write.
        let page = len_usize(PAGE)?;
        let mut i = 0;
        while i < got {
            let dirty = |j: usize| {
                piece.get(j..).zip(old.get(j..)).is_some_and(|(a, b)| {
                    let k = a.len().min(b.len()).min(page);
                    a.get(..k) != b.get(..k)
                })
            };
            if !dirty(i) {
                i = i.saturating_add(page);
                continue;
            }
            let mut j = i.saturating_add(page);
            while j < got && dirty(j) {
                j = j.saturating_add(page);
            }
            let j = j.min(got);
            let data = piece.get(i..j).ok_or(EINVAL)?;
            pwrite(p, data, count_i64(at.saturating_add(len_u64(i)))?)?;
            old.get_mut(i..j).ok_or(EINVAL)?.copy_from_slice(data);
            i = j;
        }
        if got < n {
            break;
        }
        at = at.saturating_add(len_u64(got));
    }
    Ok(())
}

/// Writes `data` at `pos` of proxy `p`'s file, in pieces, retained like a process's
/// writes; a short write is `EIO`.
fn pwrite(p: &Proxy, data: &[u8], pos: i64) -> Result {
    let shared = client().ok_or(EIO)?;
    let mut done = 0usize;
    while done < data.len() {
        let n = data.len().saturating_sub(done).min(len_usize(PIECE)?);
        let piece = data.get(done..done.saturating_add(n)).ok_or(EINVAL)?;
        let at = pos.checked_add(count_i64(len_u64(done))?).ok_or(EFBIG)?;
        let desc = BufDesc {
            arg: 1,
            dir: DIR_IN,
            len: wire_len(n)?,
        };
        let req = request(
            sysno::PWRITE64,
            [p.sfd_arg(), 0, len_u64(n), reg_i64(at), 0, 0],
            &[desc],
        );
        let reply = rpc::submit(&shared, p.rpid, &req, &[piece])?.wait()?;
        let mut written = KVec::new();
        let got = piece_done(reply, len_u64(n), 0, 0, At::Offset(at), true, &mut written);
        retain(p, Some(at), written);
        if got? < len_u64(n) {
            return Err(EIO);
        }
        done = done.saturating_add(n);
    }
    Ok(())
}

/// Whether any shared mapping exists on this client (cheap, lock-free).
pub(crate) fn any(shared: &Shared) -> bool {
    shared.shmap_count.load(Relaxed) != 0
}

/// Implements `munmap(2)` of tethered tasks: the calling process's shared mappings of
/// remote files in the range are written back first; the call runs locally.
pub(crate) fn munmap(a: &[u64; 6]) -> Dispatch {
    let (addr, len) = (a[0], a[1]);
    if let Some(shared) = client().filter(|s| any(s)) {
        let me = rpid();
        let _ = write_back_selected(&shared, |m| m.proxy.rpid == me && m.overlaps(addr, len));
        shared
            .shmaps
            .lock()
            .forget(&shared, |m| m.proxy.rpid == me && m.within(addr, len));
    }
    Dispatch::Local
}

/// Implements `msync(2)` of tethered tasks: the calling process's shared mappings of remote
/// files in the range are written back (whatever the flags); the call then runs locally.
pub(crate) fn msync(a: &[u64; 6]) -> Dispatch {
    let (addr, len) = (a[0], a[1]);
    if let Some(shared) = client().filter(|s| any(s)) {
        let me = rpid();
        if write_back_selected(&shared, |m| m.proxy.rpid == me && m.overlaps(addr, len)).is_err() {
            return super::errno(EIO);
        }
    }
    Dispatch::Local
}

/// Implements remote `fsync(2)`: the shared mappings made from the same fd are written
/// back before the call goes to the server; a write error the fd has to report
/// (`Proxy::take_write_error`) is its result.
pub(crate) fn fsync(a: &[u64; 6]) -> Dispatch {
    sync_fd(sysno::FSYNC, a)
}

/// Implements remote `fdatasync(2)`, as [`fsync`].
pub(crate) fn fdatasync(a: &[u64; 6]) -> Dispatch {
    sync_fd(sysno::FDATASYNC, a)
}

fn sync_fd(nr: u32, a: &[u64; 6]) -> Dispatch {
    // The proxy is looked up only when there are mappings to write back or write errors to
    // report.
    let Some(shared) = client().filter(|s| any(s) || s.redo_errors.load(Relaxed) != 0) else {
        return super::generic::generic(nr, a);
    };
    let p = Proxy::get(a[0]);
    if let Some(p) = p.as_ref().filter(|_| any(&shared)) {
        if write_back_selected(&shared, |m| m.proxy.rpid == p.rpid && m.proxy.sfd == p.sfd).is_err()
        {
            return super::errno(EIO);
        }
    }
    let r = super::generic::generic(nr, a);
    match p.and_then(|p| p.take_write_error()) {
        Some(e) => super::errno(e),
        None => r,
    }
}

/// Implements `exit_group(2)` of tethered tasks: the process's shared mappings of remote
/// files are written back and forgotten before it exits (so that whoever waits for it
/// finds its stores on the server); the call runs locally.
pub(crate) fn exit_group(_: &[u64; 6]) -> Dispatch {
    if let Some(shared) = client() {
        process_ended(&shared, rpid());
    }
    Dispatch::Local
}

/// Process `rpid` exits (or exited): its shared mappings are written back and forgotten.
pub(crate) fn process_ended(shared: &Shared, rpid: u32) {
    write_back_process(shared, rpid);
    forget_process(shared, rpid);
}

/// Writes back the shared mappings of process `rpid` (before it execs, or once it exited).
pub(crate) fn write_back_process(shared: &Shared, rpid: u32) {
    if any(shared) {
        let _ = write_back_selected(shared, |m| m.proxy.rpid == rpid);
    }
}

/// Forgets the shared mappings of process `rpid` (it exited, or exec'd).
pub(crate) fn forget_process(shared: &Shared, rpid: u32) {
    if any(shared) {
        shared
            .shmaps
            .lock()
            .forget(shared, |m| m.proxy.rpid == rpid);
    }
}
