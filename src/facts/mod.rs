//! The raw-fact model: what NVML, sysfs, `/proc` and the kernel log returned on one node, and nothing else.
//!
//! A simulated scenario is a serialized [`NodeFacts`]; the NVML collector in `node-probe` fills the same type.
//! Facts never carry verdicts: every judgement is made by the analysis modules from these values, so a
//! simulated node and a real one go through exactly the same interpretation.
//!
//! One subject per file, all named here as `crate::facts::X`: `reading.rs` ([`Reading`], a value or its
//! inline [`FieldError`]), `node.rs` ([`NodeFacts`], the envelope), `host.rs` (the host, driver and
//! services), `gpu.rs` (a GPU's identity, inventory and MIG, holding the rest), `telemetry.rs`
//! (temperatures, power, utilization, clocks), `ecc.rs` (memory errors), `interconnect.rs` (PCIe, NVLink,
//! fabric, GPU pairs), `rdma.rs` (NICs), `imex.rs` (the IMEX daemon), `processes.rs` (GPU and host processes, device holders),
//! `events.rs` (the kernel log and NVML events), `kubelet.rs` (PodResources and pod log directories) and
//! `sections.rs` (what a command collects).

mod amd;
mod ecc;
mod events;
mod gaudi;
mod gpu;
mod host;
mod imex;
mod interconnect;
mod kubelet;
pub mod neuron;
mod node;
mod processes;
mod rdma;
mod reading;
mod sections;
mod telemetry;
mod timeline;
pub mod vendor;

pub use amd::{
    AmdBadPageFacts, AmdBadPagesFacts, AmdDriverFacts, AmdGpuFacts, AmdGpuMetricsFacts,
    AmdPartitionFacts, AmdPciFunctionFacts, AmdRasBlockFacts, AmdRasEventStateFacts, AmdRasFacts,
    AmdSmiBadPagesFacts, AmdSmiGpuFacts, AmdSmiLibraryFacts, AmdThrottleSampleFacts, AmdXcpFacts,
    AmdXgmiFacts, AmdXgmiLinkFacts, KfdNodeFacts,
};
pub use ecc::{
    EccFacts, EccLocationFacts, EccModeFacts, RemappedRowsFacts, RetiredPagesFacts,
    RowRemapHistogram,
};
pub use events::{
    KernelLogFacts, NvmlEventFacts, NvmlEventRegistration, NvmlEventsFacts, NvmlXidEventFacts,
};
pub use gaudi::{
    GaudiFirmwareFacts, GaudiGpuFacts, HLML_THROTTLE_POWER, HLML_THROTTLE_THERMAL, HlmlDeviceFacts,
    HlmlEccFacts, HlmlFacts, HlmlNicPortFacts,
};
pub use gpu::{
    GpuFacts, MemoryFacts, MigDeviceFacts, MigModeFacts, RECOVERY_ACTIONS, RecoveryAction,
    recovery_action,
};
pub use host::{DriverFacts, HostFacts, ServiceFacts};
pub use imex::{ImexDomainFacts, ImexFacts, ImexPeerFacts, daemon_state_from_ctl};
pub use interconnect::{AerFacts, FabricFacts, GpuPairFacts, NvLinkFacts, P2pFacts, PcieFacts};
pub use kubelet::{
    ApiClaimFacts, ApiClaimPodFacts, CdiClaimSpecFacts, ClaimDeviceFacts, ClaimFacts,
    ContainerDevicesFacts, ContainerLogDirFacts, DraHostFacts, KubeletGateFacts, KubeletLogFacts,
    PodLogDirFacts, PodResourcesContainerFacts, PodResourcesFacts, PodResourcesPodFacts,
    api_claims_arg,
};
pub use neuron::{
    NEURON_DEVICE_STATE_INVALID, NEURON_DEVICE_STATE_READY, NEURON_DEVICE_STATE_RESET,
    NeuronCoreFacts, NeuronGpuFacts, NeuronHardwareFacts, neuron_product,
};
pub use node::NodeFacts;
pub use processes::{
    DeviceHolderFacts, DeviceHoldersFacts, GpuProcessFacts, HostProcessFacts, KfdProcessFacts,
    ScanGapsFacts,
};
pub use rdma::{
    NetdevFacts, RESAMPLED_NETDEV_COUNTERS, RESAMPLED_PORT_COUNTERS, RdmaDeviceFacts, RdmaFacts,
    RdmaPortFacts,
};
pub use reading::{FieldError, FieldErrorKind, Reading};
pub use sections::Sections;
pub use telemetry::{
    ClockEventDurations, ClockFacts, PowerFacts, ThermalFacts, Throttle, UtilizationFacts,
};
pub use timeline::{Segment, TimedLine, Timeline};
pub use vendor::{GpuResource, GpuVendor, VENDORS, VendorInfo, gpu_resource, gpu_resource_vendor};
