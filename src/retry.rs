//! Which failures are retried, and how long to wait before the next attempt.

use std::time::Duration;

use crate::config::RetryPolicy;

/// Throttling error codes that DynamoDB answers when a request may succeed later.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
];

/// Whether an error response says the request was refused for capacity:
/// a throttling code or HTTP 429.
pub fn is_throttling(status: u16, code: &str) -> bool {
    status == 429 || THROTTLING_CODES.contains(&code)
}

/// Whether an error response is worth another attempt: throttling, HTTP 429 and 5xx.
/// Validation, authentication and conditional-check failures are not.
pub fn is_retryable_response(status: u16, code: &str) -> bool {
    status == 429 || status >= 500 || THROTTLING_CODES.contains(&code)
}

/// The sleep before attempt `next_attempt` (2 for the first retry): full jitter over
/// `min(max_delay, base_delay * 2^(next_attempt - 2))`.
pub fn backoff(policy: &RetryPolicy, next_attempt: u32, random: u64) -> Duration {
    let exponent = next_attempt.saturating_sub(2).min(31);
    let ceiling = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let ceiling_us = ceiling.as_micros() as u64;
    Duration::from_micros(if ceiling_us == 0 {
        0
    } else {
        random % (ceiling_us + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retried_others_not() {
        assert!(is_retryable_response(
            400,
            "ProvisionedThroughputExceededException"
        ));
        assert!(is_retryable_response(400, "ThrottlingException"));
        assert!(is_retryable_response(400, "RequestLimitExceeded"));
        assert!(is_retryable_response(429, ""));
        assert!(is_retryable_response(500, "InternalServerError"));
        assert!(is_retryable_response(503, "ServiceUnavailable"));
        assert!(!is_retryable_response(400, "ValidationException"));
        assert!(!is_retryable_response(
            400,
            "ConditionalCheckFailedException"
        ));
        assert!(!is_retryable_response(403, "SignatureDoesNotMatch"));
        assert!(!is_retryable_response(400, "UnrecognizedClientException"));
    }

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        for (attempt, ceiling_ms) in [
            (2, 10),
            (3, 20),
            (4, 40),
            (5, 80),
            (6, 100),
            (9, 100),
            (40, 100),
        ] {
            let ceiling_us = ceiling_ms * 1000;
            assert_eq!(
                backoff(&policy, attempt, ceiling_us),
                Duration::from_millis(ceiling_ms)
            );
            assert_eq!(backoff(&policy, attempt, ceiling_us + 1), Duration::ZERO);
            assert!(backoff(&policy, attempt, 12_345_678) <= Duration::from_millis(ceiling_ms));
        }
    }
}
