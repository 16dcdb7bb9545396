//! GPUs allocated through DRA (Dynamic Resource Allocation): the kubelet's `dynamic_resources` per
//! container, joined to this node's GPUs by the GPU driver's device names, and the claims a driver
//! prepared here that the kubelet did not report (its per-claim CDI specs).
//!
//! NVIDIA's GPU driver (`gpu.nvidia.com`, NVIDIA/k8s-dra-driver-gpu `cmd/gpu-kubelet-plugin`) names a
//! whole GPU `gpu-<minor>` (`deviceinfo.go`, `CanonicalName`: the minor of `/dev/nvidia<minor>`, not the
//! NVML index), a MIG device `gpu-<parent minor>-mig-<profile>-<profile id>-<placement start>`
//! (`mig.go`, `ToCanonicalName`) and a passthrough GPU `gpu-vfio-<index>` (not visible to NVML).
//!
//! AMD's GPU driver (`gpu.amd.com`, ROCm/k8s-gpu-dra-driver, `docs/`) names a whole GPU or a compute
//! partition `gpu-<cardIndex>-<renderIndex>` (`card1`, `renderD128`: `gpu-1-128`), with the GPU's PCI
//! address in its `pciAddr` attribute (a partition's parent in `parentPciAddr`); the render minor is
//! unique on the node, so it alone names the GPU or partition.
//!
//! Intel's Gaudi driver (`gaudi.intel.com`, intel/intel-resource-drivers-for-kubernetes `pkg/gaudi`,
//! `DeviceUIDFromPCIinfo`) names a device by its PCI address with `:` and `.` made `-`, then `-` and the
//! PCI device id: `0000:b3:00.0` + `0x1020` is `0000-b3-00-0-0x1020`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::assigned::{AllocatedDevice, ClaimRef, ContainerAllocation, PodAllocation};
use super::device::{DeviceIdForm, MigRef, ResourceKind};
use crate::facts::vendor;
use crate::facts::{
    ApiClaimFacts, ClaimFacts, DraHostFacts, GpuFacts, GpuVendor, NodeFacts, Reading,
};

/// NVIDIA's GPU DRA driver (the vendors' table, [`crate::facts::vendor`], lists every vendor's).
pub const NVIDIA_DRIVER: &str = vendor::NVIDIA.dra_drivers[0];

/// AMD's GPU DRA driver.
pub const AMD_DRIVER: &str = vendor::AMD.dra_drivers[0];

/// Intel's Gaudi DRA driver.
pub const GAUDI_DRIVER: &str = vendor::INTEL_GAUDI.dra_drivers[0];

/// DRA drivers whose devices are GPUs, NVIDIA's first (what callers that mean NVIDIA's index).
pub const GPU_DRIVERS: &[&str] = &[NVIDIA_DRIVER, AMD_DRIVER, GAUDI_DRIVER];

/// Whether a DRA driver's devices are GPUs.
pub fn is_gpu_driver(driver: &str) -> bool {
    GpuVendor::of_dra_driver(driver).is_some()
}

/// The CDI kind of NVIDIA's per-claim specs: ids are `k8s.gpu.nvidia.com/claim=<claim uid>-<device>`.
const NVIDIA_CLAIM_CDI_KIND: &str = "k8s.gpu.nvidia.com/claim";

/// The CDI kind of the base spec NVIDIA's driver wrote up to v25.8 (`k8s.gpu.nvidia.com-device_base.yaml`):
/// ids are `k8s.gpu.nvidia.com/device=<device>` (`cmd/gpu-kubelet-plugin/cdi.go`).
const NVIDIA_DEVICE_CDI_KIND: &str = "k8s.gpu.nvidia.com/device";

/// Whether the kubelet's PodResources answer carries DRA claims, known from its own answer or its gate,
/// never from another gate (`Get` being served is `KubeletPodResourcesGet`, not DRA's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletClaims {
    /// It does: how that is known.
    Reported(String),
    /// It does not (its DRA gate is off): where that was read.
    NotReported(String),
    /// Its answer names no claim and nothing on the node says whether it would: why.
    Unknown(String),
}

/// The gate whose off state leaves `dynamic_resources` empty without an error (kubelet
/// `pkg/kubelet/apis/podresources/server_v1.go`; alpha and off 1.27-1.33, beta and on 1.34-1.35, GA 1.36:
/// kubernetes/website feature-gates page).
pub const DRA_GATE: &str = "KubeletPodResourcesDynamicResources";

pub fn kubelet_claims(p: &crate::facts::PodResourcesFacts) -> KubeletClaims {
    let named = p
        .pods
        .iter()
        .flat_map(|p| &p.containers)
        .any(|c| !c.claims.is_empty());
    if named {
        return KubeletClaims::Reported("its List answer names DRA claims".into());
    }
    match &p.dra_gate {
        Some(g) if g.enabled => KubeletClaims::Reported(format!("{DRA_GATE} is on ({})", g.from)),
        Some(g) => KubeletClaims::NotReported(format!(
            "{DRA_GATE} is off ({}): the kubelet leaves DRA claims out of its answer",
            g.from
        )),
        None => KubeletClaims::Unknown(format!(
            "the kubelet's answer names no DRA claim, and that means \"none\" only where {DRA_GATE} is on \
             (on by default from 1.34, off 1.27-1.33); neither its command line nor its config file sets the \
             gate, and its version is not known here"
        )),
    }
}

/// DRA as this node shows it; absent from the report where no DRA driver or claim is seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DraAllocation {
    /// DRA drivers registered with the kubelet.
    pub registered: Vec<String>,
    /// GPU claims the kubelet reported in use by containers.
    pub claims_reported: usize,
    /// Claims a GPU driver prepared here (its CDI spec) that the kubelet did not report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreported_claims: Vec<UnreportedClaim>,
    /// Why the kubelet's answer leaves GPUs held through DRA unnamed; absent when it names them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Why no source on the node names the claims a registered GPU driver may hold: any GPU may be
    /// claimed, so no process is judged against the assignment and no GPU reads free. Absent when a source
    /// names them (the kubelet reports DRA claims, or the driver's per-claim CDI specs are there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unnamed: Option<String>,
    /// Claims the API server has allocated on this node, used because the kubelet named none: they name
    /// the holders (pods, not containers). Absent when the API server was not read or not needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_from_api_server: Option<usize>,
}

/// The fix for [`DraAllocation::unnamed`], said wherever it blocks.
pub const UNNAMED_FIX: &str = "turn on the kubelet's KubeletPodResourcesDynamicResources (beta and on by \
default since 1.34; alpha before) so it names the pods' DRA claims, or check `kubectl get resourceclaims -A` \
for claims allocated on this node and drain their pods";

/// A prepared claim known only from its driver's CDI spec: its GPUs are held, by a pod not named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnreportedClaim {
    pub claim_uid: String,
    /// The CDI spec file, relative to the host root.
    pub file: String,
    pub devices: Vec<AllocatedDevice>,
}

/// Where an NVIDIA DRA device name points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaDevice {
    pub minor: u32,
    /// A MIG device of that GPU.
    pub mig: bool,
}

/// Parse `gpu-<minor>` or `gpu-<minor>-mig-...`; an error says why the name points to no NVML GPU.
pub fn parse_nvidia_device(name: &str) -> Result<NvidiaDevice, String> {
    let rest = name
        .strip_prefix("gpu-")
        .ok_or_else(|| format!("`{name}` is not a GPU device name of gpu.nvidia.com"))?;
    if rest.starts_with("vfio-") {
        return Err(format!(
            "`{name}` is a GPU passed through to a VM (vfio): NVML on this node does not see it"
        ));
    }
    let (minor, tail) = match rest.split_once('-') {
        Some((m, t)) => (m, Some(t)),
        None => (rest, None),
    };
    let minor: u32 = minor
        .parse()
        .map_err(|_| format!("`{name}`: no GPU minor number after `gpu-`"))?;
    match tail {
        None => Ok(NvidiaDevice { minor, mig: false }),
        Some(t) if t.starts_with("mig-") => Ok(NvidiaDevice { minor, mig: true }),
        Some(_) => Err(format!(
            "`{name}` is not a GPU device name of gpu.nvidia.com"
        )),
    }
}

/// One DRA device of a container's claim, located on this node; `None` for drivers that are not GPUs.
pub fn claim_device(
    claim: &ClaimFacts,
    d: &crate::facts::ClaimDeviceFacts,
    gpus: &[GpuFacts],
) -> Option<AllocatedDevice> {
    // Kubelets 1.27-1.30 report a claim's devices by their CDI ids alone (`ClaimResource.cdi_devices`; the
    // driver, pool and device fields came in 1.31): the id names the driver's device.
    let (driver, device) = if d.driver.is_empty() && d.device.is_empty() {
        device_of_cdi_ids(&d.cdi_ids)?
    } else {
        (d.driver.clone(), d.device.clone())
    };
    if !is_gpu_driver(&driver) {
        return None;
    }
    let mut out = located(&driver, &device, gpus);
    out.claim = Some(ClaimRef {
        namespace: claim.namespace.clone(),
        name: claim.name.clone(),
        pool: d.pool.clone(),
        cdi_ids: d.cdi_ids.clone(),
        from_api_server: false,
    });
    Some(out)
}

/// The API server's claims as holders, for a kubelet that names none: each reserved pod holds the
/// claim's GPUs (in any of its containers); a claim reserved for no pod still holds them (returned, to be
/// listed as unreported).
pub fn add_api_claims(
    claims: &[ApiClaimFacts],
    gpus: &[GpuFacts],
    pods: &mut Vec<PodAllocation>,
) -> Vec<UnreportedClaim> {
    let mut unreserved = Vec::new();
    for c in claims {
        let devices: Vec<AllocatedDevice> = c
            .devices
            .iter()
            .filter_map(|d| d.split_once('/'))
            .filter(|(driver, _)| is_gpu_driver(driver))
            .map(|(driver, dev)| {
                let mut out = located(driver, dev, gpus);
                out.claim = Some(ClaimRef {
                    namespace: c.namespace.clone(),
                    name: c.name.clone(),
                    pool: String::new(),
                    cdi_ids: Vec::new(),
                    from_api_server: true,
                });
                out
            })
            .collect();
        if devices.is_empty() {
            continue;
        }
        if c.pods.is_empty() {
            unreserved.push(UnreportedClaim {
                claim_uid: format!("{}/{}", c.namespace, c.name),
                file: "API server: allocated on this node, reserved for no pod".into(),
                devices,
            });
            continue;
        }
        for p in &c.pods {
            let at = match pods
                .iter()
                .position(|x| x.namespace == c.namespace && x.name == p.name)
            {
                Some(i) => i,
                None => {
                    pods.push(PodAllocation {
                        namespace: c.namespace.clone(),
                        name: p.name.clone(),
                        uid: (!p.uid.is_empty()).then(|| p.uid.clone()),
                        containers: Vec::new(),
                    });
                    pods.len() - 1
                }
            };
            pods[at].containers.push(ContainerAllocation {
                name: String::new(),
                started_unix: None,
                devices: devices.clone(),
            });
        }
    }
    unreserved
}

/// Where an AMD DRA device name points: `gpu-<card>-<render minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdDevice {
    pub card: u32,
    pub render_minor: u32,
}

/// Parse `gpu-<cardIndex>-<renderIndex>`; an error says why the name points to no GPU here (the
/// driver's auto-partition names, `gpu-<index>-<cp>-<nps>`, name a partition not yet made).
pub fn parse_amd_device(name: &str) -> Result<AmdDevice, String> {
    let not =
        || format!("`{name}` is not a device name of {AMD_DRIVER} (gpu-<card>-<renderD minor>)");
    let rest = name.strip_prefix("gpu-").ok_or_else(not)?;
    let (card, render) = rest.split_once('-').ok_or_else(not)?;
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match (num(card), num(render)) {
        (Some(card), Some(render_minor)) => Ok(AmdDevice { card, render_minor }),
        (Some(_), None) if render.contains('-') => Err(format!(
            "`{name}` is an auto-partition device of {AMD_DRIVER}: which partition it became is not in its name"
        )),
        _ => Err(not()),
    }
}

/// The PCI address in a `gaudi.intel.com` device name (`0000-b3-00-0-0x1020` -> `0000:b3:00.0`).
pub fn parse_gaudi_device(name: &str) -> Result<String, String> {
    let not =
        || format!("`{name}` is not a device name of {GAUDI_DRIVER} (<PCI address>-0x<device id>)");
    let parts: Vec<&str> = name.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [dom, bus, dev, func, id]
            if hex(dom, 4)
                && hex(bus, 2)
                && hex(dev, 2)
                && func.len() == 1
                && func.bytes().all(|b| (b'0'..=b'7').contains(&b))
                && id.strip_prefix("0x").is_some_and(|i| hex(i, 4)) =>
        {
            Ok(format!("{dom}:{bus}:{dev}.{func}").to_ascii_lowercase())
        }
        _ => Err(not()),
    }
}

/// An Intel Gaudi DRA device located by the PCI address its name carries.
fn locate_gaudi(out: &mut AllocatedDevice, device: &str, gpus: &[GpuFacts]) {
    let bdf = match parse_gaudi_device(device) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some(e);
            return;
        }
    };
    out.form = Some(DeviceIdForm::DraName);
    let bus_of = |g: &GpuFacts| g.pci_bus_id.ok().map(|b| b.to_ascii_lowercase());
    match gpus
        .iter()
        .find(|g| bus_of(g).as_deref() == Some(bdf.as_str()))
    {
        Some(g) => {
            out.gpu_index = Some(g.index);
            out.gpu_uuid = g.uuid.ok().cloned();
        }
        None => {
            out.error = Some(format!("no GPU on this node is at PCI address {bdf}"));
        }
    }
}

/// An AMD DRA device located by render minor: the GPU's own render node, or one of its partitions'.
fn locate_amd(out: &mut AllocatedDevice, device: &str, gpus: &[GpuFacts]) {
    let d = match parse_amd_device(device) {
        Ok(d) => d,
        Err(e) => {
            out.error = Some(e);
            return;
        }
    };
    out.form = Some(DeviceIdForm::DraName);
    let minors = |g: &GpuFacts| -> Vec<u32> {
        let Some(a) = g.amd.as_ref() else {
            return Vec::new();
        };
        a.render_minor
            .get()
            .into_iter()
            .chain(
                a.partition
                    .ok()
                    .into_iter()
                    .flat_map(|p| p.xcps.iter().filter_map(|x| x.render_minor)),
            )
            .collect()
    };
    match gpus.iter().find(|g| minors(g).contains(&d.render_minor)) {
        Some(g) => {
            out.gpu_index = Some(g.index);
            out.gpu_uuid = g.uuid.ok().cloned();
        }
        None if gpus.iter().any(|g| !minors(g).is_empty()) => {
            out.error = Some(format!(
                "no AMD GPU or partition on this node has render node renderD{}",
                d.render_minor
            ));
        }
        None => {
            out.error = Some(format!(
                "the AMD GPUs' render nodes are unknown here: cannot tell which GPU `{device}` is"
            ));
        }
    }
}

/// A GPU driver's device name, located by the GPUs' minor numbers (NVIDIA's) or render minors (AMD's).
pub(crate) fn located(driver: &str, device: &str, gpus: &[GpuFacts]) -> AllocatedDevice {
    let mut out = AllocatedDevice::unlocated(driver, ResourceKind::Claim, device);
    if driver == AMD_DRIVER {
        locate_amd(&mut out, device, gpus);
        return out;
    }
    if driver == GAUDI_DRIVER {
        locate_gaudi(&mut out, device, gpus);
        return out;
    }
    if is_passthrough(device) {
        out.form = Some(DeviceIdForm::DraPassthrough);
        return out;
    }
    match parse_nvidia_device(device) {
        Ok(n) => {
            out.form = Some(DeviceIdForm::DraName);
            let minor_of = |g: &GpuFacts| g.minor_number.as_ref().and_then(Reading::get);
            match gpus.iter().find(|g| minor_of(g) == Some(n.minor)) {
                Some(g) => {
                    out.gpu_index = Some(g.index);
                    out.gpu_uuid = g.uuid.ok().cloned();
                    // The name gives the profile and placement, not the GPU instance: any instance counts.
                    out.mig = n.mig.then(MigRef::default);
                }
                None if gpus.iter().any(|g| minor_of(g).is_some()) => {
                    out.error = Some(format!("no GPU on this node has minor number {}", n.minor));
                }
                None => {
                    out.error = Some(format!(
                        "the GPUs' minor numbers are unknown here: cannot tell which GPU `{device}` is"
                    ));
                }
            }
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// A passthrough GPU's DRA name (`gpu-vfio-<index>`, NVIDIA's driver v25.12+ with PassthroughSupport).
pub fn is_passthrough(device: &str) -> bool {
    device
        .strip_prefix("gpu-vfio-")
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The GPU driver's device that a claim's CDI ids name, for kubelets that give only those (1.27-1.30):
/// `k8s.gpu.nvidia.com/device=gpu-0` (base spec, up to v25.8) or `k8s.gpu.nvidia.com/claim=<uid>-gpu-0`
/// (per-claim spec). An NVIDIA id of another shape is kept, unlocated, so it still counts as a GPU held;
/// other vendors' ids are not GPUs of this driver.
fn device_of_cdi_ids(ids: &[String]) -> Option<(String, String)> {
    let driver = NVIDIA_DRIVER.to_string();
    for id in ids {
        if let Some(dev) = id
            .strip_prefix(NVIDIA_DEVICE_CDI_KIND)
            .and_then(|r| r.strip_prefix('='))
        {
            return Some((driver, dev.to_string()));
        }
        if let Some(uid) = claim_uid_of_cdi(id)
            && let Some(dev) = id.split_once('=').and_then(|(_, r)| r.get(uid.len() + 1..))
        {
            return Some((driver, dev.to_string()));
        }
    }
    ids.iter()
        .find(|id| id.starts_with("k8s.gpu.nvidia.com/"))
        .map(|id| (driver, id.clone()))
}

/// The claim UID in an NVIDIA claim CDI id (`k8s.gpu.nvidia.com/claim=<uid>-gpu-0`).
fn claim_uid_of_cdi(id: &str) -> Option<&str> {
    let rest = id.strip_prefix(NVIDIA_CLAIM_CDI_KIND)?.strip_prefix('=')?;
    rest.get(..36)
        .filter(|u| u.bytes().filter(|&b| b == b'-').count() == 4)
}

/// The DRA part of the report, or `None` where the node shows no DRA driver or claim.
pub fn summarize(
    facts: &NodeFacts,
    pods: &[PodAllocation],
    api_unreserved: Vec<UnreportedClaim>,
) -> Option<DraAllocation> {
    let host: Option<&DraHostFacts> = facts.dra.ok();
    let reported: Vec<&AllocatedDevice> = pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| &c.devices)
        .filter(|d| d.claim.as_ref().is_some_and(|c| !c.from_api_server))
        .collect();
    // The API server's claims count where the kubelet named none (they were added to `pods` then).
    let from_api = pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| &c.devices)
        .filter_map(|d| d.claim.as_ref().filter(|c| c.from_api_server))
        .map(|c| (c.namespace.as_str(), c.name.as_str()))
        .collect::<BTreeSet<_>>()
        .len()
        + api_unreserved.len();
    let api_read = facts.api_claims.is_some() && reported.is_empty();
    let reported_uids: BTreeSet<&str> = reported
        .iter()
        .flat_map(|d| d.claim.iter().flat_map(|c| &c.cdi_ids))
        .filter_map(|id| claim_uid_of_cdi(id))
        .collect();
    let claims_reported: BTreeSet<(&str, &str)> = reported
        .iter()
        .filter_map(|d| d.claim.as_ref())
        .map(|c| (c.namespace.as_str(), c.name.as_str()))
        .collect();
    // The GPUs the API server's claims give to pods it names (used only where the kubelet named none).
    let api_gpus: BTreeSet<u32> = pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| &c.devices)
        .filter(|d| d.claim.as_ref().is_some_and(|c| c.from_api_server))
        .filter_map(|d| d.gpu_index)
        .collect();
    let unreported_claims: Vec<UnreportedClaim> = host
        .map(|h| h.claim_specs.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|s| !reported_uids.contains(s.claim_uid.as_str()))
        .map(|s| UnreportedClaim {
            claim_uid: s.claim_uid.clone(),
            file: s.file.clone(),
            devices: s
                .devices
                .iter()
                .map(|d| located(NVIDIA_DRIVER, d, &facts.gpus))
                .collect(),
        })
        // A spec whose every GPU an API server claim gives to a named pod is that claim as the node shows
        // it: its pod is named, so it is not "unreported" (the spec carries the claim's UID, the API server's
        // list its name and pod; the GPUs join them).
        .filter(|u| {
            !(api_read
                && !u.devices.is_empty()
                && u.devices
                    .iter()
                    .all(|d| d.gpu_index.is_some_and(|i| api_gpus.contains(&i))))
        })
        .chain(api_unreserved)
        .collect();
    let registered = host.map(|h| h.registered.clone()).unwrap_or_default();
    if registered.is_empty()
        && claims_reported.is_empty()
        && unreported_claims.is_empty()
        && from_api == 0
    {
        return None;
    }
    let gpu_driver = registered.iter().find(|r| is_gpu_driver(r));
    // An empty DRA answer from the kubelet means "no claim" or "not reported" (the gate off: 1.27-1.33
    // by default), and NVIDIA's driver up to v25.8 writes no per-claim CDI spec for a plain GPU claim
    // (`cmd/gpu-kubelet-plugin/cdi.go`): with the driver registered and neither naming a claim, a claimed
    // GPU would read free. The API server's ResourceClaims name them; the node alone cannot.
    let host_specs = host.is_some_and(|h| !h.claim_specs.is_empty());
    // Only a kubelet known to report DRA claims (its answer carries one, or its DRA gate is on) says
    // "no claim" by naming none; serving Get is another gate and says nothing of it.
    let reports_claims = facts
        .pod_resources
        .ok()
        .is_some_and(|p| matches!(kubelet_claims(p), KubeletClaims::Reported(_)));
    // The API server's list names them all (the launcher passes it only when it read every claim).
    let unnamed = gpu_driver
        .filter(|_| claims_reported.is_empty() && !host_specs && !reports_claims && !api_read)
        .map(|d| match &facts.pod_resources {
            Reading::Ok(_) => format!(
                "the DRA driver {d} is registered here, but the kubelet reports no DRA claim and is not known \
                 to report them (it leaves claims out unless {DRA_GATE} is on) and the driver wrote no \
                 per-claim CDI spec (NVIDIA's driver before v25.12 writes none for a plain GPU claim): which \
                 GPUs are claimed is not known on the node"
            ),
            Reading::Err(_) => format!(
                "the DRA driver {d} is registered here, the kubelet's PodResources API did not answer and the \
                 driver wrote no per-claim CDI spec: which GPUs are claimed is not known on the node"
            ),
        });
    let partial = (!unreported_claims.is_empty()).then(|| {
        format!(
            "{} GPU claim(s) prepared on this node are missing from the kubelet's answer: its PodResources API \
             does not report DRA devices (feature KubeletPodResourcesDynamicResources: on by default since \
             1.34, alpha before) or the pods are terminating. Their GPUs count as held; the pods are not named",
            unreported_claims.len()
        )
    });
    Some(DraAllocation {
        registered,
        claims_reported: claims_reported.len(),
        unreported_claims,
        partial,
        unnamed,
        claims_from_api_server: api_read.then_some(from_api),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_device_names() {
        assert_eq!(
            parse_nvidia_device("gpu-3"),
            Ok(NvidiaDevice {
                minor: 3,
                mig: false
            })
        );
        assert_eq!(
            parse_nvidia_device("gpu-0-mig-1g10gb-19-4"),
            Ok(NvidiaDevice {
                minor: 0,
                mig: true
            })
        );
        assert!(
            parse_nvidia_device("gpu-vfio-1")
                .unwrap_err()
                .contains("vfio")
        );
        assert!(parse_nvidia_device("gpu-x").is_err());
        assert!(parse_nvidia_device("channel-0").is_err());
        assert!(parse_nvidia_device("gpu-1-foo").is_err());
    }

    /// intel/intel-resource-drivers-for-kubernetes `DeviceUIDFromPCIinfo`: `0000:00:01.0` and `0x0000` make
    /// `0000-00-01-0-0x0000`; its tests claim `0000-00-02-0-0x1020` on a Gaudi 2.
    #[test]
    fn gaudi_device_names_land_on_gpus_by_pci_address() {
        use crate::facts::GpuVendor;
        assert_eq!(
            parse_gaudi_device("0000-00-02-0-0x1020").as_deref(),
            Ok("0000:00:02.0")
        );
        assert_eq!(
            parse_gaudi_device("0000-B3-00-0-0x1060").as_deref(),
            Ok("0000:b3:00.0")
        );
        for bad in [
            "0000-b3-00-0",
            "0000-b3-00-8-0x1020",
            "0000-b3-00-0-1020",
            "0000:b3:00.0-0x1020",
            "gpu-0",
            "0000-b3-00-0-0x1020-1",
            "",
        ] {
            assert!(parse_gaudi_device(bad).is_err(), "{bad}");
        }
        let gpus: Vec<GpuFacts> = ["0000:19:00.0", "0000:b3:00.0"]
            .iter()
            .enumerate()
            .map(|(i, b)| GpuFacts {
                index: i as u32,
                vendor: GpuVendor::Intel,
                pci_bus_id: Reading::Ok(b.to_string()),
                ..Default::default()
            })
            .collect();
        let d = located(GAUDI_DRIVER, "0000-b3-00-0-0x1020", &gpus);
        assert_eq!((d.gpu_index, d.error), (Some(1), None));
        let d = located(GAUDI_DRIVER, "0000-b4-00-0-0x1020", &gpus);
        assert_eq!(d.gpu_index, None);
        assert_eq!(
            d.error.as_deref(),
            Some("no GPU on this node is at PCI address 0000:b4:00.0")
        );
    }

    /// ROCm/k8s-gpu-dra-driver docs: `gpu-<cardIndex>-<renderIndex>` (`gpu-0-128`), auto-partition
    /// devices `gpu-<gpuIndex>-<computeMode>-<memoryMode>` (`gpu-0-cpx-nps4`).
    #[test]
    fn amd_device_names_land_on_gpus_and_partitions_by_render_minor() {
        use crate::facts::{AmdGpuFacts, AmdPartitionFacts, AmdXcpFacts, GpuVendor};
        assert_eq!(
            parse_amd_device("gpu-1-128"),
            Ok(AmdDevice {
                card: 1,
                render_minor: 128
            })
        );
        assert!(
            parse_amd_device("gpu-0-cpx-nps4")
                .unwrap_err()
                .contains("auto-partition")
        );
        for bad in ["gpu-1", "gpu-x-128", "card1-128", "gpu--128", "gpu-1-"] {
            assert!(parse_amd_device(bad).is_err(), "{bad}");
        }
        let gpu = |index: u32, render: u32, xcps: &[(u32, &str)]| GpuFacts {
            index,
            vendor: GpuVendor::Amd,
            amd: Some(AmdGpuFacts {
                render_minor: Reading::Ok(render),
                partition: Reading::Ok(AmdPartitionFacts {
                    xcps: xcps
                        .iter()
                        .map(|(m, n)| AmdXcpFacts {
                            name: n.to_string(),
                            render_minor: Some(*m),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let gpus = vec![
            gpu(0, 128, &[]),
            gpu(1, 129, &[(136, "amdgpu_xcp_0"), (137, "amdgpu_xcp_1")]),
        ];
        let d = located(AMD_DRIVER, "gpu-2-129", &gpus);
        assert_eq!(
            (d.gpu_index, d.form),
            (Some(1), Some(DeviceIdForm::DraName))
        );
        assert_eq!(located(AMD_DRIVER, "gpu-9-137", &gpus).gpu_index, Some(1));
        assert_eq!(located(AMD_DRIVER, "gpu-1-128", &gpus).gpu_index, Some(0));
        let missing = located(AMD_DRIVER, "gpu-3-140", &gpus);
        assert!(missing.error.unwrap().contains("renderD140"));
        // NVIDIA's names under NVIDIA's driver are unchanged by AMD's.
        assert!(
            located("gpu.nvidia.com", "gpu-1-128", &gpus)
                .error
                .is_some()
        );
    }

    #[test]
    fn claim_uid_from_cdi_ids() {
        assert_eq!(
            claim_uid_of_cdi("k8s.gpu.nvidia.com/claim=dab5ab50-d59a-42a6-af16-cfd4628c0f7a-gpu-0"),
            Some("dab5ab50-d59a-42a6-af16-cfd4628c0f7a")
        );
        assert_eq!(claim_uid_of_cdi("k8s.gpu.nvidia.com/gpu=all"), None);
        assert_eq!(claim_uid_of_cdi("k8s.gpu.nvidia.com/claim=short"), None);
    }
}
