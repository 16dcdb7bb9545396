//! Device ids and resource names as the kubelet reports them, and their mapping to this node's GPUs.
//!
//! Forms (the NVIDIA device plugin's id strategies, as dcgm-exporter interprets them):
//! - `GPU-<uuid>`: a whole GPU (device plugin, default `uuid` id strategy);
//! - `MIG-<uuid>`: a MIG device (driver R470+ naming);
//! - `MIG-GPU-<uuid>/<gi>/<ci>`: a MIG device in the pre-R470 naming;
//! - `nvidia<N>`, `nvidia<N>/gi<M>`, either with `/vgpu<K>`: GKE's device plugin (GPU index, GPU instance,
//!   time-sharing client);
//! - `N` and `N:M`: the device plugin's `index` id strategy (GPU index, MIG device index);
//! - any of the above with `::<n>`: a time-slicing replica (device plugin sharing; EKS MIG sharing).
//!
//! AMD's device plugin (ROCm/k8s-device-plugin, `internal/pkg/amdgpu/amdgpu.go`) names a whole GPU by its
//! PCI address (`0000:19:00.0`) and a compute partition by its platform device (`amdgpu_xcp_<n>`), under
//! `amd.com/gpu` (resource naming strategy `single`) or `amd.com/<compute>_<memory>` (`mixed`, e.g.
//! `amd.com/cpx_nps4`).
//!
//! Intel's Gaudi device plugin (HabanaAI/habanalabs-k8s-device-plugin 1.16.0) registers `habana.ai/` plus
//! the device family HLML names (`main.go:89`; `gaudi` for Gaudi, Gaudi 2 and Gaudi 3: gohlml v1.14.0
//! `getDeviceName`) and names each device by its HLML serial number (`habanalabs.go:88`). The driver shows
//! no serial in sysfs (`drivers/accel/habanalabs/common/sysfs.c` has no such attribute), so such an id lands
//! on a device only where a reading filled its serial.

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, GpuResource, GpuVendor, MigDeviceFacts, gpu_resource};

/// Which naming a device id uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceIdForm {
    GpuUuid,
    MigUuid,
    MigLegacy,
    Gke,
    Index,
    /// A DRA driver's device name (`gpu-<minor>`, `gpu-<minor>-mig-...`).
    DraName,
    /// A GPU a DRA driver passes through to a VM (`gpu-vfio-<index>`): bound to vfio-pci, so not one of
    /// the GPUs NVML sees here, and its claim holds none of them.
    DraPassthrough,
    /// A whole GPU by its PCI address (AMD's device plugin).
    PciBusId,
    /// An AMD compute partition by its platform device name (`amdgpu_xcp_<n>`).
    AmdPartition,
    /// A device by its serial number (Intel's Gaudi device plugin: HLML's serial).
    Serial,
}

/// What a device id names, before looking at the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTarget {
    GpuUuid(String),
    MigUuid(String),
    MigLegacy {
        gpu_uuid: String,
        gpu_instance_id: u32,
        compute_instance_id: u32,
    },
    /// GPU by index, optionally one GPU instance of it (GKE).
    GpuInstance {
        gpu_index: u32,
        gpu_instance_id: Option<u32>,
    },
    /// GPU by index, optionally one MIG device by its index (device plugin `index` strategy).
    GpuIndex {
        gpu_index: u32,
        mig_index: Option<u32>,
    },
    /// GPU by PCI address, canonical (`crate::pci::normalize_bus_id`).
    PciBusId(String),
    /// AMD compute partition `amdgpu_xcp_<n>`: the GPU whose partitions list it.
    AmdPartition(String),
    /// A device by its serial number (Gaudi).
    Serial(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub form: DeviceIdForm,
    pub target: DeviceTarget,
    /// Sharing replica (`::<n>` or GKE `/vgpu<n>`): several containers may hold the same device.
    pub replica: Option<u32>,
}

/// Longest id accepted: real ids are under 100 bytes; anything far longer is not a device id.
const MAX_ID_LEN: usize = 256;

/// Parse one device id. Unknown or malformed ids are an error that says why, never a panic.
pub fn parse_device_id(raw: &str) -> Result<DeviceId, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Err("empty device id".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("device id longer than {MAX_ID_LEN} bytes"));
    }
    let (base, mut replica) = match id.rsplit_once("::") {
        Some((base, n)) => match number(n) {
            Some(n) => (base, Some(n)),
            None => return Err(format!("`{id}`: replica suffix `::{n}` is not a number")),
        },
        None => (id, None),
    };
    if base.is_empty() {
        return Err(format!("`{id}`: nothing before the replica suffix"));
    }
    let bad = |why: &str| Err(format!("`{id}`: {why}"));
    if let Some(n) = base.strip_prefix("amdgpu_xcp_") {
        if number(n).is_none() {
            return bad("AMD partition id is not amdgpu_xcp_<n>");
        }
        return Ok(DeviceId {
            form: DeviceIdForm::AmdPartition,
            target: DeviceTarget::AmdPartition(base.to_string()),
            replica,
        });
    }
    // A PCI address has a dot after two colons (`0000:19:00.0`); the index form has neither.
    if base.contains('.') && base.matches(':').count() == 2 {
        return match crate::pci::normalize_bus_id(base) {
            Some(bdf) => Ok(DeviceId {
                form: DeviceIdForm::PciBusId,
                target: DeviceTarget::PciBusId(bdf),
                replica,
            }),
            None => bad("malformed PCI address"),
        };
    }
    if let Some(rest) = base.strip_prefix("MIG-GPU-") {
        // Pre-R470: MIG-GPU-<gpu uuid>/<gi>/<ci>.
        let mut parts = rest.split('/');
        let (Some(uuid), Some(gi), Some(ci), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return bad("legacy MIG id is not MIG-GPU-<uuid>/<gi>/<ci>");
        };
        let (Some(gi), Some(ci)) = (number(gi), number(ci)) else {
            return bad("legacy MIG id has a non-numeric instance id");
        };
        if !uuid_like(uuid) {
            return bad("legacy MIG id has a malformed GPU UUID");
        }
        return Ok(DeviceId {
            form: DeviceIdForm::MigLegacy,
            target: DeviceTarget::MigLegacy {
                gpu_uuid: format!("GPU-{uuid}"),
                gpu_instance_id: gi,
                compute_instance_id: ci,
            },
            replica,
        });
    }
    if let Some(rest) = base.strip_prefix("MIG-") {
        if !uuid_like(rest) {
            return bad("malformed MIG UUID");
        }
        return Ok(DeviceId {
            form: DeviceIdForm::MigUuid,
            target: DeviceTarget::MigUuid(base.to_string()),
            replica,
        });
    }
    if let Some(rest) = base.strip_prefix("GPU-") {
        if !uuid_like(rest) {
            return bad("malformed GPU UUID");
        }
        return Ok(DeviceId {
            form: DeviceIdForm::GpuUuid,
            target: DeviceTarget::GpuUuid(base.to_string()),
            replica,
        });
    }
    if let Some(rest) = base.strip_prefix("nvidia") {
        // GKE: nvidia<N>[/gi<M>][/vgpu<K>]
        let mut parts = rest.split('/');
        let Some(gpu_index) = parts.next().and_then(number) else {
            return bad("GKE id does not start with nvidia<N>");
        };
        let mut gpu_instance_id = None;
        for part in parts {
            if let Some(gi) = part.strip_prefix("gi") {
                if gpu_instance_id.is_some() || replica.is_some() {
                    return bad("GKE id has gi<M> twice or after vgpu<K>");
                }
                gpu_instance_id = Some(number(gi).ok_or(format!("`{id}`: gi<M> is not a number"))?);
            } else if let Some(k) = part.strip_prefix("vgpu") {
                if replica.is_some() {
                    return bad("GKE id has two sharing suffixes");
                }
                replica = Some(number(k).ok_or(format!("`{id}`: vgpu<K> is not a number"))?);
            } else {
                return bad("GKE id part is neither gi<M> nor vgpu<K>");
            }
        }
        return Ok(DeviceId {
            form: DeviceIdForm::Gke,
            target: DeviceTarget::GpuInstance {
                gpu_index,
                gpu_instance_id,
            },
            replica,
        });
    }
    let (gpu, mig) = match base.split_once(':') {
        Some((g, m)) => (g, Some(m)),
        None => (base, None),
    };
    if let Some(gpu_index) = number(gpu) {
        let mig_index = match mig {
            Some(m) => Some(number(m).ok_or(format!("`{id}`: MIG index `{m}` is not a number"))?),
            None => None,
        };
        return Ok(DeviceId {
            form: DeviceIdForm::Index,
            target: DeviceTarget::GpuIndex {
                gpu_index,
                mig_index,
            },
            replica,
        });
    }
    bad("not a GPU UUID, MIG UUID, GKE nvidia<N> id, GPU index, PCI address or amdgpu_xcp_<n>")
}

/// The resource Intel's Gaudi device plugin registers (see the module's notes).
pub const GAUDI_RESOURCE: &str = crate::facts::vendor::INTEL_GAUDI.whole_gpu_resource;

/// Parse one device id of `resource`: a Gaudi id is a serial number, every other one as
/// [`parse_device_id`] reads it.
pub fn parse_resource_device_id(resource: &str, raw: &str) -> Result<DeviceId, String> {
    if resource != GAUDI_RESOURCE {
        return parse_device_id(raw);
    }
    let id = raw.trim();
    // A serial is printable ASCII without spaces (HLML gives it as a C string of at most 64 bytes).
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`{}`: not a Gaudi serial number (printable ASCII, at most 64 bytes)",
            id.escape_debug()
        ));
    }
    Ok(DeviceId {
        form: DeviceIdForm::Serial,
        target: DeviceTarget::Serial(id.to_string()),
        replica: None,
    })
}

/// A small decimal number (ASCII digits only: no sign, no spaces, no overflow).
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// NVML UUID bodies are hex groups separated by dashes (`8-4-4-4-12`); accept any such shape.
fn uuid_like(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().filter(u8::is_ascii_hexdigit).count() >= 8
}

/// What an extended resource name says about its devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResourceKind {
    /// `nvidia.com/gpu`: whole GPUs (or, with GKE or the `mixed`-less single strategy, MIG devices).
    Gpu,
    /// `nvidia.com/mig-<profile>` (mixed MIG strategy), e.g. `3g.40gb`.
    Mig { profile: String },
    /// `nvidia.com/gpu.shared` and other `nvidia.com/gpu.*` renames (time-slicing, MPS).
    Shared,
    /// A device allocated through a DRA ResourceClaim (the resource name is the driver's).
    Claim,
    /// `amd.com/<compute>_<memory>` (AMD's `mixed` naming): compute partitions of that profile, e.g.
    /// `cpx_nps4`.
    Partition { profile: String },
}

/// The partition profile an `amd.com/<cp>_<nps>` resource names (`cpx_nps4`); `None` for other names
/// (AMD's other operators advertise `amd.com/` resources that are not GPUs, such as NICs).
pub fn amd_partition_profile(name: &str) -> Option<&str> {
    match gpu_resource(name)? {
        (GpuVendor::Amd, GpuResource::Partition(profile)) => Some(profile),
        _ => None,
    }
}

/// Classify a resource name; `None` for resources that are not GPUs (CPUs, NICs, ...). Which resources
/// are GPUs is the vendors' table's ([`crate::facts::vendor`]).
pub fn classify_resource(name: &str) -> Option<ResourceKind> {
    Some(match gpu_resource(name)?.1 {
        GpuResource::Whole => ResourceKind::Gpu,
        GpuResource::Mig(profile) => ResourceKind::Mig {
            profile: profile.to_string(),
        },
        GpuResource::Shared => ResourceKind::Shared,
        GpuResource::Partition(profile) => ResourceKind::Partition {
            profile: profile.to_string(),
        },
    })
}

/// A MIG device as found on this node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigRef {
    /// NVML's MIG device index on its parent GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
}

impl MigRef {
    fn of(m: &MigDeviceFacts) -> Self {
        MigRef {
            index: Some(m.index),
            uuid: m.uuid.ok().cloned(),
            gpu_instance_id: m.gpu_instance_id.get(),
            compute_instance_id: m.compute_instance_id.get(),
        }
    }
}

/// Where a device id lands on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub gpu: u32,
    pub gpu_uuid: Option<String>,
    pub mig: Option<MigRef>,
}

fn same_uuid(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Map a parsed device id to a GPU (and MIG device) of this node, or say why it matches none.
pub fn locate(target: &DeviceTarget, gpus: &[GpuFacts]) -> Result<Located, String> {
    let at = |g: &GpuFacts, mig: Option<MigRef>| Located {
        gpu: g.index,
        gpu_uuid: g.uuid.ok().cloned(),
        mig,
    };
    match target {
        DeviceTarget::GpuUuid(uuid) => gpus
            .iter()
            .find(|g| g.uuid.ok().is_some_and(|u| same_uuid(u, uuid)))
            .map(|g| at(g, None))
            .ok_or_else(|| format!("no GPU on this node has UUID {uuid}")),
        DeviceTarget::MigUuid(uuid) => gpus
            .iter()
            .find_map(|g| {
                g.mig_devices
                    .iter()
                    .find(|m| m.uuid.ok().is_some_and(|u| same_uuid(u, uuid)))
                    .map(|m| at(g, Some(MigRef::of(m))))
            })
            .ok_or_else(|| format!("no MIG device on this node has UUID {uuid}")),
        DeviceTarget::MigLegacy {
            gpu_uuid,
            gpu_instance_id,
            compute_instance_id,
        } => {
            let g = gpus
                .iter()
                .find(|g| g.uuid.ok().is_some_and(|u| same_uuid(u, gpu_uuid)))
                .ok_or_else(|| format!("no GPU on this node has UUID {gpu_uuid}"))?;
            let mig = g
                .mig_devices
                .iter()
                .find(|m| {
                    m.gpu_instance_id.get() == Some(*gpu_instance_id)
                        && m.compute_instance_id.get() == Some(*compute_instance_id)
                })
                .map(MigRef::of)
                .unwrap_or(MigRef {
                    gpu_instance_id: Some(*gpu_instance_id),
                    compute_instance_id: Some(*compute_instance_id),
                    ..MigRef::default()
                });
            Ok(at(g, Some(mig)))
        }
        DeviceTarget::GpuInstance {
            gpu_index,
            gpu_instance_id,
        } => {
            let g = gpus
                .iter()
                .find(|g| g.index == *gpu_index)
                .ok_or_else(|| format!("no GPU {gpu_index} on this node"))?;
            let mig = match gpu_instance_id {
                None => None,
                Some(gi) => Some(
                    g.mig_devices
                        .iter()
                        .find(|m| m.gpu_instance_id.get() == Some(*gi))
                        .map(MigRef::of)
                        .ok_or_else(|| format!("GPU {gpu_index} has no GPU instance {gi}"))?,
                ),
            };
            Ok(at(g, mig))
        }
        DeviceTarget::GpuIndex {
            gpu_index,
            mig_index,
        } => {
            let g = gpus
                .iter()
                .find(|g| g.index == *gpu_index)
                .ok_or_else(|| format!("no GPU {gpu_index} on this node"))?;
            let mig = match mig_index {
                None => None,
                Some(mi) => Some(
                    g.mig_devices
                        .iter()
                        .find(|m| m.index == *mi)
                        .map(MigRef::of)
                        .ok_or_else(|| format!("GPU {gpu_index} has no MIG device {mi}"))?,
                ),
            };
            Ok(at(g, mig))
        }
        DeviceTarget::PciBusId(bdf) => gpus
            .iter()
            .find(|g| {
                g.pci_bus_id
                    .ok()
                    .and_then(|b| crate::pci::normalize_bus_id(b))
                    .is_some_and(|b| b == *bdf)
            })
            .map(|g| at(g, None))
            .ok_or_else(|| format!("no GPU on this node is at PCI address {bdf}")),
        DeviceTarget::AmdPartition(name) => gpus
            .iter()
            .find(|g| {
                g.amd
                    .as_ref()
                    .and_then(|a| a.partition.ok())
                    .is_some_and(|p| p.xcps.iter().any(|x| x.name == *name))
            })
            .map(|g| at(g, None))
            .ok_or_else(|| format!("no AMD GPU on this node has the partition {name}")),
        DeviceTarget::Serial(serial) => {
            let read: Vec<&GpuFacts> = gpus.iter().filter(|g| g.serial.ok().is_some()).collect();
            read.iter()
                .find(|g| g.serial.ok().is_some_and(|s| s.trim() == serial))
                .map(|g| at(g, None))
                .ok_or_else(|| {
                    if read.is_empty() {
                        format!(
                            "serial {serial}: no device's serial was read here (the habanalabs \
                             driver shows none in sysfs; HLML or hl-smi gives it)"
                        )
                    } else {
                        format!("no device on this node has serial {serial}")
                    }
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Reading;

    const U: &str = "GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c";
    const M: &str = "MIG-a1b2c3d4-e5f6-5a7b-8c9d-0e1f2a3b4c5d";

    #[test]
    fn every_form_parses() {
        let p = parse_device_id(U).unwrap();
        assert_eq!(p.form, DeviceIdForm::GpuUuid);
        assert_eq!(p.target, DeviceTarget::GpuUuid(U.into()));
        assert_eq!(p.replica, None);

        let p = parse_device_id(&format!("{U}::3")).unwrap();
        assert_eq!((p.form, p.replica), (DeviceIdForm::GpuUuid, Some(3)));

        let p = parse_device_id(M).unwrap();
        assert_eq!(p.target, DeviceTarget::MigUuid(M.into()));
        let p = parse_device_id(&format!("{M}::0")).unwrap();
        assert_eq!((p.form, p.replica), (DeviceIdForm::MigUuid, Some(0)));

        let p = parse_device_id("MIG-GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c/7/0").unwrap();
        assert_eq!(
            p.target,
            DeviceTarget::MigLegacy {
                gpu_uuid: U.into(),
                gpu_instance_id: 7,
                compute_instance_id: 0
            }
        );

        let p = parse_device_id("nvidia3").unwrap();
        assert_eq!(
            (p.form, p.target, p.replica),
            (
                DeviceIdForm::Gke,
                DeviceTarget::GpuInstance {
                    gpu_index: 3,
                    gpu_instance_id: None
                },
                None
            )
        );
        let p = parse_device_id("nvidia0/gi2/vgpu1").unwrap();
        assert_eq!(
            (p.target, p.replica),
            (
                DeviceTarget::GpuInstance {
                    gpu_index: 0,
                    gpu_instance_id: Some(2)
                },
                Some(1)
            )
        );
        let p = parse_device_id("nvidia1/vgpu4").unwrap();
        assert_eq!(p.replica, Some(4));

        let p = parse_device_id("2").unwrap();
        assert_eq!(
            p.target,
            DeviceTarget::GpuIndex {
                gpu_index: 2,
                mig_index: None
            }
        );
        let p = parse_device_id("0:1::2").unwrap();
        assert_eq!(
            (p.target, p.replica),
            (
                DeviceTarget::GpuIndex {
                    gpu_index: 0,
                    mig_index: Some(1)
                },
                Some(2)
            )
        );
    }

    #[test]
    fn malformed_ids_are_errors_not_panics() {
        let long = "GPU-".to_string() + &"a".repeat(400);
        let bad = [
            "",
            "   ",
            "::",
            "::1",
            "GPU-",
            "GPU-xyz",
            "GPU-zzzzzzzz-zzzz",
            "MIG-",
            "MIG-GPU-abc/1",
            "MIG-GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c/x/0",
            "MIG-GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c/1/2/3",
            long.as_str(),
            "GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c::",
            "GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c::-1",
            "GPU-5f2b7c1e-9a3d-4e6f-8b0c-1d2e3f4a5b6c::x",
            "nvidia",
            "nvidiaX",
            "nvidia0/gi",
            "nvidia0/gix",
            "nvidia0/gi1/gi2",
            "nvidia0/vgpu1/gi1",
            "nvidia0/vgpu1::2",
            "nvidia0/foo",
            "-1",
            "1:",
            "1:x",
            "99999999999",
            "rdma/hca0",
            "GPU-é€𝄞-0000",
            "0:1:2",
        ];
        for b in bad {
            assert!(parse_device_id(b).is_err(), "{b:?} should not parse");
        }
    }

    /// Gaudi ids are serials, read only under `habana.ai/gaudi`; the same text under NVIDIA's resource is
    /// not a serial.
    #[test]
    fn gaudi_ids_are_serials_under_the_gaudi_resource_only() {
        let p = parse_resource_device_id(GAUDI_RESOURCE, "AN00000421").unwrap();
        assert_eq!(
            (p.form, p.target, p.replica),
            (
                DeviceIdForm::Serial,
                DeviceTarget::Serial("AN00000421".into()),
                None
            )
        );
        assert!(parse_resource_device_id("nvidia.com/gpu", "AN00000421").is_err());
        let long = "A".repeat(65);
        for bad in ["", " ", "AN 1", "AN\u{7f}", "é", long.as_str()] {
            assert!(
                parse_resource_device_id(GAUDI_RESOURCE, bad).is_err(),
                "{bad:?} should not parse"
            );
        }
        assert_eq!(
            classify_resource("habana.ai/gaudi"),
            Some(ResourceKind::Gpu)
        );
        // Other habana.ai resources (none registered by the plugin today) are not taken for devices.
        assert_eq!(classify_resource("habana.ai/gaudi-nic"), None);
    }

    #[test]
    fn resource_names() {
        assert_eq!(classify_resource("nvidia.com/gpu"), Some(ResourceKind::Gpu));
        assert_eq!(
            classify_resource("nvidia.com/mig-3g.40gb"),
            Some(ResourceKind::Mig {
                profile: "3g.40gb".into()
            })
        );
        assert_eq!(
            classify_resource("nvidia.com/gpu.shared"),
            Some(ResourceKind::Shared)
        );
        for other in ["nvidia.com/mig-", "cpu", "rdma/hca", "nvidia.com/", ""] {
            assert_eq!(classify_resource(other), None, "{other}");
        }
    }

    /// AMD's device plugin: `amd.com/gpu` (naming strategy `single`) and `amd.com/<cp>_<nps>` (`mixed`),
    /// ROCm/k8s-device-plugin docs/user-guide/configuration.md; AMD's NIC resources are not GPUs.
    #[test]
    fn amd_resource_names() {
        assert_eq!(classify_resource("amd.com/gpu"), Some(ResourceKind::Gpu));
        assert_eq!(
            classify_resource("amd.com/cpx_nps4"),
            Some(ResourceKind::Partition {
                profile: "cpx_nps4".into()
            })
        );
        assert_eq!(
            classify_resource("amd.com/spx_nps1"),
            Some(ResourceKind::Partition {
                profile: "spx_nps1".into()
            })
        );
        for other in [
            "amd.com/nic",
            "amd.com/cpx",
            "amd.com/xpx_nps4",
            "amd.com/cpx_nps5",
            "amd.com/",
        ] {
            assert_eq!(classify_resource(other), None, "{other}");
        }
    }

    /// The kubelet's ids for AMD devices (ROCm/k8s-device-plugin `internal/pkg/amdgpu/amdgpu.go`): the
    /// GPU's PCI address, or `amdgpu_xcp_<n>` for a compute partition.
    #[test]
    fn amd_ids_land_on_gpus_by_pci_address_and_partition_name() {
        use crate::facts::{AmdGpuFacts, AmdPartitionFacts, AmdXcpFacts, GpuVendor};
        let amd = |index: u32, bdf: &str, xcps: &[&str]| GpuFacts {
            index,
            vendor: GpuVendor::Amd,
            pci_bus_id: Reading::Ok(bdf.into()),
            amd: Some(AmdGpuFacts {
                partition: Reading::Ok(AmdPartitionFacts {
                    compute: Reading::Ok(if xcps.is_empty() { "SPX" } else { "CPX" }.into()),
                    xcps: xcps
                        .iter()
                        .map(|n| AmdXcpFacts {
                            name: n.to_string(),
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
            amd(0, "0000:19:00.0", &[]),
            amd(1, "0000:3B:00.0", &["amdgpu_xcp_0", "amdgpu_xcp_1"]),
        ];
        let at = |id: &str| locate(&parse_device_id(id).unwrap().target, &gpus);
        let p = parse_device_id("0000:19:00.0").unwrap();
        assert_eq!(
            (p.form, p.target),
            (
                DeviceIdForm::PciBusId,
                DeviceTarget::PciBusId("0000:19:00.0".into())
            )
        );
        assert_eq!(at("0000:19:00.0").unwrap().gpu, 0);
        // The kubelet's lowercase id and the facts' uppercase hex are one address.
        assert_eq!(at("0000:3b:00.0").unwrap().gpu, 1);
        let p = parse_device_id("amdgpu_xcp_1").unwrap();
        assert_eq!(p.form, DeviceIdForm::AmdPartition);
        assert_eq!(at("amdgpu_xcp_1").unwrap().gpu, 1);
        assert!(at("0000:5d:00.0").unwrap_err().contains("0000:5d:00.0"));
        assert!(at("amdgpu_xcp_7").unwrap_err().contains("amdgpu_xcp_7"));
        for bad in [
            "amdgpu_xcp_",
            "amdgpu_xcp_x",
            "0000:zz:00.0",
            "0000:19:00.9",
        ] {
            assert!(parse_device_id(bad).is_err(), "{bad}");
        }
    }

    fn node() -> Vec<GpuFacts> {
        let mig = |index, uuid: &str, gi| MigDeviceFacts {
            index,
            uuid: Reading::Ok(uuid.into()),
            gpu_instance_id: Reading::Ok(gi),
            compute_instance_id: Reading::Ok(0),
            ..Default::default()
        };
        vec![
            GpuFacts {
                index: 0,
                uuid: Reading::Ok("GPU-00000000-0000-0000-0000-000000000000".into()),
                mig_devices: vec![
                    mig(0, M, 1),
                    mig(1, "MIG-11111111-2222-3333-4444-555555555555", 2),
                ],
                ..Default::default()
            },
            GpuFacts {
                index: 1,
                uuid: Reading::Ok(U.into()),
                ..Default::default()
            },
        ]
    }

    fn loc(id: &str) -> Result<Located, String> {
        locate(&parse_device_id(id).unwrap().target, &node())
    }

    #[test]
    fn ids_land_on_gpus_and_mig_devices() {
        let l = loc(&U.to_lowercase().replace("gpu-", "GPU-")).unwrap();
        assert_eq!((l.gpu, l.mig), (1, None));
        let l = loc(&format!("{M}::1")).unwrap();
        assert_eq!(l.gpu, 0);
        assert_eq!(l.mig.as_ref().unwrap().gpu_instance_id, Some(1));
        let l = loc("nvidia0/gi2").unwrap();
        assert_eq!(l.mig.unwrap().index, Some(1));
        assert_eq!(loc("nvidia1").unwrap().gpu, 1);
        assert_eq!(loc("0:1").unwrap().mig.unwrap().gpu_instance_id, Some(2));
        let l = loc("MIG-GPU-00000000-0000-0000-0000-000000000000/2/0").unwrap();
        assert_eq!(
            l.mig.unwrap().uuid.as_deref(),
            Some("MIG-11111111-2222-3333-4444-555555555555")
        );

        for missing in [
            "GPU-99999999-0000-0000-0000-000000000000",
            "MIG-99999999-0000-0000-0000-000000000000",
            "nvidia7",
            "nvidia0/gi9",
            "0:5",
            "4",
            "MIG-GPU-99999999-0000-0000-0000-000000000000/1/0",
        ] {
            assert!(loc(missing).is_err(), "{missing}");
        }
    }
}
