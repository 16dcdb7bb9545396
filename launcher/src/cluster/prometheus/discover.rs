//! The cluster's own Prometheus, found through the API server as the person: Services that the common
//! installs label, in the namespaces those installs use. Looked for:
//! - kube-prometheus-stack (Helm): `app=kube-prometheus-stack-prometheus`, port `http-web` 9090; its
//!   Thanos sidecar's querier where installed, `app.kubernetes.io/name=thanos-query`;
//! - prometheus-operator's kube-prometheus: `prometheus-k8s`, `app.kubernetes.io/name=prometheus`, port `web`;
//!   every operator-managed Prometheus's governing Service `prometheus-operated` (`operated-prometheus=true`);
//! - the prometheus-community chart: `prometheus-server`, `app.kubernetes.io/name=prometheus` (older charts
//!   `app=prometheus`), port `http` 80;
//! - VictoriaMetrics single (`app.kubernetes.io/name=vmsingle`, port 8429), which answers the same API.
//!
//! NVIDIA's GPU Operator and AMD's GPU Operator install no Prometheus: their exporters' ServiceMonitors feed
//! one of the above (their docs install kube-prometheus-stack), so those are the ones to find.
//!
//! A Service is anyone's to create in their own namespace, and whatever answers decides what the history
//! says, so only the namespaces those installs use are read; another is named with `--prometheus NS/NAME`.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};

use super::source::ServiceRef;

/// Where monitoring stacks are installed by their docs and common practice.
pub const NAMESPACES: &[&str] = &[
    "monitoring",
    "prometheus",
    "kube-prometheus-stack",
    "prometheus-operator",
    "observability",
    "cattle-monitoring-system",
    "openshift-monitoring",
    "victoria-metrics",
];

/// The label selectors listed (each one list request, cluster-wide).
pub const SELECTORS: &[&str] = &[
    "app.kubernetes.io/name in (prometheus,thanos-query,vmsingle)",
    "app in (kube-prometheus-stack-prometheus,prometheus,kube-prometheus-stack-thanos-query)",
    "operated-prometheus=true",
];

/// Ports that serve the query API, by name, then by number.
const PORT_NAMES: &[&str] = &["http-web", "web", "http", "http-query", "http-api"];
const PORT_NUMBERS: &[i32] = &[9090, 10902, 8429, 80];

/// Rank of a Service: a querier over every Prometheus first, then the stacks' own Prometheus, the
/// operator's governing Service last (the same Prometheus again).
fn rank(s: &Service) -> u8 {
    let labels = s.metadata.labels.clone().unwrap_or_default();
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let l = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
    if l("app.kubernetes.io/name") == "thanos-query" || l("app").ends_with("thanos-query") {
        0
    } else if l("app") == "kube-prometheus-stack-prometheus" || name == "prometheus-k8s" {
        1
    } else if l("operated-prometheus") == "true" {
        3
    } else {
        2
    }
}

fn port_of(s: &Service) -> Option<(String, bool)> {
    let ports = s.spec.as_ref()?.ports.clone().unwrap_or_default();
    let tcp: Vec<_> = ports
        .iter()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .collect();
    let https = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.name.as_deref().is_some_and(|n| n.contains("https"))
            || p.app_protocol.as_deref() == Some("https")
    };
    let by_name = PORT_NAMES.iter().find_map(|want| {
        tcp.iter()
            .find(|p| p.name.as_deref() == Some(want))
            .map(|p| (want.to_string(), https(p)))
    });
    let by_number = || {
        PORT_NUMBERS.iter().find_map(|want| {
            tcp.iter()
                .find(|p| p.port == *want)
                .map(|p| (p.port.to_string(), https(p)))
        })
    };
    by_name.or_else(by_number)
}

/// The Services to ask, best first (at most `max`); the error says why none could be listed.
pub async fn candidates(client: &kube::Client, max: usize) -> Result<Vec<ServiceRef>, String> {
    let api: Api<Service> = Api::all(client.clone());
    let params: Vec<ListParams> = SELECTORS
        .iter()
        .map(|sel| ListParams::default().labels(sel).limit(100))
        .collect();
    let lists = futures::future::join_all(params.iter().map(|p| api.list(p))).await;
    let mut found: Vec<(u8, ServiceRef)> = Vec::new();
    let mut errors = Vec::new();
    for l in lists {
        match l {
            Ok(list) => {
                for s in list.items {
                    let ns = s.metadata.namespace.clone().unwrap_or_default();
                    if !NAMESPACES.contains(&ns.as_str()) {
                        continue;
                    }
                    let Some((port, https)) = port_of(&s) else {
                        continue;
                    };
                    let r = ServiceRef {
                        namespace: ns,
                        name: s.metadata.name.clone().unwrap_or_default(),
                        https,
                        port,
                    };
                    if !found.iter().any(|(_, f)| *f == r) {
                        found.push((rank(&s), r));
                    }
                }
            }
            Err(kube::Error::Api(s)) if s.is_forbidden() => errors.push(
                "listing Services is forbidden (the reader role needs `list` on services)"
                    .to_string(),
            ),
            Err(e) => errors.push(format!("listing Services failed: {e}")),
        }
    }
    if found.is_empty() && !errors.is_empty() {
        errors.dedup();
        return Err(errors.join("; "));
    }
    found.sort_by(|a, b| (a.0, &a.1.namespace, &a.1.name).cmp(&(b.0, &b.1.namespace, &b.1.name)));
    Ok(found.into_iter().take(max).map(|(_, r)| r).collect())
}

/// What is looked for, in words, for the answer that found none.
pub fn looked_for() -> String {
    format!(
        "Services labelled {} in the namespaces {}",
        SELECTORS.join(" or "),
        NAMESPACES.join(", ")
    )
}
