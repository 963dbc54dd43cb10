//! Errors of the wire protocol.

/// Why a frame or a message body was rejected.
///
/// The numeric values travel in `ERROR` bodies and are append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ProtoError {
    /// Fewer bytes than the structure needs.
    Truncated = 1,
    /// The header does not start with [`super::frame::MAGIC`].
    BadMagic = 2,
    /// A protocol version this peer does not speak.
    BadVersion = 3,
    /// A frame kind this peer does not know.
    UnknownKind = 4,
    /// A length above the negotiated (or pre-handshake) maximum.
    TooLong = 5,
    /// A field holds a value that is not allowed.
    BadValue = 6,
    /// A known kind arrived where the session state does not allow it.
    Unexpected = 7,
    /// The peer is not on the allow-list.
    NotAllowed = 8,
    /// The sender closes the session for good (module unload): nothing to resume.
    Goodbye = 9,
    /// The peer did not prove knowledge of the shared key (no, wrong or replayed MAC), or
    /// connected from a source port the server does not admit.
    AuthFailed = 10,
    /// A limit of the server was reached (connections before `HELLO`, sessions of one
    /// client, all sessions); the client may try again later.
    Busy = 11,
}

impl ProtoError {
    /// Decodes an error code received in an `ERROR` body.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Truncated,
            2 => Self::BadMagic,
            3 => Self::BadVersion,
            4 => Self::UnknownKind,
            5 => Self::TooLong,
            6 => Self::BadValue,
            7 => Self::Unexpected,
            8 => Self::NotAllowed,
            9 => Self::Goodbye,
            10 => Self::AuthFailed,
            11 => Self::Busy,
            _ => return None,
        })
    }

    /// A short name for log lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadMagic => "bad magic",
            Self::BadVersion => "bad version",
            Self::UnknownKind => "unknown kind",
            Self::TooLong => "frame too long",
            Self::BadValue => "bad value",
            Self::Unexpected => "unexpected kind",
            Self::NotAllowed => "peer not allowed",
            Self::Goodbye => "goodbye",
            Self::AuthFailed => "authentication failed",
            Self::Busy => "server busy (a limit was reached)",
        }
    }
}

/// Result of the protocol's decoders.
pub type Result<T> = core::result::Result<T, ProtoError>;
