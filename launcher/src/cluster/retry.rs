//! The client's retry of requests the API server pushed back (429 Too Many Requests from API Priority and
//! Fairness, 503, 504). Unlike kube's `RetryPolicy::server_retry` it tells the client's [`Pressure`] about
//! every 429/503 (fan-outs then start fewer probes), honours Retry-After up to [`MAX_RETRY_AFTER`] and stops
//! on time, not on a count: the caller's deadline is what ends a call, so a throttled node waits instead of
//! failing after a fixed number of tries.
//!
//! A proxy subresource's 503 or 504 (`services/NAME/proxy`, `pods/NAME/proxy`, `nodes/NAME/proxy`) is the
//! backend's answer, or the proxy's own "no endpoints available" or failed dial: no push-back, so neither
//! retried nor recorded (a Prometheus read through the service proxy would otherwise be retried until its
//! caller's deadline and slow every fan-out down). Its 429 is API Priority and Fairness's, retried as any.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use tokio::time::Instant;
use tower::BoxError;
use tower::retry::Policy;

use super::pressure::{MAX_RETRY_AFTER, Pressure};

/// A request is retried for at most this long (callers' own deadlines are shorter: probe calls, deletes).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);
/// Backoff without a Retry-After: from this, doubling, up to [`MAX_RETRY_AFTER`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct ThrottleRetry {
    pressure: Arc<Pressure>,
    attempts: u32,
    first: Option<Instant>,
}

impl ThrottleRetry {
    pub fn new(pressure: Arc<Pressure>) -> Self {
        ThrottleRetry {
            pressure,
            attempts: 0,
            first: None,
        }
    }

    /// How long to wait before attempt `attempts + 1`: the server's Retry-After (seconds) within bounds,
    /// else exponential backoff; with up to a quarter more of jitter so throttled requests do not return
    /// in step.
    fn delay(&self, retry_after: Option<Duration>) -> Duration {
        let base = retry_after.unwrap_or_else(|| {
            FIRST_BACKOFF.saturating_mul(1 << self.attempts.min(10).saturating_sub(1))
        });
        let base = base.min(MAX_RETRY_AFTER);
        base + jitter(base / 4)
    }
}

/// The Retry-After header in seconds (the API server sends seconds, never a date).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(h.finish() % nanos)
}

/// Whether `path` (the API server's base path included, if any) is a proxy subresource:
/// `/api/v1/namespaces/NS/{services,pods}/NAME/proxy...` or `/api/v1/nodes/NAME/proxy...`.
pub fn is_proxy_subresource(path: &str) -> bool {
    let seg: Vec<&str> = path.split('/').collect();
    let Some(at) = seg.windows(2).position(|w| w == ["api", "v1"]) else {
        return false;
    };
    let named = |s: &str| !s.is_empty();
    match &seg[at + 2..] {
        ["namespaces", ns, "services" | "pods", name, "proxy", ..] => named(ns) && named(name),
        ["nodes", name, "proxy", ..] => named(name),
        _ => false,
    }
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for ThrottleRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let Ok(response) = result else { return None };
        let status = response.status();
        if !matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        ) {
            return None;
        }
        if status != StatusCode::TOO_MANY_REQUESTS && is_proxy_subresource(req.uri().path()) {
            return None;
        }
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        if now.duration_since(first) >= GIVE_UP_AFTER {
            return None;
        }
        self.attempts += 1;
        let after = retry_after(response.headers());
        let wait = self.delay(after);
        if status != StatusCode::GATEWAY_TIMEOUT {
            self.pressure
                .record(after.unwrap_or(wait).min(MAX_RETRY_AFTER));
        }
        tracing::debug!(status = %status, attempt = self.attempts, wait_ms = wait.as_millis() as u64, "API server pushed back; retrying");
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Only bodies held whole can be sent again (kube's own policy does the same).
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers().clone());
        }
        builder.body(body).ok().map(|mut r| {
            *r.extensions_mut() = req.extensions().clone();
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Response<()>, BoxError> {
        let mut b = Response::builder().status(status);
        if let Some(v) = retry_after {
            b = b.header("Retry-After", v);
        }
        Ok(b.body(()).unwrap())
    }

    fn req() -> Request<Body> {
        Request::builder().body(Body::empty()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_recorded_and_retried_after_its_retry_after() {
        let p = Arc::new(Pressure::default());
        let mut r = ThrottleRetry::new(p.clone());
        let t = Instant::now();
        let wait = r.retry(&mut req(), &mut answer(429, Some("1")));
        wait.expect("429 is retried").await;
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited <= Duration::from_millis(1250),
            "{waited:?}"
        );
        assert_eq!(p.throttled(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_is_bounded() {
        let p = Arc::new(Pressure::default());
        let mut r = ThrottleRetry::new(p);
        let t = Instant::now();
        r.retry(&mut req(), &mut answer(429, Some("3600")))
            .expect("retried")
            .await;
        assert!(t.elapsed() <= MAX_RETRY_AFTER + MAX_RETRY_AFTER / 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_go_on_until_time_runs_out_not_after_a_count() {
        let p = Arc::new(Pressure::default());
        let mut r = ThrottleRetry::new(p.clone());
        let mut n = 0;
        while let Some(w) = r.retry(&mut req(), &mut answer(429, None)) {
            w.await;
            n += 1;
        }
        // 15 is kube's own count; a throttled node is retried for as long as its caller waits.
        assert!(n > 15, "{n} retries");
        assert_eq!(p.throttled(), n);
    }

    #[tokio::test(start_paused = true)]
    async fn other_answers_are_not_retried() {
        let p = Arc::new(Pressure::default());
        let mut r = ThrottleRetry::new(p.clone());
        for s in [200, 403, 404, 409, 500] {
            assert!(r.retry(&mut req(), &mut answer(s, None)).is_none(), "{s}");
        }
        assert!(r.retry(&mut req(), &mut answer(504, None)).is_some());
        assert_eq!(p.throttled(), 0, "a gateway timeout is no push-back");
    }

    fn req_to(uri: &str) -> Request<Body> {
        Request::builder().uri(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_proxied_backends_503_is_its_answer_but_a_429_is_the_api_servers() {
        let p = Arc::new(Pressure::default());
        let mut r = ThrottleRetry::new(p.clone());
        let prom = "https://10.0.0.1:6443/api/v1/namespaces/monitoring/services/prometheus-k8s:web/proxy/api/v1/query?query=up";
        for s in [503, 504] {
            assert!(
                r.retry(&mut req_to(prom), &mut answer(s, None)).is_none(),
                "{s}"
            );
        }
        assert_eq!(p.throttled(), 0, "a proxied 503 is no push-back");
        assert!(r.retry(&mut req_to(prom), &mut answer(429, None)).is_some());
        assert_eq!(p.throttled(), 1);
        let get_svc = "https://10.0.0.1:6443/api/v1/namespaces/monitoring/services/prometheus-k8s";
        assert!(
            r.retry(&mut req_to(get_svc), &mut answer(503, None))
                .is_some()
        );
    }

    #[test]
    fn proxy_subresources_are_told_from_objects_named_proxy() {
        for yes in [
            "/api/v1/namespaces/monitoring/services/https:prom:9091/proxy",
            "/api/v1/namespaces/m/services/prom/proxy/api/v1/query_range",
            "/api/v1/namespaces/m/pods/prom-0:9090/proxy/-/ready",
            "/api/v1/nodes/gpu-node-1/proxy/metrics",
            "/k8s/clusters/c-m-1/api/v1/namespaces/m/services/prom/proxy/",
        ] {
            assert!(is_proxy_subresource(yes), "{yes}");
        }
        for no in [
            "/api/v1/namespaces/m/services/proxy",
            "/api/v1/namespaces/proxy/pods/proxy",
            "/api/v1/namespaces/m/services",
            "/api/v1/nodes/proxy",
            "/apis/apps/v1/namespaces/m/deployments/proxy",
            "/api/v1/namespaces/m/pods/p/log",
        ] {
            assert!(!is_proxy_subresource(no), "{no}");
        }
    }
}
