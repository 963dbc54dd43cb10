// SPDX-License-Identifier: GPL-2.0

//! The shadow registry: every session's shadows (`shadow.rs`), found by the token a shadow
//! names itself with (device ioctls) or by session and client pid (requests); started on a
//! process's first request, registered ahead of a client fork, reaped when their process
//! dies, ended with their session.
//!
//! Shadows are in `Shared::inner`'s list (by session and pid) and in `Shared::by_token`,
//! an XArray indexed by token, so that a shadow's `NEXT` and `REPLY` find it without a
//! search or the registry's lock.
//!
//! Lock order (docs/DESIGN.md §8): `Shared::inner` → `Shadow::inner`, `Shared::inner` →
//! `Shared::by_token` (the XArray's spinlock).

use kernel::{prelude::*, sync::Arc};

use crate::server::Shared;
use crate::session::Session;
use crate::shadow::{self, Shadow};
use crate::transport::random_u64;

impl Shared {
    /// Registers a new shadow for process `rpid` of `session`: `Ok(Err(existing))` when
    /// it has one already.
    fn add_shadow(
        &self,
        session: &Arc<Session>,
        rpid: u32,
    ) -> Result<core::result::Result<Arc<Shadow>, Arc<Shadow>>> {
        let mut inner = self.inner.lock();
        if let Some(s) = inner
            .shadows
            .iter()
            .find(|s| s.session == session.id && s.rpid == rpid)
        {
            return Ok(Err(s.clone()));
        }
        if inner.stopping {
            return Err(ESHUTDOWN);
        }
        let max = self.config.max_shadows;
        if inner
            .shadows
            .iter()
            .filter(|s| s.session == session.id)
            .count()
            >= max
        {
            drop(inner);
            self.limit_notice(session, "shadows (processes)", max);
            return Err(EAGAIN);
        }
        // A token names one shadow: never 0, never one in use. (The XArray's lock is a
        // spinlock: nothing that may sleep runs under it.)
        let (token, index) = loop {
            let t = random_u64();
            let i = usize::try_from(t).map_err(|_| EINVAL)?;
            if t != 0 && self.by_token.lock().get(i).is_none() {
                break (t, i);
            }
        };
        let shadow = Shadow::new(session.clone(), rpid, token)?;
        inner.shadows.push(shadow.clone(), GFP_KERNEL)?;
        // Registrations are serialized by `Shared::inner`: the index is still free.
        let stored = self
            .by_token
            .lock()
            .store(index, shadow.clone(), GFP_KERNEL);
        if let Err(e) = stored {
            inner.shadows.pop();
            return Err(e.error);
        }
        Ok(Ok(shadow))
    }

    /// The shadow of process `rpid` of `session`; started when there is none yet.
    pub(crate) fn shadow_for(&self, session: &Arc<Session>, rpid: u32) -> Result<Arc<Shadow>> {
        if let Some(existing) = self.find_process(session.id, rpid) {
            return Ok(existing);
        }
        // The keeper first: a shadow's start timeout must not count the keeper's start.
        let keeper = session.keeper.pid(session.id, &self.config);
        let shadow = match self.add_shadow(session, rpid)? {
            Ok(new) => new,
            Err(existing) => return Ok(existing),
        };
        let spawned = self
            .exports
            .root_for(session.peer)
            .and_then(|root| shadow::spawn(&shadow, keeper, &root));
        if let Err(e) = spawned {
            pr_err!(
                "cannot start a shadow for session {} pid {}: {:?}\n",
                session.id,
                rpid,
                e
            );
            self.remove_shadow(&shadow);
            return Err(e);
        }
        Ok(shadow)
    }

    /// Registers the shadow of a child process `rpid` of `session`, whose process the
    /// parent's shadow will fork.
    pub(crate) fn add_forked_shadow(
        &self,
        session: &Arc<Session>,
        rpid: u32,
    ) -> Result<Arc<Shadow>> {
        self.add_shadow(session, rpid)?.map_err(|_| EEXIST)
    }
    /// The shadow of process `rpid` of `session`, if it has one.
    pub(crate) fn find_process(&self, session: u32, rpid: u32) -> Option<Arc<Shadow>> {
        self.inner
            .lock()
            .shadows
            .iter()
            .find(|s| s.session == session && s.rpid == rpid)
            .cloned()
    }

    /// The shadow started with `token`.
    pub(crate) fn find_shadow(&self, token: u64) -> Option<Arc<Shadow>> {
        let i = usize::try_from(token).ok()?;
        self.by_token.lock().get(i).map(Arc::from)
    }

    /// Forgets `shadow`.
    pub(crate) fn remove_shadow(&self, shadow: &Arc<Shadow>) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.shadows.iter().position(|s| Arc::ptr_eq(s, shadow)) {
            let _ = inner.shadows.remove(i);
            self.forget_token(shadow.token);
        }
    }

    /// Takes `token` out of the token index (`Shared::inner` held).
    fn forget_token(&self, token: u64) {
        if let Ok(i) = usize::try_from(token) {
            // Dropped after the XArray's spinlock is released.
            let removed = self.by_token.lock().remove(i);
            drop(removed);
        }
    }

    /// Fails the requests of every shadow of `session` whose process died, and forgets it.
    pub(crate) fn reap_shadows(&self, session: u32) {
        let mut dead = KVec::new();
        for s in self
            .inner
            .lock()
            .shadows
            .iter()
            .filter(|s| s.session == session)
        {
            if s.is_dead() && dead.push(s.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        for s in dead.iter() {
            pr_notice!(
                "shadow of client pid {} (session {}) died: its calls fail with EIO\n",
                s.rpid,
                s.session
            );
            s.fail_all(kernel::bindings::EIO);
        }
    }

    /// Tells every shadow of `session` to exit (the client is gone) and forgets them: one
    /// still running a call finds no shadow for its token when it answers, and exits; the
    /// session's keeper, killed next, takes the ones in its namespace with it.
    pub(crate) fn end_shadows(&self, session: u32) {
        let mut inner = self.inner.lock();
        for s in inner.shadows.iter().filter(|s| s.session == session) {
            s.exit();
            self.forget_token(s.token);
        }
        inner.shadows.retain(|s| s.session != session);
    }
}
