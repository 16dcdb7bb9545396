//! `get_gpu_processes`: the processes part of the node's reading (`node-probe describe`, kept for the next
//! questions), each process's pod named from one list of the node's pods from the API server.

use std::fmt::Write;

use gpu_diag::command::Command;
use gpu_diag::analysis::processes::ProcessesReport;
use gpu_diag::attribution::join::{ApiPod, ProcessOwner, ProcessOwnerKind};
use gpu_diag::finding::Finding;
use schemars::JsonSchema;
use serde::Serialize;

use crate::mcp::render::gpus;
use crate::mcp::render::topology::gpu_set;
use crate::mcp::render::text::{header, report_body_with};
use crate::mcp::framework::readings::MaxAge;
use crate::mcp::framework::{Cx, Hints, Node, ProbeRun, Tool, ToolError};

pub struct GetGpuProcesses;

/// A node runs up to a few hundred pods (kubelet `maxPods` defaults to 110): name the first ones, count
/// the rest, so the answer stays small. `pods_named`'s description says the number.
pub const MAX_PODS_NAMED: usize = 20;

/// Bytes of pod names in the text answer; the structured result carries all of `pods_named`.
const TEXT_PODS_BYTES: usize = 1024;

/// `get_gpu_processes` result: the probe's processes report, and each process's pod named from the API
/// server's list of the node's pods.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessesOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub run: ProbeRun,
    /// The probe's report, as node-probe produced it (pod UIDs and container ids from cgroups).
    pub report: ProcessesReport,
    /// Every GPU process with its owner: the pod's namespace, name and container from the API server, or
    /// why it has none (outside any pod, pod no longer in the API server, names not looked up).
    pub owners: Vec<ProcessOwner>,
    /// Findings only the join reveals (processes of deleted or finished pods).
    pub join_findings: Vec<Finding>,
    /// How many pods the API server lists on the node (absent when names were not looked up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_listed: Option<usize>,
    /// The pods counted in `pods_listed`, as `namespace/name (phase)` in name order: the first 20 (the
    /// rest are only counted), so a reader sees what the count is made of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods_named: Vec<String>,
    /// Why pods were not named (local mode, or the pod list failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names_why: Option<String>,
}

impl Tool for GetGpuProcesses {
    type Args = Node<MaxAge>;
    type Output = ProcessesOutput;
    const NAME: &'static str = "get_gpu_processes";
    const TITLE: &'static str = "Processes on the GPUs of a node";
    const DESCRIPTION: &'static str = "The processes on each GPU of a node with PID, command line, GPU memory \
and their pod and container; flags zombies, deleted pods' processes and ones outside any pod. Use it to see \
who holds a GPU or find a stuck or leaking process.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let t = a.target;
        cx.check_target(&t)?;
        let probe = cx.read(Self::NAME, &t, Command::Processes, a.args, |d| d.processes.clone());
        // One list of the node's pods, beside the probe; never one request per process.
        let names = async {
            match &cx.env.cluster {
                None => Err(
                    "local mode: no API server to name pods; pod UIDs and container ids come \
                             from the processes' cgroups"
                        .to_string(),
                ),
                Some(c) => c
                    .pods_on_node(t.context.as_deref(), &t.node_name)
                    .await
                    .map_err(|e| format!("could not list the node's pods: {e}")),
            }
        };
        let (res, names) = tokio::join!(probe, names);
        let (report, run) = res?;
        let (pods, names_why) = match names {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        let join = gpu_diag::attribution::join::join_processes(&report, pods.as_deref());
        Ok(ProcessesOutput {
            node: t.node_name,
            context: t.context,
            run,
            report,
            owners: join.owners,
            join_findings: join.findings,
            pods_listed: pods.as_ref().map(Vec::len),
            pods_named: pods.as_deref().map(pods_named).unwrap_or_default(),
            names_why,
        })
    }

    fn render(p: &Self::Output) -> String {
        let mut out = header("GPU processes", &p.node, p.context.as_deref(), &p.run);
        let mut owners = String::new();
        if !p.owners.is_empty() {
            match (&p.names_why, p.pods_listed) {
                (Some(why), _) => {
                    let _ = writeln!(owners, "owners (pods not named: {why}):");
                }
                (None, Some(n)) => {
                    let listed = pods_line(&p.pods_named, n);
                    let _ = writeln!(
                        owners,
                        "owners (pods named from the API server, {n} pod(s) on the node: {listed}):"
                    );
                }
                (None, None) => owners.push_str("owners:\n"),
            }
            owner_lines(&p.owners, &mut owners);
        }
        let details = gpus::processes::details(&p.report);
        report_body_with(&p.report, &details, &p.join_findings, &owners, &mut out);
        out
    }
}

/// The counted pods for the text, within [`TEXT_PODS_BYTES`]: names may be 253 characters long (a tenant
/// chooses them), so the line stops at the budget and counts the rest; all named pods are in `pods_named`.
fn pods_line(named: &[String], listed: usize) -> String {
    let mut line = String::new();
    let mut shown = 0;
    for n in named {
        if shown > 0 && line.len() + n.len() + 2 > TEXT_PODS_BYTES {
            break;
        }
        if shown > 0 {
            line.push_str(", ");
        }
        line.push_str(n);
        shown += 1;
    }
    if listed > shown {
        let _ = write!(line, " and {} more", listed - shown);
    }
    line
}

/// `namespace/name (phase)` of the first `MAX_PODS_NAMED` pods in name order (stable across calls).
fn pods_named(pods: &[ApiPod]) -> Vec<String> {
    let mut named: Vec<String> = pods
        .iter()
        .map(|p| {
            let mut s = format!("{}/{}", p.namespace, p.name);
            if let Some(ph) = &p.phase {
                let _ = write!(s, " ({ph})");
            }
            s
        })
        .collect();
    named.sort();
    named.truncate(MAX_PODS_NAMED);
    named
}

/// One line per kind of process and owner, naming the GPUs that run it (alike GPUs in one line, as the
/// topology and ECC are): a job's one process per GPU is one line, not one per GPU.
fn owner_lines(all: &[ProcessOwner], out: &mut String) {
    /// One process of a group, where it runs.
    struct Member {
        gpu: u32,
        pid: u32,
    }
    let mut groups: Vec<(String, Vec<Member>)> = Vec::new();
    for o in all {
        let rest = owner_rest(o);
        let m = Member {
            gpu: o.gpu,
            pid: o.pid,
        };
        match groups.iter_mut().find(|(r, _)| *r == rest) {
            Some((_, members)) => members.push(m),
            None => groups.push((rest, vec![m])),
        }
    }
    for (rest, members) in groups {
        let mut gpus: Vec<u32> = members.iter().map(|m| m.gpu).collect();
        gpus.sort_unstable();
        gpus.dedup();
        let pids: Vec<String> = members.iter().map(|m| m.pid.to_string()).collect();
        let pids = if pids.len() <= 4 {
            pids.join(", ")
        } else {
            format!("{}, {} ... {}", pids[0], pids[1], pids[pids.len() - 1])
        };
        let _ = match members.as_slice() {
            [Member { gpu, pid }] => writeln!(out, "- GPU {gpu} PID {pid}{rest}"),
            _ if gpus.len() == members.len() => writeln!(
                out,
                "- {}, 1 process each (PIDs {pids}){rest}",
                gpu_set(&gpus)
            ),
            _ => writeln!(
                out,
                "- {}, {} processes (PIDs {pids}){rest}",
                gpu_set(&gpus),
                members.len()
            ),
        };
    }
}

/// A process's line after its GPU and PID: name, memory and owner.
fn owner_rest(o: &ProcessOwner) -> String {
    let mut who = String::new();
    if let Some(n) = &o.process_name {
        let _ = write!(who, " ({n})");
    }
    if let Some(m) = o.used_memory_mib {
        let _ = write!(who, " {m} MiB");
    }
    let uid = o.pod_uid.as_deref().unwrap_or_default();
    let owner = match o.owner {
        ProcessOwnerKind::Pod => {
            let mut s = format!(
                "{}/{}",
                o.namespace.as_deref().unwrap_or_default(),
                o.pod.as_deref().unwrap_or_default()
            );
            match &o.container {
                Some(c) => {
                    let _ = write!(s, ", container {c}");
                }
                None => s.push_str(", container not named"),
            }
            if let Some(ph) = &o.pod_phase {
                let _ = write!(s, " ({ph})");
            }
            s
        }
        ProcessOwnerKind::PodNotInApi => {
            format!("pod UID {uid}: NOT in the API server on this node")
        }
        ProcessOwnerKind::PodUnnamed => format!("pod UID {uid}"),
        ProcessOwnerKind::OutsidePod => "outside any pod".into(),
        ProcessOwnerKind::Unknown => "unknown (no /proc entry)".into(),
    };
    format!("{who} -> {owner}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(i: usize) -> ApiPod {
        ApiPod {
            namespace: "ns".into(),
            name: format!("p{i:02}"),
            uid: format!("uid-{i}"),
            phase: i.is_multiple_of(2).then(|| "Running".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn the_counted_pods_are_named_sorted_and_bounded() {
        let few: Vec<ApiPod> = [3, 1].into_iter().map(pod).collect();
        assert_eq!(pods_named(&few), ["ns/p01", "ns/p03"]);
        let many: Vec<ApiPod> = (0..MAX_PODS_NAMED + 5).rev().map(pod).collect();
        let named = pods_named(&many);
        assert_eq!(named.len(), MAX_PODS_NAMED);
        assert_eq!(named[0], "ns/p00 (Running)");
        assert_eq!(named[1], "ns/p01");
    }

    #[test]
    fn the_text_names_pods_within_its_budget_and_counts_the_rest() {
        let short: Vec<String> = (0..3).map(|i| format!("ns/p{i}")).collect();
        assert_eq!(pods_line(&short, 3), "ns/p0, ns/p1, ns/p2");
        assert_eq!(pods_line(&short, 30), "ns/p0, ns/p1, ns/p2 and 27 more");
        // Names of the API's maximum length: the line stays within the budget, and one is always named.
        let long: Vec<String> = (0..MAX_PODS_NAMED)
            .map(|i| format!("{}/{i:02}{}", "n".repeat(63), "a".repeat(251)))
            .collect();
        let line = pods_line(&long, 40);
        assert!(line.len() <= TEXT_PODS_BYTES + 20, "{}", line.len());
        assert!(line.ends_with(" and 37 more"), "{line}");
        let one = pods_line(&long[..1], 1);
        assert_eq!(one, long[0]);
    }
}
