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
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22, proc(5)), where read: with the
    /// pid, it names one process for the life of the boot (a reused pid starts later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
}

/// What one walk of the host's `/proc/*/fd` tables did not see: a process whose table the kernel refused,
/// one read only in part, one not read at all (the walk's bounds). Such a process may hold any device, so
/// a list built from the walk (AMD's, Gaudi's and Neuron's processes) is incomplete, never "none".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanGapsFacts {
    /// The processes whose `fd` directory the kernel refused (EACCES/EPERM), at most 64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_pids: Vec<u32>,
    /// The processes with more open files than the walk reads of one (the first pids, at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fd_tables_cut: Vec<u32>,
    /// Processes not read at all: more processes, or more open files in all, than the walk reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pids_not_scanned: u32,
}

impl ScanGapsFacts {
    pub fn is_empty(&self) -> bool {
        self.denied_pids.is_empty() && self.fd_tables_cut.is_empty() && self.pids_not_scanned == 0
    }
}

/// Who holds the GPU device nodes open, as `/proc/*/fd` symlinks say (NVIDIA's `/dev/nvidia*`, AMD's
/// `/dev/kfd` and `/dev/dri/{renderD,card}*`), with KFD's own list of its processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHoldersFacts {
    pub holders: Vec<DeviceHolderFacts>,
    /// Processes whose `fd` directory could not be read (exited meanwhile, or no permission).
    #[serde(default)]
    pub unreadable_pids: u32,
    /// Of those, the processes whose `fd` directory the kernel refused (EACCES/EPERM: an LSM, ptrace
    /// access rules), at most 64: what they hold is not known, unlike a process that exited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_pids: Vec<u32>,
    /// Processes with more open files than the scan reads of one process: what they hold past that
    /// bound is not seen (the first pids, at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fd_tables_cut: Vec<u32>,
    /// Processes not scanned at all: more processes, or more open files in all, than the scan reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pids_not_scanned: u32,
    /// The probe's own pid, left out of `holders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_self_pid: Option<u32>,
}

impl DeviceHoldersFacts {
    /// What the scan did not see.
    pub fn gaps(&self) -> ScanGapsFacts {
        ScanGapsFacts {
            denied_pids: self.denied_pids.clone(),
            fd_tables_cut: self.fd_tables_cut.clone(),
            pids_not_scanned: self.pids_not_scanned,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHolderFacts {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    #[serde(default)]
    pub name: Reading<String>,
    /// Distinct device paths held (`/dev/nvidia3`, `/dev/nvidiactl`, `/dev/kfd`, `/dev/dri/renderD128`,
    /// ...), sorted. Empty for a process only KFD lists.
    pub devices: Vec<String>,
    /// KFD's entry for the process (`/sys/class/kfd/kfd/proc/<pid>/`), where KFD lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfd: Option<KfdProcessFacts>,
}

/// What KFD says of one of its processes: the GPUs it has state on, by KFD `gpu_id` (`vram_<id>`,
/// `sdma_<id>`, `stats_<id>/`, `counters_<id>/`, `queues/<qid>/gpuid`; `amdkfd/kfd_process.c`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KfdProcessFacts {
    /// Distinct `gpu_id`s, sorted; empty when KFD names none (the GPU cannot be told).
    pub gpu_ids: Vec<u32>,
    /// User queues it has (`queues/<qid>`), all GPUs together.
    #[serde(default)]
    pub queues: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
