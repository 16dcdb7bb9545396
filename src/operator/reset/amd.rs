//! An AMD Instinct GPU's reset: AMD's `amd-smi reset -G -g <BDF>` (root), which resets the GPU by reading
//! debugfs `amdgpu_gpu_recover`, and the amdgpu driver resets a GPU's whole XGMI hive together (the
//! project's AMD reference, §7, from `amdgpu_device.c`/`amdgpu_job.c`). So the preflight judges every GPU
//! of the hive, not only the one asked for: each must have no process on it (the holders of `/dev/kfd`
//! and of its `/dev/dri/{renderD,card}` nodes, partitions' included; KFD's per-process `gpu_id`s say
//! which GPU a `/dev/kfd` holder uses) and no pod assigned it (the same sources as NVIDIA's, see
//! [`holders`]). An open `/dev/kfd` whose GPU KFD does not name counts on every GPU of the hive: unknown
//! is never free, and only a person may override it, as for NVIDIA. After the reset, [`verify`] judges
//! the hive as re-read and quotes the kernel's reset lines.
//!
//! Partitioned GPUs (CPX, NPS4) are not refused: the reference names no such restriction on a reset
//! (only an NPS change needs a driver reload with every GPU idle); the check says the reset takes every
//! partition, each of which was judged as the GPU.

use std::collections::{BTreeMap, BTreeSet};

use super::report::ResetOutcome;
use super::request::ResetRequest;
use crate::analysis::index_ranges;
use crate::facts::{
    DeviceHolderFacts, DeviceHoldersFacts, FieldErrorKind, GpuFacts, KernelLogFacts, NodeFacts,
    Reading,
};
use crate::incident::platform::clean;
use crate::operator::holders::{self, Verdict};
use crate::operator::scan::{self, Said};
use crate::operator::{Check, CheckStatus, PlanStep};

/// The tool, as the answers name it.
pub const AMD_SMI: &str = "amd-smi";
/// The source a person overrides when a `/dev/kfd` holder's GPU cannot be told.
pub const DEVICE_FILES_SOURCE: &str =
    "open /dev/kfd and /dev/dri files (the /proc fd scan and KFD's process list)";
/// What installs the tool, for the answer that finds none.
pub const INSTALL_HINT: &str = "install AMD SMI on the node (ROCm's `amd-smi-lib` package, which \
installs /opt/rocm/bin/amd-smi)";

/// The PCI address `amd-smi -g` takes.
pub fn bdf(g: &GpuFacts) -> Option<&str> {
    g.pci_bus_id.ok().map(String::as_str)
}

/// `amd-smi`'s arguments for a reset of `bdf`.
pub fn reset_args(bdf: &str) -> Vec<String> {
    ["reset", "-G", "-g", bdf].map(str::to_string).to_vec()
}

/// The GPUs a reset of `g` resets, and how that was told.
pub struct Hive<'a> {
    pub members: Vec<&'a GpuFacts>,
    /// In words, with the GPU indexes.
    pub how: String,
    /// False when the hive could not be read and every AMD GPU of the node counts.
    pub known: bool,
}

impl Hive<'_> {
    pub fn indexes(&self) -> Vec<u32> {
        self.members.iter().map(|g| g.index).collect()
    }
}

/// `Ok(None)`: in no hive (a PCIe card); `Err`: not known.
fn hive_id(g: &GpuFacts) -> Result<Option<u64>, String> {
    let Some(a) = &g.amd else {
        return Err("amdgpu's sysfs did not answer for it".into());
    };
    match &a.xgmi {
        Reading::Ok(x) => Ok(x.hive_id.filter(|h| *h != 0)),
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported => Ok(None),
        Reading::Err(e) => {
            // KFD's topology prints the same hive id.
            let kfd = a
                .kfd_nodes
                .ok()
                .and_then(|ns| ns.iter().find_map(|n| n.hive_id));
            match kfd {
                Some(h) => Ok(Some(h).filter(|h| *h != 0)),
                None => Err(format!(
                    "xgmi_hive_id unreadable ({})",
                    crate::analysis::error_name(e.error)
                )),
            }
        }
    }
}

/// Every GPU a reset of `g` takes: its hive (a GPU whose hive cannot be read may be in it, so it counts),
/// `g` alone outside a hive, every AMD GPU of the node when `g`'s own hive cannot be read.
pub fn hive<'a>(facts: &'a NodeFacts, g: &'a GpuFacts) -> Hive<'a> {
    let amd: Vec<&GpuFacts> = facts
        .gpus
        .iter()
        .filter(|x| !x.vendor.is_nvidia())
        .collect();
    let range = |m: &[&GpuFacts]| index_ranges(&m.iter().map(|g| g.index).collect::<Vec<_>>(), ",");
    match hive_id(g) {
        Ok(Some(h)) => {
            let members: Vec<&GpuFacts> = amd
                .iter()
                .copied()
                .filter(|x| x.index == g.index || hive_id(x).map_or(true, |o| o == Some(h)))
                .collect();
            let unsure: Vec<&GpuFacts> = members
                .iter()
                .copied()
                .filter(|x| hive_id(x).is_err())
                .collect();
            let mut how = format!("XGMI hive {h:#x}: GPU {}", range(&members));
            if !unsure.is_empty() {
                how.push_str(&format!(
                    " (GPU {} counted because its hive could not be read)",
                    range(&unsure)
                ));
            }
            Hive {
                members,
                how,
                known: true,
            }
        }
        Ok(None) => Hive {
            members: vec![g],
            how: format!("GPU {} alone (in no XGMI hive)", g.index),
            known: true,
        },
        Err(why) => Hive {
            how: format!(
                "GPU {}'s XGMI hive is not known ({why}): every AMD GPU of the node counts, GPU {}",
                g.index,
                range(&amd)
            ),
            members: amd,
            known: false,
        },
    }
}

/// One AMD GPU's device files and KFD ids, as far as its facts tell them.
#[derive(Default)]
struct DeviceFiles {
    render: BTreeSet<u32>,
    card: BTreeSet<u32>,
    gpu_ids: BTreeSet<u32>,
    minors_known: bool,
    ids_known: bool,
}

fn device_files(g: &GpuFacts) -> DeviceFiles {
    let mut f = DeviceFiles::default();
    let Some(a) = &g.amd else {
        return f;
    };
    f.minors_known = true;
    match a.render_minor.get() {
        Some(m) => {
            f.render.insert(m);
        }
        None => f.minors_known = false,
    }
    match a
        .card
        .ok()
        .and_then(|c| c.strip_prefix("card")?.parse::<u32>().ok())
    {
        Some(m) => {
            f.card.insert(m);
        }
        None => f.minors_known = false,
    }
    if let Reading::Ok(nodes) = &a.kfd_nodes {
        f.ids_known = !nodes.is_empty();
        for n in nodes {
            f.gpu_ids.insert(n.gpu_id);
            f.render.extend(n.drm_render_minor);
        }
    }
    match &a.partition {
        Reading::Ok(p) => {
            for x in &p.xcps {
                f.render.extend(x.render_minor);
                f.card.extend(x.card_minor);
                f.gpu_ids.extend(x.gpu_id);
            }
        }
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported => {}
        // Its partitions' nodes are not known.
        Reading::Err(_) => f.minors_known = false,
    }
    f
}

/// `/dev/dri/renderD128` -> (true, 128); `/dev/dri/card1` -> (false, 1).
fn drm_minor(dev: &str) -> Option<(bool, u32)> {
    let n = dev.strip_prefix("/dev/dri/")?;
    if let Some(m) = n.strip_prefix("renderD") {
        return Some((true, m.parse().ok()?));
    }
    Some((false, n.strip_prefix("card")?.parse().ok()?))
}

impl DeviceFiles {
    fn holds(&self, render: bool, minor: u32) -> bool {
        if render {
            self.render.contains(&minor)
        } else {
            self.card.contains(&minor)
        }
    }
}

/// What AMD device holders usually are (by name only: a tenant may name a process anything, so a hint
/// never changes the verdict).
fn holder_hint(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let table: &[(&str, &str)] = &[
        (
            "k8s-device-plug",
            "AMD device plugin: stop its daemonset pod on this node",
        ),
        (
            "amd-metrics-exp",
            "AMD device metrics exporter: scale its daemonset off this node",
        ),
        ("gpuagent", "AMD device metrics exporter's agent"),
        ("amd-smi", "another amd-smi (monitoring)"),
        ("rocm-smi", "rocm-smi (monitoring)"),
        ("rvs", "ROCm Validation Suite (AMD's test runner)"),
    ];
    table
        .iter()
        .find(|(k, _)| n.starts_with(k))
        .map(|(_, v)| *v)
}

/// `pid 4242 (python3) in pod <uid>`: the name cleaned of control characters and bounded (a tenant names
/// it), the pod from the process's cgroup (the kubelet's path, which the tenant does not choose) where
/// the probe read it.
fn label(facts: &NodeFacts, h: &DeviceHolderFacts) -> String {
    let pod = crate::operator::host_process(facts, h.pid)
        .and_then(|p| p.cgroup.ok())
        .and_then(|c| crate::attribution::cgroup::parse_proc_cgroup(c).ok())
        .and_then(|a| a.pod_uid)
        .map(|u| format!(" in pod {u}"))
        .unwrap_or_default();
    match h.name.ok().map(|n| clean(n, 32)) {
        Some(n) => {
            let hint = holder_hint(&n)
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default();
            format!("pid {} ({n}){pod}{hint}", h.pid)
        }
        None => format!("pid {}{pod}", h.pid),
    }
}

/// Each hive member's answer from the device files and KFD, or the check that says they were not read.
/// Each GPU's answer from the holder scan, and the warning of fd tables unreadable for another reason.
type DeviceAnswers = (Vec<(u32, Said)>, Option<Check>);

fn device_answers(
    facts: &NodeFacts,
    members: &[&GpuFacts],
    self_pid: Option<u32>,
) -> Result<DeviceAnswers, Check> {
    const NAME: &str = "hive_device_holders";
    let scan = match &facts.device_holders {
        None => {
            return Err(Check::block(
                NAME,
                "the holders of /dev/kfd and /dev/dri were not collected: cannot verify the hive is idle",
            ));
        }
        Some(Reading::Err(e)) => {
            return Err(Check::block(
                NAME,
                format!(
                    "cannot scan /proc for holders of /dev/kfd and /dev/dri ({}): cannot verify the hive is \
                     idle",
                    crate::analysis::error_name(e.error)
                ),
            ));
        }
        Some(Reading::Ok(s)) => s,
    };
    let out = members
        .iter()
        .map(|m| (m.index, said_on(facts, scan, m, self_pid)))
        .collect();
    Ok((out, super::device_node::unreadable(scan)))
}

/// What the holder scan says of AMD GPU `m`: a holder of its `/dev/dri` nodes or with KFD state on it is
/// yes; a process the scan did not see (`scan::gaps`), a `/dev/kfd` holder whose GPU KFD does not name,
/// or a node of no GPU known here while `m`'s own were not read is unknown.
pub(crate) fn said_on(
    facts: &NodeFacts,
    scan: &DeviceHoldersFacts,
    m: &GpuFacts,
    self_pid: Option<u32>,
) -> Said {
    let all: Vec<DeviceFiles> = facts
        .gpus
        .iter()
        .filter(|g| !g.vendor.is_nvidia())
        .map(device_files)
        .collect();
    let known_id = |id: u32| all.iter().any(|f| f.gpu_ids.contains(&id));
    let known_minor = |r: bool, m: u32| all.iter().any(|f| f.holds(r, m));
    let holders: Vec<&DeviceHolderFacts> = scan
        .holders
        .iter()
        .filter(|h| Some(h.pid) != self_pid)
        .filter(|h| h.kfd.is_some() || h.devices.iter().any(|d| !d.starts_with("/dev/nvidia")))
        .collect();
    let mine = device_files(m);
    let (mut yes, mut unknown) = (Vec::new(), scan::gaps(scan));
    for h in &holders {
        let who = label(facts, h);
        let mut held = Vec::new();
        for d in &h.devices {
            let Some((render, minor)) = drm_minor(d) else {
                continue;
            };
            if mine.holds(render, minor) {
                held.push(d.clone());
            } else if !mine.minors_known && !known_minor(render, minor) {
                unknown.push(format!(
                    "{who} holds {d}, a node of no GPU known here, and this GPU's DRM nodes were not read"
                ));
            }
        }
        let ids = h.kfd.as_ref().map(|k| k.gpu_ids.as_slice()).unwrap_or(&[]);
        for id in ids {
            if mine.gpu_ids.contains(id) {
                held.push(format!("KFD state on gpu_id {id}"));
            } else if !mine.ids_known && !known_id(*id) {
                unknown.push(format!(
                    "{who} has KFD state on gpu_id {id}, which no GPU's KFD node was matched to, and \
                     this GPU's KFD nodes were not read"
                ));
            }
        }
        if !held.is_empty() {
            let queues = match h.kfd.as_ref().map(|k| k.queues) {
                Some(q) if q > 0 => format!(", {q} KFD queue(s)"),
                _ => String::new(),
            };
            yes.push(format!("{who}: {}{queues}", held.join(", ")));
            continue;
        }
        let kfd_open = h.kfd.is_some() || h.devices.iter().any(|d| d == "/dev/kfd");
        if kfd_open && ids.is_empty() {
            unknown.push(match &h.kfd {
                Some(_) => format!("{who} has /dev/kfd open and KFD names no GPU it uses"),
                None => format!(
                    "{who} has /dev/kfd open and is not in KFD's process list, so its GPU cannot be told"
                ),
            });
        }
    }
    if !yes.is_empty() {
        Said::Yes(yes)
    } else if !unknown.is_empty() {
        Said::Unknown(unknown)
    } else {
        Said::No
    }
}

/// Per member lines, members saying "no" grouped: `GPU 3 (0000:65:00.0): yes: ...; GPU 0-2,4-7: no`.
fn per_gpu(facts: &NodeFacts, said: &[(u32, Said)]) -> String {
    let bdf_of = |i: u32| {
        facts
            .gpus
            .iter()
            .find(|g| g.index == i)
            .and_then(bdf)
            .unwrap_or("?")
            .to_string()
    };
    let mut lines = Vec::new();
    let no: Vec<u32> = said
        .iter()
        .filter(|(_, s)| *s == Said::No)
        .map(|(i, _)| *i)
        .collect();
    for (i, s) in said {
        match s {
            Said::Yes(h) => lines.push(format!("GPU {i} ({}): yes: {}", bdf_of(*i), h.join("; "))),
            Said::Unknown(w) => lines.push(format!(
                "GPU {i} ({}): unknown: {}",
                bdf_of(*i),
                w.join("; ")
            )),
            Said::No => {}
        }
    }
    if !no.is_empty() {
        lines.push(format!("GPU {}: no", index_ranges(&no, ",")));
    }
    lines.join(". ")
}

/// Every GPU of the hive idle: the device files and KFD, per GPU.
fn check_device_holders(facts: &NodeFacts, hive: &Hive<'_>, req: &ResetRequest) -> Vec<Check> {
    const NAME: &str = "hive_device_holders";
    let (said, unreadable) = match device_answers(facts, &hive.members, req.self_pid) {
        Ok(x) => x,
        Err(c) => return vec![c],
    };
    let range = index_ranges(&hive.indexes(), ",");
    let any_yes = said.iter().any(|(_, s)| matches!(s, Said::Yes(_)));
    let any_unknown = said.iter().any(|(_, s)| matches!(s, Said::Unknown(_)));
    let items: Vec<String> = said
        .iter()
        .flat_map(|(i, s)| match s {
            Said::Unknown(w) => w.iter().map(|w| format!("GPU {i}: {w}")).collect(),
            _ => Vec::new(),
        })
        .collect();
    let mut out = vec![if any_yes {
        Check::block(
            NAME,
            format!(
                "{}. Stop them first (kill_gpu_process, or drain the pods): amd-smi reset -G resets every \
                 GPU of the hive",
                per_gpu(facts, &said)
            ),
        )
    } else if any_unknown && req.override_unknown {
        let mut c = Check::warn(
            NAME,
            format!(
                "OVERRIDDEN by the person who confirmed: whether these GPUs are in use is not known: {}",
                per_gpu(facts, &said)
            ),
        );
        c.unknown_holders = items;
        c
    } else if any_unknown {
        let mut c = Check::block(
            NAME,
            format!(
                "{}. Fix: stop the processes named (kill_gpu_process), or, if you know they use no GPU of \
                 this hive, have a person override this in the confirmation (a client with elicitation \
                 or input requests; the `confirm` argument cannot override)",
                per_gpu(facts, &said)
            ),
        );
        c.unknown_sources = vec![DEVICE_FILES_SOURCE.to_string()];
        c.unknown_holders = items;
        c
    } else {
        Check::pass(
            NAME,
            format!(
                "GPU {range}: no process holds /dev/kfd on them or their /dev/dri nodes, and KFD lists none \
                 on them"
            ),
        )
    }];
    out.extend(unreadable);
    out
}

/// Every GPU of the hive unassigned: the kubelet's, the API server's and the node's DRA answers, per GPU.
/// `None` where the kubelet was not asked (a scenario without its facts).
fn check_assignment(facts: &NodeFacts, hive: &Hive<'_>, overridden: bool) -> Option<Check> {
    const NAME: &str = "hive_not_assigned";
    let mut answers = Vec::new();
    for m in &hive.members {
        answers.push((m.index, holders::ask(facts, m.index)?));
    }
    let range = index_ranges(&hive.indexes(), ",");
    let held: Vec<String> = answers
        .iter()
        .filter_map(|(i, h)| match &h.verdict {
            Verdict::Held(w) => Some(format!("GPU {i}: yes: {}", w.join("; "))),
            _ => None,
        })
        .collect();
    if !held.is_empty() {
        return Some(Check::block(
            NAME,
            format!(
                "{}. Delete or drain the pod first (cordon_gpu_node keeps new pods off): amd-smi reset -G \
                 resets every GPU of the hive",
                held.join(". ")
            ),
        ));
    }
    let unvouched: Vec<(u32, &Vec<holders::Unanswered>)> = answers
        .iter()
        .filter_map(|(i, h)| match &h.verdict {
            Verdict::Unvouched(u) => Some((*i, u)),
            _ => None,
        })
        .collect();
    if unvouched.is_empty() {
        // The sources read the same for every GPU of the hive: one GPU's evidence says it.
        let first = &answers.first()?.1;
        return Some(Check::pass(
            NAME,
            format!(
                "no source names a holder of GPU {range}: {}",
                first.evidence()
            ),
        ));
    }
    let mut by_source: BTreeMap<&str, (&str, &str, Vec<u32>)> = BTreeMap::new();
    for (i, us) in &unvouched {
        for u in us.iter() {
            by_source
                .entry(u.source.name())
                .or_insert((u.why.as_str(), u.fix.as_str(), Vec::new()))
                .2
                .push(*i);
        }
    }
    let what = by_source
        .iter()
        .map(|(s, (why, _, gpus))| format!("GPU {}: unknown: {s}: {why}", index_ranges(gpus, ",")))
        .collect::<Vec<_>>()
        .join(". ");
    let items: Vec<String> = unvouched
        .iter()
        .flat_map(|(i, us)| {
            us.iter()
                .map(move |u| format!("GPU {i}: {}: {}", u.source.name(), u.why))
        })
        .collect();
    if overridden {
        let mut c = Check::warn(
            NAME,
            format!(
                "OVERRIDDEN by the person who confirmed: who holds these GPUs is not known. {what}"
            ),
        );
        c.unknown_holders = items;
        return Some(c);
    }
    let fixes = by_source
        .iter()
        .map(|(s, (_, fix, _))| format!("{s}: {fix}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut c = Check::block(
        NAME,
        format!("{what}. Fix: {fixes}; {}", holders::OVERRIDE_FIX),
    );
    c.unknown_sources = by_source.keys().map(|s| s.to_string()).collect();
    c.unknown_holders = items;
    Some(c)
}

/// A partitioned GPU is reset with all its partitions: said, not refused (see the module's note).
fn check_partitions(hive: &Hive<'_>) -> Option<Check> {
    let parted: Vec<String> = hive
        .members
        .iter()
        .filter_map(|g| {
            let p = g.amd.as_ref()?.partition.ok()?;
            let (c, m) = (p.compute.ok()?, p.memory.ok()?);
            (c != "SPX" || m != "NPS1").then(|| {
                format!(
                    "GPU {} in {c}/{m}{}",
                    g.index,
                    if p.xcps.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} more partition device(s))", p.xcps.len())
                    }
                )
            })
        })
        .collect();
    (!parted.is_empty()).then(|| {
        Check::warn(
            "partitions",
            format!(
                "{}: the reset takes every compute partition of these GPUs, each judged above as its GPU \
                 (its render node and KFD node). AMD's documentation restricts a memory-partition (NPS) \
                 change, which needs a driver reload with every GPU idle, not a reset; the partition \
                 mode is unchanged by it",
                parted.join(", ")
            ),
        )
    })
}

/// The AMD preflight after `gpu_found`.
pub fn preflight(facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(bdf) = bdf(g) else {
        checks.push(Check::block(
            "gpu_vendor",
            format!(
                "GPU {} is an AMD GPU whose PCI address is not known: `amd-smi reset -G -g <BDF>` needs it",
                g.index
            ),
        ));
        return checks;
    };
    checks.push(Check::pass(
        "gpu_vendor",
        format!(
            "GPU {} is an AMD GPU: reset with AMD's `amd-smi reset -G -g {bdf}`",
            g.index
        ),
    ));
    if let Some(e) = &g.handle_error {
        checks.push(Check::warn(
            "gpu_state",
            format!(
                "amdgpu's sysfs did not answer for GPU {} ({}): a reset is AMD's remedy for a hung GPU, \
                 but its device files and KFD nodes are not known, so its holders count as unknown",
                g.index,
                crate::analysis::error_name(e.error)
            ),
        ));
    }
    let hive = hive(facts, g);
    let scope = format!(
        "amd-smi reset -G resets the whole XGMI hive (the amdgpu driver resets a hive's GPUs together): \
         {}; every one must be idle and unassigned",
        hive.how
    );
    checks.push(if hive.known {
        Check::pass("reset_scope", scope)
    } else {
        Check::warn("reset_scope", scope)
    });
    checks.extend(check_partitions(&hive));
    checks.extend(check_device_holders(facts, &hive, req));
    checks.extend(check_assignment(facts, &hive, req.override_unknown));
    if let Some(tool) = &req.tool {
        checks.push(match tool {
            Ok(t) => Check::pass(
                "reset_tool",
                format!("will run `{t} {}`", reset_args(bdf).join(" ")),
            ),
            Err(why) => Check::block("reset_tool", why.clone()),
        });
    }
    checks
}

pub fn steps(facts: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep> {
    let hive = hive(facts, g);
    let b = bdf(g).unwrap_or("<BDF>");
    vec![
        PlanStep::new(
            "reset",
            format!(
                "amd-smi reset -G -g {b} (resets {}; up to {} s)",
                hive.how, RESET_TIMEOUT_SECS
            ),
        ),
        PlanStep::new(
            "verify",
            "re-read the hive's GPUs from sysfs: each back at its PCI address with its unique_id, RAS and \
             bad-page counters read back; the kernel log's GPU reset lines quoted",
        ),
    ]
}

/// How long `amd-smi reset` may run: inside the launcher's probe deadline (120 s by default), with room
/// for the pod's start and the verification.
pub const RESET_TIMEOUT_SECS: u64 = 60;

/// At most this many kernel lines are quoted.
const MAX_QUOTED: usize = 12;

/// amd-smi's word on its reset, from its output. amd-smi stores `'Successfully reset GPU'` under
/// `gpu_reset`, or `"Failed to reset GPU"` when the library call raised anything but NO_PERM
/// (ROCm/amdsmi 0ceca28 `amdsmi_cli/amdsmi_commands.py:4283-4294`), prints it with the key upper-cased
/// (`amdsmi_cli/amdsmi_logger.py:96`) and returns normally (`amdsmi_commands.py:4424`); a library
/// exception that reaches `main` is printed, not turned into an exit status (`amdsmi_cli/amdsmi_cli.py:134-138`).
/// So exit 0 says nothing: only the success line for the one GPU `-g <BDF>` named does. `Err` with why.
pub fn amd_smi_said(stdout: &str, stderr: &str) -> Result<(), String> {
    let results: Vec<&str> = stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            k.trim().eq_ignore_ascii_case("gpu_reset").then(|| v.trim())
        })
        .collect();
    match results.as_slice() {
        ["Successfully reset GPU"] => Ok(()),
        [] => {
            let said = clean(
                if stdout.trim().is_empty() {
                    stderr
                } else {
                    stdout
                },
                200,
            );
            Err(format!(
                "amd-smi printed no GPU_RESET result for the GPU (it said: \"{said}\"), so it did not say \
                 the GPU was reset"
            ))
        }
        [one] => Err(format!(
            "amd-smi reported \"{}\" for the GPU (it exits 0 after a failed reset)",
            clean(one, 120)
        )),
        many => Err(format!(
            "amd-smi printed {} GPU_RESET results for one -g <BDF>, so which GPU was reset is not known",
            many.len()
        )),
    }
}

/// `GPU reset end with ret = N` (amdgpu_device.c:6148 in Linux 6.12, `amdgpu_device_gpu_recover`'s last
/// line, per device of the hive): the `ret` of a line naming `bdf`. A narrow matcher of the reset code's own;
/// the shared grammar does not classify this line.
fn reset_end_ret(text: &str, bdfs: &BTreeSet<String>) -> Option<(String, i64)> {
    const END: &str = "GPU reset end with ret = ";
    let at = text.find(END)?;
    let ret = text[at + END.len()..].trim().parse().ok()?;
    let bdf = bdfs
        .iter()
        .find(|b| text[..at].contains(&format!("{b}: ")))?;
    Some((bdf.clone(), ret))
}

/// The kernel's reset lines for the hive since the reset started, quoted. Only a success line naming the
/// target GPU's own PCI address (`GPU reset(N) succeeded!` or `GPU reset end with ret = 0`) verifies
/// the reset; a `failed` line blocks; no line, or an unreadable log, is "not verified" (amd-smi's exit
/// status does not tell, see [`amd_smi_said`]).
fn check_kernel_log(
    target: &str,
    bdfs: &BTreeSet<String>,
    before: Option<&KernelLogFacts>,
    after: &Reading<KernelLogFacts>,
) -> Check {
    use crate::kernel_log::grammar::{AmdKind, parse_amdgpu};
    const NAME: &str = "kernel_log_reset";
    let after = match after {
        Reading::Ok(a) => a,
        Reading::Err(e) => {
            return Check::block(
                NAME,
                format!(
                    "the kernel log could not be read after the reset ({}): that {target} was reset is not \
                     verified",
                    crate::analysis::error_name(e.error)
                ),
            );
        }
    };
    let mut quoted = Vec::new();
    let (mut ok, mut failed) = (false, false);
    for text in super::kernel_lines::since(before, after) {
        if let Some((pci, ret)) = reset_end_ret(&text, bdfs) {
            if ret != 0 {
                failed = true;
            } else if pci == target {
                ok = true;
            }
            if quoted.len() < MAX_QUOTED {
                quoted.push(format!("\"{pci}: GPU reset end with ret = {ret}\""));
            }
            continue;
        }
        let Some(line) = parse_amdgpu(&text) else {
            continue;
        };
        // A line that names no GPU is no GPU's reset.
        let Some(pci) = line.pci.as_ref().filter(|p| bdfs.contains(*p)) else {
            continue;
        };
        match line.kind {
            AmdKind::ResetSucceeded if pci == target => ok = true,
            AmdKind::ResetSucceeded => {}
            AmdKind::ResetFailed => failed = true,
            // amdgpu_device_gpu_recover prints it only for a nonzero result (amdgpu_device.c).
            AmdKind::ResetEnd { ret } if ret != 0 => failed = true,
            AmdKind::ResetBegin | AmdKind::ResetMethod { .. } | AmdKind::VramLost => {}
            _ => continue,
        }
        if quoted.len() < MAX_QUOTED {
            quoted.push(format!("\"{pci}: {}\"", clean(&line.text, 160)));
        }
    }
    let lines = quoted.join(", ");
    if failed {
        Check::block(
            NAME,
            format!(
                "the kernel logged a failed reset: {lines}. A failed reset leaves the GPU dead until the node \
                 reboots: drain and reboot it"
            ),
        )
    } else if ok {
        Check::pass(NAME, format!("the kernel logged: {lines}"))
    } else if quoted.is_empty() {
        Check::block(
            NAME,
            format!(
                "the kernel log shows no GPU reset line for the hive since the reset started: that {target} \
                 was reset is not verified"
            ),
        )
    } else {
        Check::block(
            NAME,
            format!(
                "the kernel logged no reset success line for {target}, only: {lines}: the reset is not verified"
            ),
        )
    }
}

/// RAS and bad-page totals of one GPU: (ue, ce, de, retired, pending), `Err` with why where unreadable.
fn ras_totals(g: &GpuFacts) -> Result<[u64; 5], String> {
    let a = g.amd.as_ref().ok_or("no amdgpu facts")?;
    let ras = match &a.ras {
        Reading::Ok(r) => r,
        Reading::Err(e) => {
            return Err(format!(
                "RAS unreadable ({})",
                crate::analysis::error_name(e.error)
            ));
        }
    };
    let sum = |f: fn(&crate::facts::AmdRasBlockFacts) -> Option<u64>| {
        ras.blocks.iter().filter_map(f).sum::<u64>()
    };
    let (retired, pending) = match &a.bad_pages {
        Reading::Ok(b) => (u64::from(b.reserved), u64::from(b.pending)),
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported => (0, 0),
        Reading::Err(e) => {
            return Err(format!(
                "bad pages unreadable ({})",
                crate::analysis::error_name(e.error)
            ));
        }
    };
    Ok([
        sum(|b| b.ue),
        sum(|b| b.ce),
        sum(|b| b.de),
        retired,
        pending,
    ])
}

fn totals_text(t: &[u64; 5]) -> String {
    format!(
        "RAS ue {} ce {} de {}, bad pages {} retired {} pending",
        t[0], t[1], t[2], t[3], t[4]
    )
}

/// Judge the hive as re-read after the reset: every member back at its PCI address with the same
/// `unique_id`, its RAS and bad-page counters read back (compared with before), and the kernel's reset
/// lines since `log_before`.
pub fn verify(
    before: &NodeFacts,
    target: &str,
    members: &[u32],
    after: &NodeFacts,
    log_before: Option<&KernelLogFacts>,
    log_after: &Reading<KernelLogFacts>,
) -> Vec<Check> {
    let was: Vec<&GpuFacts> = before
        .gpus
        .iter()
        .filter(|g| members.contains(&g.index))
        .collect();
    let find = |g: &GpuFacts| {
        after
            .gpus
            .iter()
            .find(|a| !a.vendor.is_nvidia() && bdf(a).is_some() && bdf(a) == bdf(g))
    };
    let uid = |g: &GpuFacts| g.amd.as_ref().and_then(|a| a.unique_id.ok().cloned());
    let mut missing = Vec::new();
    let mut back = Vec::new();
    for g in &was {
        let b = bdf(g).unwrap_or("?");
        match find(g) {
            None => missing.push(format!(
                "GPU {} ({b}) is not in sysfs after the reset: drain the node and power-cycle it",
                g.index
            )),
            Some(a) if a.handle_error.is_some() => missing.push(format!(
                "GPU {} ({b}) does not answer after the reset ({})",
                g.index,
                a.handle_error
                    .as_ref()
                    .map_or("?", |e| crate::analysis::error_name(e.error))
            )),
            Some(a) if uid(g).is_some() && uid(a) != uid(g) => missing.push(format!(
                "GPU {} ({b}) came back as another device: unique_id {} (was {})",
                g.index,
                uid(a).unwrap_or_else(|| "unreadable".into()),
                uid(g).unwrap_or_default()
            )),
            Some(_) => back.push(g.index),
        }
    }
    let mut out = vec![if missing.is_empty() {
        Check::pass(
            "gpus_back",
            format!(
                "GPU {} back in sysfs at the same PCI addresses with the same unique_id",
                index_ranges(&back, ",")
            ),
        )
    } else {
        Check::block("gpus_back", missing.join(". "))
    }];
    let mut ras_lines: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut ras_status = CheckStatus::Pass;
    for g in &was {
        let Some(a) = find(g) else { continue };
        let line = match (ras_totals(g), ras_totals(a)) {
            (_, Err(why)) => {
                ras_status = CheckStatus::Warn;
                format!("{why} after the reset")
            }
            (Ok(b), Ok(n)) if b == n => format!("{}, as before", totals_text(&n)),
            (Ok(b), Ok(n)) => {
                if n[0] > b[0] || n[4] > b[4] {
                    ras_status = CheckStatus::Warn;
                }
                format!("{} (before: {})", totals_text(&n), totals_text(&b))
            }
            (Err(_), Ok(n)) => totals_text(&n),
        };
        ras_lines.entry(line).or_default().push(g.index);
    }
    if !ras_lines.is_empty() {
        let text = ras_lines
            .iter()
            .map(|(l, gpus)| format!("GPU {}: {l}", index_ranges(gpus, ",")))
            .collect::<Vec<_>>()
            .join(". ");
        out.push(Check::new("ras_read_back", ras_status, text));
    }
    let bdfs: BTreeSet<String> = was
        .iter()
        .filter_map(|g| bdf(g))
        .map(str::to_string)
        .collect();
    out.push(check_kernel_log(target, &bdfs, log_before, log_after));
    out
}

/// Whether an outcome's reset ran and nothing after it blocks.
pub fn verified(outcome: &ResetOutcome, reset_ok: bool) -> bool {
    reset_ok
        && outcome.error.is_none()
        && outcome
            .verification
            .iter()
            .all(|c| c.status != CheckStatus::Block)
}

#[cfg(test)]
pub(in crate::operator::reset) mod tests;

/// AMD behind the reset's seam.
pub struct Amd;

impl super::vendor::ResetVendor for Amd {
    fn preflight(&self, facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
        preflight(facts, g, req)
    }
    fn steps(&self, facts: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep> {
        steps(facts, g)
    }
    fn holders(
        &self,
        facts: &NodeFacts,
        scan: &DeviceHoldersFacts,
        g: &GpuFacts,
        self_pid: Option<u32>,
    ) -> Option<Said> {
        Some(said_on(facts, scan, g, self_pid))
    }
}
