//! The block-sync request-response protocol: one length-prefixed frame each way.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes. The reader refuses a
//! length above its bound before reading the body, grows its buffer only as bytes arrive
//! (a peer that announces 60 MiB and sends 10 bytes costs 10 bytes), and refuses bytes
//! after the frame: the writer closes its side after one frame.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;

use super::error::P2pError;

/// Bytes of the length prefix.
const LENGTH_PREFIX_BYTES: usize = 4;

/// The sync protocol name for a network, e.g. `/custos/custos-testnet/sync/1`. Namespacing
/// by network means a node never answers (or asks) a node of another network.
pub(crate) fn protocol(network_id: &str) -> Result<StreamProtocol, P2pError> {
    StreamProtocol::try_from_owned(format!("/custos/{network_id}/sync/1")).map_err(|error| {
        P2pError::Libp2pConfig {
            what: "sync protocol name",
            reason: error.to_string(),
        }
    })
}

/// Reads and writes sync frames of at most `max_bytes` bytes.
#[derive(Debug, Clone)]
pub(crate) struct SyncCodec {
    max_bytes: usize,
}

impl SyncCodec {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one frame of at most `max_bytes` bytes, then expects the end of the stream.
pub(crate) async fn read_frame<T>(io: &mut T, max_bytes: usize, what: &str) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = u64::from(u32::from_be_bytes(prefix));
    if len > max_bytes as u64 {
        return Err(invalid(format!(
            "sync {what} announces {len} bytes; at most {max_bytes} are accepted"
        )));
    }
    // `take` + `read_to_end` grows the buffer with the bytes actually received instead of
    // allocating the announced length up front.
    let mut body = Vec::new();
    (&mut *io).take(len).read_to_end(&mut body).await?;
    if body.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "sync {what} announced {len} bytes but the stream ended after {}",
                body.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if io.read(&mut extra).await? != 0 {
        return Err(invalid(format!(
            "sync {what} has bytes after its {len}-byte frame"
        )));
    }
    Ok(body)
}

/// Writes one frame; refuses to send more than `max_bytes`.
pub(crate) async fn write_frame<T>(
    io: &mut T,
    data: &[u8],
    max_bytes: usize,
    what: &str,
) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(data.len())
        .ok()
        .filter(|len| u64::from(*len) <= max_bytes as u64)
        .ok_or_else(|| {
            invalid(format!(
                "sync {what} of {} bytes exceeds the limit of {max_bytes} bytes",
                data.len()
            ))
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(data).await?;
    io.flush().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_bytes, "request").await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_bytes, "response").await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.max_bytes, "request").await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.max_bytes, "response").await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;

    use super::*;

    fn frame(len: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn round_trip() {
        let mut out = Cursor::new(Vec::new());
        block_on(write_frame(&mut out, b"height 7", 64, "request")).unwrap();
        assert_eq!(out.get_ref(), &frame(8, b"height 7"));
        let mut input = Cursor::new(out.into_inner());
        assert_eq!(
            block_on(read_frame(&mut input, 64, "request")).unwrap(),
            b"height 7"
        );
        let mut empty = Cursor::new(frame(0, b""));
        assert!(
            block_on(read_frame(&mut empty, 64, "request"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let mut input = Cursor::new(frame(65, &[0; 65]));
        let error = block_on(read_frame(&mut input, 64, "response")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("65 bytes"), "{error}");
        let mut out = Cursor::new(Vec::new());
        let error = block_on(write_frame(&mut out, &[0; 65], 64, "response")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(out.get_ref().is_empty(), "nothing is written");
    }

    #[test]
    fn truncated_and_trailing_bytes_are_refused() {
        let mut short = Cursor::new(frame(10, b"abc"));
        let error = block_on(read_frame(&mut short, 64, "request")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let mut long = Cursor::new(frame(3, b"abcd"));
        let error = block_on(read_frame(&mut long, 64, "request")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let mut no_prefix = Cursor::new(vec![0, 0]);
        assert!(block_on(read_frame(&mut no_prefix, 64, "request")).is_err());
    }

    /// A reader that announces a huge frame and then sends a few bytes, recording the
    /// largest buffer the reader asked it to fill.
    struct Liar {
        bytes: Cursor<Vec<u8>>,
        largest_read: usize,
    }

    impl AsyncRead for Liar {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.largest_read = self.largest_read.max(buf.len());
            Pin::new(&mut self.bytes).poll_read(cx, buf)
        }
    }

    #[test]
    fn announced_length_is_not_allocated_up_front() {
        let max = 64 * 1024 * 1024;
        let mut liar = Liar {
            bytes: Cursor::new(frame(60 * 1024 * 1024, b"only this")),
            largest_read: 0,
        };
        let error = block_on(read_frame(&mut liar, max, "response")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            liar.largest_read < 1024 * 1024,
            "reader asked for {} bytes at once",
            liar.largest_read
        );
    }
}
