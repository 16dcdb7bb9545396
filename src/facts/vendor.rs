//! Who made a GPU, and every fact about a vendor the code lists: one [`VendorInfo`] per vendor, in
//! [`VENDORS`], from which every list is derived (which Kubernetes resources, labels and DRA drivers are
//! GPUs, the PCI vendor id, device nodes, kernel-log family, exporter, and the vendor's own tools). A new
//! vendor is a new variant and a new entry here; nothing else keeps a list of vendors' names.
//!
//! Sources, per entry: the device plugins' resource names (NVIDIA/k8s-device-plugin, ROCm/k8s-device-plugin,
//! HabanaAI/habanalabs-k8s-device-plugin), the DRA drivers' names (NVIDIA/k8s-dra-driver-gpu,
//! ROCm/k8s-gpu-dra-driver, intel/intel-resource-drivers-for-kubernetes), Linux's `include/linux/pci_ids.h`.

use serde::{Deserialize, Serialize};

/// Who made a GPU. Facts without it are NVIDIA's (every scenario and probe document before AMD).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GpuVendor {
    #[default]
    Nvidia,
    Amd,
    // Intel Gaudi (Habana Labs) accelerators, driven by habanalabs (a plain comment: a doc comment
    // would turn the published schema's enum into a oneOf).
    Intel,
    // AWS Trainium and Inferentia (Neuron) accelerators, driven by the neuron driver.
    Neuron,
}

/// Everything the code knows about one vendor by name.
#[derive(Debug)]
pub struct VendorInfo {
    pub vendor: GpuVendor,
    /// As answers name it.
    pub name: &'static str,
    /// The PCI vendor id.
    pub pci_vendor_id: u16,
    /// What reads its GPUs, as an answer names it when a GPU could not be read (`NVML could not open …`).
    pub reader: &'static str,
    /// The device plugin's resource domain: every GPU resource of the vendor is in it, not every resource
    /// in it is a GPU (AMD's NIC operator advertises `amd.com/nic`, Habana's `habana.ai/gaudi-nic`-like
    /// names are not devices of this project).
    pub resource_domain: &'static str,
    /// The device plugin's resource of whole GPUs.
    pub whole_gpu_resource: &'static str,
    /// Node labels whose value `true` says the node has this vendor's GPUs (GFD's, NFD's PCI labels).
    pub present_labels: &'static [&'static str],
    /// DRA drivers whose devices are this vendor's GPUs.
    pub dra_drivers: &'static [&'static str],
    /// Device nodes a process holds to use one of its GPUs (prefixes under `/dev`).
    pub device_nodes: &'static [&'static str],
    /// The kernel driver whose lines the kernel-log family reads (`crate::kernel_log` names each
    /// family by this).
    pub kernel_driver: &'static str,
    /// What a kernel-log event of this vendor is called in a count (`Xid`, `amdgpu event`).
    pub kernel_event: &'static str,
    /// A count of its kernel-log events is headed so (`XID: 3 event(s) in the kernel log window`).
    pub kernel_log_label: &'static str,
    /// The cluster's metric exporter and the prefix of the series it writes.
    pub exporter: &'static str,
    pub exporter_series_prefix: &'static str,
    /// The vendor's own command-line tools that actions name.
    pub tools: &'static [&'static str],
    /// One of its devices, as an answer names it ("any AMD GPU here may be theirs").
    pub device_word: &'static str,
    /// What makes its devices' identities readable to the probe, where a kubelet's device id could not
    /// be placed on one.
    pub identity_fix: &'static str,
    /// The device nodes the holder scan answers for, as answers name them.
    pub scanned_nodes: &'static str,
    /// What lists its devices' processes.
    pub process_source: &'static str,
    /// Its own active diagnostic, as an answer names it ("DCGM", "the ROCm Validation Suite").
    pub diagnostic: &'static str,
    /// Whether `run_gpu_diagnostic` runs it on this vendor's nodes.
    pub diagnostic_runs_here: bool,
    /// Whether that list is the holders one walk of `/proc/*/fd` found (so what the walk did not see,
    /// `NodeFacts::process_scan_gaps`, is missing from it), not the driver's own list (NVML's).
    pub processes_from_proc_walk: bool,
    /// Its DRA driver's claims, as the per-claim CDI specs the probe reads show them: only NVIDIA's
    /// driver writes them (`k8s.gpu.nvidia.com-claim_<uid>.yaml`); another's registration alone says
    /// its claims are not visible here.
    pub dra_claims_on_node: bool,
    /// Whose DRA driver, as an answer names it ("AMD's DRA driver gpu.amd.com").
    pub dra_whose: &'static str,
}

pub const NVIDIA: VendorInfo = VendorInfo {
    vendor: GpuVendor::Nvidia,
    name: "NVIDIA",
    pci_vendor_id: 0x10de,
    reader: "NVML",
    resource_domain: "nvidia.com/",
    whole_gpu_resource: "nvidia.com/gpu",
    // GFD's label; NFD's PCI labels (vendor 10de, class 0302 3D controller or 0300 VGA), all a node has where
    // NVIDIA's DRA driver replaced the device plugin without GFD: the driver's Helm chart selects nodes by
    // exactly these (NVIDIA/k8s-dra-driver-gpu, deployments/helm/dra-driver-nvidia-gpu/values.yaml).
    present_labels: &[
        "nvidia.com/gpu.present",
        "feature.node.kubernetes.io/pci-10de.present",
        "feature.node.kubernetes.io/pci-0302_10de.present",
        "feature.node.kubernetes.io/pci-0300_10de.present",
    ],
    dra_drivers: &["gpu.nvidia.com"],
    device_nodes: &["/dev/nvidia"],
    kernel_driver: "nvidia",
    kernel_event: "Xid",
    kernel_log_label: "XID",
    exporter: "dcgm-exporter",
    exporter_series_prefix: "DCGM_FI_",
    tools: &["nvidia-smi", "dcgmi", "nvidia-bug-report.sh"],
    device_word: "NVIDIA GPU",
    identity_fix: "make NVML readable to the probe",
    scanned_nodes: "/dev/nvidia*",
    process_source: "NVML",
    diagnostic: "DCGM",
    diagnostic_runs_here: true,
    processes_from_proc_walk: false,
    dra_claims_on_node: true,
    dra_whose: "NVIDIA's",
};

pub const AMD: VendorInfo = VendorInfo {
    vendor: GpuVendor::Amd,
    name: "AMD",
    pci_vendor_id: 0x1002,
    reader: "The amdgpu reader (sysfs, AMD SMI)",
    resource_domain: "amd.com/",
    whole_gpu_resource: "amd.com/gpu",
    // NFD's rule of AMD's GPU Operator, and NFD's PCI labels (vendor 1002; class 1200 accelerator).
    present_labels: &[
        "feature.node.kubernetes.io/amd-gpu",
        "feature.node.kubernetes.io/pci-1002.present",
        "feature.node.kubernetes.io/pci-1200_1002.present",
    ],
    dra_drivers: &["gpu.amd.com"],
    device_nodes: &["/dev/kfd", "/dev/dri/renderD", "/dev/dri/card"],
    kernel_driver: "amdgpu",
    kernel_event: "amdgpu event",
    kernel_log_label: "amdgpu kernel log",
    exporter: "AMD device-metrics-exporter",
    exporter_series_prefix: "gpu_",
    tools: &["amd-smi", "rvs"],
    device_word: "AMD GPU",
    identity_fix: "make amdgpu's sysfs and partition files readable to the probe",
    scanned_nodes: "/dev/kfd and /dev/dri",
    process_source: "KFD (amdgpu)",
    diagnostic: "the ROCm Validation Suite",
    diagnostic_runs_here: true,
    processes_from_proc_walk: true,
    dra_claims_on_node: false,
    dra_whose: "AMD's",
};

pub const INTEL_GAUDI: VendorInfo = VendorInfo {
    vendor: GpuVendor::Intel,
    name: "Intel Gaudi",
    // PCI_VENDOR_ID_HABANALABS (include/linux/pci_ids.h), which Gaudi 2 and 3 still carry.
    pci_vendor_id: 0x1da3,
    reader: "The habanalabs reader (sysfs, HLML)",
    resource_domain: "habana.ai/",
    whole_gpu_resource: "habana.ai/gaudi",
    // NFD's PCI labels (vendor 1da3; class 1200 accelerator).
    present_labels: &[
        "feature.node.kubernetes.io/pci-1da3.present",
        "feature.node.kubernetes.io/pci-1200_1da3.present",
    ],
    dra_drivers: &["gaudi.intel.com"],
    device_nodes: &["/dev/accel/accel"],
    kernel_driver: "habanalabs",
    kernel_event: "habanalabs event",
    kernel_log_label: "habanalabs kernel log",
    exporter: "Intel Gaudi metric exporter",
    exporter_series_prefix: "habanalabs_",
    tools: &["hl-smi"],
    device_word: "Intel Gaudi",
    // Habana's plugin names a device by HLML's serial, which the driver's sysfs does not print.
    identity_fix: "give the probe the Gaudi serials (HLML, `hl-smi -L` on the node)",
    scanned_nodes: "/dev/accel",
    process_source: "/dev/accel holders (habanalabs)",
    diagnostic: "`hl_qual`",
    diagnostic_runs_here: false,
    processes_from_proc_walk: true,
    dra_claims_on_node: false,
    dra_whose: "Intel's Gaudi",
};

pub const AWS_NEURON: VendorInfo = VendorInfo {
    vendor: GpuVendor::Neuron,
    name: "AWS Neuron",
    // AMZN_VENDOR_ID (aws-neuron-driver neuron_device.h:35). The same id is on every Nitro instance's ENA
    // NIC and EBS NVMe controllers, so nothing here takes a 1d0f PCI device for a Neuron device by its
    // vendor id alone: the probe asks for the driver's own class (`neuron_device`).
    pci_vendor_id: 0x1d0f,
    reader: "The neuron reader (sysfs)",
    resource_domain: "aws.amazon.com/",
    // The Neuron device plugin's resources: `aws.amazon.com/neuron` and `aws.amazon.com/neurondevice` are
    // whole devices, `aws.amazon.com/neuroncore` one NeuronCore of a device ([`neuron_resource`]).
    whole_gpu_resource: "aws.amazon.com/neuron",
    // None: NFD's `pci-1d0f.present` is Amazon's vendor id, true on every Nitro instance (ENA, NVMe); AWS's
    // own agent tells a Neuron node by the driver's name in `/proc/bus/pci/devices`
    // (aws/eks-node-monitoring-agent pkg/config/context.go:74, `hasDeviceType("neuron")`), no label.
    present_labels: &[],
    dra_drivers: &[],
    // `/dev/neuron<N>` (neuron_cdev.c:3109, `"neuron%d"`).
    device_nodes: &["/dev/neuron"],
    // KBUILD_MODNAME (Kbuild:1, `obj-m += neuron.o`): every line's prefix through `pr_fmt`.
    kernel_driver: "neuron",
    kernel_event: "neuron event",
    kernel_log_label: "neuron kernel log",
    // Not read: the history reads no Neuron series (neuron-monitor's are not a published contract here).
    exporter: "neuron-monitor",
    exporter_series_prefix: "neuron_",
    tools: &["neuron-ls", "neuron-top", "neuron-monitor"],
    device_word: "AWS Neuron device",
    identity_fix: "compare with `neuron-ls` on the node",
    // Every `/dev/neuron<N>` (neuron_cdev.c:3109).
    scanned_nodes: "/dev/neuron*",
    process_source: "/dev/neuron holders (neuron)",
    diagnostic: "`nccom-test` (aws-neuronx-tools)",
    diagnostic_runs_here: false,
    processes_from_proc_walk: true,
    dra_claims_on_node: false,
    dra_whose: "AWS's Neuron",
};

/// What a resource of the `aws.amazon.com/` domain says about its devices (`rest`: the name after the
/// domain); `None` for a resource that is not a Neuron device or core (EFA's `vpc.amazonaws.com/efa` is in
/// another domain; any other `aws.amazon.com/` name is not ours).
fn neuron_resource(rest: &str) -> Option<GpuResource<'_>> {
    match rest {
        "neurondevice" => Some(GpuResource::Whole),
        "neuroncore" => Some(GpuResource::Partition(rest)),
        _ => None,
    }
}

/// Every vendor, the one list the others derive from.
pub const VENDORS: [&VendorInfo; 4] = [&NVIDIA, &AMD, &INTEL_GAUDI, &AWS_NEURON];

/// AMD's compute and memory partition modes (`current_compute_partition`, `current_memory_partition`),
/// which its `mixed` naming joins into a resource (`amd.com/cpx_nps4`).
const AMD_COMPUTE_MODES: &[&str] = &["spx", "dpx", "tpx", "qpx", "cpx"];
const AMD_MEMORY_MODES: &[&str] = &["nps1", "nps2", "nps3", "nps4", "nps6", "nps8"];

/// What a GPU resource name says about its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuResource<'a> {
    /// Whole GPUs (`nvidia.com/gpu`, `amd.com/gpu`, `habana.ai/gaudi`).
    Whole,
    /// `nvidia.com/mig-<profile>` (mixed MIG strategy).
    Mig(&'a str),
    /// `nvidia.com/gpu.shared` and other `nvidia.com/gpu.*`/`gpu-*` renames (time-slicing, MPS).
    Shared,
    /// `amd.com/<compute>_<memory>`: compute partitions of that profile.
    Partition(&'a str),
}

impl VendorInfo {
    /// A node's product as its labels name it, the vendor said once: `AMD_Instinct_MI300X_OAM` and
    /// `NVIDIA-H100-80GB-HBM3` carry it already, `MI300X` reads `AMD MI300X`; Intel's and AWS's device
    /// plugins label no product (`Intel Gaudi (no product label)`).
    pub fn product_label(&self, product: Option<&str>) -> String {
        let first = self.name.split(' ').next().unwrap_or(self.name);
        match product {
            Some(p)
                if p.to_ascii_uppercase()
                    .starts_with(&first.to_ascii_uppercase()) =>
            {
                p.to_string()
            }
            Some(p) => format!("{} {p}", self.name),
            None => format!("{} (no product label)", self.name),
        }
    }

    /// `AMD's diagnostic is the ROCm Validation Suite, which run_gpu_diagnostic runs on AMD nodes`.
    pub fn diagnostic_said(&self) -> String {
        format!(
            "{}'s diagnostic is {}, which run_gpu_diagnostic {}",
            self.name,
            self.diagnostic,
            if self.diagnostic_runs_here {
                format!("runs on {} nodes", self.name)
            } else {
                "does not run yet".into()
            }
        )
    }
}

impl GpuVendor {
    pub const ALL: [GpuVendor; 4] = [
        GpuVendor::Nvidia,
        GpuVendor::Amd,
        GpuVendor::Intel,
        GpuVendor::Neuron,
    ];

    /// This vendor's entry.
    pub fn info(&self) -> &'static VendorInfo {
        match self {
            GpuVendor::Nvidia => &NVIDIA,
            GpuVendor::Amd => &AMD,
            GpuVendor::Intel => &INTEL_GAUDI,
            GpuVendor::Neuron => &AWS_NEURON,
        }
    }
    pub fn is_nvidia(&self) -> bool {
        *self == GpuVendor::Nvidia
    }
    /// The PCI vendor id (`0x10de`, `0x1002`, `0x1da3`).
    pub fn pci_vendor_id(&self) -> u16 {
        self.info().pci_vendor_id
    }
    /// As answers name it.
    pub fn name(&self) -> &'static str {
        self.info().name
    }
    /// The vendor of a PCI vendor id.
    pub fn of_pci_vendor_id(id: u16) -> Option<GpuVendor> {
        VENDORS
            .iter()
            .find(|v| v.pci_vendor_id == id)
            .map(|v| v.vendor)
    }
    /// The vendor of a `vendor:device` id as inventories write it (`1002:74a1`).
    pub fn of_pci_device_id(id: &str) -> Option<GpuVendor> {
        let (vendor, _) = id.split_once(':')?;
        u16::from_str_radix(vendor.trim_start_matches("0x"), 16)
            .ok()
            .and_then(GpuVendor::of_pci_vendor_id)
    }
    /// The vendor whose GPUs a DRA driver's devices are.
    pub fn of_dra_driver(driver: &str) -> Option<GpuVendor> {
        VENDORS
            .iter()
            .find(|v| v.dra_drivers.contains(&driver))
            .map(|v| v.vendor)
    }
    /// Every DRA driver whose devices are GPUs.
    pub fn gpu_dra_drivers() -> impl Iterator<Item = &'static str> {
        VENDORS.iter().flat_map(|v| v.dra_drivers.iter().copied())
    }
    /// Whether a node label (with its value) says this vendor's GPUs are present.
    pub fn labelled(&self, key: &str, value: &str) -> bool {
        value == "true" && self.info().present_labels.contains(&key)
    }
}

/// A device plugin resource that is a GPU: its vendor and what it says about its devices; `None` for every
/// other resource (CPUs, NICs, another vendor's non-GPU devices). The one list of which resources are GPUs.
pub fn gpu_resource(name: &str) -> Option<(GpuVendor, GpuResource<'_>)> {
    let v = VENDORS
        .iter()
        .find(|v| name.starts_with(v.resource_domain))?;
    if name == v.whole_gpu_resource {
        return Some((v.vendor, GpuResource::Whole));
    }
    let rest = &name[v.resource_domain.len()..];
    let kind = match v.vendor {
        GpuVendor::Nvidia => {
            if let Some(profile) = rest.strip_prefix("mig-") {
                (!profile.is_empty()).then_some(GpuResource::Mig(profile))
            } else if rest.starts_with("gpu.") || rest.starts_with("gpu-") {
                Some(GpuResource::Shared)
            } else {
                None
            }
        }
        GpuVendor::Amd => {
            let (cp, nps) = rest.split_once('_')?;
            (AMD_COMPUTE_MODES.contains(&cp) && AMD_MEMORY_MODES.contains(&nps))
                .then_some(GpuResource::Partition(rest))
        }
        GpuVendor::Intel => None,
        GpuVendor::Neuron => neuron_resource(rest),
    }?;
    Some((v.vendor, kind))
}

/// The vendor of a GPU resource (`None`: not a GPU resource).
pub fn gpu_resource_vendor(name: &str) -> Option<GpuVendor> {
    gpu_resource(name).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_vendor_and_each_finds_itself() {
        for v in GpuVendor::ALL {
            assert_eq!(v.info().vendor, v);
            assert_eq!(GpuVendor::of_pci_vendor_id(v.pci_vendor_id()), Some(v));
            assert_eq!(
                gpu_resource(v.info().whole_gpu_resource),
                Some((v, GpuResource::Whole))
            );
            for d in v.info().dra_drivers {
                assert_eq!(GpuVendor::of_dra_driver(d), Some(v));
            }
        }
        assert_eq!(
            GpuVendor::of_pci_device_id("1da3:1020"),
            Some(GpuVendor::Intel)
        );
        assert_eq!(
            GpuVendor::of_pci_device_id("10de:2330"),
            Some(GpuVendor::Nvidia)
        );
        assert_eq!(GpuVendor::of_pci_device_id("8086:1234"), None);
    }

    #[test]
    fn only_gpu_resources_are_gpus() {
        for (name, want) in [
            ("nvidia.com/gpu", Some(GpuVendor::Nvidia)),
            ("nvidia.com/mig-3g.40gb", Some(GpuVendor::Nvidia)),
            ("nvidia.com/gpu.shared", Some(GpuVendor::Nvidia)),
            ("nvidia.com/mig-", None),
            ("nvidia.com/hostdev", None),
            ("amd.com/gpu", Some(GpuVendor::Amd)),
            ("amd.com/cpx_nps4", Some(GpuVendor::Amd)),
            ("amd.com/nic", None),
            ("amd.com/cpx_nps5", None),
            ("habana.ai/gaudi", Some(GpuVendor::Intel)),
            // Not a Gaudi: any other name of Habana's domain (the holders' list once took it for one).
            ("habana.ai/gaudi-nic", None),
            ("cpu", None),
        ] {
            assert_eq!(gpu_resource_vendor(name), want, "{name}");
        }
    }
}
