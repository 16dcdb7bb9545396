//! The PromQL asked and Prometheus's answers read: an answer is untrusted JSON, bounded in bytes by the
//! fetch and here in series; what does not fit is counted, and what is not Prometheus's shape is an error.

use std::collections::BTreeMap;

use gpu_diag::history::{RawSeries, signals};
use serde::Deserialize;

/// Most series one answer may hold: 64 GPUs of 28 metrics is below it; more is a relabelling that merged
/// nodes, or a hostile server.
pub const MAX_SERIES: usize = 2_048;
/// Most labels kept per series (the merged series carry at most eight).
const MAX_LABELS: usize = 16;

/// `s` percent-encoded for a query string (everything but RFC 3986's unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A PromQL string literal's content for a regular expression matching `node` exactly (node names are
/// RFC 1123: only `.` needs escaping, and the backslash is doubled inside the literal).
fn node_regex(node: &str) -> String {
    node.replace('.', "\\\\.")
}

/// The matcher selecting `node`'s series by `label`: `instance` is `NODE` or `NODE:PORT`.
pub fn node_matcher(label: &str, node: &str) -> String {
    if label == "instance" {
        format!("{label}=~\"{}(:[0-9]+)?\"", node_regex(node))
    } else {
        format!("{label}=\"{node}\"")
    }
}

fn names(list: &[&str]) -> String {
    list.join("|")
}

/// Whether `label` names the node on any exporter series within the window: a count by metric.
pub fn presence(label: &str, node: &str, window_secs: i64) -> String {
    format!(
        "count(last_over_time({{__name__=~\"{}\",{}}}[{window_secs}s]))",
        names(signals::PRESENCE),
        node_matcher(label, node)
    )
}

/// Every metric read for the node, one series per metric and GPU: the exporter's split by pod (and a
/// second scrape job) merged by the larger value.
pub fn all_series(label: &str, node: &str) -> String {
    let all: Vec<&str> = signals::METRICS.iter().map(|m| m.name).collect();
    format!(
        "max by (__name__, {}) ({{__name__=~\"{}\",{}}})",
        signals::GPU_LABELS.join(", "),
        names(&all),
        node_matcher(label, node)
    )
}

pub fn instant_path(expr: &str, time: i64) -> String {
    format!("/api/v1/query?query={}&time={time}", encode(expr))
}

pub fn range_path(expr: &str, start: i64, end: i64, step: i64) -> String {
    format!(
        "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
        encode(expr)
    )
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// What one answer held.
#[derive(Debug)]
pub struct Series {
    pub series: Vec<RawSeries>,
    /// Series past [`MAX_SERIES`].
    pub left_out: usize,
}

/// Read an answer of `/api/v1/query` or `/query_range`; Prometheus's own error is quoted, cut to 200
/// characters and cleaned.
pub fn parse(body: &[u8]) -> Result<Series, String> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a Prometheus answer ({})",
            gpu_diag::incident::platform::clean(&e.to_string(), 120)
        )
    })?;
    if a.status != "success" {
        return Err(format!(
            "Prometheus refused the query: {}",
            gpu_diag::incident::platform::clean(
                a.error.as_deref().unwrap_or("no reason given"),
                200
            )
        ));
    }
    let data = a.data.ok_or("a Prometheus answer without data")?;
    if !matches!(data.result_type.as_str(), "vector" | "matrix") {
        return Err(format!(
            "a Prometheus answer of type `{}`",
            gpu_diag::incident::platform::clean(&data.result_type, 20)
        ));
    }
    let left_out = data.result.len().saturating_sub(MAX_SERIES);
    let series = data
        .result
        .into_iter()
        .take(MAX_SERIES)
        .map(|i| RawSeries {
            labels: i.metric.into_iter().take(MAX_LABELS).collect(),
            points: i
                .value
                .into_iter()
                .chain(i.values)
                .filter_map(|(t, v)| v.parse::<f64>().ok().map(|v| (t, v)))
                .collect(),
        })
        .collect();
    Ok(Series { series, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_node_exactly_and_answers_are_read_bounded() {
        assert_eq!(
            node_matcher("Hostname", "gpu-node-5"),
            "Hostname=\"gpu-node-5\""
        );
        assert_eq!(
            node_matcher("instance", "ip-10-0-0-1.ec2.internal"),
            "instance=~\"ip-10-0-0-1\\\\.ec2\\\\.internal(:[0-9]+)?\""
        );
        assert!(all_series("node", "n1").starts_with("max by (__name__, gpu, UUID"));
        assert_eq!(encode("a b{\"}"), "a%20b%7B%22%7D");

        let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"0"},"values":[[1,"5"],[2,"NaN"],[3,"x"]]}]}}"#;
        let s = parse(ok).unwrap();
        assert_eq!(
            s.series[0].points.len(),
            2,
            "NaN parses; it is dropped later as no reading"
        );
        for bad in [
            &b"<html>502 Bad Gateway</html>"[..],
            br#"{"status":"error","error":"parse error\u001b[31m"}"#,
            br#"{"status":"success","data":{"resultType":"string","result":[]}}"#,
            br#"{"status":"success"}"#,
            b"",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
        let many = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            vec![r#"{"metric":{"gpu":"0"},"value":[1,"1"]}"#; MAX_SERIES + 5].join(",")
        );
        let s = parse(many.as_bytes()).unwrap();
        assert_eq!((s.series.len(), s.left_out), (MAX_SERIES, 5));
    }
}
