//! Which websocket subprotocol an exec offers. kube offers `v5.channel.k8s.io, v4.channel.k8s.io` on every
//! exec. An API server that sees v5 offered translates the stream to SPDY toward the kubelet (KEP-4006's
//! stream translator); with v4 alone it proxies the upgraded connection to the kubelet as it is. v5 adds only
//! the half-close of stdin, so an exec without stdin (every probe run but copy delivery's) loses nothing by
//! offering v4 alone, and each exec is 3–4 ms shorter (measured on the testbed: an exec of `true` 14.5 → 11 ms,
//! of `node-probe health` 21–23 → 17–18 ms, p50 of 25; docs/performance.md). An exec with stdin keeps kube's
//! offer: copy delivery closes stdin on v5 (probe/stream_exec.rs).
//!
//! Such an exec also says `Connection: Upgrade, close`. When the kubelet refuses a proxied upgrade (the
//! launcher's early exec into a container not yet running), the API server echoes the refusal on the hijacked
//! connection and closes it, without a `close` in the response (apimachinery's upgradeaware.go). hyper would
//! pool that connection and a later request on it fails (`SendRequest`: 1 of 8 ephemeral calls on the real
//! node). A request's `close` keeps hyper from pooling it (hyper 1.12 disables keep-alive when it writes such
//! a head; `a_refused_exec_upgrade_is_not_pooled` holds it); an upgrade that succeeds takes the connection
//! anyway, so nothing is lost.

use std::task::{Context, Poll};

use http::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{Request, Response};
use tower::{Layer, Service};

/// The subprotocol an exec without stdin offers.
pub const V4: &str = "v4.channel.k8s.io";

/// The `Connection` header of such an exec: an upgrade, and a connection hyper must not pool if refused.
pub const UPGRADE_CLOSE: &str = "Upgrade, close";

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
            let h = req.headers_mut();
            h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(V4));
            h.insert(CONNECTION, HeaderValue::from_static(UPGRADE_CLOSE));
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

    /// Through the launcher's real client (kube + hyper's pool) against a raw HTTP/1.1 server that refuses the
    /// exec's upgrade as the API server relays a kubelet's refusal (no `close`) and keeps that connection
    /// open: the next request must come on a new connection. Were the refused one pooled, the get would
    /// arrive on it; on a real API server, which closes it, it would fail.
    #[tokio::test]
    async fn a_refused_exec_upgrade_is_not_pooled() {
        use k8s_openapi::api::core::v1::Pod;
        use kube::api::{Api, AttachParams};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // (connection number, request line, Connection header) of every request the server read.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for conn in 0.. {
                let (mut sock, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            buf.drain(..end + 4);
                            let line = head.lines().next().unwrap_or_default().to_string();
                            let connection = head
                                .lines()
                                .find_map(|l| {
                                    l.split_once(':')
                                        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
                                        .map(|(_, v)| v.trim().to_string())
                                })
                                .unwrap_or_default();
                            let body = if line.contains("/exec?") {
                                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container not found","code":400}"#
                            } else {
                                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns"}}"#
                            };
                            let code = if line.contains("/exec?") {
                                "400 Bad Request"
                            } else {
                                "200 OK"
                            };
                            let _ = tx.send((conn, line, connection));
                            let resp = format!(
                                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if sock.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });

        let cfg = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        let client = crate::cluster::clients::client_from_config(
            cfg,
            std::sync::Arc::new(crate::cluster::pressure::Pressure::default()),
        )
        .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, "ns");
        let refused = pods
            .exec(
                "p",
                ["node-probe", "health"],
                &AttachParams::default().stdin(false).stderr(true),
            )
            .await;
        assert!(refused.is_err(), "the server refused the upgrade");
        pods.get("p").await.expect("the next request is answered");

        let (exec_conn, exec_line, exec_connection) = rx.recv().await.unwrap();
        assert!(exec_line.contains("/exec?"), "{exec_line}");
        assert_eq!(exec_connection, UPGRADE_CLOSE);
        let (get_conn, get_line, _) = rx.recv().await.unwrap();
        assert!(
            get_line.starts_with("GET /api/v1/namespaces/ns/pods/p "),
            "{get_line}"
        );
        assert_ne!(
            get_conn, exec_conn,
            "the get went on the connection of the refused upgrade"
        );
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
