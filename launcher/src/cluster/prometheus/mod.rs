//! The cluster's own GPU history: dcgm-exporter's (or AMD's exporter's) series in a Prometheus the user names
//! (`--prometheus`, [`source`]) or the cluster exposes ([`discover`], read through the API server's service
//! proxy as the person), for one node over the last hours; judged by `gpu_diag::history`. Nothing is
//! installed and nothing is written. [`gpu_history`] is the one entry: `get_gpu_history` answers with it and
//! other tools join a node's history to their answer with it.
//!
//! Bounds: each query within [`fetch::TIMEOUT`] and [`fetch::MAX_BODY`], at most [`query::MAX_SERIES`] series,
//! a window of at most [`MAX_HOURS`] read in at most 721 steps; at most [`MAX_CANDIDATES`] discovered Services
//! asked. Every label value that reaches the answer is cleaned and cut (`gpu_diag::history::input`).

pub mod discover;
pub mod fetch;
pub mod query;
pub mod source;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gpu_diag::history::{HistoryInput, NodeHistory, analyze, signals};

use fetch::Endpoint;
pub use source::PrometheusSetting;

/// The window when none is asked for.
pub const DEFAULT_HOURS: u32 = 6;
/// The longest window read: a week.
pub const MAX_HOURS: u32 = 168;
/// Discovered Services asked, best first, before the answer says none had the node.
pub const MAX_CANDIDATES: usize = 3;
/// Points per series: 6 h at 30 s.
const MAX_POINTS: i64 = 720;

/// Why there is no history to join: each is one line for the answer, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No Prometheus named, and none found (or `--prometheus off`).
    #[error("{0}")]
    NotConfigured(String),
    /// A Prometheus was found but did not answer usefully.
    #[error("{from} did not answer: {reason}")]
    Unreachable { from: String, reason: String },
    /// It answered, with no exporter series naming the node.
    #[error(
        "{from} has no dcgm-exporter or AMD exporter series for node `{node}` over the last {hours} h (labels tried: {tried})"
    )]
    NoSeries {
        from: String,
        node: String,
        hours: u32,
        tried: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl HistoryError {
    /// The kind as a word, for structured answers.
    pub fn kind(&self) -> &'static str {
        match self {
            HistoryError::NotConfigured(_) => "no_prometheus",
            HistoryError::Unreachable { .. } => "unreachable",
            HistoryError::NoSeries { .. } => "no_series",
            HistoryError::Invalid(_) => "invalid",
        }
    }
}

const HOW_TO_NAME: &str = "start the launcher with --prometheus URL (or NAMESPACE/SERVICE[:PORT], or \
K8S_GPU_MCP_PROMETHEUS) to read dcgm-exporter's history";

/// The step of a window: 30 s, or longer so the window fits in [`MAX_POINTS`] steps (a multiple of 30 s).
pub fn step_for(window_secs: i64) -> i64 {
    let raw = (window_secs + MAX_POINTS - 1) / MAX_POINTS;
    ((raw + 29) / 30).max(1) * 30
}

fn is_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Where to ask, best first, from the setting and (for a Service or discovery) the person's client.
async fn endpoints(
    kube: Option<&kube::Client>,
    setting: &PrometheusSetting,
) -> Result<Vec<Endpoint>, HistoryError> {
    match (setting, kube) {
        (PrometheusSetting::Off, _) => Err(HistoryError::NotConfigured(format!(
            "history is off (--prometheus off); {HOW_TO_NAME}"
        ))),
        (PrometheusSetting::Url(u), _) => Ok(vec![
            Endpoint::direct(u.clone()).map_err(HistoryError::Invalid)?,
        ]),
        (PrometheusSetting::Service(s), Some(c)) => Ok(vec![Endpoint::Proxy {
            svc: s.clone(),
            client: c.clone(),
        }]),
        (PrometheusSetting::Service(s), None) => Err(HistoryError::NotConfigured(format!(
            "--prometheus names the Service {s}, which needs a cluster (local mode has none); name a URL instead"
        ))),
        (PrometheusSetting::Discover, None) => Err(HistoryError::NotConfigured(format!(
            "no Prometheus named, and local mode has no cluster to find one in: {HOW_TO_NAME}"
        ))),
        (PrometheusSetting::Discover, Some(c)) => {
            let found = discover::candidates(c, MAX_CANDIDATES).await.map_err(|e| {
                HistoryError::NotConfigured(format!("no Prometheus named and {e}; {HOW_TO_NAME}"))
            })?;
            if found.is_empty() {
                return Err(HistoryError::NotConfigured(format!(
                    "no Prometheus named and none found in the cluster (looked for {}); {HOW_TO_NAME}",
                    discover::looked_for()
                )));
            }
            Ok(found
                .into_iter()
                .map(|svc| Endpoint::Proxy {
                    svc,
                    client: c.clone(),
                })
                .collect())
        }
    }
}

/// The label that names `node` on one endpoint's exporter series, or none.
async fn node_label(
    ep: &Endpoint,
    node: &str,
    window: i64,
    end: i64,
) -> Result<Option<&'static str>, String> {
    for label in signals::NODE_LABELS {
        let body = ep
            .get(&query::instant_path(
                &query::presence(label, node, window),
                end,
            ))
            .await?;
        let found = query::parse(&body)?;
        let count = found
            .series
            .first()
            .and_then(|s| s.points.first())
            .map(|p| p.1)
            .unwrap_or(0.0);
        if count > 0.0 {
            return Ok(Some(label));
        }
    }
    Ok(None)
}

/// `node`'s GPUs over the last `hours` (1 to [`MAX_HOURS`]), from the Prometheus `setting` names or the
/// cluster exposes; `kube` is the person's client for `context` (None in local mode: only a URL works
/// there). Never installs or writes anything. Each failure is one [`HistoryError`] line for the answer.
pub async fn gpu_history(
    kube: Option<kube::Client>,
    setting: &PrometheusSetting,
    node: &str,
    hours: u32,
) -> Result<NodeHistory, HistoryError> {
    if !is_node_name(node) {
        return Err(HistoryError::Invalid(
            "a node name is an RFC 1123 subdomain".into(),
        ));
    }
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(HistoryError::Invalid(format!(
            "hours must be 1 to {MAX_HOURS}"
        )));
    }
    let eps = endpoints(kube.as_ref(), setting).await?;
    let window = i64::from(hours) * 3600;
    let step = step_for(window);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let end = now - now % step;
    let start = end - window;
    let mut misses: Vec<HistoryError> = Vec::new();
    for ep in &eps {
        let source = ep.describe();
        let label = match node_label(ep, node, window, end).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                misses.push(HistoryError::NoSeries {
                    from: source,
                    node: node.into(),
                    hours,
                    tried: signals::NODE_LABELS.join(", "),
                });
                continue;
            }
            Err(reason) => {
                misses.push(HistoryError::Unreachable {
                    from: source,
                    reason,
                });
                continue;
            }
        };
        let fetched = match ep
            .get(&query::range_path(
                &query::all_series(label, node),
                start,
                end,
                step,
            ))
            .await
            .and_then(|b| query::parse(&b))
        {
            Ok(s) => s,
            Err(reason) => {
                misses.push(HistoryError::Unreachable {
                    from: source,
                    reason,
                });
                continue;
            }
        };
        let mut left_out = Vec::new();
        if fetched.left_out > 0 {
            left_out.push(format!(
                "{} series past the first {}",
                fetched.left_out,
                query::MAX_SERIES
            ));
        }
        return Ok(analyze(&HistoryInput {
            node: node.into(),
            source,
            matched_label: label.into(),
            start,
            end,
            step,
            series: fetched.series,
            left_out,
        }));
    }
    // The first miss that says most: an unreachable one over one without series, in the order asked.
    misses.sort_by_key(|m| !matches!(m, HistoryError::Unreachable { .. }));
    let first = misses.first().cloned();
    match (first, misses.len()) {
        (
            Some(HistoryError::NoSeries {
                node, hours, tried, ..
            }),
            n,
        ) if n > 1 => Err(HistoryError::NoSeries {
            from: eps
                .iter()
                .map(Endpoint::describe)
                .collect::<Vec<_>>()
                .join(", "),
            node,
            hours,
            tried,
        }),
        (Some(m), _) => Err(m),
        (None, _) => Err(HistoryError::NotConfigured(HOW_TO_NAME.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_fits_in_the_points_a_series_may_have() {
        assert_eq!(step_for(3600), 30);
        assert_eq!(step_for(6 * 3600), 30);
        assert_eq!(step_for(24 * 3600), 120);
        assert_eq!(step_for(168 * 3600), 840);
        assert!(168 * 3600 / step_for(168 * 3600) <= MAX_POINTS);
    }
}
