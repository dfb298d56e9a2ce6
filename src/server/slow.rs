//! Slow clients: a request body must keep arriving, or its connection is closed.
//!
//! actix-web bounds how long a client may take to send its headers, not its body: a client
//! that declares `Content-Length: 60000` and sends a byte every few seconds held its
//! connection (and a file descriptor) forever, and a thousand of them starved `/healthz`.
//! Every request body now passes through [`deadline`]: it fails with `TimedOut` when no
//! bytes come for [`IDLE`], or when, after [`GRACE`], it has arrived slower than
//! [`MIN_BYTES_PER_SEC`] on average. The handler then answers 408 and the connection closes.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

/// Longest pause between two pieces of a body.
pub const IDLE: Duration = Duration::from_secs(10);
/// Time every body gets before its average rate counts.
pub const GRACE: Duration = Duration::from_secs(10);
/// Slowest average rate accepted after [`GRACE`] (16 KiB/s: a 100 MB upload over a
/// link 60 times slower than a 10 Mbit/s office line).
pub const MIN_BYTES_PER_SEC: u64 = 16 * 1024;

/// The message of the error a too-slow body ends with.
pub const TOO_SLOW: &str = "the request body arrived too slowly";

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// `payload`, failing with [`TOO_SLOW`] when it stalls or trickles (see the module).
pub fn deadline(payload: Payload) -> Payload {
    deadline_with(payload, IDLE, GRACE, MIN_BYTES_PER_SEC)
}

fn deadline_with(payload: Payload, idle: Duration, grace: Duration, min_rate: u64) -> Payload {
    struct State {
        inner: Payload,
        started: Instant,
        received: u64,
        failed: bool,
    }
    let state = State {
        inner: payload,
        started: Instant::now(),
        received: 0,
        failed: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        if s.failed {
            return None;
        }
        // What has arrived buys time at `min_rate`, on top of the grace period.
        let earned = Duration::from_secs_f64(s.received as f64 / min_rate.max(1) as f64);
        let rate_deadline = s.started + grace + earned;
        let wait_until = rate_deadline.min(Instant::now() + idle);
        match tokio::time::timeout_at(wait_until, s.inner.next()).await {
            Ok(Some(Ok(bytes))) => {
                s.received += bytes.len() as u64;
                Some((Ok(bytes), s))
            }
            Ok(Some(Err(e))) => {
                s.failed = true;
                Some((Err(e), s))
            }
            Ok(None) => None,
            Err(_) => {
                s.failed = true;
                let e = io::Error::new(io::ErrorKind::TimedOut, TOO_SLOW);
                Some((Err(PayloadError::Io(e)), s))
            }
        }
    });
    // Fused: readers such as the multipart parser poll again after the end.
    let boxed: BodyStream = Box::pin(stream.fuse());
    Payload::from(boxed)
}

/// Whether a payload error is [`deadline`]'s.
pub fn is_too_slow(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trickle(pieces: usize, every: Duration) -> Payload {
        let s = futures_util::stream::unfold(0usize, move |i| async move {
            if i == pieces {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok::<_, PayloadError>(Bytes::from_static(b"x")), i + 1))
        });
        let boxed: BodyStream = Box::pin(s);
        Payload::from(boxed)
    }

    async fn drain(mut p: Payload) -> Result<usize, PayloadError> {
        let mut n = 0;
        while let Some(piece) = p.next().await {
            n += piece?.len();
        }
        // Polling after the end is allowed (the multipart reader does it).
        assert!(p.next().await.is_none());
        Ok(n)
    }

    #[actix_web::test]
    async fn a_steady_body_passes() {
        let p = deadline_with(
            trickle(5, Duration::from_millis(10)),
            Duration::from_secs(1),
            Duration::from_secs(1),
            1,
        );
        assert_eq!(drain(p).await.unwrap(), 5);
    }

    #[actix_web::test]
    async fn a_stalled_body_times_out() {
        let p = deadline_with(
            trickle(5, Duration::from_millis(300)),
            Duration::from_millis(100),
            Duration::from_secs(10),
            1,
        );
        let e = drain(p).await.unwrap_err();
        assert!(is_too_slow(&e), "{e}");
    }

    #[actix_web::test]
    async fn a_trickling_body_times_out_after_the_grace_period() {
        // A byte every 50 ms never idles for 200 ms, but 20 B/s is under 1 KiB/s.
        let started = std::time::Instant::now();
        let p = deadline_with(
            trickle(1000, Duration::from_millis(50)),
            Duration::from_millis(200),
            Duration::from_millis(300),
            1024,
        );
        let e = drain(p).await.unwrap_err();
        assert!(is_too_slow(&e), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
