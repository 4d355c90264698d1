//! Prometheus metrics: one process-wide set of counters, gauges and histograms (the
//! `prometheus-client` crate), recorded where things happen and rendered by `GET /metrics`.
//!
//! Label values are bounded: models are the *upstream* model ids (a client cannot mint new
//! series by sending random model names), statuses are HTTP codes, classes are error classes.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub model: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub direction: &'static str,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub tokens: Family<TokenLabels, Counter>,
    pub upstream_errors: Family<ClassLabels, Counter>,
    pub account_health: Family<StateLabels, Gauge>,
    pub ttfb: Family<EndpointLabels, Histogram>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub token_refreshes: Family<ResultLabels, Counter>,
    pub usage_rows_dropped: Counter,
}

/// Seconds: 5 ms … about 164 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 16,
    ))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("amq2api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Proxied requests by endpoint, upstream model and HTTP status",
            requests.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens by direction (input, output) and upstream model",
            tokens.clone(),
        );
        let upstream_errors = Family::<ClassLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Errors from Amazon Q and its token endpoints, by error class (every attempt, also ones a failover hid)",
            upstream_errors.clone(),
        );
        let account_health = Family::<StateLabels, Gauge>::default();
        registry.register(
            "accounts",
            "Accounts by health state (disabled by the operator counts as \"off\")",
            account_health.clone(),
        );
        let ttfb = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        registry.register(
            "time_to_first_byte_seconds",
            "Time from the request to Amazon Q's first event",
            ttfb.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request to the end of the answer",
            latency.clone(),
        );
        let token_refreshes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_refreshes",
            "Access-token refreshes by result (ok, failed)",
            token_refreshes.clone(),
        );
        let usage_rows_dropped = Counter::default();
        registry.register(
            "usage_rows_dropped",
            "Usage rows dropped because the write queue was full or the database refused them",
            usage_rows_dropped.clone(),
        );
        Metrics {
            registry,
            requests,
            tokens,
            upstream_errors,
            account_health,
            ttfb,
            latency,
            token_refreshes,
            usage_rows_dropped,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts one upstream error of `class`.
pub fn upstream_error(class: &'static str) {
    get()
        .upstream_errors
        .get_or_create(&ClassLabels { class })
        .inc();
}

/// Counts one token refresh.
pub fn token_refresh(ok: bool) {
    get()
        .token_refreshes
        .get_or_create(&ResultLabels {
            result: if ok { "ok" } else { "failed" },
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                endpoint: "/v1/messages".into(),
                model: "claude-sonnet-4.5".into(),
                status: 200,
            })
            .inc();
        let text = m.render();
        assert!(text.contains(
            "# HELP amq2api_requests Proxied requests by endpoint, upstream model and HTTP status.\n# TYPE amq2api_requests counter\namq2api_requests_total{endpoint=\"/v1/messages\",model=\"claude-sonnet-4.5\",status=\"200\"} 1\n"
        ), "{text}");
        // Families without a sample are left out by the encoder, except plain counters.
        for name in ["requests", "usage_rows_dropped"] {
            assert!(
                text.contains(&format!("# HELP amq2api_{name} ")),
                "{name}: {text}"
            );
            assert!(
                text.contains(&format!("# TYPE amq2api_{name} ")),
                "{name}: {text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
