//! What a command needs collected.

/// What a command needs collected. The NVML collector skips the rest (they stay `not_collected`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sections {
    pub identity: bool,
    pub telemetry: bool,
    pub topology: bool,
    pub ecc: bool,
    pub processes: bool,
    pub kernel_log: bool,
    /// RDMA devices, their counters (two samples) and the GPUs' PCI paths.
    pub nics: bool,
    /// The kubelet's answers: its PodResources device assignment and its pod log directories
    /// (`pod_resources`, `kubelet_logs`).
    pub kubelet: bool,
    /// One of a watch's repeated samples: NVLink error counters without the GPU pairs, and AMD's throttle
    /// residencies read once (the next sample is the second read).
    pub watch: bool,
}

impl Sections {
    /// Every section.
    pub const ALL: Sections = Sections {
        kubelet: true,
        ..Sections::GPUS_AND_HOST
    };

    /// Every fact of the GPUs and the host: all sections but the kubelet's.
    pub const GPUS_AND_HOST: Sections = Sections {
        identity: true,
        telemetry: true,
        topology: true,
        ecc: true,
        processes: true,
        kernel_log: true,
        nics: true,
        kubelet: false,
        watch: false,
    };
}
