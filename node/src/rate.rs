//! Per-organisation request rate limit for authenticated JSON-RPC calls: a token bucket
//! per organisation, so one organisation's tooling cannot starve the others' reads.

use std::collections::HashMap;
use std::time::Instant;

/// Sustained authenticated requests per second one organisation may make to one node.
pub const ORG_REQUESTS_PER_S: u32 = 200;

/// Requests an organisation may make in a burst above the sustained rate.
pub const ORG_BURST_REQUESTS: u32 = 400;

/// An organisation exceeded its rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "organisation {org} exceeded {ORG_REQUESTS_PER_S} requests per second (burst \
     {ORG_BURST_REQUESTS}); retry in {retry_after_ms} ms"
)]
pub struct RateLimited {
    /// The organisation.
    pub org: String,
    /// When one more request will be allowed.
    pub retry_after_ms: u64,
}

/// One request in micro-tokens: buckets count in millionths so refills are exact.
const REQUEST_MICRO: u64 = 1_000_000;

/// Token buckets by organisation. Only authenticated organisations get a bucket, so the
/// map is bounded by the membership.
#[derive(Debug, Default)]
pub struct OrgRateLimiter {
    /// Micro-tokens left and when they were counted.
    buckets: HashMap<String, (u64, Instant)>,
}

impl OrgRateLimiter {
    /// Takes one request from `org`'s bucket at time `now`.
    pub fn take(&mut self, org: &str, now: Instant) -> Result<(), RateLimited> {
        let capacity = u64::from(ORG_BURST_REQUESTS) * REQUEST_MICRO;
        let rate = u64::from(ORG_REQUESTS_PER_S);
        let (tokens, last) = self
            .buckets
            .entry(org.to_owned())
            .or_insert((capacity, now));
        // Tokens per second times microseconds is micro-tokens.
        let elapsed_us =
            u64::try_from(now.saturating_duration_since(*last).as_micros()).unwrap_or(u64::MAX);
        *tokens = tokens
            .saturating_add(elapsed_us.saturating_mul(rate))
            .min(capacity);
        *last = now;
        if *tokens >= REQUEST_MICRO {
            *tokens -= REQUEST_MICRO;
            return Ok(());
        }
        let missing_us = (REQUEST_MICRO - *tokens).div_ceil(rate);
        Err(RateLimited {
            org: org.to_owned(),
            // Rounded up, so a caller retrying after it is served.
            retry_after_ms: missing_us.div_ceil(1000),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let mut limiter = OrgRateLimiter::default();
        let start = Instant::now();
        for _ in 0..ORG_BURST_REQUESTS {
            limiter.take("a", start).unwrap();
        }
        let refused = limiter.take("a", start).unwrap_err();
        assert_eq!(refused.org, "a");
        assert_eq!(refused.retry_after_ms, 5);
        assert!(refused.to_string().contains("retry in 5 ms"), "{refused}");
        // Another organisation has its own bucket.
        limiter.take("b", start).unwrap();
        // After 5 ms one request is allowed again, not two.
        let later = start + Duration::from_millis(5);
        limiter.take("a", later).unwrap();
        assert!(limiter.take("a", later).is_err());
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..ORG_BURST_REQUESTS {
            limiter.take("a", much_later).unwrap();
        }
        assert!(limiter.take("a", much_later).is_err());
    }
}
