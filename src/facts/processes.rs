//! Processes: those NVML reports on a GPU, what the host's `/proc` says about them, and who holds the
//! NVIDIA device nodes open.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuProcessFacts {
    pub pid: u32,
    /// `compute` or `graphics`.
    pub kind: String,
    /// None when NVML cannot report it (e.g. without privilege or in some MIG/vGPU setups).
    #[serde(default)]
    pub used_memory_bytes: Option<u64>,
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
}

/// What the host's `/proc/<pid>` says about a process NVML reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostProcessFacts {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    #[serde(default)]
    pub name: Reading<String>,
    /// `/proc/<pid>/cmdline`, NUL-separated arguments joined with spaces.
    #[serde(default)]
    pub cmdline: Reading<String>,
    /// Raw `/proc/<pid>/cgroup` contents.
    #[serde(default)]
    pub cgroup: Reading<String>,
    /// Process state letter from `/proc/<pid>/stat` (`R`, `S`, `Z`, ...).
    #[serde(default)]
    pub state: Reading<String>,
    /// Seconds since the process started, where derivable.
    #[serde(default)]
    pub age_seconds: Reading<u64>,
    /// Parent pid (`/proc/<pid>/stat` field 4), where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Kernel `task->flags` (`/proc/<pid>/stat` field 9; `PF_KTHREAD` = 0x00200000), where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_flags: Option<u64>,
}

/// Who holds the NVIDIA device nodes open, as `/proc/*/fd` symlinks say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHoldersFacts {
    pub holders: Vec<DeviceHolderFacts>,
    /// Processes whose `fd` directory could not be read (exited meanwhile, or no permission).
    #[serde(default)]
    pub unreadable_pids: u32,
    /// The probe's own pid, left out of `holders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_self_pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHolderFacts {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    #[serde(default)]
    pub name: Reading<String>,
    /// Distinct device paths held (`/dev/nvidia3`, `/dev/nvidiactl`, `/dev/nvidia-uvm`, ...), sorted.
    pub devices: Vec<String>,
}
