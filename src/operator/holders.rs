//! Who holds a GPU, source by source: the kubelet's PodResources (device plugin assignments, and DRA
//! claims where it reports them), the API server's ResourceClaims on the node, and the node's own DRA
//! state (the GPU driver's registration and its per-claim CDI specs). Each source answers yes (it holds the
//! GPU), no (it vouches nothing it knows of holds it) or unknown (it cannot say, with why and the fix), and
//! an unknown answer is never read as no: [`Verdict::Free`] needs a "no" for each way a pod can hold a GPU
//! (a device plugin assignment, a DRA claim) and no "yes" from anyone.
//!
//! A "yes" from any source makes the GPU held, whatever the others say: the API server's and the node's
//! claims are read whatever the kubelet answered (a restarting kubelet hides nothing they name). A GPU no
//! source vouches for is [`Verdict::Unvouched`]: the destructive actions refuse it unless a person
//! overrides in the confirmation; the DCGM diagnostic leaves it alone.

use crate::attribution::AllocatedDevice;
use crate::attribution::device::{DeviceIdForm, ResourceKind};
use crate::attribution::dra::{self, KubeletClaims};
use crate::facts::{FieldErrorKind, GpuVendor, NodeFacts, Reading};

/// A source the destructive preflights ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// PodResources `List`: the device plugins' assignments.
    KubeletDevicePlugins,
    /// PodResources `List`'s DRA claims (`dynamic_resources`).
    KubeletClaims,
    /// The ResourceClaims the API server has allocated on the node (given by the launcher).
    ApiServerClaims,
    /// The node's DRA state: GPU drivers registered with the kubelet, their per-claim CDI specs.
    NodeClaimSpecs,
}

impl Source {
    /// How answers and the audit name it.
    pub fn name(self) -> &'static str {
        match self {
            Source::KubeletDevicePlugins => "kubelet PodResources (device plugins)",
            Source::KubeletClaims => "kubelet PodResources (DRA claims)",
            Source::ApiServerClaims => "API server ResourceClaims",
            Source::NodeClaimSpecs => "node DRA driver state and CDI claim specs",
        }
    }

    /// The way of holding a GPU it answers for.
    fn covers(self) -> Way {
        match self {
            Source::KubeletDevicePlugins => Way::DevicePlugin,
            _ => Way::DraClaim,
        }
    }
}

/// The ways a pod holds a GPU; each needs a source that says "no" before a GPU is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    DevicePlugin,
    DraClaim,
}

/// One source's answer. Deliberately no `Default`, no `bool`: a caller matches all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It holds the GPU: each holder in words.
    Yes(Vec<String>),
    /// Nothing it answers for holds the GPU: what it read.
    No(String),
    /// It cannot say.
    Unknown { why: String, fix: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAnswer {
    pub source: Source,
    pub answer: Answer,
}

/// A source that could not answer, and how to make it answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub source: Source,
    pub why: String,
    pub fix: String,
}

/// Every source's answer on one GPU, combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some source says a pod holds it: each holder, prefixed by the source. Never overridden.
    Held(Vec<String>),
    /// Every way of holding it has a source that says no, and none says yes.
    Free,
    /// No source says yes, and no source vouches for at least one way of holding it.
    Unvouched(Vec<Unanswered>),
}

/// The answers on GPU `gpu` and their verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holders {
    pub answers: Vec<SourceAnswer>,
    pub verdict: Verdict,
}

impl Holders {
    /// The sources' answers in one line: `kubelet PodResources (device plugins): no (...); ...`.
    pub fn evidence(&self) -> String {
        self.answers
            .iter()
            .map(|a| {
                let said = match &a.answer {
                    Answer::Yes(h) => format!("yes: {}", h.join("; ")),
                    Answer::No(what) => format!("no ({what})"),
                    Answer::Unknown { why, .. } => format!("unknown ({why})"),
                };
                format!("{}: {said}", a.source.name())
            })
            .collect::<Vec<_>>()
            .join(". ")
    }
}

/// Combine the answers: any yes holds; else each way needs a no; else the unknown sources of the ways no
/// one vouched for.
pub fn verdict(answers: &[SourceAnswer]) -> Verdict {
    let held: Vec<String> = answers
        .iter()
        .flat_map(|a| match &a.answer {
            Answer::Yes(h) => h
                .iter()
                .map(|h| format!("{}: {h}", a.source.name()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    if !held.is_empty() {
        return Verdict::Held(held);
    }
    let mut unanswered = Vec::new();
    for (way, stand_in) in [
        (Way::DevicePlugin, Source::KubeletDevicePlugins),
        (Way::DraClaim, Source::KubeletClaims),
    ] {
        let of_way: Vec<&SourceAnswer> = answers
            .iter()
            .filter(|a| a.source.covers() == way)
            .collect();
        if of_way.iter().any(|a| matches!(a.answer, Answer::No(_))) {
            continue;
        }
        if of_way.is_empty() {
            unanswered.push(Unanswered {
                source: stand_in,
                why: "not asked".into(),
                fix: "collect the kubelet's and the node's facts".into(),
            });
        }
        unanswered.extend(of_way.iter().filter_map(|a| match &a.answer {
            Answer::Unknown { why, fix } => Some(Unanswered {
                source: a.source,
                why: why.clone(),
                fix: fix.clone(),
            }),
            _ => None,
        }));
    }
    if unanswered.is_empty() {
        Verdict::Free
    } else {
        Verdict::Unvouched(unanswered)
    }
}

/// What restarts a kubelet that does not answer.
const KUBELET_FIX: &str = "restart the kubelet or wait until it serves its PodResources socket again \
(`systemctl status kubelet` on the node), then call again";
/// How a person goes ahead without a source.
pub const OVERRIDE_FIX: &str = "or, if you know no pod holds the GPU, have a person override this in the \
confirmation (a client with elicitation or input requests; the `confirm` argument cannot override)";

/// Ask every source about GPU `gpu`. `None` where the kubelet was not asked at all (a scenario without
/// its facts): nothing is judged then.
pub fn ask(facts: &NodeFacts, gpu: u32) -> Option<Holders> {
    if let Reading::Err(e) = &facts.pod_resources
        && e.error == FieldErrorKind::NotCollected
    {
        return None;
    }
    let answers = vec![
        kubelet_device_plugins(facts, gpu),
        kubelet_claims(facts, gpu),
        api_server_claims(facts, gpu),
        node_claim_specs(facts, gpu),
    ];
    let verdict = verdict(&answers);
    Some(Holders { answers, verdict })
}

fn kubelet_down(facts: &NodeFacts, source: Source) -> Option<SourceAnswer> {
    let Reading::Err(e) = &facts.pod_resources else {
        return None;
    };
    // The kind only: the full error names host paths; the allocation tool says more.
    Some(SourceAnswer {
        source,
        answer: Answer::Unknown {
            why: format!(
                "the kubelet's PodResources did not answer ({})",
                crate::analysis::error_name(e.error)
            ),
            fix: KUBELET_FIX.into(),
        },
    })
}

/// A device that is this GPU, or may be (a GPU driver's device not tied to a GPU; not a passthrough GPU,
/// which NVML does not see).
fn on_gpu(d: &AllocatedDevice, gpu: u32) -> Option<&'static str> {
    match d.gpu_index {
        Some(i) if i == gpu => Some(""),
        Some(_) => None,
        None if d.form == Some(DeviceIdForm::DraPassthrough) => None,
        None if d.resource == ResourceKind::Claim => {
            Some("could not be tied to a GPU, so it may be this one: ")
        }
        None => None,
    }
}

fn device_note(d: &AllocatedDevice) -> String {
    match (&d.gpu_index, &d.error) {
        (None, Some(e)) => format!(" ({e})"),
        _ => String::new(),
    }
}

/// GPU `gpu`'s vendor (`None`: no such GPU, so any vendor's device may be it).
fn gpu_vendor(facts: &NodeFacts, gpu: u32) -> Option<GpuVendor> {
    facts.gpus.iter().find(|g| g.index == gpu).map(|g| g.vendor)
}

/// A device plugin resource's vendor; `None`: not a GPU resource (the vendors' table says which are).
fn resource_vendor(name: &str) -> Option<GpuVendor> {
    crate::facts::gpu_resource_vendor(name)
}

fn kubelet_device_plugins(facts: &NodeFacts, gpu: u32) -> SourceAnswer {
    let source = Source::KubeletDevicePlugins;
    if let Some(a) = kubelet_down(facts, source) {
        return a;
    }
    let Reading::Ok(pr) = &facts.pod_resources else {
        unreachable!("kubelet_down answers every error")
    };
    let vendor = gpu_vendor(facts, gpu);
    let mut held = Vec::new();
    // A GPU vendor's device the probe cannot place (`amdgpu_xcp_5` while the partitions are unreadable, an
    // id of no form it knows) may be this GPU: unknown for every GPU of that vendor, never skipped.
    let mut unplaced = Vec::new();
    for p in &pr.pods {
        for c in &p.containers {
            let placed: Vec<_> = crate::attribution::gpu_devices(&c.devices, &facts.gpus).collect();
            for d in &placed {
                if d.gpu_index == Some(gpu) {
                    held.push(format!(
                        "{}/{} (container {}) holds it through {} {}",
                        p.namespace, p.name, c.name, d.resource_name, d.device_id
                    ));
                }
            }
            for cd in &c.devices {
                let Some(of) = resource_vendor(&cd.resource_name) else {
                    continue;
                };
                if vendor.is_some_and(|v| v != of) {
                    continue;
                }
                for id in &cd.device_ids {
                    let at = placed
                        .iter()
                        .find(|d| d.resource_name == cd.resource_name && d.device_id == *id);
                    if at.is_some_and(|d| d.gpu_index.is_some()) {
                        continue;
                    }
                    unplaced.push(format!(
                        "{}/{} (container {}) holds {} {}{}",
                        p.namespace,
                        p.name,
                        c.name,
                        cd.resource_name,
                        id,
                        at.map(device_note).unwrap_or_default()
                    ));
                }
            }
        }
    }
    let answer = if !held.is_empty() {
        Answer::Yes(held)
    } else if !unplaced.is_empty() {
        let (which, fix) = match vendor {
            Some(GpuVendor::Nvidia) => ("NVIDIA GPU", "make NVML readable to the probe"),
            Some(GpuVendor::Amd) => (
                "AMD GPU",
                "make amdgpu's sysfs and partition files readable to the probe",
            ),
            // Habana's plugin names a device by HLML's serial, which the driver's sysfs does not print.
            Some(GpuVendor::Intel) => (
                "Intel Gaudi",
                "give the probe the Gaudi serials (HLML, `hl-smi -L` on the node)",
            ),
            Some(GpuVendor::Neuron) => {
                ("AWS Neuron device", "compare with `neuron-ls` on the node")
            }
            None => ("GPU", "make the GPUs' identities readable to the probe"),
        };
        Answer::Unknown {
            why: format!(
                "device(s) the probe could not place on a GPU, so any {which} here may be theirs: {}",
                unplaced.join("; ")
            ),
            fix: format!("{fix}, or drain those pods"),
        }
    } else {
        Answer::No(format!(
            "{} active pod(s) listed, none assigned this GPU",
            pr.pods.len()
        ))
    };
    SourceAnswer { source, answer }
}

fn kubelet_claims(facts: &NodeFacts, gpu: u32) -> SourceAnswer {
    let source = Source::KubeletClaims;
    if let Some(a) = kubelet_down(facts, source) {
        return a;
    }
    let Reading::Ok(pr) = &facts.pod_resources else {
        unreachable!("kubelet_down answers every error")
    };
    let mut held = Vec::new();
    for p in &pr.pods {
        for c in &p.containers {
            for cl in &c.claims {
                for d in cl
                    .devices
                    .iter()
                    .filter_map(|d| dra::claim_device(cl, d, &facts.gpus))
                {
                    if let Some(may) = on_gpu(&d, gpu) {
                        held.push(format!(
                            "{may}{}/{} (container {}) holds {} device {} through DRA claim {}/{}{}",
                            p.namespace,
                            p.name,
                            c.name,
                            d.resource_name,
                            d.device_id,
                            cl.namespace,
                            cl.name,
                            device_note(&d)
                        ));
                    }
                }
            }
        }
    }
    let answer = if !held.is_empty() {
        Answer::Yes(held)
    } else {
        match dra::kubelet_claims(pr) {
            KubeletClaims::Reported(how) => Answer::No(format!("no DRA claim on this GPU; {how}")),
            KubeletClaims::NotReported(why) | KubeletClaims::Unknown(why) => Answer::Unknown {
                why,
                fix: format!(
                    "turn on the kubelet's {} (on by default from 1.34) so it names the pods' DRA claims",
                    dra::DRA_GATE
                ),
            },
        }
    };
    SourceAnswer { source, answer }
}

fn api_server_claims(facts: &NodeFacts, gpu: u32) -> SourceAnswer {
    let source = Source::ApiServerClaims;
    let Some(claims) = &facts.api_claims else {
        return SourceAnswer {
            source,
            answer: Answer::Unknown {
                why: "the API server's ResourceClaims on this node were not read (local mode, the DRA API \
                      not readable, or more claims than the probe is given)"
                    .into(),
                fix: "run through a launcher whose role may list resource.k8s.io resourceclaims, or check \
                      `kubectl get resourceclaims -A` for claims allocated on this node"
                    .into(),
            },
        };
    };
    let mut held = Vec::new();
    for c in claims {
        for dev in &c.devices {
            let Some((driver, name)) = dev.split_once('/') else {
                continue;
            };
            if !dra::GPU_DRIVERS.contains(&driver) {
                continue;
            }
            let d = dra::located(driver, name, &facts.gpus);
            let Some(may) = on_gpu(&d, gpu) else {
                continue;
            };
            let pods = if c.pods.is_empty() {
                "reserved for no pod".to_string()
            } else {
                format!(
                    "reserved for {}",
                    c.pods
                        .iter()
                        .map(|p| format!("{}/{}", c.namespace, p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            held.push(format!(
                "{may}DRA claim {}/{} ({pods}) holds {driver} device {name}{}",
                c.namespace,
                c.name,
                device_note(&d)
            ));
        }
    }
    SourceAnswer {
        source,
        answer: if held.is_empty() {
            Answer::No(format!(
                "{} GPU claim(s) allocated on this node, none on this GPU",
                claims.len()
            ))
        } else {
            Answer::Yes(held)
        },
    }
}

fn node_claim_specs(facts: &NodeFacts, gpu: u32) -> SourceAnswer {
    let source = Source::NodeClaimSpecs;
    let host = match &facts.dra {
        Reading::Ok(h) => h,
        Reading::Err(e) => {
            return SourceAnswer {
                source,
                answer: Answer::Unknown {
                    why: format!(
                        "the node's DRA driver registrations and CDI specs were not read ({})",
                        crate::analysis::error_name(e.error)
                    ),
                    fix: "run the probe with the host's root (the kubelet's plugins_registry, /etc/cdi and \
                          /var/run/cdi) readable"
                        .into(),
                },
            };
        }
    };
    // The per-claim CDI specs the probe reads are NVIDIA's (`k8s.gpu.nvidia.com-claim_<uid>.yaml`): they
    // show NVIDIA's claims only. An AMD GPU is answered by AMD's driver's registration alone: registered,
    // its claims are not visible here, so unknown; a node source vouches only for drivers whose claims it
    // can see.
    let vendor = gpu_vendor(facts, gpu);
    let registered = |d: &str| host.registered.iter().any(|r| r == d);
    let other = match vendor {
        Some(GpuVendor::Amd) => Some(("AMD's", dra::AMD_DRIVER, "AMD GPUs")),
        Some(GpuVendor::Intel) => Some(("Intel's Gaudi", dra::GAUDI_DRIVER, "Gaudi devices")),
        _ => None,
    };
    if let Some((whose, driver, what)) = other {
        let answer = if registered(driver) {
            Answer::Unknown {
                why: format!(
                    "{whose} DRA driver {driver} is registered here and the node's files show none of its \
                     claims (the claim specs read are NVIDIA's): they cannot say which {what} are claimed"
                ),
                fix: dra::UNNAMED_FIX.into(),
            }
        } else {
            Answer::No(format!(
                "{whose} DRA driver {driver} is not registered with the kubelet"
            ))
        };
        return SourceAnswer { source, answer };
    }
    let nvidia = vendor.map(|v| v.is_nvidia());
    let mut held = Vec::new();
    for s in &host.claim_specs {
        for name in &s.devices {
            let d = dra::located(dra::GPU_DRIVERS[0], name, &facts.gpus);
            if let Some(may) = on_gpu(&d, gpu) {
                held.push(format!(
                    "{may}DRA claim {} was prepared for device {name} ({}){}",
                    s.claim_uid,
                    s.file,
                    device_note(&d)
                ));
            }
        }
    }
    // For an NVIDIA GPU only NVIDIA's driver counts; a GPU not found here: any GPU driver.
    let gpu_driver = host.registered.iter().find(|r| match nvidia {
        Some(true) => r.as_str() == dra::GPU_DRIVERS[0],
        _ => dra::GPU_DRIVERS.contains(&r.as_str()),
    });
    let amd_unseen =
        nvidia.is_none() && (registered(dra::AMD_DRIVER) || registered(dra::GAUDI_DRIVER));
    let answer = if !held.is_empty() {
        Answer::Yes(held)
    } else if !host.claim_specs.is_empty() && !amd_unseen {
        // The driver writes a spec per claim it prepares: a claim on this GPU would have one.
        Answer::No(format!(
            "{} GPU claim spec(s) on the node, none for this GPU",
            host.claim_specs.len()
        ))
    } else if let Some(d) = gpu_driver {
        Answer::Unknown {
            why: format!(
                "the DRA driver {d} is registered here and wrote no per-claim CDI spec (NVIDIA's driver \
                 before v25.12 writes none for a plain GPU claim): the node's files cannot say which GPUs \
                 are claimed"
            ),
            fix: dra::UNNAMED_FIX.into(),
        }
    } else {
        Answer::No(
            "no GPU DRA driver is registered with the kubelet and no GPU claim spec is on the node"
                .into(),
        )
    };
    SourceAnswer { source, answer }
}

/// A destructive action's check of GPU `gpu`'s holders. Free passes; held blocks, never overridden (`fix`
/// says what to do instead); unvouched blocks with its unknown sources set (which a person may override),
/// or, where a person did (`overridden`), warns with what was not known.
pub fn check(
    name: &str,
    gpu: u32,
    holders: &Holders,
    overridden: bool,
    fix: &str,
) -> crate::operator::Check {
    use crate::operator::Check;
    match &holders.verdict {
        Verdict::Free => Check::pass(
            name,
            format!(
                "no source names a holder of GPU {gpu}: {}",
                holders.evidence()
            ),
        ),
        Verdict::Held(h) => Check::block(name, format!("{}. {fix}", h.join("; "))),
        Verdict::Unvouched(u) => {
            let what = u
                .iter()
                .map(|u| format!("{}: {}", u.source.name(), u.why))
                .collect::<Vec<_>>()
                .join("; ");
            let items: Vec<String> = u
                .iter()
                .map(|u| format!("GPU {gpu}: {}: {}", u.source.name(), u.why))
                .collect();
            if overridden {
                let mut c = Check::warn(
                    name,
                    format!(
                        "OVERRIDDEN by the person who confirmed: who holds GPU {gpu} is not known ({what})"
                    ),
                );
                c.unknown_holders = items;
                return c;
            }
            let fixes = u
                .iter()
                .map(|u| format!("{}: {}", u.source.name(), u.fix))
                .collect::<Vec<_>>()
                .join("; ");
            let mut c = Check::block(
                name,
                format!(
                    "no source can vouch that no pod holds GPU {gpu} and none names a holder: {what}. Fix: \
                     {fixes}; {OVERRIDE_FIX}"
                ),
            );
            c.unknown_sources = u.iter().map(|u| u.source.name().to_string()).collect();
            c.unknown_sources.dedup();
            c.unknown_holders = items;
            c
        }
    }
}

#[cfg(test)]
mod tests;
