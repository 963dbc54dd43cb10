//! Frame kinds. Numbers are append-only: a kind keeps its number forever.

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    /// Client → server: first frame of a connection ([`super::msg::Hello`]).
    Hello = 1,
    /// Server → client: handshake answer ([`super::msg::Welcome`]).
    Welcome = 2,
    /// Either way: liveness; answered with [`super::frame::F_REPLY`] set. Empty body.
    Heartbeat = 3,
    /// Either way: the sender closes the connection and says why ([`super::msg::ErrorMsg`]).
    Error = 4,
    /// Client → server: echo the body back (round-trip measurements, transport checks).
    EchoReq = 5,
    /// Server → client: the body of an [`Kind::EchoReq`], unchanged.
    EchoReply = 6,
    /// Client → server: bulk data, counted and discarded; with
    /// [`super::frame::F_ACK_REQ`] the server answers [`Kind::SinkAck`].
    Sink = 7,
    /// Server → client: bytes and checksum of the [`Kind::Sink`] bodies since the last ack
    /// ([`super::msg::SinkAck`]).
    SinkAck = 8,
    /// Client → server: run a system call in the shadow of process `rpid`
    /// ([`super::syscall::SyscallReq`]).
    ClientSystemCall = 9,
    /// Server → client: the outcome of a [`Kind::ClientSystemCall`], same `seq`
    /// ([`super::syscall::SyscallReply`]).
    ServerReply = 10,
    /// Client → server: process `rpid` forked; body: the child's pid (`u32`). Answered with
    /// [`Kind::ServerReply`].
    ClientFork = 11,
    /// Client → server: process `rpid` exited; its shadow exits. Answered with
    /// [`Kind::ServerReply`].
    ClientExit = 12,
    /// Server → client: the shadow of process `rpid` got a signal while it ran the call
    /// with this `seq` ([`super::process::SignalMsg`]); sent before that call's
    /// [`Kind::ServerReply`]. The client raises it in the calling thread.
    ServerSignal = 13,
    /// Client → server: from now on the shadow of process `rpid` runs with this identity
    /// and file-size limit ([`super::process::ProcAttrs`], mapped by the server's policy).
    /// Sent before a call whenever they changed since the last one the session saw. Not
    /// answered.
    ClientAttrs = 14,
    /// Server → client: data of the session's answered calls is durable
    /// ([`super::msg::Flushed`]). Sent only to clients whose `HELLO.kinds` has its bit.
    /// (13 is `SERVER_SIGNAL`, 14 `CLIENT_ATTRS`.)
    ServerFlushed = 15,
    /// Server → client: the first frame of every connection, before `HELLO`: a fresh nonce
    /// the `HELLO`'s MAC must cover ([`super::auth::Challenge`]).
    Challenge = 16,
    /// Client → server: a thread of process `rpid` started or exited
    /// ([`super::process::ThreadMsg`]). Not answered.
    ClientThread = 17,
    /// Client → server: as [`Kind::ClientSystemCall`], made by thread `tid` of process
    /// `rpid`: the body is `u32 tid` then the call's body
    /// ([`super::process::split_thread_call`]). The shadow runs the calls of different
    /// threads at once, each thread's in order.
    ClientThreadCall = 18,
}

impl Kind {
    /// All kinds this version knows, in number order.
    pub const ALL: [Kind; 18] = [
        Kind::Hello,
        Kind::Welcome,
        Kind::Heartbeat,
        Kind::Error,
        Kind::EchoReq,
        Kind::EchoReply,
        Kind::Sink,
        Kind::SinkAck,
        Kind::ClientSystemCall,
        Kind::ServerReply,
        Kind::ClientFork,
        Kind::ClientExit,
        Kind::ServerSignal,
        Kind::ClientAttrs,
        Kind::ServerFlushed,
        Kind::Challenge,
        Kind::ClientThread,
        Kind::ClientThreadCall,
    ];

    /// Decodes a kind number; `None` for numbers this version does not know.
    pub fn from_u16(v: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| *k as u16 == v)
    }

    /// This kind's bit in a kinds bitmap (`HELLO.kinds`, `WELCOME.kinds`).
    pub fn bit(self) -> u64 {
        1u64 << (self as u16 % 64)
    }

    /// Bitmap of every kind this version knows.
    pub fn all_bits() -> u64 {
        Self::ALL.iter().fold(0, |m, k| m | k.bit())
    }

    /// Name for log lines, as the design document spells it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hello => "HELLO",
            Kind::Welcome => "WELCOME",
            Kind::Heartbeat => "HEARTBEAT",
            Kind::Error => "ERROR",
            Kind::EchoReq => "ECHO_REQ",
            Kind::EchoReply => "ECHO_REPLY",
            Kind::Sink => "SINK",
            Kind::SinkAck => "SINK_ACK",
            Kind::ClientSystemCall => "CLIENT_SYSTEM_CALL",
            Kind::ServerReply => "SERVER_REPLY",
            Kind::ClientFork => "CLIENT_FORK",
            Kind::ClientExit => "CLIENT_EXIT",
            Kind::ServerSignal => "SERVER_SIGNAL",
            Kind::ClientAttrs => "CLIENT_ATTRS",
            Kind::ServerFlushed => "SERVER_FLUSHED",
            Kind::Challenge => "CHALLENGE",
            Kind::ClientThread => "CLIENT_THREAD",
            Kind::ClientThreadCall => "CLIENT_THREAD_CALL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_u16(k as u16), Some(k));
        }
        assert_eq!(Kind::from_u16(0), None);
        assert_eq!(Kind::from_u16(19), None);
        assert_eq!(Kind::from_u16(u16::MAX), None);
    }

    #[test]
    fn bits_are_distinct() {
        assert_eq!(Kind::all_bits().count_ones() as usize, Kind::ALL.len());
    }
}
