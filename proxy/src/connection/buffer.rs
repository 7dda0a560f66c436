//! The reusable read buffer of one direction of a connection, and the two
//! moves the pumps make over it: step over passthrough bytes, and write out
//! a whole run of them at once.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::io::{BoxRead, BoxWrite};

/// First read size of a new connection: idle connections stay small.
const INITIAL_READ: usize = 4096;

/// A read buffer that starts small and doubles (up to `max`) while reads keep
/// filling it, so an idle connection costs a few KiB and a busy one reads in
/// large chunks with few syscalls.
pub(super) struct ReadBuf {
    pub(super) buf: BytesMut,
    chunk: usize,
    max: usize,
}

impl ReadBuf {
    pub(super) fn new(max: usize) -> ReadBuf {
        let chunk = INITIAL_READ.min(max);
        ReadBuf {
            buf: BytesMut::with_capacity(chunk),
            chunk,
            max,
        }
    }

    /// Reads once; returns the number of bytes read (0 at end of stream).
    pub(super) async fn fill(&mut self, from: &mut BoxRead) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
            self.buf.reserve(self.chunk);
        }
        let spare = self.buf.capacity() - self.buf.len();
        let n = from.read_buf(&mut self.buf).await?;
        if n == spare && self.chunk < self.max {
            self.chunk = (self.chunk * 2).min(self.max);
        }
        Ok(n)
    }
}

/// Steps over buffered bytes of a passthrough frame; true once the frame is
/// fully stepped over (the next byte starts a frame).
pub(super) fn step_over(rem: &mut usize, pos: &mut usize, buffered: usize) -> bool {
    let n = (*rem).min(buffered - *pos);
    *pos += n;
    *rem -= n;
    *rem == 0
}

/// Writes the first `pos` buffered bytes out in one write and drops them.
pub(super) async fn forward(
    out: &mut BoxWrite,
    buf: &mut BytesMut,
    pos: usize,
) -> std::io::Result<()> {
    if pos > 0 {
        out.write_all(&buf[..pos]).await?;
        buf.advance(pos);
    }
    Ok(())
}
