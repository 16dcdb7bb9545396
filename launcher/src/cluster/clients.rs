//! One kube client per kubeconfig context, built on first use and cached (clients are cheap to clone and
//! share one connection pool). A tool's `context` argument is checked against the kubeconfig here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cluster::ClusterError;
use crate::cluster::pressure::Pressure;
use crate::cluster::shared_reads::SharedReads;

/// Bounded connect so a dead API server fails a call instead of hanging it (kube's default is 30 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whom every request of a set of clients acts for (`serve --http`: the caller of a call), through the API
/// server's impersonation headers (`Impersonate-User`, `Impersonate-Group`). The kubeconfig's own identity
/// needs the `impersonate` verb for these users and groups (deploy/http/rbac.yaml), and the API server then
/// authorizes each request as the person: their RBAC, their name in its audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Impersonate {
    pub user: String,
    pub groups: Vec<String>,
}

impl Impersonate {
    fn apply(&self, cfg: &mut Config) {
        cfg.auth_info.impersonate = Some(self.user.clone());
        cfg.auth_info.impersonate_groups = Some(self.groups.clone());
    }
}

pub struct Clients {
    default: Client,
    impersonate: Option<Impersonate>,
    /// What the API server of `default` pushed back (429s), read by fan-outs.
    default_pressure: Arc<Pressure>,
    /// The context `default` was built for (None: in-cluster config or a test client).
    default_context: Option<String>,
    kubeconfig: Option<Kubeconfig>,
    /// The API server of the default context (`server` in the kubeconfig; None: in-cluster or a test).
    default_server: Option<String>,
    cache: Mutex<HashMap<String, Client>>,
    /// The push-back of each other context's client, made before the client when a fan-out asks first.
    pressures: Mutex<HashMap<String, Arc<Pressure>>>,
    /// Reads a call's parts share (a node read in flight, the DRA version served), for this identity only.
    pub reads: SharedReads,
}

impl Clients {
    /// A fixed client and no kubeconfig (tests): only the default context exists.
    #[cfg(test)]
    pub fn from_client(client: Client) -> Self {
        Self::from_client_with(client, Arc::default())
    }

    /// A fixed client (in-cluster) with the pressure its retry layer records into.
    fn from_client_with(client: Client, pressure: Arc<Pressure>) -> Self {
        Clients {
            default: client,
            impersonate: None,
            default_pressure: pressure,
            default_context: None,
            kubeconfig: None,
            default_server: None,
            cache: Mutex::new(HashMap::new()),
            pressures: Mutex::new(HashMap::new()),
            reads: SharedReads::default(),
        }
    }

    /// Read the kubeconfig (`path`, else `$KUBECONFIG` — missing files skipped as kubectl does —, else
    /// `~/.kube/config`) and build the client of `context` (default: current-context). Without any
    /// kubeconfig, fall back to the in-cluster service account.
    pub async fn connect(path: Option<&Path>, context: Option<&str>) -> Result<Self, String> {
        Self::connect_as(path, context, None).await
    }

    /// [`Self::connect`], every request acting for `imp` where given.
    pub async fn connect_as(
        path: Option<&Path>,
        context: Option<&str>,
        imp: Option<Impersonate>,
    ) -> Result<Self, String> {
        let kubeconfig = match path {
            // A single file, or a KUBECONFIG-style list (the launcher's --kubeconfig defaults to $KUBECONFIG).
            Some(p) if p.exists() => Some(
                Kubeconfig::read_from(p)
                    .map_err(|e| format!("cannot read kubeconfig {}: {e}", p.display()))?,
            ),
            Some(p) => Some(
                read_list(p.as_os_str())?
                    .ok_or_else(|| format!("kubeconfig {} does not exist", p.display()))?,
            ),
            None => read_default_kubeconfig()?,
        };
        let Some(kc) = kubeconfig else {
            if let Some(ctx) = context {
                return Err(format!(
                    "--context {ctx} given but no kubeconfig found ($KUBECONFIG, ~/.kube/config)"
                ));
            }
            let mut cfg = Config::incluster().map_err(|e| {
                format!("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster: {e}")
            })?;
            cfg.connect_timeout = Some(CONNECT_TIMEOUT);
            if let Some(i) = &imp {
                i.apply(&mut cfg);
            }
            let pressure = Arc::<Pressure>::default();
            let client = client_from_config(cfg, pressure.clone()).map_err(|e| e.to_string())?;
            let mut c = Self::from_client_with(client, pressure);
            c.impersonate = imp;
            return Ok(c);
        };
        let ctx = match context {
            Some(c) => Some(c.to_string()),
            None => kc.current_context.clone(),
        };
        if let Some(c) = &ctx {
            check_known(&kc, c).map_err(|e| e.to_string())?;
        }
        let default_pressure = Arc::<Pressure>::default();
        let default = build(&kc, ctx.as_deref(), default_pressure.clone(), imp.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let default_server = ctx
            .as_deref()
            .and_then(|c| kc.contexts.iter().find(|n| n.name == c))
            .and_then(|n| n.context.as_ref())
            .and_then(|c| kc.clusters.iter().find(|k| k.name == c.cluster))
            .and_then(|k| k.cluster.as_ref())
            .and_then(|c| c.server.clone());
        Ok(Clients {
            default,
            impersonate: imp,
            default_pressure,
            default_context: ctx,
            kubeconfig: Some(kc),
            default_server,
            cache: Mutex::new(HashMap::new()),
            pressures: Mutex::new(HashMap::new()),
            reads: SharedReads::default(),
        })
    }

    /// Context names of the kubeconfig (empty without one).
    pub fn contexts(&self) -> Vec<String> {
        self.kubeconfig
            .as_ref()
            .map(|kc| kc.contexts.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    }

    pub fn default_context(&self) -> Option<&str> {
        self.default_context.as_deref()
    }

    /// Whether the default context's API server is on this machine (a loopback address).
    pub fn api_server_is_local(&self) -> bool {
        self.default_server.as_deref().is_some_and(is_loopback_url)
    }

    /// The client for `context` (None or the default context: the default client).
    pub async fn get(&self, context: Option<&str>) -> Result<Client, ClusterError> {
        let Some(ctx) = context else {
            return Ok(self.default.clone());
        };
        if Some(ctx) == self.default_context.as_deref() {
            return Ok(self.default.clone());
        }
        let Some(kc) = &self.kubeconfig else {
            return Err(ClusterError::UnknownContext {
                context: ctx.into(),
                known: "(none: no kubeconfig in use)".into(),
            });
        };
        check_known(kc, ctx)?;
        if let Some(c) = self.cache.lock().expect("client cache").get(ctx) {
            return Ok(c.clone());
        }
        // Built outside the lock: building may run an exec credential plugin. Two racing first calls
        // build twice and one wins, which is harmless.
        let client = build(
            kc,
            Some(ctx),
            self.pressure(Some(ctx)),
            self.impersonate.as_ref(),
        )
        .await?;
        Ok(self
            .cache
            .lock()
            .expect("client cache")
            .entry(ctx.to_string())
            .or_insert(client)
            .clone())
    }

    /// The push-back seen by the client of `context` (429s of its API server).
    pub fn pressure(&self, context: Option<&str>) -> Arc<Pressure> {
        match context {
            Some(c) if Some(c) != self.default_context.as_deref() => self
                .pressures
                .lock()
                .expect("pressure map")
                .entry(c.to_string())
                .or_default()
                .clone(),
            _ => self.default_pressure.clone(),
        }
    }
}

fn read_default_kubeconfig() -> Result<Option<Kubeconfig>, String> {
    if let Some(value) = std::env::var_os("KUBECONFIG")
        && let Some(kc) = read_list(&value)?
    {
        return Ok(Some(kc));
    }
    match Kubeconfig::read() {
        Ok(kc) => Ok(Some(kc)),
        Err(_) => Ok(None),
    }
}

/// A KUBECONFIG-style list of files, merged kubectl-style (first wins); None when none exists.
fn read_list(value: &std::ffi::OsStr) -> Result<Option<Kubeconfig>, String> {
    let mut merged: Option<Kubeconfig> = None;
    for p in std::env::split_paths(value).filter(|p| !p.as_os_str().is_empty()) {
        if !p.exists() {
            // kubectl skips missing files in KUBECONFIG; kube's from_env fails on them.
            tracing::warn!(path = %p.display(), "kubeconfig listed in KUBECONFIG does not exist; skipped");
            continue;
        }
        let kc = Kubeconfig::read_from(&p)
            .map_err(|e| format!("cannot read kubeconfig {}: {e}", p.display()))?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| format!("cannot merge kubeconfig {}: {e}", p.display()))?,
        });
    }
    Ok(merged)
}

fn check_known(kc: &Kubeconfig, ctx: &str) -> Result<(), ClusterError> {
    if kc.contexts.iter().any(|c| c.name == ctx) {
        Ok(())
    } else {
        let mut known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        known.sort();
        Err(ClusterError::UnknownContext {
            context: ctx.into(),
            known: if known.is_empty() {
                "(none)".into()
            } else {
                known.join(", ")
            },
        })
    }
}

async fn build(
    kc: &Kubeconfig,
    ctx: Option<&str>,
    pressure: Arc<Pressure>,
    imp: Option<&Impersonate>,
) -> Result<Client, ClusterError> {
    let opts = KubeConfigOptions {
        context: ctx.map(str::to_string),
        ..Default::default()
    };
    let mut cfg = Config::from_custom_kubeconfig(kc.clone(), &opts)
        .await
        .map_err(|e| ClusterError::Api(format!("kubeconfig context {ctx:?}: {e}")))?;
    cfg.connect_timeout = Some(CONNECT_TIMEOUT);
    if let Some(i) = imp {
        i.apply(&mut cfg);
    }
    client_from_config(cfg, pressure)
        .map_err(|e| ClusterError::Api(format!("client for {ctx:?}: {e}")))
}

/// kube's `Client::try_from(Config)` with two differences. An exec without stdin offers the v4 channel
/// protocol alone (`exec_protocol.rs`: the API server then proxies it without translating to SPDY). And
/// TCP_NODELAY is on: kube's builder keeps hyper's default (Nagle on); rustls then writes a request as two
/// small segments and the second one waits for the API server's delayed ACK, about 40 ms on every delete
/// and exec (measured on the testbed: a probe
/// call went from 130 to 70 ms). Same layers otherwise: base URI, retry on 429/503/504 (ours, `retry.rs`,
/// which records the push-back into `pressure`), auth (incl. exec plugins and token refresh), extra headers,
/// connect/read/write timeouts. With a proxy configured, kube's own builder handles the proxy protocols (and
/// its own retry: fan-outs then keep their concurrency under 429s, each request still retried).
pub fn client_from_config(cfg: Config, pressure: Arc<Pressure>) -> kube::Result<Client> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;
    use tower::retry::RetryLayer;

    if cfg.proxy_url.is_some() {
        return Client::try_from(cfg);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = cfg.rustls_https_connector_with_connector(http)?;
    let mut timed = hyper_timeout::TimeoutConnector::new(https);
    timed.set_connect_timeout(cfg.connect_timeout);
    timed.set_read_timeout(cfg.read_timeout);
    timed.set_write_timeout(cfg.write_timeout);
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(timed);
    let service = ServiceBuilder::new()
        .layer(cfg.base_uri_layer())
        .option_layer(
            cfg.default_retry
                .then(|| RetryLayer::new(super::retry::ThrottleRetry::new(pressure))),
        )
        .option_layer(cfg.auth_layer()?)
        .layer(cfg.extra_headers_layer()?)
        .layer(super::exec_protocol::ExecProtocolLayer)
        .map_err(tower::BoxError::from)
        .service(hyper);
    Ok(Client::new(service, cfg.default_namespace))
}

/// `https://127.0.0.1:6443`, `https://[::1]:6443`, `https://localhost:6443` and the like.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    is_loopback_host(host)
}

/// `localhost` or a loopback address (a URL's host, brackets removed).
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
