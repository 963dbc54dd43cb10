//! Little-endian cursors over byte slices, checked at every step.

use super::error::{ProtoError, Result};

/// Reads little-endian integers from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(ProtoError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// Reads a `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

/// Writes little-endian integers into a byte slice.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Appends `src`.
    pub fn bytes(&mut self, src: &[u8]) -> Result<()> {
        let end = self.pos.checked_add(src.len()).ok_or(ProtoError::TooLong)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(ProtoError::TooLong)?
            .copy_from_slice(src);
        self.pos = end;
        Ok(())
    }

    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

/// Order-sensitive 64-bit checksum of a byte stream, used by bulk transfers to prove that
/// nothing was lost, duplicated or reordered. Feed consecutive chunks of the stream through
/// `state`, starting from [`SUM_INIT`]; chunk boundaries must fall on multiples of 8 bytes
/// except for the last chunk.
pub fn sum64(mut state: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        state = (state.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        // The tail's length goes into the (otherwise zero) top byte: "a" and "a\0" differ.
        w[7] = u8::try_from(tail.len()).unwrap_or(u8::MAX);
        state = (state.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    state
}

/// Initial state of [`sum64`].
pub const SUM_INIT: u64 = 0xcbf2_9ce4_8422_2325;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_end() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0]);
        assert_eq!(r.u16(), Ok(1));
        assert_eq!(r.u32(), Err(ProtoError::Truncated));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.rest(), &[0]);
    }

    #[test]
    fn writer_refuses_overflow() {
        let mut b = [0u8; 5];
        let mut w = Writer::new(&mut b);
        assert_eq!(w.u32(7), Ok(()));
        assert_eq!(w.u16(1), Err(ProtoError::TooLong));
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn sum_detects_order_and_loss() {
        let a = sum64(SUM_INIT, b"0123456789abcdef");
        let b = sum64(sum64(SUM_INIT, b"01234567"), b"89abcdef");
        assert_eq!(a, b);
        assert_ne!(a, sum64(SUM_INIT, b"89abcdef01234567"));
        assert_ne!(a, sum64(SUM_INIT, b"0123456789abcde"));
        assert_ne!(sum64(SUM_INIT, b"a"), sum64(SUM_INIT, b"a\0"));
    }
}
