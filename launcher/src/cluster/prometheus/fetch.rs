//! One bounded GET of Prometheus's HTTP API: directly (a URL the user named) or through the API server's
//! service proxy as the person. Each answer is untrusted: at most [`MAX_BODY`] bytes within [`TIMEOUT`].

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::source::{PromUrl, ServiceRef};

/// The most one answer may be: 8 GPUs and 28 metrics over 721 steps is about 4 MiB of JSON.
pub const MAX_BODY: usize = 16 << 20;
/// Each query's time, answer included: a Prometheus that takes longer is too slow to ask in a tool call.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where queries go.
pub enum Endpoint {
    Direct {
        url: PromUrl,
        client: Box<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
    },
    Proxy {
        svc: ServiceRef,
        client: kube::Client,
    },
}

impl Endpoint {
    pub fn direct(url: PromUrl) -> Result<Endpoint, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Endpoint::Direct {
            url,
            client: Box::new(Client::builder(TokioExecutor::new()).build(https)),
        })
    }

    /// The source in words, for the answer.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Direct { url, .. } => url.to_string(),
            Endpoint::Proxy { svc, .. } => format!("Service {svc} (through the API server)"),
        }
    }

    /// GET `path_and_query` (from `/api/v1/...`) and read at most [`MAX_BODY`] bytes, all within [`TIMEOUT`].
    pub async fn get(&self, path_and_query: &str) -> Result<Bytes, String> {
        tokio::time::timeout(TIMEOUT, self.get_unbounded_in_time(path_and_query))
            .await
            .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
    }

    async fn get_unbounded_in_time(&self, path_and_query: &str) -> Result<Bytes, String> {
        let (status, body) = match self {
            Endpoint::Direct { url, client } => {
                let uri: hyper::Uri = format!("{url}{path_and_query}")
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                let req = hyper::Request::get(uri)
                    .header("accept", "application/json")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let resp = client.request(req).await.map_err(|e| connect_error(&e))?;
                let status = resp.status();
                (status, read(resp.into_body()).await?)
            }
            Endpoint::Proxy { svc, client } => {
                let req = http::Request::get(format!("{}{path_and_query}", svc.proxy_path()))
                    .header("accept", "application/json")
                    .body(kube::client::Body::empty())
                    .map_err(|e| e.to_string())?;
                let resp = client.send(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                (status, read(resp.into_body()).await?)
            }
        };
        if status.is_success() || status.as_u16() == 400 || status.as_u16() == 422 {
            // Prometheus answers a bad query with 400/422 and its error in the JSON body.
            return Ok(body);
        }
        Err(match (self, status.as_u16()) {
            (Endpoint::Proxy { .. }, 403) => {
                "HTTP 403: forbidden (the role needs `get` on services/proxy, deploy/rbac.yaml)"
                    .into()
            }
            (Endpoint::Proxy { .. }, 503) => {
                "HTTP 503: the API server reached no endpoint of the Service".into()
            }
            (_, code) => format!("HTTP {code}"),
        })
    }
}

async fn read<B>(body: B) -> Result<Bytes, String>
where
    B: hyper::body::Body,
    B::Error:
        std::fmt::Display + Send + Sync + 'static + Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(format!(
                "the answer is over {} MiB: left unread",
                MAX_BODY >> 20
            ))
        }
        Err(e) => Err(format!("the answer broke off: {e}")),
    }
}

/// A connection error with its cause (hyper-util's own message says only "client error (Connect)").
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
