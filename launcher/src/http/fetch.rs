//! GET a small JSON document from the issuer (its discovery document and keys) over HTTPS with the system's
//! roots plus the configured CA file; plain HTTP only to a loopback address (checked in the config).

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const MAX_BYTES: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Fetcher {
    pub fn new(ca_file: Option<&Path>) -> Result<Fetcher, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs_or_empty() {
            let _ = roots.add(c);
        }
        if let Some(p) = ca_file {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("issuer_ca_file {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("issuer_ca_file {}: {e}", p.display()))?;
            if certs.is_empty() {
                return Err(format!("issuer_ca_file {}: no certificate", p.display()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("issuer_ca_file {}: {e}", p.display()))?;
            }
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
        Ok(Fetcher {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub async fn json(&self, url: &str) -> Result<Value, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let req = hyper::Request::get(uri)
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| format!("{url}: no answer in {} s", TIMEOUT.as_secs()))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let body =
            tokio::time::timeout(TIMEOUT, Limited::new(resp.into_body(), MAX_BYTES).collect())
                .await
                .map_err(|_| format!("{url}: body not read in {} s", TIMEOUT.as_secs()))?
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// The system's trusted roots (as kube-client's own TLS reads them).
fn rustls_native_certs_or_empty() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let r = rustls_native_certs::load_native_certs();
    for e in r.errors.iter().take(3) {
        tracing::debug!(error = %e, "a system root certificate could not be read");
    }
    r.certs
}
