//! Why no account can take a request, as the client reads it: "No available accounts in pool
//! (3 accounts: 2 cooling down until 14:05 UTC, 1 disabled: refresh token invalid)", with a
//! `retry-after` when an account comes back soon. When only the pool's own limits stand in the
//! way (requests per minute, concurrency), the answer is a 429 instead of a 503.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::limits::retry_after_secs;

/// A `retry-after` is given when the first account comes back within this time.
pub const RETRY_AFTER_HORIZON: Duration = Duration::from_secs(15 * 60);

/// Why one account cannot take the request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `accounts disable`.
    OperatorDisabled,
    /// Disabled by the pool, with the reason (refresh token invalid, ...).
    Disabled(String),
    Suspended,
    Cooling {
        until_ms: i64,
    },
    Quota {
        until_ms: i64,
    },
    /// Its own requests-per-minute limit; a request fits again after `wait`.
    RpmLimit {
        wait: Duration,
    },
    /// Its concurrency cap.
    Busy,
    /// The access token has expired and the last refresh failed; the next try is at this time.
    RefreshPending {
        retry_at_ms: i64,
    },
}

/// The error for a request no account can take.
pub fn explain(reasons: &[Why], now_ms: i64) -> ApiError {
    if reasons.is_empty() {
        return ApiError::NoAccount {
            message: "No available accounts in pool (there are none: import one with `amq2api accounts import FILE`)".into(),
            retry_after: None,
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut group = |n: usize, text: String| {
        if n > 0 {
            parts.push(format!("{n} {text}"));
        }
    };
    let times = |pick: fn(&Why) -> Option<i64>| -> Vec<i64> {
        let mut t: Vec<i64> = reasons.iter().filter_map(pick).collect();
        t.sort_unstable();
        t
    };
    let until = |t: &[i64]| match t {
        [] => String::new(),
        [first, .., last] if show_time(*first, now_ms) != show_time(*last, now_ms) => {
            format!(", the first until {}", show_time(*first, now_ms))
        }
        [first, ..] => format!(" until {}", show_time(*first, now_ms)),
    };
    let cooling = times(|w| match w {
        Why::Cooling { until_ms } => Some(*until_ms),
        _ => None,
    });
    group(cooling.len(), format!("cooling down{}", until(&cooling)));
    let quota = times(|w| match w {
        Why::Quota { until_ms } => Some(*until_ms),
        _ => None,
    });
    group(quota.len(), format!("out of quota{}", until(&quota)));
    let count = |f: fn(&Why) -> bool| reasons.iter().filter(|w| f(w)).count();
    group(
        count(|w| matches!(w, Why::RpmLimit { .. })),
        "at the requests-per-minute limit".into(),
    );
    group(
        count(|w| matches!(w, Why::Busy)),
        "at the concurrency limit".into(),
    );
    let refresh = times(|w| match w {
        Why::RefreshPending { retry_at_ms } => Some(*retry_at_ms),
        _ => None,
    });
    group(
        refresh.len(),
        "waiting to retry a failed token refresh".into(),
    );
    let mut disabled: Vec<&str> = reasons
        .iter()
        .filter_map(|w| match w {
            Why::Disabled(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    disabled.sort_unstable();
    let mut i = 0;
    while i < disabled.len() {
        let n = disabled[i..]
            .iter()
            .take_while(|r| **r == disabled[i])
            .count();
        group(n, format!("disabled: {}", disabled[i]));
        i += n;
    }
    group(
        count(|w| matches!(w, Why::Suspended)),
        "suspended by Amazon Q".into(),
    );
    group(
        count(|w| matches!(w, Why::OperatorDisabled)),
        "disabled by the operator".into(),
    );
    let summary = format!(
        "{} account{}: {}",
        reasons.len(),
        if reasons.len() == 1 { "" } else { "s" },
        parts.join(", ")
    );

    // Only our own limits in the way of at least one account: a rate limit, retry shortly.
    let limit_waits: Vec<Duration> = reasons
        .iter()
        .filter_map(|w| match w {
            Why::RpmLimit { wait } => Some(*wait),
            Why::Busy => Some(Duration::from_secs(1)),
            _ => None,
        })
        .collect();
    if let Some(wait) = limit_waits.into_iter().min() {
        return ApiError::RateLimited {
            message: format!("Every usable account is at its rate limit ({summary})"),
            retry_after: Some(retry_after_secs(wait)),
        };
    }
    let comeback = cooling
        .first()
        .into_iter()
        .chain(quota.first())
        .chain(refresh.first())
        .min()
        .map(|t| Duration::from_millis(u64::try_from(t - now_ms).unwrap_or(0)));
    ApiError::NoAccount {
        message: format!("No available accounts in pool ({summary})"),
        retry_after: comeback
            .filter(|d| *d <= RETRY_AFTER_HORIZON)
            .map(retry_after_secs),
    }
}

/// "14:05 UTC" today, "2026-12-01 00:00 UTC" another day; rounded up to the minute, so the
/// account is back by then.
pub fn show_time(until_ms: i64, now_ms: i64) -> String {
    let minute = 60_000;
    let up = until_ms.div_euclid(minute) * minute
        + if until_ms.rem_euclid(minute) > 0 {
            minute
        } else {
            0
        };
    let (Some(t), Some(now)) = (
        DateTime::<Utc>::from_timestamp_millis(up),
        DateTime::<Utc>::from_timestamp_millis(now_ms),
    ) else {
        return "later".into();
    };
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-26 13:59:30 UTC
    const NOW: i64 = 1_795_701_570_000;

    fn parts(e: &ApiError) -> (u16, String, Option<u64>) {
        (e.status(), e.to_string(), e.retry_after())
    }

    #[test]
    fn the_brief_example() {
        let e = explain(
            &[
                Why::Cooling {
                    until_ms: NOW + 5 * 60_000 - 30_000,
                },
                Why::Cooling {
                    until_ms: NOW + 4 * 60_000,
                },
                Why::Disabled("refresh token invalid".into()),
            ],
            NOW,
        );
        assert_eq!(
            parts(&e),
            (
                503,
                "No available accounts in pool (3 accounts: 2 cooling down until 14:04 UTC, 1 disabled: refresh token invalid)".into(),
                Some(240)
            )
        );
    }

    #[test]
    fn every_reason_in_order_and_no_retry_after_for_a_distant_comeback() {
        let e = explain(
            &[
                Why::OperatorDisabled,
                Why::Suspended,
                Why::Disabled("refresh token invalid".into()),
                Why::Disabled("client registration expired".into()),
                Why::Disabled("refresh token invalid".into()),
                Why::Quota {
                    until_ms: 1_796_083_200_000 + 86_400_000 * 5,
                },
                Why::Cooling {
                    until_ms: NOW + 3_600_000,
                },
                Why::Cooling {
                    until_ms: NOW + 2 * 3_600_000,
                },
            ],
            NOW,
        );
        assert_eq!(
            parts(&e),
            (
                503,
                "No available accounts in pool (8 accounts: 2 cooling down, the first until 15:00 UTC, 1 out of quota until 2026-12-06 00:00 UTC, 1 disabled: client registration expired, 2 disabled: refresh token invalid, 1 suspended by Amazon Q, 1 disabled by the operator)".into(),
                None
            )
        );
    }

    #[test]
    fn our_own_limits_are_a_429_with_the_shortest_wait() {
        let e = explain(
            &[
                Why::RpmLimit {
                    wait: Duration::from_millis(12_300),
                },
                Why::Cooling {
                    until_ms: NOW + 1000,
                },
            ],
            NOW,
        );
        assert_eq!(
            parts(&e),
            (
                429,
                "Every usable account is at its rate limit (2 accounts: 1 cooling down until 14:00 UTC, 1 at the requests-per-minute limit)".into(),
                Some(13)
            )
        );
        let e = explain(&[Why::Busy], NOW);
        assert_eq!(
            parts(&e),
            (
                429,
                "Every usable account is at its rate limit (1 account: 1 at the concurrency limit)"
                    .into(),
                Some(1)
            )
        );
    }

    #[test]
    fn an_empty_pool_says_how_to_fill_it() {
        assert_eq!(
            parts(&explain(&[], NOW)),
            (
                503,
                "No available accounts in pool (there are none: import one with `amq2api accounts import FILE`)".into(),
                None
            )
        );
        let e = explain(
            &[Why::RefreshPending {
                retry_at_ms: NOW + 20_000,
            }],
            NOW,
        );
        assert_eq!(
            parts(&e),
            (
                503,
                "No available accounts in pool (1 account: 1 waiting to retry a failed token refresh)".into(),
                Some(20)
            )
        );
    }

    #[test]
    fn times_round_up_to_the_minute() {
        assert_eq!(show_time(NOW, NOW), "14:00 UTC");
        assert_eq!(show_time(NOW + 30_000, NOW), "14:00 UTC");
        assert_eq!(show_time(NOW + 30_001, NOW), "14:01 UTC");
        assert_eq!(show_time(NOW + 86_400_000, NOW), "2026-11-27 14:00 UTC");
    }
}
