//! Request bodies for the one retry: buffered when small and of known size, otherwise sent
//! once and never retried.

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use crate::error::BoxError;

/// Buffer `body` when its size is known to be at most `limit`; otherwise hand it back.
/// A single-frame `Bytes` body is taken over without copying.
pub(crate) async fn buffer<B>(body: B, limit: usize) -> Result<Result<Bytes, B>, BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(Ok(Bytes::new()));
    }
    match body.size_hint().upper() {
        Some(n) if n <= limit as u64 => {
            Ok(Ok(Limited::new(body, limit).collect().await?.to_bytes()))
        }
        _ => Ok(Err(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn small_known_bodies_are_buffered_without_copy() {
        let data = Bytes::from_static(b"hello");
        let got = buffer(Full::new(data.clone()), 10).await.unwrap().unwrap();
        assert_eq!(got, data);
        assert_eq!(got.as_ptr(), data.as_ptr(), "zero-copy");
    }

    #[tokio::test]
    async fn large_or_streaming_bodies_are_not() {
        assert!(
            buffer(Full::new(Bytes::from(vec![0u8; 11])), 10)
                .await
                .unwrap()
                .is_err()
        );
        assert!(
            buffer(Streaming(Some(Bytes::from_static(b"x"))), 1 << 20)
                .await
                .unwrap()
                .is_err()
        );
    }

    /// A body of unknown length, like a stream.
    struct Streaming(Option<Bytes>);

    impl Body for Streaming {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
        }
    }
}
