//! Which findings are one fault: each rule names the component it is about, the signals of that fault in
//! causal order (what happened first, what the driver concluded last), the signals that must be present
//! for the fault to be stated, and why they are one fault with the public source that says so.

/// What one incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One GPU: the signals carry its index. Node-level signals join when they share an `about` key
    /// with one of its signals (an NVSwitch SXid with the GPU link that ends on that switch).
    Gpu,
    /// One RDMA port (`nic:` keys): node-level signals that name the same port.
    Port,
    /// The node: a fault the platform asserts on every GPU it touches (a power brake) is one incident,
    /// whichever GPUs show it.
    Node,
}

pub struct Rule {
    /// The incident's code.
    pub code: &'static str,
    /// What an SRE calls the fault, in a few words.
    pub title: &'static str,
    /// Titles for what some signals make of it, the first whose code is present winning over `title`.
    pub titles: &'static [(&'static str, &'static str)],
    pub scope: Scope,
    /// Finding codes of this fault, in causal order. A code ending in `*` matches its prefix.
    pub signals: &'static [&'static str],
    /// Signals that join the fault but never state it alone (the driver's conclusion, a consequence): at
    /// least one of the other signals must be present.
    pub followers: &'static [&'static str],
    /// Why these signals are one fault.
    pub reason: &'static str,
    /// The public source of that reason.
    pub source: &'static str,
}

/// The driver's conclusion about a GPU: it follows whatever fault it concluded from, so it joins the
/// first fault stated on that GPU (rules are tried in this table's order).
const DRIVER_VERDICT: [&str; 2] = ["xid.154", "gpu.recovery_action"];

/// amdgpu's resets: the recovery from whatever fault preceded them on that GPU, so they join the first AMD
/// fault stated on it and never state one alone.
const AMD_RESET: [&str; 2] = ["amdgpu.reset", "amdgpu.reset_failed"];

/// habanalabs' hard resets, the device status they leave and their count: what follows a Gaudi fault on
/// that device, so they join the first Gaudi fault stated on it and never state one alone (a failed reset
/// with no cause in the log is `gpu.unusable`'s own).
const GAUDI_AFTER: [&str; 4] = [
    "habanalabs.reset",
    "habanalabs.reset_failed",
    "gaudi.status",
    "gaudi.hard_resets",
];

/// The driver's conclusion when it is a request to recover the IMEX domain (`@imex`: only a signal about
/// the IMEX daemon, [`Rule::admits`]): it joins the node's IMEX incident, not a GPU's.
pub const IMEX_RULE: &str = "imex.domain";
const IMEX_VERDICT: [&str; 2] = ["xid.154@imex", "gpu.recovery_action@imex"];

/// Rules in the order they claim signals: the fault that takes a GPU away first, then memory, links,
/// and the slower faults.
pub const RULES: &[Rule] = &[
    Rule {
        code: "gpu.off_bus",
        title: "GPU not answering",
        titles: &[
            ("xid.79", "GPU fell off the bus"),
            ("gpu.fallen_off_bus", "GPU fell off the bus"),
            ("gpu.lost", "GPU fell off the bus"),
        ],
        scope: Scope::Gpu,
        signals: &[
            "pcie.aer_fatal",
            "xid.79",
            "gpu.fallen_off_bus",
            "gpu.lost",
            "gpu.handle_failed",
            "gpu.missing",
            "driver.crash_dump",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        followers: &[
            "pcie.aer_fatal",
            "gpu.missing",
            "driver.crash_dump",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        reason: "Xid 79 is the driver saying the GPU fell off the bus; NVML then answers GPU_IS_LOST for every \
                 reading of it (or cannot open it, and the node counts it missing), the recovery action turns to \
                 node reboot (Xid 154), and the driver writes a crash dump: one event seen five ways",
        source: "NVIDIA Xid catalog (Xid 79, Xid 154: RESTART_BM / node reboot); NVML nvmlReturn_t \
                 NVML_ERROR_GPU_IS_LOST",
    },
    Rule {
        code: "gpu.memory",
        title: "memory row remap pending",
        titles: &[
            (
                "ecc.remap_failure",
                "row remap failed: the GPU can no longer repair its memory",
            ),
            (
                "xid.64",
                "row remap failed: the GPU can no longer repair its memory",
            ),
            ("ecc.remap_bank_exhausted", "memory bank out of spare rows"),
            ("xid.48", "uncorrectable memory error"),
            ("ecc.volatile_uncorrected", "uncorrectable memory error"),
            ("ecc.retired_pages_dbe", "uncorrectable memory error"),
            ("xid.94", "uncorrectable memory error"),
            ("xid.95", "uncorrectable memory error"),
            (
                "ecc.sram_threshold_exceeded",
                "SRAM errors over NVIDIA's threshold",
            ),
        ],
        scope: Scope::Gpu,
        signals: &[
            "xid.48",
            "ecc.volatile_uncorrected",
            "ecc.aggregate_uncorrected",
            "ecc.retired_pages_dbe",
            "xid.63",
            "xid.64",
            "ecc.remap_pending",
            "ecc.remap_failure",
            "ecc.remap_bank_exhausted",
            "ecc.remap_uncorrectable_limit",
            "ecc.retired_pages_pending",
            "ecc.retired_pages_limit",
            "ecc.sram_threshold_exceeded",
            "xid.92",
            "xid.94",
            "xid.95",
            "xid.45",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        followers: &[
            "ecc.aggregate_uncorrected",
            "ecc.retired_pages_limit",
            "xid.92",
            "xid.45",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        reason: "a double-bit error (Xid 48) is counted as volatile uncorrected ECC, makes the row remapper mark \
                 the row (Xid 63, or Xid 64 when it has no spare row: the remap failed), is contained or not \
                 (Xid 94/95) and sets the recovery action (drain and reset, Xid 154): one memory error",
        source: "NVIDIA Xid catalog (WORKFLOW_XID_48, Xid 63, 64, 94, 95, 154); NVIDIA GPU Memory Error \
                 Management (row remapping, A100 and later)",
    },
    Rule {
        code: "gpu.memory",
        title: "memory errors",
        titles: &[
            (
                "amd.bad_pages.threshold",
                "bad pages past the RMA threshold",
            ),
            (
                "amdgpu.bad_page_threshold",
                "bad pages past the RMA threshold",
            ),
            (
                "amd.poison_consumed",
                "uncorrectable memory error, poisoned data consumed",
            ),
            (
                "amdgpu.poison_consumed",
                "uncorrectable memory error, poisoned data consumed",
            ),
            ("amd.ras_ue.umc", "uncorrectable memory error"),
            ("amdgpu.ras_ue.umc", "uncorrectable memory error"),
            (
                "amd.bad_pages.near_threshold",
                "bad pages near the RMA threshold",
            ),
            (
                "amdgpu.bad_page_threshold_near",
                "bad pages near the RMA threshold",
            ),
            (
                "amd.bad_pages.unreservable",
                "bad pages the driver could not reserve",
            ),
            ("amd.bad_pages.pending", "bad pages pending retirement"),
            ("amd.ras_de.umc", "deferred (poisoned) memory errors"),
            ("amdgpu.ras_de.umc", "deferred (poisoned) memory errors"),
        ],
        scope: Scope::Gpu,
        signals: &[
            "amd.ras_de.umc",
            "amdgpu.ras_de.umc",
            "amd.poison_created",
            "amdgpu.poison_created",
            "amd.ras_ue.umc",
            "amdgpu.ras_ue.umc",
            "amdgpu.aca_bank",
            "amd.poison_consumed",
            "amdgpu.poison_consumed",
            "amdgpu.page_retired",
            "amd.bad_pages.pending",
            "amd.bad_pages.unreservable",
            "amd.bad_pages.near_threshold",
            "amdgpu.bad_page_threshold_near",
            "amd.bad_pages.threshold",
            "amdgpu.bad_page_threshold",
            "amd.ras_ce.umc",
            "amdgpu.ras_ce.umc",
            AMD_RESET[0],
            AMD_RESET[1],
        ],
        followers: &[
            "amdgpu.aca_bank",
            "amd.ras_ce.umc",
            "amdgpu.ras_ce.umc",
            AMD_RESET[0],
            AMD_RESET[1],
        ],
        reason: "on an AMD GPU an HBM error the UMC cannot correct is first deferred (the data poisoned), then \
                 uncorrectable when a kernel consumes the poison: the driver counts it per block (ras/aca_umc, \
                 event_state), logs it with its RAS event number, retires the page (gpu_vram_bad_pages, `Saved N \
                 pages to EEPROM table`), resets the GPU, and past the bad-page threshold calls for an RMA: one \
                 memory fault",
        source: "Linux amdgpu driver amdgpu_ras.c, amdgpu_ras_eeprom.c, umc_v12_0.c, kfd_int_process_v9.c; \
                 docs.kernel.org gpu/amdgpu/ras; AMD device-metrics-exporter GPU health (UE threshold 0)",
    },
    Rule {
        code: "nvlink.fault",
        title: "NVLink fault",
        titles: &[],
        scope: Scope::Gpu,
        signals: &[
            "xid.74",
            "xid.144",
            "xid.145",
            "xid.146",
            "xid.147",
            "xid.148",
            "xid.149",
            "xid.150",
            "sxid.*",
            "nvlink.link_down",
            "nvlink.errors",
            "fabric.degraded_bandwidth",
            "xid.45",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        followers: &[
            "sxid.*",
            "fabric.degraded_bandwidth",
            "xid.45",
            DRIVER_VERDICT[0],
            DRIVER_VERDICT[1],
        ],
        reason: "an NVLink error (Xid 74, or the NVLink5 Xids 144-150) takes the link down or makes it retrain \
                 (link state, replay/recovery/CRC counters), the switch at its far end logs an SXid, the fabric \
                 reports degraded bandwidth and the driver asks for a reset: one link's fault",
        source: "NVIDIA Xid catalog (WORKFLOW_NVLINK_ERR, WORKFLOW_NVLINK5_ERR); NVIDIA Fabric Manager user \
                 guide (SXid); DCGM NVLink health watch",
    },
    Rule {
        code: "xgmi.fault",
        title: "XGMI link fault",
        titles: &[("amd.xgmi.link_down", "XGMI link down")],
        scope: Scope::Gpu,
        signals: &[
            "amdgpu.xgmi_error",
            "amd.xgmi.link_down",
            "amd.xgmi.errors",
            "amd.ras_ue.xgmi_wafl",
            "amdgpu.ras_ue.xgmi_wafl",
            "amd.ras_de.xgmi_wafl",
            "amdgpu.ras_de.xgmi_wafl",
            "amd.ras_ce.xgmi_wafl",
            "amdgpu.ras_ce.xgmi_wafl",
            AMD_RESET[0],
            AMD_RESET[1],
        ],
        followers: &[AMD_RESET[0], AMD_RESET[1]],
        reason: "an XGMI link that fails training or takes CRC errors shows as the driver's PCS error lines, \
                 the xgmi_wafl RAS counts and the link state in gpu_metrics (xgmi_link_status 0): one link's fault",
        source: "Linux amdgpu driver amdgpu_xgmi.c (PCS error names, xgmi_error), kgd_pp_interface.h \
                 (gpu_metrics xgmi_link_status), amdgpu_ras.c (xgmi_wafl block)",
    },
    Rule {
        code: "gpu.hardware_error",
        title: "uncorrectable hardware error",
        titles: &[
            ("amd.fatal", "fatal hardware error: the hive was reset"),
            ("amdgpu.fatal", "fatal hardware error: the hive was reset"),
        ],
        scope: Scope::Gpu,
        signals: &[
            "amdgpu.fatal",
            "amd.fatal",
            "amd.ras_ue.*",
            "amdgpu.ras_ue.*",
            "amd.ras_de.*",
            "amdgpu.ras_de.*",
            "amdgpu.aca_bank",
            AMD_RESET[0],
            AMD_RESET[1],
        ],
        followers: &["amdgpu.aca_bank", AMD_RESET[0], AMD_RESET[1]],
        reason: "a fatal error event (ERREVENT_ATHUB_INTERRUPT) or an uncorrectable error in a block other than \
                 memory is counted in ras/event_state and the block's counter, dumped as ACA banks and answered \
                 by a mode-1 reset of the hive: one hardware fault",
        source: "Linux amdgpu driver amdgpu_ras.c (RAS_EVENT_LOG, event_state), amdgpu_aca.c (bank dump), \
                 amdgpu_device.c (GPU reset)",
    },
    Rule {
        code: "gpu.hang",
        title: "GPU hang",
        titles: &[
            ("amdgpu.reset_failed", "GPU hang, reset failed"),
            ("amdgpu.smu_hang", "GPU firmware (SMU) hang"),
            ("amdgpu.mes_failure", "GPU scheduler firmware (MES) hang"),
        ],
        scope: Scope::Gpu,
        signals: &[
            "amdgpu.ring_timeout",
            "amdgpu.smu_hang",
            "amdgpu.mes_failure",
            "amdgpu.queue_preempt_failed",
            "amdgpu.illegal_command",
            AMD_RESET[0],
            AMD_RESET[1],
        ],
        followers: &[AMD_RESET[0], AMD_RESET[1]],
        reason: "a ring that stops signalling its fences times out and the driver resets the GPU to recover it \
                 (or its SMU or MES firmware stops answering, a compute queue will not preempt, a command stream \
                 touches a privileged register): the faults and the resets that follow, however often they \
                 repeat, are one hang of that GPU",
        source: "Linux amdgpu driver amdgpu_job.c (ring timeout), amdgpu_device.c (GPU reset begin, \
                 succeeded, failed), pm/swsmu/smu_cmn.c, mes_v11_0.c, amdkfd kfd_device_queue_manager.c \
                 (preemption, qcm fence, MES queues, then kfd_hws_hang's reset), gfx_v9_0.c (priv_reg_irq)",
    },
    Rule {
        code: "gpu.init_failed",
        title: "GPU failed to initialize",
        titles: &[("amdgpu.boot_fault", "GPU hardware fault at boot")],
        scope: Scope::Gpu,
        signals: &["amdgpu.boot_fault", "amdgpu.init_failed", "gpu.missing"],
        followers: &["gpu.missing"],
        reason: "a GPU whose firmware reports a boot fault (memory training, link training, HBM test) or whose IP \
                 blocks fail to initialize is left out of KFD: the init failure and the GPU missing from service \
                 are one fault",
        source: "Linux amdgpu driver amdgpu_ras.c (boot-time fw_status faults), amdgpu_device.c (hw_init failed, \
                 Fatal error during GPU init), drivers/base/dd.c (probe failed)",
    },
    Rule {
        code: "gpu.memory",
        title: "uncorrectable ECC error",
        titles: &[
            ("habanalabs.hbm_sei", "HBM system error"),
            ("gaudi.rows_pending", "HBM rows pending replacement"),
        ],
        scope: Scope::Gpu,
        signals: &[
            "habanalabs.ecc_derr",
            "habanalabs.hbm_derr",
            "habanalabs.hbm_sei",
            "gaudi.ecc_uncorrected",
            "gaudi.rows_pending",
            GAUDI_AFTER[0],
            GAUDI_AFTER[1],
            GAUDI_AFTER[2],
            GAUDI_AFTER[3],
        ],
        followers: &GAUDI_AFTER,
        reason: "on a Gaudi device a double-bit (DERR) ECC error or a critical HBM error interrupt is a firmware \
                 event that asks the driver for a hard reset; the reset, the processes it kills, its failure and \
                 the `disabled` status it then leaves are that one fault, and so are the uncorrected count and \
                 the HBM rows pending replacement libhlml reads after it",
        source: "Linux 6.12 drivers/accel/habanalabs gaudi2/gaudi2.c (gaudi2_handle_ecc_event, \
                 gaudi2_handle_hbm_mc_sei_err, gaudi2_handle_eqe's reset), common/device.c (hl_device_reset), \
                 include/gaudi2/gaudi2_async_ids_map_extended.h (each event's reset type); PyPI habana-pyhlml \
                 main.py (hlmlDeviceGetTotalECCErrors, hlmlDeviceGetReplacedRowsPendingStatus)",
    },
    Rule {
        code: "gpu.hang",
        title: "device heartbeat lost",
        titles: &[],
        scope: Scope::Gpu,
        signals: &[
            "habanalabs.heartbeat",
            GAUDI_AFTER[0],
            GAUDI_AFTER[1],
            GAUDI_AFTER[2],
            GAUDI_AFTER[3],
        ],
        followers: &GAUDI_AFTER,
        reason: "when a Gaudi device's firmware stops answering the driver's heartbeat (or its event queue stops), \
                 the driver hard-resets it: the lost heartbeat, the reset and what the reset leaves are one hang",
        source: "Linux 6.12 drivers/accel/habanalabs common/device.c (hl_device_heartbeat, \
                 hl_device_eq_heartbeat_received, hl_device_cond_reset), common/firmware_if.c (hl_fw_send_heartbeat)",
    },
    Rule {
        code: "gpu.unusable",
        title: "device not usable",
        titles: &[
            (
                "habanalabs.reset_failed",
                "device not usable: its reset failed",
            ),
            ("habanalabs.init_failed", "device failed to initialize"),
            (
                "neuron.device_invalid",
                "device given up by the neuron driver",
            ),
        ],
        scope: Scope::Gpu,
        signals: &[
            "habanalabs.init_failed",
            "habanalabs.reset_failed",
            "gaudi.status",
            "habanalabs.reset",
            "gaudi.hard_resets",
            "neuron.device_invalid",
            "neuron.reset_failed",
        ],
        followers: &["habanalabs.reset", "gaudi.hard_resets"],
        reason: "a Gaudi device whose hard reset or initialisation failed is left `disabled` (\"Device is NOT \
                 usable\"): the failure, the status the driver shows and the resets before it are one fault; \
                 likewise a Neuron device whose whole-device reset failed is left invalid (`reset` reads 2): \
                 the driver's failed-reset line and that state are one fault",
        source: "Linux 6.12 drivers/accel/habanalabs common/device.c (hl_device_reset, hl_device_init), \
                 common/sysfs.c (status), Documentation/ABI/testing/sysfs-driver-habanalabs (status); \
                 aws-neuron-driver neuron_reset.c:111-172 (nr_reset_thread_fn), neuron_cdev.c:2976 (reset)",
    },
    Rule {
        code: "fabric.degraded",
        title: "NVLink fabric degraded",
        titles: &[("fabric.route_unhealthy", "NVLink fabric route unhealthy")],
        scope: Scope::Node,
        signals: &[
            "fabric.route_unhealthy",
            "fabric.degraded_bandwidth",
            "fabric.route_recovery_in_progress",
            "fabric.access_timeout_recovery",
        ],
        followers: &[],
        reason: "the fabric health flags are set by the NVLink fabric, not by the GPU: a lost NVSwitch (a switch \
                 tray of an NVL72 rack) or a route it cannot use degrades every GPU whose paths cross it, so the \
                 flags on several GPUs without a link fault of their own are one fault of the fabric",
        source: "NVML nvmlGpuFabricInfo_v2 health mask (NVML_GPU_FABRIC_HEALTH_MASK_DEGRADED_BW, \
                 ROUTE_RECOVERY, ROUTE_UNHEALTHY, ACCESS_TIMEOUT_RECOVERY); NVIDIA Fabric Manager user guide",
    },
    Rule {
        code: "fabric.registration",
        title: "GPUs not registered with the NVLink fabric",
        titles: &[(
            "fabric.registration_failed",
            "NVLink fabric registration failed",
        )],
        scope: Scope::Node,
        signals: &["fabric.registration_failed", "fabric.not_registered"],
        followers: &[],
        reason: "a GPU registers with the NVLink fabric through the fabric's management (nvidia-fabricmanager \
                 on an NVSwitch system, the NVLink switch trays' NMX on an NVL72 rack): when that is down or \
                 cannot reach the switches, every GPU of the node stays unregistered at once, one fault of \
                 the fabric's management, not one per GPU",
        source: "NVML nvmlDeviceGetGpuFabricInfo (state NOT_STARTED / IN_PROGRESS / COMPLETED, status); \
                 NVIDIA Fabric Manager user guide (GPU registration)",
    },
    Rule {
        code: IMEX_RULE,
        title: "IMEX domain not ready",
        titles: &[
            ("imex.domain_down", "IMEX domain down"),
            ("imex.domain_degraded", "IMEX domain degraded"),
        ],
        scope: Scope::Node,
        signals: &[
            "imex.daemon_unresponsive",
            "imex.daemon_not_ready",
            "imex.domain_degraded",
            "imex.domain_down",
            IMEX_VERDICT[0],
            IMEX_VERDICT[1],
        ],
        followers: &IMEX_VERDICT,
        reason: "the IMEX daemons of a multi-node NVLink domain must all be ready and connected for its GPUs to \
                 import each other's memory: a daemon not ready, the links between daemons down and the domain \
                 state the daemons agree on are one fault, and the driver's request to recover the IMEX domain \
                 (recovery action 5, Xid 154) is its conclusion",
        source: "NVIDIA IMEX guide (nvidia-imex-ctl -q, -N: daemon and domain status); DCGM IMEX_UNHEALTHY \
                 (DCGM_FI_IMEX_DOMAIN_STATUS, DCGM_FI_IMEX_DAEMON_STATUS); NVIDIA Xid catalog (Xid 154, \
                 Recover IMEX Domain)",
    },
    Rule {
        code: "nic.link_fault",
        title: "RDMA link fault",
        titles: &[],
        scope: Scope::Port,
        signals: &[
            "nic.port_down",
            "nic.link_flapping",
            "nic.link_integrity",
            "nic.symbol_errors",
            "nic.receive_errors",
            "nic.rate_degraded",
            "nic.buffer_overrun",
        ],
        followers: &["nic.buffer_overrun"],
        reason: "a marginal cable, transceiver or switch port shows as symbol and receive errors on the port and, \
                 when it gets worse, as link downs and recoveries (flaps) or a lower rate: one physical link",
        source: "InfiniBand Architecture Specification (PortCounters: SymbolErrorCounter, LinkDownedCounter, \
                 LinkErrorRecoveryCounter, PortRcvErrors); NVIDIA UFM/ibdiagnet link health guidance",
    },
    Rule {
        code: "gpu.thermal",
        title: "overheating",
        titles: &[],
        scope: Scope::Gpu,
        signals: &[
            "thermal.at_shutdown",
            "thermal.above_slowdown",
            "thermal.memory_hot",
            "thermal.hw_slowdown",
            "thermal.sw_slowdown",
            "clocks.hw_slowdown",
            "amd.throttle.soc",
            "amd.throttle.hbm",
            "amd.throttle.vr",
            "amd.throttle.prochot",
            "amdgpu.thermal_throttle",
            "gaudi.throttle.thermal",
            "habanalabs.thermal",
        ],
        followers: &[
            "clocks.hw_slowdown",
            "amdgpu.thermal_throttle",
            "habanalabs.thermal",
        ],
        reason: "a GPU past its slowdown temperature is throttled by the hardware or driver: the temperature and \
                 the throttle reasons (NVML's clocks-event reasons; on AMD the SMU's thermal residencies and the \
                 driver's `GPU is throttled` line; on Gaudi libhlml's THERMAL reason and the driver's \
                 `Clock throttling due to overheating` line) are one cooling fault",
        source: "NVML nvmlClocksEventReasons (HW thermal / SW thermal slowdown); DCGM thermal health watch; Linux \
                 amdgpu smu_v13_0_6_ppt.c (throttle residencies, `GPU is throttled` warning); pyhlml \
                 hlmlDeviceGetCurrentClocksThrottleReasons; Linux habanalabs common/device.c:2948",
    },
    Rule {
        code: "node.power_brake",
        title: "power brake asserted by the platform",
        titles: &[],
        scope: Scope::Node,
        signals: &["power.hw_brake", "clocks.hw_slowdown"],
        followers: &["clocks.hw_slowdown"],
        reason: "the power brake is an external signal the platform (PSU, BMC) asserts: the brake and the hardware \
                 slowdown it causes, on every GPU it holds, are one fault of the node's power",
        source: "NVML nvmlClocksEventReasonHwPowerBrakeSlowdown",
    },
    Rule {
        code: "pcie.link_fault",
        title: "PCIe link fault",
        titles: &[],
        scope: Scope::Gpu,
        signals: &[
            "pcie.gen_degraded",
            "pcie.width_degraded",
            "pcie.replay_rate",
            "pcie.aer_nonfatal",
            "amd.pcie.recoveries",
        ],
        followers: &[],
        reason: "a link trained below its capability and the replays and AER errors on it are one PCIe link",
        source: "PCI Express Base Specification (link training, AER); DCGM PCIe health watch (replay rate)",
    },
    Rule {
        code: "gpu.recovery",
        title: "driver asks for recovery",
        titles: &[],
        scope: Scope::Gpu,
        signals: &DRIVER_VERDICT,
        followers: &[],
        reason: "Xid 154 logs the change of the recovery action that NVML reports now: one conclusion",
        source: "NVIDIA Xid catalog (Xid 154); NVML field 230 (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)",
    },
];

/// Node-level signals that join the GPU incident of the same burst (dated within the XID engine's burst
/// gap after its first signal), when no `about` key ties them to a component.
pub const BURST_SIGNALS: &[&str] = &["driver.crash_dump"];

pub const BURST_S: f64 = crate::kernel_log::correlate::BURST_GAP_SECS;

pub(super) fn matches(pattern: &str, code: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => pattern == code,
    }
}

impl Rule {
    /// Whether `f` is a signal of this rule: by its code, and for a pattern `code@key` only when the
    /// finding is about `key`.
    pub(super) fn admits(&self, f: &crate::finding::Finding) -> bool {
        self.signals.iter().any(|p| match p.split_once('@') {
            Some((code, key)) => matches(code, &f.code) && f.about.iter().any(|k| k == key),
            None => matches(p, &f.code),
        })
    }
    pub(super) fn has_signal(&self, code: &str) -> bool {
        self.signals.iter().any(|p| matches(p, code))
    }
    pub(super) fn is_anchor(&self, code: &str) -> bool {
        self.has_signal(code) && !self.followers.iter().any(|p| matches(p, code))
    }
    /// Where a signal stands in the causal order.
    pub(super) fn rank(&self, code: &str) -> usize {
        self.signals
            .iter()
            .position(|p| matches(p.split('@').next().unwrap_or(p), code))
            .unwrap_or(usize::MAX)
    }
}

/// The rule of an incident code.
pub fn find(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}
