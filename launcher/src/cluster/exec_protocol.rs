//! Which websocket subprotocol an exec offers. kube offers `v5.channel.k8s.io, v4.channel.k8s.io` on every
//! exec. An API server that sees v5 offered translates the stream to SPDY toward the kubelet (KEP-4006's
//! stream translator); with v4 alone it proxies the upgraded connection to the kubelet as it is. v5 adds only
//! the half-close of stdin, so an exec without stdin (every probe run but copy delivery's) loses nothing by
//! offering v4 alone, and each exec is 3–4 ms shorter (measured on the testbed: an exec of `true` 14.5 → 11 ms,
//! of `node-probe health` 21–23 → 17–18 ms, p50 of 25; docs/performance.md). An exec with stdin keeps kube's
//! offer: copy delivery closes stdin on v5 (probe/stream_exec.rs).

use std::task::{Context, Poll};

use http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{Request, Response};
use tower::{Layer, Service};

/// The subprotocol an exec without stdin offers.
pub const V4: &str = "v4.channel.k8s.io";

/// Wraps the client's service so that execs without stdin offer [`V4`] alone.
#[derive(Clone, Copy, Default)]
pub struct ExecProtocolLayer;

impl<S> Layer<S> for ExecProtocolLayer {
    type Service = ExecProtocol<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ExecProtocol { inner }
    }
}

#[derive(Clone)]
pub struct ExecProtocol<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for ExecProtocol<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if is_exec_without_stdin(&req) {
            req.headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(V4));
        }
        self.inner.call(req)
    }
}

/// A websocket upgrade to a pod's `exec` or `attach` whose query does not ask for stdin.
fn is_exec_without_stdin<B>(req: &Request<B>) -> bool {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade || !req.headers().contains_key(SEC_WEBSOCKET_PROTOCOL) {
        return false;
    }
    let path = req.uri().path();
    if !(path.ends_with("/exec") || path.ends_with("/attach")) {
        return false;
    }
    // The API server reads stdin as a boolean query parameter ("true" or "1"); kube writes `stdin=true`.
    !req.uri().query().unwrap_or_default().split('&').any(|kv| {
        kv.split_once('=')
            .is_some_and(|(k, v)| k == "stdin" && (v == "true" || v == "1"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, upgrade: bool) -> Request<()> {
        let mut b = Request::get(uri);
        if upgrade {
            b = b.header(UPGRADE, "websocket").header(
                SEC_WEBSOCKET_PROTOCOL,
                "v5.channel.k8s.io, v4.channel.k8s.io",
            );
        }
        b.body(()).unwrap()
    }

    /// The protocol header the inner service received.
    fn offered(r: Request<()>) -> Option<String> {
        let mut svc = ExecProtocolLayer.layer(tower::service_fn(|r: Request<()>| async move {
            let p = r
                .headers()
                .get(SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap().to_string());
            Ok::<_, std::convert::Infallible>(Response::new(p))
        }));
        futures::executor::block_on(svc.call(r))
            .unwrap()
            .into_body()
    }

    #[test]
    fn an_exec_without_stdin_offers_v4_alone() {
        let q = "/api/v1/namespaces/ns/pods/p/exec?command=node-probe&command=health&container=probe&stderr=true&stdout=true";
        assert_eq!(offered(req(q, true)).as_deref(), Some(V4));
        let a = "/api/v1/namespaces/ns/pods/p/attach?container=probe&stdout=true";
        assert_eq!(offered(req(a, true)).as_deref(), Some(V4));
    }

    #[test]
    fn an_exec_with_stdin_and_other_requests_keep_their_headers() {
        let both = Some("v5.channel.k8s.io, v4.channel.k8s.io");
        for q in [
            "/api/v1/namespaces/ns/pods/p/exec?command=sh&container=probe&stdin=true&stdout=true",
            "/api/v1/namespaces/ns/pods/p/exec?stdin=1&command=sh",
            "/api/v1/namespaces/ns/pods/p/portforward?ports=80",
        ] {
            assert_eq!(offered(req(q, true)).as_deref(), both, "{q}");
        }
        // Not an upgrade: untouched (no header added).
        assert_eq!(
            offered(req("/api/v1/namespaces/ns/pods/p/exec?command=x", false)),
            None
        );
        // A pod whose name ends in "exec" is not the subresource.
        assert_eq!(
            offered(req("/api/v1/namespaces/ns/pods?labelSelector=exec", true)).as_deref(),
            both
        );
    }
}
