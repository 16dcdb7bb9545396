//! `processes`: what runs on each GPU. NVML's compute and graphics processes with their GPU memory, named
//! from the host's `/proc` and tied to their Kubernetes pod and container through the cgroup path.
//! Flags GPU memory held by processes that are dead (zombies) or gone from `/proc`.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::facts::{
    FieldError, FieldErrorKind, GpuFacts, HostProcessFacts, NodeFacts, Reading, ScanGapsFacts,
};
use crate::finding::{ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;

use super::{GpuRef, finding, gpu_label, mib, show};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessesReport {
    pub gpus: Vec<GpuProcesses>,
    pub findings: Vec<Finding>,
}

impl Judged for ProcessesReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuProcesses {
    #[serde(flatten)]
    pub gpu: GpuRef,
    /// Framebuffer in use on the GPU as a whole (includes what the driver reserves).
    pub memory_used_mib: Reading<u64>,
    pub processes: Reading<Vec<ProcessReport>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessReport {
    pub pid: u32,
    /// `compute` or `graphics`.
    pub kind: String,
    /// `/proc/<pid>/comm` on the host.
    pub name: Reading<String>,
    pub cmdline: Reading<String>,
    /// `R`, `S`, `D`, `Z`, ...
    pub state: Reading<String>,
    /// None when NVML cannot say (unprivileged, some MIG setups).
    pub used_memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    /// The MIG device this process runs on, matched by GPU/compute instance id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_device_uuid: Option<String>,
    /// Kubernetes pod UID from the cgroup path, when the process runs in a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Container runtime id from the cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub age_seconds: Reading<u64>,
}

/// Pod UID and container id from `/proc/<pid>/cgroup` contents (cgroup v1 or v2, systemd or cgroupfs
/// driver, containerd, CRI-O or Docker).
pub fn pod_from_cgroup(cgroup: &str) -> (Option<String>, Option<String>) {
    static POD: OnceLock<Regex> = OnceLock::new();
    static CTR: OnceLock<Regex> = OnceLock::new();
    let pod = POD.get_or_init(|| {
        Regex::new(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
            .expect("static regex")
    });
    let ctr = CTR.get_or_init(|| {
        Regex::new(r"^(?:cri-containerd-|crio-|docker-|containerd-)?([0-9a-f]{64})(?:\.scope)?$")
            .expect("static regex")
    });
    for line in cgroup.lines() {
        // `hierarchy-id:controllers:path`; the path may itself contain colons on some runtimes.
        let path = line.splitn(3, ':').nth(2).unwrap_or(line);
        let Some(m) = pod.captures(path) else {
            continue;
        };
        let uid = m[1].replace('_', "-");
        let container = path
            .rsplit('/')
            .next()
            .and_then(|seg| ctr.captures(seg))
            .map(|c| c[1].to_string());
        return (Some(uid), container);
    }
    (None, None)
}

fn host(facts: &NodeFacts, pid: u32) -> Option<&HostProcessFacts> {
    facts.host_processes.iter().find(|p| p.pid == pid)
}

fn not_looked_up<T>() -> Reading<T> {
    Reading::Err(FieldError::with_message(
        FieldErrorKind::NotCollected,
        "the host's /proc was not read for this process",
    ))
}

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> ProcessesReport {
    let mut report = ProcessesReport::default();
    // /proc is visible to the probe if any process NVML reported resolves there.
    let proc_visible = facts.host_processes.iter().any(|p| p.name.is_ok());
    for g in &facts.gpus {
        let processes = g.processes.map(|list| {
            list.iter()
                .map(|p| {
                    let h = host(facts, p.pid);
                    let (pod_uid, container_id) = h
                        .and_then(|h| h.cgroup.ok())
                        .map(|c| pod_from_cgroup(c))
                        .unwrap_or((None, None));
                    let mig_device_uuid = p.gpu_instance_id.and_then(|gi| {
                        g.mig_devices
                            .iter()
                            .find(|m| {
                                m.gpu_instance_id.get() == Some(gi)
                                    && (p.compute_instance_id.is_none()
                                        || m.compute_instance_id.get() == p.compute_instance_id)
                            })
                            .and_then(|m| m.uuid.ok().cloned())
                    });
                    ProcessReport {
                        pid: p.pid,
                        kind: p.kind.clone(),
                        name: h.map_or_else(not_looked_up, |h| h.name.clone()),
                        cmdline: h.map_or_else(not_looked_up, |h| h.cmdline.clone()),
                        state: h.map_or_else(not_looked_up, |h| h.state.clone()),
                        used_memory_mib: p.used_memory_bytes.map(mib),
                        gpu_instance_id: p.gpu_instance_id,
                        compute_instance_id: p.compute_instance_id,
                        mig_device_uuid,
                        pod_uid,
                        container_id,
                        age_seconds: h.map_or_else(not_looked_up, |h| h.age_seconds.clone()),
                    }
                })
                .collect::<Vec<_>>()
        });
        if let Some(list) = processes.ok() {
            report.findings.append(&mut judge(g, list, proc_visible));
        }
        report.gpus.push(GpuProcesses {
            gpu: GpuRef::of(g),
            memory_used_mib: g.memory.map(|m| mib(m.used_bytes)),
            processes,
        });
    }
    report.findings.extend(incomplete(facts));
    report
}

/// A list built from a walk of `/proc/*/fd` that did not see every process is incomplete, never "no
/// process": one finding per vendor, naming its devices and what the walk missed (the words every path
/// says them with, [`gap_words`]).
fn incomplete(facts: &NodeFacts) -> Vec<Finding> {
    let Some(gaps) = facts.process_scan_gaps.as_ref().filter(|g| !g.is_empty()) else {
        return Vec::new();
    };
    let missed = gap_words(gaps);
    let mut out = Vec::new();
    for info in crate::facts::GpuVendor::ALL.map(|v| v.info()) {
        let listed: Vec<u32> = facts
            .gpus
            .iter()
            .filter(|g| g.vendor == info.vendor && info.processes_from_proc_walk)
            .filter(|g| g.processes.is_ok())
            .map(|g| g.index)
            .collect();
        if listed.is_empty() {
            continue;
        }
        out.push(finding(
            "process.list_incomplete",
            Severity::Info,
            None,
            format!(
                "The process lists of {} {} may be incomplete: {} (the lists are the {} a walk of \
                 /proc found).",
                info.device_word,
                super::index_ranges(&listed, ","),
                missed.join("; "),
                info.process_source,
            ),
            missed.clone(),
            ActionKind::Investigate,
            "a device no process is listed on may still be in use: a reset or an active diagnostic \
             refuses it unless a person overrides; the holders of a refused fd table are seen by a \
             probe the host's LSM (AppArmor, SELinux) lets read it"
                .into(),
        ));
    }
    out
}

/// What a walk of `/proc/*/fd` did not see, one item each, in the words every path says them with (the
/// resets, RVS's choice of GPUs, the process lists built from the walk).
pub fn gap_words(g: &ScanGapsFacts) -> Vec<String> {
    let pids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    if !g.denied_pids.is_empty() {
        out.push(format!(
            "the open files of pid {} could not be read (permission denied: an LSM or ptrace restriction), \
             so what they hold is not known",
            pids(&g.denied_pids)
        ));
    }
    if !g.fd_tables_cut.is_empty() {
        out.push(format!(
            "the open files of pid {} were read only in part (more than the scan reads)",
            pids(&g.fd_tables_cut)
        ));
    }
    if g.pids_not_scanned > 0 {
        out.push(format!(
            "{} process(es) were not scanned (more than the scan reads)",
            g.pids_not_scanned
        ));
    }
    out
}

fn held(p: &ProcessReport) -> String {
    p.used_memory_mib
        .map_or("an unknown amount of".into(), |m| format!("{m} MiB of"))
}

/// Zombies and vanished processes that still hold GPU memory.
pub fn judge(g: &GpuFacts, processes: &[ProcessReport], proc_visible: bool) -> Vec<Finding> {
    let who = gpu_label(g);
    let info = g.vendor.info();
    let mut out = Vec::new();
    for p in processes {
        let owner = match (&p.pod_uid, &p.container_id) {
            (Some(pod), Some(c)) => format!("pod {pod}, container {}", &c[..12.min(c.len())]),
            (Some(pod), None) => format!("pod {pod}"),
            _ => "no pod (host process)".into(),
        };
        if p.state.ok().map(String::as_str) == Some("Z") {
            out.push(finding(
                "process.zombie",
                Severity::Warning,
                Some(g),
                if info.processes_from_proc_walk {
                    format!(
                        "Process {} ({}) on {who} is a zombie (exited, not reaped) yet still holds the device open: its context was not released.",
                        p.pid,
                        show(&p.name),
                    )
                } else {
                    format!(
                        "Process {} ({}) on {who} is a zombie (exited, not reaped) yet {} still counts {} GPU memory to it: its GPU context was not released.",
                        p.pid,
                        show(&p.name),
                        info.process_source,
                        held(p)
                    )
                },
                vec![
                    format!("pid = {}", p.pid),
                    "state = Z".into(),
                    format!("used_memory_mib = {}", p.used_memory_mib.map_or("unknown".into(), |m| m.to_string())),
                    format!("owner = {owner}"),
                ],
                ActionKind::RestartApplication,
                "restart the pod/container that owns it (its remaining threads or parent keep the context alive); if the memory stays allocated, reset the GPU when drained".into(),
            ));
        } else if p
            .name
            .err()
            .is_some_and(|e| e.error == FieldErrorKind::NotFound)
        {
            let (severity, why) = if proc_visible {
                (
                    Severity::Warning,
                    "other GPU processes resolve in the host's /proc, so this one is gone: a stale GPU context",
                )
            } else {
                (
                    Severity::Info,
                    "no GPU process resolves in /proc: the probe may not see the host PID namespace",
                )
            };
            out.push(finding(
                "process.not_in_proc",
                severity,
                Some(g),
                format!(
                    "{} reports process {} on {who} holding {} GPU memory, but it has no /proc entry ({why}).",
                    info.process_source,
                    p.pid,
                    held(p)
                ),
                vec![
                    format!("pid = {}", p.pid),
                    "proc entry = not_found".into(),
                    format!("used_memory_mib = {}", p.used_memory_mib.map_or("unknown".into(), |m| m.to_string())),
                ],
                if proc_visible { ActionKind::ResetGpuWhenDrained } else { ActionKind::Investigate },
                if proc_visible {
                    format!("if the memory is not released within minutes, reset GPU {} when drained", g.index)
                } else {
                    "run the probe with the host PID namespace (hostPID) to name GPU processes".into()
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GpuProcessFacts, MigDeviceFacts};

    #[test]
    fn cgroup_v2_systemd_containerd() {
        let id = "4b1c".repeat(16);
        let cg = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f7c9a2e_1b2d_4c5e_9f0a_2b3c4d5e6f70.slice/cri-containerd-{id}.scope"
        );
        assert_eq!(
            pod_from_cgroup(&cg),
            (
                Some("3f7c9a2e-1b2d-4c5e-9f0a-2b3c4d5e6f70".into()),
                Some(id)
            )
        );
    }

    #[test]
    fn cgroup_v1_cgroupfs_and_host_processes() {
        let id = "ab".repeat(32);
        let cg = format!(
            "12:pids:/kubepods/besteffort/pod0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/{id}\n11:memory:/kubepods/besteffort/pod0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/{id}"
        );
        assert_eq!(
            pod_from_cgroup(&cg),
            (
                Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
                Some(id)
            )
        );
        assert_eq!(
            pod_from_cgroup("0::/system.slice/ssh.service"),
            (None, None)
        );
        assert_eq!(pod_from_cgroup(""), (None, None));
    }

    fn facts(state: &str, found: bool) -> NodeFacts {
        let mut host = vec![HostProcessFacts {
            pid: 7,
            name: Reading::Ok("python3".into()),
            state: Reading::Ok("S".into()),
            ..Default::default()
        }];
        host.push(if found {
            HostProcessFacts {
                pid: 8,
                name: Reading::Ok("python3".into()),
                state: Reading::Ok(state.into()),
                ..Default::default()
            }
        } else {
            HostProcessFacts {
                pid: 8,
                name: Reading::Err(FieldError::new(FieldErrorKind::NotFound)),
                ..Default::default()
            }
        });
        NodeFacts {
            gpus: vec![GpuFacts {
                index: 0,
                processes: Reading::Ok(vec![
                    GpuProcessFacts {
                        pid: 7,
                        kind: "compute".into(),
                        used_memory_bytes: Some(1 << 30),
                        ..Default::default()
                    },
                    GpuProcessFacts {
                        pid: 8,
                        kind: "compute".into(),
                        used_memory_bytes: Some(30 << 30),
                        ..Default::default()
                    },
                    GpuProcessFacts {
                        pid: 9,
                        kind: "graphics".into(),
                        used_memory_bytes: None,
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }],
            host_processes: host,
            ..Default::default()
        }
    }

    #[test]
    fn zombie_holding_memory_is_flagged() {
        let r = analyze(&facts("Z", true), &AnalysisOptions::default());
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].code, "process.zombie");
        assert!(r.findings[0].summary.contains("30720 MiB"));
        let procs = r.gpus[0].processes.ok().unwrap();
        // A process the host reader never looked at says so inline.
        assert_eq!(
            procs[2].name.err().unwrap().error,
            FieldErrorKind::NotCollected
        );
        assert_eq!(procs[2].used_memory_mib, None);
        assert!(
            analyze(&facts("S", true), &AnalysisOptions::default())
                .findings
                .is_empty()
        );
    }

    #[test]
    fn vanished_process_severity_depends_on_proc_visibility() {
        let r = analyze(&facts("S", false), &AnalysisOptions::default());
        assert_eq!(r.findings[0].code, "process.not_in_proc");
        assert_eq!(r.findings[0].severity, Severity::Warning);
        let mut f = facts("S", false);
        f.host_processes[0].name = Reading::Err(FieldError::new(FieldErrorKind::NotFound));
        let r = analyze(&f, &AnalysisOptions::default());
        assert!(r.findings.iter().all(|f| f.severity == Severity::Info));
    }

    #[test]
    fn mig_processes_map_to_their_mig_device_and_lost_gpu_stays_inline() {
        let mut f = facts("S", true);
        f.gpus[0].mig_devices = vec![MigDeviceFacts {
            index: 0,
            uuid: Reading::Ok("MIG-1".into()),
            gpu_instance_id: Reading::Ok(1),
            compute_instance_id: Reading::Ok(0),
            ..Default::default()
        }];
        if let Reading::Ok(list) = &mut f.gpus[0].processes {
            list[0].gpu_instance_id = Some(1);
            list[0].compute_instance_id = Some(0);
        }
        let r = analyze(&f, &AnalysisOptions::default());
        assert_eq!(
            r.gpus[0].processes.ok().unwrap()[0]
                .mig_device_uuid
                .as_deref(),
            Some("MIG-1")
        );
        f.gpus[0].processes = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        let r = analyze(&f, &AnalysisOptions::default());
        assert_eq!(
            r.gpus[0].processes.err().unwrap().error,
            FieldErrorKind::GpuIsLost
        );
        assert!(r.findings.is_empty());
    }
}
