//! Who is at the other end of a connection, and where a client finds its servers.
//!
//! A tether link runs over vsock (between VMs of one host: the peer is a CID) or TCP over
//! IPv4 (between machines: the peer is an address). The server's export table names its
//! clients this way; the client's `servers=` list names its servers with a port.
//!
//! Text forms: a vsock peer is `N` or `vsock:N`, a TCP peer `A.B.C.D` or `tcp:A.B.C.D`; a
//! server adds `:PORT` (`vsock:4:7777`, `tcp:10.0.0.1:7777`), else the default port.

use core::fmt;

use super::error::{ProtoError, Result};

/// The other end of a connection, as the transport reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A vsock context id.
    Vsock(u32),
    /// An IPv4 address (TCP).
    Ipv4([u8; 4]),
}

/// Lowest CID of a guest or host that can be a peer (0, 1 and 2 are the hypervisor, the
/// loopback and the host's well-known CIDs, 2 included: a client never runs there).
pub const MIN_PEER_CID: u32 = 3;

impl Peer {
    /// Parses `N`, `vsock:N`, `A.B.C.D` or `tcp:A.B.C.D`. A CID must be at least
    /// [`MIN_PEER_CID`] and not `u32::MAX` (`VMADDR_CID_ANY`).
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(a) = s.strip_prefix("tcp:") {
            return parse_ipv4(a).map(Self::Ipv4);
        }
        if let Some(c) = s.strip_prefix("vsock:") {
            return parse_cid(c);
        }
        if s.contains('.') {
            parse_ipv4(s).map(Self::Ipv4)
        } else {
            parse_cid(s)
        }
    }

    /// Whether the link to this peer runs over TCP.
    pub fn is_tcp(self) -> bool {
        matches!(self, Self::Ipv4(_))
    }

    /// The peer as the export table writes it: `N` or `A.B.C.D`.
    pub fn addr(self) -> Addr {
        Addr(self)
    }
}

/// A [`Peer`] printed as the export table writes it (`N` or `A.B.C.D`).
pub struct Addr(Peer);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Peer::Vsock(c) => write!(f, "{c}"),
            Peer::Ipv4([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
        }
    }
}

fn parse_cid(s: &str) -> Result<Peer> {
    match s.parse::<u32>() {
        Ok(c) if c >= MIN_PEER_CID && c != u32::MAX => Ok(Peer::Vsock(c)),
        _ => Err(ProtoError::BadValue),
    }
}

/// Parses a dotted quad: four decimal bytes, nothing else.
fn parse_ipv4(s: &str) -> Result<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for b in out.iter_mut() {
        let p = parts.next().ok_or(ProtoError::BadValue)?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ProtoError::BadValue);
        }
        *b = p.parse().map_err(|_| ProtoError::BadValue)?;
    }
    if parts.next().is_some() {
        return Err(ProtoError::BadValue);
    }
    Ok(out)
}

impl fmt::Display for Peer {
    /// `cid N` or `A.B.C.D`, as log lines name a client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vsock(_) => write!(f, "cid {}", self.addr()),
            Self::Ipv4(_) => write!(f, "{}", self.addr()),
        }
    }
}

/// A server a client connects to: its peer address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// Where the server is.
    pub peer: Peer,
    /// Its port (vsock or TCP).
    pub port: u32,
}

impl Server {
    /// Parses one `servers=` entry: a [`Peer`] with an optional `:PORT` (else
    /// `default_port`). A TCP port is at most 65535.
    pub fn parse(s: &str, default_port: u32) -> Result<Self> {
        // The peer's own text has a colon only after its `vsock`/`tcp` prefix.
        let (head, rest) = match s.split_once(':') {
            Some((h @ ("vsock" | "tcp"), r)) => (Some(h), r),
            _ => (None, s),
        };
        let (addr, port) = match rest.split_once(':') {
            Some((a, p)) => (a, p.parse::<u32>().map_err(|_| ProtoError::BadValue)?),
            None => (rest, default_port),
        };
        let peer = match head {
            Some("tcp") => Peer::Ipv4(parse_ipv4(addr)?),
            Some(_) => parse_cid(addr)?,
            None => Peer::parse(addr)?,
        };
        if peer.is_tcp() && !(1..=65535).contains(&port) {
            return Err(ProtoError::BadValue);
        }
        Ok(Self { peer, port })
    }
}

impl fmt::Display for Server {
    /// `vsock:N:PORT` or `tcp:A.B.C.D:PORT`, the form `servers=` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Peer::Vsock(c) => write!(f, "vsock:{}:{}", c, self.port),
            Peer::Ipv4(_) => write!(f, "tcp:{}:{}", self.peer.addr(), self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn peers_parse_and_print() {
        assert_eq!(Peer::parse("3"), Ok(Peer::Vsock(3)));
        assert_eq!(Peer::parse("vsock:42"), Ok(Peer::Vsock(42)));
        assert_eq!(Peer::parse("10.0.0.2"), Ok(Peer::Ipv4([10, 0, 0, 2])));
        assert_eq!(
            Peer::parse("tcp:192.168.1.255"),
            Ok(Peer::Ipv4([192, 168, 1, 255]))
        );
        for bad in [
            "",
            "2",
            "0",
            "4294967295",
            "x",
            "vsock:",
            "tcp:",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.256",
            "1..2.3",
            "01234.1.1.1",
            "+1.2.3.4",
            "tcp:3",
            "vsock:1.2.3.4",
            "1.2.3.4 ",
        ] {
            assert_eq!(Peer::parse(bad), Err(ProtoError::BadValue), "{bad:?}");
        }
        assert_eq!(format!("{}", Peer::Vsock(3)), "cid 3");
        assert_eq!(format!("{}", Peer::Ipv4([10, 0, 0, 2])), "10.0.0.2");
        assert_eq!(format!("{}", Peer::Vsock(3).addr()), "3");
    }

    #[test]
    fn servers_parse_and_print() {
        let s = |p, port| Ok(Server { peer: p, port });
        assert_eq!(Server::parse("4", 7777), s(Peer::Vsock(4), 7777));
        assert_eq!(Server::parse("vsock:4", 7777), s(Peer::Vsock(4), 7777));
        assert_eq!(Server::parse("vsock:4:99", 7777), s(Peer::Vsock(4), 99));
        assert_eq!(Server::parse("4:99", 7777), s(Peer::Vsock(4), 99));
        let ip = Peer::Ipv4([10, 0, 0, 1]);
        assert_eq!(Server::parse("tcp:10.0.0.1", 7777), s(ip, 7777));
        assert_eq!(Server::parse("tcp:10.0.0.1:2049", 7777), s(ip, 2049));
        assert_eq!(Server::parse("10.0.0.1:2049", 7777), s(ip, 2049));
        for bad in [
            "tcp:10.0.0.1:0",
            "tcp:10.0.0.1:65536",
            "tcp:10.0.0.1:",
            "vsock:4:x",
            "udp:1.2.3.4",
            "tcp:10.0.0.1:1:2",
            "tcp:4",
            "",
        ] {
            assert!(Server::parse(bad, 7777).is_err(), "{bad:?}");
        }
        assert_eq!(
            format!("{}", Server { peer: ip, port: 7 }),
            "tcp:10.0.0.1:7"
        );
        assert_eq!(
            format!(
                "{}",
                Server {
                    peer: Peer::Vsock(4),
                    port: 7
                }
            ),
            "vsock:4:7"
        );
    }
}
