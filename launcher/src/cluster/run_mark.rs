//! A run's own mark: the NoSchedule taint `run_gpu_diagnostic keep_pods_off` puts on a node while its GPUs
//! are loaded, instead of `spec.unschedulable`, which is one bit shared with every person's `kubectl cordon`
//! and drain. The key names the project and the run (`keep-pods-off.k8s-gpu-mcp.io/run-<id>`), the value
//! when it was set and its deadline (`<set>_<deadline>`, UTC), so that each run holds its own taint
//! (the API server refuses two taints of one key and effect), lifting it touches nothing anyone else set,
//! and a sweeper can tell a crashed run's mark (deadline passed, not a live run of this process) from a live
//! one. Every change is a merge patch of the whole taint list carrying the node's resourceVersion: a change
//! meanwhile (a taint of someone else, another run's) is refused with 409 and read again, never lost.

use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex};

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::Client;
use kube::api::{Api, ListParams};

use crate::cluster::ClusterError;
use crate::cluster::operator::{api_err, patch_node};
pub use crate::cluster::{MarkSet, MarkSweep, RunMark};

/// The key's prefix (a domain of ours): every taint under it is a run's mark.
pub const PREFIX: &str = "keep-pods-off.k8s-gpu-mcp.io/";
pub const EFFECT: &str = "NoSchedule";
/// Past the run's own time budget, how long its mark may still be the run's: the probe pod's deletion and
/// the lift itself. Only after that may another process lift it.
pub const LIFT_MARGIN_SECS: u64 = 120;

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", s)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

impl RunMark {
    /// A new run's mark, set `now`, for a run that may take `run_secs` (its probe's whole budget).
    pub fn new(now: jiff::Timestamp, run_secs: u64) -> Result<Self, String> {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness for a run id: {e}"))?;
        let id = format!(
            "run-{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        let secs = i64::try_from(run_secs + LIFT_MARGIN_SECS).unwrap_or(i64::MAX / 2);
        // Whole seconds, as the value says them: a mark read back equals the one set.
        let now = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        let deadline = now
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .map_err(|e| format!("deadline: {e}"))?;
        Ok(RunMark {
            id,
            set: now,
            deadline,
        })
    }

    pub fn key(&self) -> String {
        format!("{PREFIX}{}", self.id)
    }

    pub fn value(&self) -> String {
        format!("{}_{}", stamp(self.set), stamp(self.deadline))
    }

    pub fn taint(&self) -> Taint {
        Taint {
            key: self.key(),
            value: Some(self.value()),
            effect: EFFECT.into(),
            time_added: None,
        }
    }

    /// As `kubectl describe node` shows it: `key=value:NoSchedule`.
    pub fn text(&self) -> String {
        format!("{}={}:{EFFECT}", self.key(), self.value())
    }

    /// A run's mark from a node's taint: None when the taint is not under our prefix; Err when it is but
    /// cannot be read (then no one can judge it, and it is left).
    pub fn of(t: &Taint) -> Option<Result<RunMark, String>> {
        let id = t.key.strip_prefix(PREFIX)?;
        let value = t.value.as_deref().unwrap_or("");
        let read = || {
            let (set, deadline) = value.split_once('_')?;
            Some(RunMark {
                id: id.to_string(),
                set: parse_stamp(set)?,
                deadline: parse_stamp(deadline)?,
            })
        };
        Some(read().ok_or_else(|| {
            format!(
                "{}={value}:{}: the value is not <set>_<deadline>",
                t.key, t.effect
            )
        }))
    }
}

/// The runs of this process that hold a mark now: a sweep never lifts them, whatever their deadline says.
static LIVE: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(Mutex::default);

/// A run's hold on its mark in this process: registered while the value lives.
#[derive(Debug)]
pub struct Live(String);

impl Live {
    pub fn hold(id: &str) -> Self {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string());
        Live(id.to_string())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// The ids of this process's live runs.
pub fn live() -> BTreeSet<String> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Lifts that outlived their run (a cancelled task's, started from a drop): the launcher awaits them
/// before it exits, so that stopping it mid-run leaves no mark behind.
static LIFTS: LazyLock<tokio_util::task::TaskTracker> =
    LazyLock::new(tokio_util::task::TaskTracker::new);

/// Lift in the background, tracked for [`lifts_done`].
pub fn spawn_lift(lift: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        LIFTS.spawn_on(lift, &rt);
    }
}

/// Wait (up to 30 s) for the lifts still running; the process is about to exit.
pub async fn lifts_done() {
    LIFTS.close();
    if tokio::time::timeout(std::time::Duration::from_secs(30), LIFTS.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "a run's mark was still being lifted at exit: the next sweep lifts it after its deadline"
        );
    }
}

fn taints(n: &Node) -> Vec<Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

/// The taints with `mark` added after every other (None when the node already has it).
pub fn added(have: &[Taint], mark: &RunMark) -> Option<Vec<Taint>> {
    let key = mark.key();
    if have.iter().any(|t| t.key == key && t.effect == EFFECT) {
        return None;
    }
    let mut out = have.to_vec();
    out.push(mark.taint());
    Some(out)
}

/// The taints without the run mark `key` (None when the node does not have it): every other taint, a
/// person's and other runs', stays as it is.
pub fn removed(have: &[Taint], key: &str) -> Option<Vec<Taint>> {
    let out: Vec<Taint> = have.iter().filter(|t| t.key != key).cloned().collect();
    (out.len() != have.len()).then_some(out)
}

fn taint_patch(n: &Node, taints: Vec<Taint>) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"resourceVersion": n.metadata.resource_version},
        "spec": {"taints": taints},
    })
}

/// Put `mark` on `node` (a resourceVersion-guarded patch, read again on 409).
pub async fn set(client: Client, node: &str, mark: &RunMark) -> Result<MarkSet, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let after = patch_node(&nodes, node, false, "keep pods off", |n| {
        added(&taints(n), mark).map(|t| taint_patch(n, t))
    })
    .await?;
    // Already there (a retried call): the node as it is now.
    let n = match after {
        Some(n) => n,
        None => crate::cluster::operator::get(&nodes, node).await?,
    };
    let key = mark.key();
    Ok(MarkSet {
        taint: mark.text(),
        cordoned_before: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        other_runs: taints(&n)
            .iter()
            .filter(|t| t.key.starts_with(PREFIX) && t.key != key)
            .map(|t| t.key.clone())
            .collect(),
    })
}

/// Lift the run mark `key` from `node` and nothing else. Answers what became of it, in words.
pub async fn lift(client: Client, node: &str, key: &str) -> Result<String, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let after = patch_node(&nodes, node, false, "lift the run's mark", |n| {
        removed(&taints(n), key).map(|t| taint_patch(n, t))
    })
    .await?;
    let Some(n) = after else {
        return Ok(format!(
            "taint {key} was already gone from node {node} (someone removed it)"
        ));
    };
    let mut left = Vec::new();
    if n.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        left.push("its cordon (spec.unschedulable, not the run's)".to_string());
    }
    let others: Vec<String> = taints(&n)
        .iter()
        .filter(|t| t.key.starts_with(PREFIX))
        .map(|t| t.key.clone())
        .collect();
    if !others.is_empty() {
        left.push(format!("other runs' marks ({})", others.join(", ")));
    }
    Ok(if left.is_empty() {
        format!("taint {key} lifted from node {node}")
    } else {
        format!(
            "taint {key} lifted from node {node}; left as they are: {}",
            left.join("; ")
        )
    })
}

/// A sweep's verdict on one run mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its run is gone: deadline passed and not a live run of this process.
    Gone(String),
    /// Kept, and why.
    Kept(String),
}

/// The run marks among `have`, each judged at `now` against this process's `live` runs.
pub fn judge(
    have: &[Taint],
    now: jiff::Timestamp,
    live: &BTreeSet<String>,
) -> Vec<(String, Verdict)> {
    have.iter()
        .filter_map(|t| Some((t.key.clone(), RunMark::of(t)?)))
        .map(|(key, m)| {
            let v = match m {
                Err(why) => Verdict::Kept(format!("unreadable, left for a person: {why}")),
                Ok(m) if live.contains(&m.id) => Verdict::Kept("a live run of this process".into()),
                Ok(m) if m.deadline >= now => Verdict::Kept(format!(
                    "its run may still be going (deadline {})",
                    m.deadline
                )),
                Ok(m) => Verdict::Gone(format!(
                    "set {}, deadline {} passed, not a live run of this process",
                    m.set, m.deadline
                )),
            };
            (key, v)
        })
        .collect()
}

/// Lift the marks of runs that are gone, on `node` or on every node; each lift removes only that mark, and
/// judges it again on the node as read just before the patch (a mark renewed meanwhile stays).
pub async fn sweep(
    client: Client,
    node: Option<&str>,
    live: &BTreeSet<String>,
) -> Result<MarkSweep, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let list: Vec<Node> = match node {
        Some(n) => vec![crate::cluster::operator::get(&nodes, n).await?],
        None => {
            nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| api_err("list nodes", e))?
                .items
        }
    };
    let mut out = MarkSweep::default();
    for n in &list {
        let name = n.metadata.name.clone().unwrap_or_default();
        for (key, v) in judge(&taints(n), jiff::Timestamp::now(), live) {
            match v {
                Verdict::Kept(why) => out.kept.push(format!("{name}: {key} ({why})")),
                Verdict::Gone(why) => {
                    let r = patch_node(&nodes, &name, false, "sweep a gone run's mark", |n| {
                        let still_gone = judge(&taints(n), jiff::Timestamp::now(), live)
                            .into_iter()
                            .any(|(k, v)| k == key && matches!(v, Verdict::Gone(_)));
                        if !still_gone {
                            return None;
                        }
                        removed(&taints(n), &key).map(|t| taint_patch(n, t))
                    })
                    .await;
                    match r {
                        Ok(_) => {
                            tracing::info!(node = %name, %key, reason = %why, "lifted a gone run's mark");
                            out.lifted.push(format!("{name}: {key} ({why})"));
                        }
                        Err(e) => out.failed.push(format!("{name}: {key} ({e})")),
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn a_mark_reads_back_as_set_and_fits_the_apis_grammar() {
        let now = jiff::Timestamp::from_second(1_795_600_000).unwrap();
        let m = RunMark::new(now, 15 * 60 + 90).unwrap();
        assert!(m.id.starts_with("run-") && m.id.len() == 16, "{}", m.id);
        assert_eq!(m.value(), "20261125T094640Z_20261125T100510Z");
        assert_eq!(RunMark::of(&m.taint()), Some(Ok(m.clone())));
        // Key: prefix a DNS subdomain, name at most 63 of [A-Za-z0-9-_.]; value a label value (63).
        let name = m.key().strip_prefix(PREFIX).unwrap().to_string();
        assert!(name.len() <= 63 && m.value().len() <= 63);
        assert!(
            m.value()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
        // Two runs: two keys.
        assert_ne!(RunMark::new(now, 60).unwrap().id, m.id);
    }

    #[test]
    fn adding_and_lifting_touch_no_other_taint() {
        let now = jiff::Timestamp::from_second(1_795_600_000).unwrap();
        let ours = RunMark::new(now, 60).unwrap();
        let other_run = RunMark::new(now, 60).unwrap();
        let someone = t("example.com/maintenance", "soon", "PreferNoSchedule");
        let cordon = t("node.kubernetes.io/unschedulable", "", "NoSchedule");
        let have = vec![someone.clone(), other_run.taint(), cordon.clone()];
        let with = added(&have, &ours).unwrap();
        assert_eq!(&with[..3], &have[..]);
        assert_eq!(with[3], ours.taint());
        assert_eq!(added(&with, &ours), None, "set twice");
        let without = removed(&with, &ours.key()).unwrap();
        assert_eq!(without, have, "lifting ours changed another taint");
        assert_eq!(
            removed(&have, &ours.key()),
            None,
            "lifted what was not there"
        );
    }

    #[test]
    fn a_sweep_lifts_only_gone_runs() {
        let set = jiff::Timestamp::from_second(1_795_600_000).unwrap();
        let gone = RunMark::new(set, 60).unwrap();
        let going = RunMark::new(set, 3600).unwrap();
        let ours_late = RunMark::new(set, 60).unwrap();
        let have = vec![
            gone.taint(),
            going.taint(),
            ours_late.taint(),
            t(&format!("{PREFIX}run-x"), "garbage", "NoSchedule"),
            t("example.com/maintenance", "soon", "NoSchedule"),
        ];
        let now = set + jiff::SignedDuration::from_secs(600);
        let live = BTreeSet::from([ours_late.id.clone()]);
        let v = judge(&have, now, &live);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(
            matches!(&v[0].1, Verdict::Gone(w) if w.contains("passed")),
            "{v:?}"
        );
        assert!(
            matches!(&v[1].1, Verdict::Kept(w) if w.contains("may still be going")),
            "{v:?}"
        );
        assert!(
            matches!(&v[2].1, Verdict::Kept(w) if w.contains("live run")),
            "{v:?}"
        );
        assert!(
            matches!(&v[3].1, Verdict::Kept(w) if w.contains("unreadable")),
            "{v:?}"
        );
        let live_before = super::live().contains(&gone.id);
        let h = Live::hold(&gone.id);
        assert!(!live_before && super::live().contains(&gone.id));
        drop(h);
        assert!(!super::live().contains(&gone.id));
    }
}
