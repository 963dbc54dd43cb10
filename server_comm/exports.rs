// SPDX-License-Identifier: GPL-2.0

//! The export table (like `/etc/exports`): which client (vsock CID, or IPv4 address over
//! TCP) may connect, to which export root its shadows are confined, how its ids are mapped (`root_squash`, `all_squash`,
//! `no_root_squash`) and which ids it may claim in `CLIENT_ATTRS`.
//!
//! Entries are written to `/sys/kernel/tether_server/exports`, one line each (`rust/src/export.rs`):
//! `3 /srv root_squash uids=1000-1999 gids=1000-1999` or `10.0.0.2 /srv`; `del PEER` removes
//! one, `clear` all. A CID in `allowed_cids=` without an entry gets the default one (a TCP
//! client needs an entry): `root=`, ids mapped by
//! `squash_root` (read at each `CLIENT_ATTRS`), any id. Every root is checked when given:
//! an existing directory, not on a kernel or pseudo file system (procfs, sysfs, devtmpfs,
//! ...), nothing mounted under it, and, for entries, on the file system of `root=` (the one
//! the flusher syncs); a file system mounted under a root later is not part of the export
//! either: each shadow detaches the mounts below its root in its own mount namespace
//! (`tether-shadow.c`, `one_file_system`). Changes apply to shadows started and identities
//! set afterwards.
//!
//! Refused identities: a process whose `CLIENT_ATTRS` claimed ids outside its CID's ranges
//! has its calls answered `EPERM` until it claims allowed ones (the session keeps a bounded
//! list of such processes).

use core::fmt;
use kernel::{new_mutex, prelude::*, str::CString, sync::Mutex};

use crate::auth::may_log_refusal;
use crate::proto::export::{Export, IdRange, Squash};
use crate::proto::peer::Peer;
use crate::proto::process::ProcAttrs;

extern "C" {
    fn tether_cid_allowed(cid: u32) -> bool;
    fn tether_squash_root() -> bool;
    fn tether_export_root_check(
        root: *const kernel::ffi::c_char,
        same_fs: bool,
    ) -> kernel::ffi::c_int;
}

/// Most entries in the table.
const MAX_ENTRIES: usize = 64;
/// Most processes with a refused identity remembered (all sessions together); beyond it
/// the session that claims one more is ended.
const MAX_DENIED: usize = 1024;
/// Longest line written to the `exports` file.
const MAX_LINE: usize = 384;

/// One explicit entry.
struct Entry {
    peer: Peer,
    root: CString,
    squash: Squash,
    uids: IdRange,
    gids: IdRange,
}

struct Inner {
    entries: KVec<Entry>,
    /// `(session, rpid)` of processes whose identity was refused.
    denied: KVec<(u32, u32)>,
}

/// What a CID's entry says about ids.
#[derive(Clone, Copy)]
pub(crate) struct Rule {
    squash: Squash,
    uids: IdRange,
    gids: IdRange,
}

impl Rule {
    fn export(&self) -> Export<'static> {
        Export {
            peer: Peer::Vsock(0),
            root: "",
            squash: self.squash,
            uids: self.uids,
            gids: self.gids,
        }
    }

    /// Whether the client may claim the ids of `attrs`.
    pub(crate) fn allows(&self, attrs: &ProcAttrs) -> bool {
        self.export().allows(attrs)
    }

    /// `attrs` mapped by the squash mode.
    pub(crate) fn map(&self, attrs: &ProcAttrs) -> ProcAttrs {
        self.export().map(attrs)
    }
}

/// The table.
#[pin_data]
pub(crate) struct Exports {
    /// `root=`: the default entry's root.
    default_root: CString,
    #[pin]
    inner: Mutex<Inner>,
}

/// Explains a refused root (errno of `tether_export_root_check`).
fn root_error(root: &str, e: Error) {
    let why = if e == EPERM {
        "is on a kernel or pseudo file system (procfs, sysfs, devtmpfs, ...)"
    } else if e == EBUSY {
        "has another file system mounted under it (procfs, sysfs, a disk, ...): the shadows would reach it"
    } else if e == EXDEV {
        "is not on the file system of root= (the one the flusher syncs)"
    } else if e == ENOENT || e == ENOTDIR {
        "is not an existing directory"
    } else {
        "cannot be checked"
    };
    pr_err!("export root {} {} ({:?}): refused\n", root, why, e);
}

/// Checks a root (see the module documentation).
fn check_root(root: &CStr, same_fs: bool) -> Result {
    // SAFETY: `root` is NUL-terminated; the shim only reads it.
    let ret = unsafe { tether_export_root_check(root.as_char_ptr(), same_fs) };
    kernel::error::to_result(ret).inspect_err(|e| root_error(root.to_str().unwrap_or("?"), *e))
}

impl Exports {
    /// The table with no entry but the default one, whose root (`root=`, required) is
    /// checked here.
    pub(crate) fn new() -> Result<impl PinInit<Self>> {
        extern "C" {
            fn tether_export_root() -> *const kernel::ffi::c_char;
        }
        // SAFETY: No preconditions: returns the module parameter or null.
        let raw = unsafe { tether_export_root() };
        if raw.is_null() {
            pr_err!("root= is required: the export root the clients' processes are confined to (e.g. root=/srv)\n");
            return Err(EINVAL);
        }
        // SAFETY: A non-null parameter is a NUL-terminated string that lives as long as
        // the module.
        let root = unsafe { CStr::from_char_ptr(raw) };
        if !root.to_bytes().starts_with(b"/") {
            pr_err!(
                "root={} is not an absolute path\n",
                root.to_str().unwrap_or("?")
            );
            return Err(EINVAL);
        }
        check_root(root, false)?;
        let default_root = CString::try_from(root)?;
        Ok(pin_init!(Self {
            default_root,
            inner <- new_mutex!(
                Inner {
                    entries: KVec::new(),
                    denied: KVec::new(),
                },
                "Exports::inner"
            ),
        }))
    }

    /// Whether `peer` is a CID in `allowed_cids=`.
    fn in_allowed_cids(peer: Peer) -> bool {
        match peer {
            // SAFETY: Reads the module's parameter array.
            Peer::Vsock(cid) => unsafe { tether_cid_allowed(cid) },
            Peer::Ipv4(_) => false,
        }
    }

    /// Whether `peer` may connect: it has an entry, or is in `allowed_cids=`.
    pub(crate) fn allowed(&self, peer: Peer) -> bool {
        self.inner.lock().entries.iter().any(|e| e.peer == peer) || Self::in_allowed_cids(peer)
    }

    /// The export root of `peer`'s shadows.
    pub(crate) fn root_for(&self, peer: Peer) -> Result<CString> {
        let inner = self.inner.lock();
        let root = inner
            .entries
            .iter()
            .find(|e| e.peer == peer)
            .map_or(&*self.default_root, |e| &*e.root);
        Ok(CString::try_from(root)?)
    }

    /// What `peer`'s entry says about ids (`None`: `peer` is not allowed any more).
    pub(crate) fn rule(&self, peer: Peer) -> Option<Rule> {
        if let Some(e) = self.inner.lock().entries.iter().find(|e| e.peer == peer) {
            return Some(Rule {
                squash: e.squash,
                uids: e.uids,
                gids: e.gids,
            });
        }
        // SAFETY: Reads a module parameter.
        let squash = unsafe { tether_squash_root() };
        Self::in_allowed_cids(peer).then_some(Rule {
            squash: if squash { Squash::Root } else { Squash::None },
            uids: IdRange::ANY,
            gids: IdRange::ANY,
        })
    }

    /// Records that process `rpid` of `session` has a refused identity; false when the list
    /// is full.
    pub(crate) fn deny(&self, session: u32, rpid: u32) -> bool {
        let mut inner = self.inner.lock();
        if inner.denied.contains(&(session, rpid)) {
            return true;
        }
        inner.denied.len() < MAX_DENIED && inner.denied.push((session, rpid), GFP_KERNEL).is_ok()
    }

    /// Process `rpid` of `session` has an allowed identity again.
    pub(crate) fn allow(&self, session: u32, rpid: u32) {
        self.inner.lock().denied.retain(|d| *d != (session, rpid));
    }

    /// Whether process `rpid` of `session` has a refused identity.
    pub(crate) fn is_denied(&self, session: u32, rpid: u32) -> bool {
        self.inner.lock().denied.contains(&(session, rpid))
    }

    /// Session `session` ended.
    pub(crate) fn forget_session(&self, session: u32) {
        self.inner.lock().denied.retain(|d| d.0 != session);
    }

    /// Number of processes with a refused identity.
    pub(crate) fn denied(&self) -> usize {
        self.inner.lock().denied.len()
    }

    /// The `exports` file: the default entry (as `* ROOT ...`) and every entry.
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: Reads a module parameter.
        let squash = if unsafe { tether_squash_root() } {
            Squash::Root
        } else {
            Squash::None
        };
        writeln!(
            f,
            "* {} {} uids=any gids=any",
            self.default_root.to_str().unwrap_or("?"),
            squash.name()
        )?;
        for e in self.inner.lock().entries.iter() {
            writeln!(
                f,
                "{} {} {} uids={}-{} gids={}-{}",
                e.peer.addr(),
                e.root.to_str().unwrap_or("?"),
                e.squash.name(),
                e.uids.lo,
                e.uids.hi,
                e.gids.lo,
                e.gids.hi
            )?;
        }
        Ok(())
    }

    /// A write to the `exports` file: one entry line (added, or replacing the peer's
    /// entry), `del PEER` or `clear`.
    pub(crate) fn apply(&self, line: &[u8]) -> Result {
        if line.len() > MAX_LINE {
            return Err(EINVAL);
        }
        let text = core::str::from_utf8(line).map_err(|_| EINVAL)?.trim();
        if text == "clear" {
            self.inner.lock().entries.clear();
            pr_info!("export table cleared\n");
            return Ok(());
        }
        if let Some(peer) = text.strip_prefix("del ") {
            let peer = Peer::parse(peer.trim()).map_err(|_| EINVAL)?;
            let mut inner = self.inner.lock();
            let before = inner.entries.len();
            inner.entries.retain(|e| e.peer != peer);
            if inner.entries.len() == before {
                return Err(ENOENT);
            }
            pr_info!("export entry of {} removed\n", peer);
            return Ok(());
        }
        let e = Export::parse(text).map_err(|_| {
            if may_log_refusal() {
                pr_notice!("exports: bad line (want: CID|A.B.C.D /ROOT [root_squash|all_squash|no_root_squash] [uids=LO-HI] [gids=LO-HI])\n");
            }
            EINVAL
        })?;
        let root = CString::try_from_fmt(fmt!("{}", e.root))?;
        check_root(&root, true)?;
        let entry = Entry {
            peer: e.peer,
            root,
            squash: e.squash,
            uids: e.uids,
            gids: e.gids,
        };
        let mut inner = self.inner.lock();
        inner.entries.retain(|x| x.peer != e.peer);
        if inner.entries.len() >= MAX_ENTRIES {
            return Err(ENOSPC);
        }
        inner.entries.push(entry, GFP_KERNEL)?;
        pr_info!(
            "export entry: {} root {} {} uids={}-{} gids={}-{}\n",
            e.peer,
            e.root,
            e.squash.name(),
            e.uids.lo,
            e.uids.hi,
            e.gids.lo,
            e.gids.hi
        );
        Ok(())
    }
}
