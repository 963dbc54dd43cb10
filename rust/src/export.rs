//! The server's export table (like `/etc/exports`): which client (vsock CID or IPv4
//! address) may use which export root, how its ids are mapped, and which ids it may claim
//! in `CLIENT_ATTRS`.
//!
//! One entry per line: `PEER ROOT [root_squash|all_squash|no_root_squash] [uids=LO-HI]
//! [gids=LO-HI]`, e.g. `3 /srv root_squash uids=1000-1999 gids=1000-1999` or `10.0.0.2 /srv`
//! (PEER as [`Peer::parse`] reads it). Defaults:
//! `root_squash`, any id. `uids=`/`gids=` take one id, a range `LO-HI` or `any`.

use super::error::{ProtoError, Result};
use super::peer::Peer;
use super::process::{ProcAttrs, ANON_ID};

/// How a client's ids are mapped on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Squash {
    /// Every id as claimed (`no_root_squash`).
    None,
    /// Root (user and group 0) becomes [`ANON_ID`] (`root_squash`, the default).
    Root,
    /// Every id becomes [`ANON_ID`] (`all_squash`).
    All,
}

impl Squash {
    /// Parses an option word.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "no_root_squash" => Self::None,
            "root_squash" => Self::Root,
            "all_squash" => Self::All,
            _ => return None,
        })
    }

    /// The option word.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "no_root_squash",
            Self::Root => "root_squash",
            Self::All => "all_squash",
        }
    }

    /// The id the server uses for `id`.
    pub fn map(self, id: u32) -> u32 {
        match self {
            Self::None => id,
            Self::Root if id == 0 => ANON_ID,
            Self::Root => id,
            Self::All => ANON_ID,
        }
    }
}

/// An inclusive range of ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// Lowest id.
    pub lo: u32,
    /// Highest id.
    pub hi: u32,
}

impl IdRange {
    /// Every valid id (`-1` is not one).
    pub const ANY: Self = Self {
        lo: 0,
        hi: u32::MAX - 1,
    };

    /// Parses `any`, `ID` or `LO-HI` (`LO <= HI`, no `-1`).
    pub fn parse(s: &str) -> Result<Self> {
        if s == "any" {
            return Ok(Self::ANY);
        }
        let num = |t: &str| t.parse::<u32>().map_err(|_| ProtoError::BadValue);
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(s)?, num(s)?),
        };
        if lo > hi || hi == u32::MAX {
            return Err(ProtoError::BadValue);
        }
        Ok(Self { lo, hi })
    }

    /// Whether `id` is in the range.
    pub fn contains(self, id: u32) -> bool {
        (self.lo..=self.hi).contains(&id)
    }
}

/// One line of the export table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export<'a> {
    /// The client.
    pub peer: Peer,
    /// Absolute path of the export root on the server.
    pub root: &'a str,
    /// Id mapping.
    pub squash: Squash,
    /// User ids the client may claim.
    pub uids: IdRange,
    /// Group ids (real, effective, file-system, supplementary) the client may claim.
    pub gids: IdRange,
}

/// Longest export root path accepted.
pub const MAX_ROOT_LEN: usize = 255;

impl<'a> Export<'a> {
    /// Parses one line (see the module documentation). `BadValue` for anything else: a
    /// relative or overlong root, an unknown or repeated option, a bad range.
    pub fn parse(line: &'a str) -> Result<Self> {
        let mut words = line.split_ascii_whitespace();
        let peer = Peer::parse(words.next().ok_or(ProtoError::Truncated)?)?;
        let root = words.next().ok_or(ProtoError::Truncated)?;
        if !root.starts_with('/') || root.len() > MAX_ROOT_LEN {
            return Err(ProtoError::BadValue);
        }
        let mut e = Self {
            peer,
            root,
            squash: Squash::Root,
            uids: IdRange::ANY,
            gids: IdRange::ANY,
        };
        let (mut seen_squash, mut seen_uids, mut seen_gids) = (false, false, false);
        for w in words {
            let seen = if let Some(s) = Squash::parse(w) {
                e.squash = s;
                &mut seen_squash
            } else if let Some(r) = w.strip_prefix("uids=") {
                e.uids = IdRange::parse(r)?;
                &mut seen_uids
            } else if let Some(r) = w.strip_prefix("gids=") {
                e.gids = IdRange::parse(r)?;
                &mut seen_gids
            } else {
                return Err(ProtoError::BadValue);
            };
            if core::mem::replace(seen, true) {
                return Err(ProtoError::BadValue);
            }
        }
        Ok(e)
    }

    /// Whether the client may claim the ids of `attrs`: each user id in `uids`, each group
    /// id in `gids`; root (0) is always allowed when it is squashed (it becomes nobody),
    /// and under `all_squash` every id is.
    pub fn allows(&self, attrs: &ProcAttrs) -> bool {
        let ok = |range: IdRange, id: u32| {
            range.contains(id)
                || self.squash == Squash::All
                || (id == 0 && self.squash == Squash::Root)
        };
        [attrs.uid, attrs.euid, attrs.fsuid]
            .iter()
            .all(|&id| ok(self.uids, id))
            && [attrs.gid, attrs.egid, attrs.fsgid]
                .iter()
                .chain(attrs.groups())
                .all(|&id| ok(self.gids, id))
    }

    /// `attrs` with every id mapped by `squash`.
    pub fn map(&self, attrs: &ProcAttrs) -> ProcAttrs {
        let mut m = *attrs;
        for id in [
            &mut m.uid,
            &mut m.euid,
            &mut m.fsuid,
            &mut m.gid,
            &mut m.egid,
            &mut m.fsgid,
        ] {
            *id = self.squash.map(*id);
        }
        for g in m.groups.iter_mut() {
            *g = self.squash.map(*g);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(uid: u32, gid: u32, groups: &[u32]) -> ProcAttrs {
        let mut a = ProcAttrs {
            uid,
            euid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            fsgid: gid,
            ngroups: groups.len() as u32,
            ..Default::default()
        };
        a.groups[..groups.len()].copy_from_slice(groups);
        a
    }

    #[test]
    fn parse_lines() {
        let e = Export::parse("3 /srv root_squash uids=1000-1999 gids=1000-1999");
        assert_eq!(
            e,
            Ok(Export {
                peer: Peer::Vsock(3),
                root: "/srv",
                squash: Squash::Root,
                uids: IdRange { lo: 1000, hi: 1999 },
                gids: IdRange { lo: 1000, hi: 1999 },
            })
        );
        let e = Export::parse("  5\t/srv/b  all_squash gids=100 ");
        assert_eq!(
            e,
            Ok(Export {
                peer: Peer::Vsock(5),
                root: "/srv/b",
                squash: Squash::All,
                uids: IdRange::ANY,
                gids: IdRange { lo: 100, hi: 100 },
            })
        );
        assert_eq!(
            Export::parse("4 / no_root_squash uids=any").map(|e| e.squash),
            Ok(Squash::None)
        );
        assert_eq!(
            Export::parse("10.0.0.2 /srv").map(|e| e.peer),
            Ok(Peer::Ipv4([10, 0, 0, 2]))
        );
        for bad in [
            "",
            "3",
            "x /srv",
            "3 srv",
            "3 /srv bogus",
            "3 /srv root_squash all_squash",
            "3 /srv uids=5-4",
            "3 /srv uids=1-2 uids=3-4",
            "3 /srv gids=-1",
            "3 /srv gids=0-4294967295",
            "3 /srv uids=",
            "-3 /srv",
            "2 /srv",
            "10.0.0 /srv",
        ] {
            assert!(Export::parse(bad).is_err(), "{bad:?}");
        }
        let long = [b'a'; MAX_ROOT_LEN + 1];
        let mut line = [0u8; MAX_ROOT_LEN + 8];
        line[..3].copy_from_slice(b"3 /");
        line[3..3 + MAX_ROOT_LEN].copy_from_slice(&long[..MAX_ROOT_LEN]);
        let s = core::str::from_utf8(&line[..3 + MAX_ROOT_LEN]).unwrap_or("");
        assert_eq!(Export::parse(s), Err(ProtoError::BadValue));
    }

    #[test]
    fn ranges_and_squash() {
        let e = Export::parse("3 /srv uids=1000-1999 gids=1000-1999").unwrap_or_else(|_| {
            Export::parse("3 /").unwrap_or(Export {
                peer: Peer::Vsock(3),
                root: "/",
                squash: Squash::Root,
                uids: IdRange::ANY,
                gids: IdRange::ANY,
            })
        });
        assert!(e.allows(&attrs(1000, 1000, &[1500])));
        assert!(e.allows(&attrs(1999, 1999, &[])));
        // Root is allowed: it is squashed.
        assert!(e.allows(&attrs(0, 0, &[0])));
        assert!(!e.allows(&attrs(2000, 1000, &[])));
        assert!(!e.allows(&attrs(1000, 6, &[])));
        assert!(!e.allows(&attrs(1000, 1000, &[1000, 6])));
        let mut a = attrs(1000, 1000, &[]);
        a.fsuid = 2000;
        assert!(!e.allows(&a));
        let m = e.map(&attrs(0, 0, &[0, 1000]));
        assert_eq!(
            (m.uid, m.fsuid, m.gid, m.fsgid),
            (ANON_ID, ANON_ID, ANON_ID, ANON_ID)
        );
        assert_eq!(m.groups(), &[ANON_ID, 1000]);
        let none = Export {
            squash: Squash::None,
            ..e
        };
        assert!(!none.allows(&attrs(0, 0, &[])));
        assert_eq!(none.map(&attrs(0, 0, &[])), attrs(0, 0, &[]));
        let all = Export {
            squash: Squash::All,
            ..e
        };
        assert!(all.allows(&attrs(5, 6, &[7])));
        let m = all.map(&attrs(1000, 1000, &[1000]));
        assert_eq!(
            (m.uid, m.gid, m.groups()),
            (ANON_ID, ANON_ID, &[ANON_ID][..])
        );
        for w in ["no_root_squash", "root_squash", "all_squash"] {
            assert_eq!(Squash::parse(w).map(Squash::name), Some(w));
        }
    }
}
