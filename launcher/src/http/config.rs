//! `serve --http`'s configuration: one YAML file (`--http-config`) with this server's URL, the issuer whose
//! access tokens it takes, and the claims that name the person (deploy/http/config.yaml is the example).
//! Checked whole at start: a server that would take tokens it cannot check does not start.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// This server's MCP endpoint as clients reach it (`https://gpu-mcp.example.com/mcp`): its canonical URI,
    /// the `resource` of its protected resource metadata, and by default the audience its tokens must name.
    pub url: String,
    pub issuer: String,
    /// Tokens must name this audience (`aud`); default `url` (MCP authorization: the resource indicator).
    #[serde(default)]
    pub audience: Option<String>,
    /// The issuer's keys; default: `jwks_uri` of the issuer's OpenID discovery document.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A PEM file of CAs for the issuer's HTTPS (besides the system's roots).
    #[serde(default)]
    pub issuer_ca_file: Option<PathBuf>,
    /// The claim that names the person (default `email`) and the prefix put before it for Kubernetes (the
    /// same the API server's own OIDC mapping uses, e.g. `oidc:`, so RBAC bindings name one user either way).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default)]
    pub user_prefix: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[serde(default)]
    pub groups_prefix: String,
    /// Scopes advertised and challenged (`WWW-Authenticate: Bearer scope=...`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Browser origins allowed to call (DNS rebinding) besides the server's own: none by default, so a
    /// request with another `Origin` header is refused unless listed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted; default: the host of `url` (and, for a loopback `url`, its loopback names).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS with this certificate chain and key (PEM); without: plain HTTP, for a TLS proxy in front.
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default)]
    pub limits: Limits,
    /// Several replicas behind one Service: how each finds the others (`replicas.rs`).
    #[serde(default)]
    pub replicas: Option<ReplicasConfig>,
}

/// Replicas name themselves (their pod's name) in the ids of their tasks and sessions; a request that
/// reaches another replica is forwarded to the one that holds them, found as a pod of these labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicasConfig {
    /// The labels every replica's pod carries (the Deployment's selector): a pod without them is never asked.
    pub selector: std::collections::BTreeMap<String, String>,
    /// The port replicas listen on (their container port).
    pub port: u16,
    /// The namespace of the replicas' pods; default `POD_NAMESPACE` (the downward API), else the service
    /// account's.
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests one person may have in flight at once; more get 429.
    #[serde(default = "default_calls")]
    pub calls_per_person: usize,
    /// Tasks one person may have running at once; a long tool past it is refused (`-32029`).
    #[serde(default = "default_tasks")]
    pub tasks_per_person: usize,
    /// Tasks running at once on this server (replica) for everyone together; past it a long tool is refused
    /// (`-32029`) whoever calls. Above `tasks_per_person`, so that one person at their bound leaves room for
    /// the others.
    #[serde(default = "default_tasks_in_all")]
    pub tasks_in_all: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            calls_per_person: default_calls(),
            tasks_per_person: default_tasks(),
            tasks_in_all: default_tasks_in_all(),
        }
    }
}

fn default_user_claim() -> String {
    "email".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_calls() -> usize {
    16
}
fn default_tasks() -> usize {
    4
}
fn default_tasks_in_all() -> usize {
    32
}

/// A URL's scheme, host (without brackets) and port, and path.
pub struct UrlParts {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn url_parts(url: &str) -> Result<UrlParts, String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url}: not an http(s) URL"));
    };
    if url.contains('#') || url.contains('?') {
        return Err(format!("{url}: no query or fragment"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: bad host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
        None if https => 443,
        None => 80,
    };
    Ok(UrlParts {
        https,
        host: host.to_ascii_lowercase(),
        port,
        path: path.trim_end_matches('/').to_string(),
    })
}

use crate::cluster::clients::is_loopback_host;

impl HttpConfig {
    pub fn read(path: &Path) -> Result<HttpConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--http-config {}: {e}", path.display()))?;
        let cfg: HttpConfig = serde_saphyr::from_str(&text)
            .map_err(|e| format!("--http-config {}: {e}", path.display()))?;
        cfg.check()
            .map_err(|e| format!("--http-config {}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// The audience tokens must carry.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.url)
    }

    /// Everything that must hold before the server takes a token.
    pub fn check(&self) -> Result<(), String> {
        let u = url_parts(&self.url).map_err(|e| format!("url: {e}"))?;
        if !u.https && !is_loopback_host(&u.host) && self.tls.is_none() {
            // Plain HTTP behind a TLS proxy is fine, but the URL clients use must then be https.
            return Err(format!(
                "url: {} is plain http on a host that is not loopback: clients must reach the server by \
                 https (set tls, or give the proxy's https URL)",
                self.url
            ));
        }
        let i = url_parts(&self.issuer).map_err(|e| format!("issuer: {e}"))?;
        if !i.https && !is_loopback_host(&i.host) {
            return Err(format!(
                "issuer: {} must be https (plain http only on a loopback address, for tests)",
                self.issuer
            ));
        }
        if let Some(j) = &self.jwks_uri {
            let j = url_parts(j).map_err(|e| format!("jwks_uri: {e}"))?;
            if !j.https && !is_loopback_host(&j.host) {
                return Err("jwks_uri must be https".into());
            }
        }
        if self.audience().is_empty() {
            return Err("audience is empty: tokens for any audience would pass".into());
        }
        for (what, v) in [
            ("user_claim", &self.user_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if v.is_empty() {
                return Err(format!("{what} is empty"));
            }
        }
        for (what, p) in [
            ("user_prefix", &self.user_prefix),
            ("groups_prefix", &self.groups_prefix),
        ] {
            if p.starts_with("system:") {
                return Err(format!(
                    "{what} `{p}`: the system: names are Kubernetes' own; a person must not act as one"
                ));
            }
        }
        let l = &self.limits;
        if l.calls_per_person == 0 || l.tasks_per_person == 0 || l.tasks_in_all == 0 {
            return Err("limits must be at least 1".into());
        }
        if l.tasks_in_all < l.tasks_per_person {
            return Err(format!(
                "limits.tasks_in_all ({}) is below limits.tasks_per_person ({}): one person could never reach \
                 their own bound",
                l.tasks_in_all, l.tasks_per_person
            ));
        }
        for o in &self.allowed_origins {
            url_parts(o).map_err(|e| format!("allowed_origins: {e}"))?;
        }
        if let Some(r) = &self.replicas {
            if r.selector.is_empty() {
                return Err(
                    "replicas.selector is empty: any pod of the namespace would be taken for a replica"
                        .into(),
                );
            }
            if r.port == 0 {
                return Err("replicas.port is 0".into());
            }
            if self.tls.is_some() {
                // Replicas forward to each other by pod IP, which no certificate names.
                return Err(
                    "replicas with tls: replicas forward requests to each other over plain HTTP on the pod \
                     network; terminate TLS in front of them (Ingress, proxy) and leave tls out"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// `Host` values to accept: configured, else the URL's host (with its port where not the default),
    /// plus the loopback names for a loopback URL.
    pub fn hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self.allowed_hosts.clone();
        }
        let Ok(u) = url_parts(&self.url) else {
            return Vec::new();
        };
        let mut hosts = vec![u.host.clone()];
        if is_loopback_host(&u.host) {
            hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The origins of this server itself (`scheme://host:port` for each host it answers as): a page the
    /// server serves, or a client that names the server's own origin, is not a cross-origin request. The
    /// DNS-rebinding defence is about other origins (MCP transports, "Security Warning").
    pub fn own_origins(&self) -> Vec<String> {
        let Ok(u) = url_parts(&self.url) else {
            return Vec::new();
        };
        let scheme = if u.https { "https" } else { "http" };
        self.hosts()
            .iter()
            .map(|h| {
                if h.contains(':') && !h.starts_with('[') {
                    format!("{scheme}://[{h}]:{}", u.port)
                } else {
                    format!("{scheme}://{h}:{}", u.port)
                }
            })
            .collect()
    }

    /// The path of the MCP endpoint (`/mcp`).
    pub fn endpoint_path(&self) -> String {
        url_parts(&self.url)
            .map(|u| u.path)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/mcp".into())
    }

    /// Where the protected resource metadata is (RFC 9728: the well-known path with the endpoint's path
    /// after it).
    pub fn metadata_url(&self) -> String {
        let u = url_parts(&self.url).ok();
        let origin = match &u {
            Some(u) => {
                let host = if u.host.contains(':') {
                    format!("[{}]", u.host)
                } else {
                    u.host.clone()
                };
                let default = if u.https { 443 } else { 80 };
                let port = if u.port == default {
                    String::new()
                } else {
                    format!(":{}", u.port)
                };
                format!("{}://{host}{port}", if u.https { "https" } else { "http" })
            }
            None => String::new(),
        };
        format!(
            "{origin}/.well-known/oauth-protected-resource{}",
            self.endpoint_path()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Result<HttpConfig, String> {
        let c: HttpConfig = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        c.check().map(|()| c)
    }

    #[test]
    fn a_sound_config_and_its_derived_values() {
        let c = cfg("url: https://gpu-mcp.example.com/mcp\nissuer: https://dex.example.com/dex\n")
            .unwrap();
        assert_eq!(c.audience(), "https://gpu-mcp.example.com/mcp");
        assert_eq!(c.hosts(), ["gpu-mcp.example.com"]);
        assert_eq!(c.own_origins(), ["https://gpu-mcp.example.com:443"]);
        let local =
            cfg("url: http://127.0.0.1:8080/mcp\nissuer: http://127.0.0.1:5556/dex\n").unwrap();
        assert_eq!(
            local.own_origins(),
            [
                "http://127.0.0.1:8080",
                "http://[::1]:8080",
                "http://localhost:8080"
            ]
        );
        assert_eq!(c.endpoint_path(), "/mcp");
        assert_eq!(
            c.metadata_url(),
            "https://gpu-mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let l = cfg("url: http://127.0.0.1:8931/mcp\nissuer: http://127.0.0.1:5556/dex\n").unwrap();
        assert_eq!(
            l.metadata_url(),
            "http://127.0.0.1:8931/.well-known/oauth-protected-resource/mcp"
        );
        assert!(l.hosts().contains(&"localhost".to_string()));
    }

    #[test]
    fn the_shipped_example_is_sound() {
        let c = cfg(include_str!("../../../deploy/http/config.yaml")).unwrap();
        assert_eq!(c.audience(), "k8s-gpu-mcp");
        assert_eq!(c.hosts(), ["gpu-mcp.example.com"]);
    }

    /// deploy/http/server.yaml's ConfigMap holds a sound configuration with replicas.
    #[test]
    fn the_shipped_server_manifest_config_is_sound() {
        let manifest = include_str!("../../../deploy/http/server.yaml");
        let (_, rest) = manifest.split_once("  config.yaml: |\n").unwrap();
        let yaml: String = rest
            .lines()
            .take_while(|l| l.starts_with("    ") || l.is_empty())
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        let c = cfg(&yaml).unwrap();
        let r = c.replicas.expect("replicas");
        assert_eq!(r.port, 8080);
        // The Deployment's pods carry the labels the replicas look for.
        for (k, v) in &r.selector {
            assert!(manifest.contains(&format!("{k}: {v}")), "{k}: {v}");
        }
        assert!(manifest.contains("containerPort: 8080"));
    }

    #[test]
    fn configs_that_would_take_unchecked_tokens_are_refused() {
        for (yaml, why) in [
            (
                "url: http://gpu-mcp.example.com/mcp\nissuer: https://i.example.com\n",
                "plain http",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: http://i.example.com\n",
                "must be https",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: https://i.example.com\naudience: ''\n",
                "audience is empty",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: https://i.example.com\nuser_prefix: 'system:'\n",
                "system:",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: https://i.example.com\ntoken_passthrough: true\n",
                "unknown field",
            ),
            (
                "url: https://m.example.com/mcp#x\nissuer: https://i.example.com\n",
                "fragment",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: https://i.example.com\nreplicas: {selector: {}, port: 8080}\n",
                "selector is empty",
            ),
            (
                "url: https://m.example.com/mcp\nissuer: https://i.example.com\nreplicas: {selector: {a: b}, port: 8080}\ntls: {cert_file: c, key_file: k}\n",
                "replicas with tls",
            ),
        ] {
            let e = cfg(yaml).unwrap_err();
            assert!(e.contains(why), "{yaml}: {e}");
        }
    }
}
