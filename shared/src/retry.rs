//! One retry policy for the API calls a step makes on its own: a transient error
//! (throttling, a server error, a lost connection) is retried with backoff, never past the
//! deadline the caller gives.
//!
//! kube's client already retries 429, 503 and 504 inside each call (`RetryPolicy::server_retry`
//! in kube-client's `client/retry.rs`, on through `Config::default_retry`): up to 15 times,
//! after the server's `Retry-After` (the API server's max-inflight and priority-and-fairness
//! filters send 1 s) or a backoff doubling from 5 ms, whichever is longer. A throttling API
//! server is therefore ridden out inside each call (tests/tests/faults.rs throttles the
//! sandbox to one request at a time and every step finishes). This is the one layer above
//! it, for what that layer leaves out (other 5xx, connection errors, a 429 still there
//! after kube's 15 tries), and it is bounded: each attempt, kube's own retries included, is
//! cut off at the deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The pause before the first retry; each next one is twice as long, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// Why [`until`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error that retrying would not fix, or a transient one with no time left to retry.
    #[error(transparent)]
    Failed(#[from] kube::Error),
    /// The deadline passed while waiting for an answer; `last` is the transient error that
    /// was being retried, if any.
    #[error("no answer from the API server before the deadline")]
    Deadline {
        #[source]
        last: Option<kube::Error>,
    },
}

/// Call `call` until it succeeds, fails in a way retrying would not fix, or `deadline`
/// passes. Transient errors are retried after 0.5s, 1s, 2s, 4s, 8s, then every 10s.
///
/// *Caveats*: a write is sent again after a transient error, which may have been applied;
/// the caller makes the retried call safe to repeat (as roll's restart reads the object back
/// first).
///
/// *Usage*:
///
/// ```ignore
/// let deadline = tokio::time::Instant::now() + timeout;
/// let deployment = retry::until(deadline, || api.get(name)).await?;
/// ```
pub async fn until<T, F, Fut>(deadline: Instant, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut attempt = 0;
    let mut last = None;
    loop {
        let err = match tokio::time::timeout_at(deadline, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_) => return Err(Error::Deadline { last }),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(wait) = pause(attempt, left).filter(|_| transient(&err)) else {
            return Err(Error::Failed(err));
        };
        attempt += 1;
        last = Some(err);
        tokio::time::sleep(wait).await;
    }
}

/// Worth retrying: throttled, a server error, or the connection itself.
fn transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The pause before retry number `attempt` (0 for the first) with `left` to go before the
/// deadline; `None` when the pause would reach the deadline.
fn pause(attempt: u32, left: Duration) -> Option<Duration> {
    let wait = FIRST_PAUSE.saturating_mul(2u32.saturating_pow(attempt)).min(MAX_PAUSE);
    (wait < left).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("x", "y").with_code(code).boxed())
    }

    /// The pauses taken before giving up when every call fails at once.
    fn schedule(budget: Duration) -> Vec<Duration> {
        let mut left = budget;
        (0..)
            .map_while(|attempt| {
                let wait = pause(attempt, left)?;
                left -= wait;
                Some(wait)
            })
            .collect()
    }

    #[test]
    fn transient_errors_are_throttling_server_errors_and_connections() {
        assert!(transient(&api(429)));
        assert!(transient(&api(503)));
        assert!(!transient(&api(404)));
        assert!(!transient(&api(409)));
    }

    #[test]
    fn backoff_doubles_to_ten_seconds_and_stops_at_the_deadline() {
        let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
        assert_eq!(
            schedule(Duration::from_secs(30)),
            ms(&[500, 1000, 2000, 4000, 8000, 10_000])
        );
        assert_eq!(
            schedule(Duration::from_secs(60)),
            ms(&[500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000])
        );
        assert_eq!(schedule(Duration::from_secs(2)), ms(&[500, 1000]));
        assert!(schedule(Duration::from_millis(500)).is_empty());
        assert!(schedule(Duration::ZERO).is_empty());
        // Far attempts neither overflow nor grow past the cap.
        assert_eq!(pause(100, Duration::MAX), Some(MAX_PAUSE));
    }

    #[tokio::test]
    async fn gives_up_on_a_lasting_error_or_at_the_deadline() {
        let calls = std::cell::Cell::new(0);
        let deadline = Instant::now() + Duration::from_millis(1200);
        let failing = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(api(503)) }
        };
        // 503 at 0s, again at 0.5s; the next pause (1s) would pass the deadline.
        assert!(matches!(until(deadline, failing).await, Err(Error::Failed(_))));
        assert_eq!(calls.get(), 2);

        calls.set(0);
        let not_found = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(api(404)) }
        };
        assert!(matches!(
            until(Instant::now() + MAX_PAUSE, not_found).await,
            Err(Error::Failed(_))
        ));
        assert_eq!(calls.get(), 1);

        let hanging = || std::future::pending::<kube::Result<()>>();
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            until(deadline, hanging).await,
            Err(Error::Deadline { last: None })
        ));
    }
}
