//! The options node-probe's commands share (the host to read, NVML, simulation, the kernel-log window),
//! apart from the command line that parses them, so the collectors depend on these and not on the CLI.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Host filesystem root (default: /host when it exists, else /).
    #[arg(long, global = true, value_name = "DIR", env = "NODE_PROBE_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
    /// A driver root on the host the built-in table does not know (a GPU Operator
    /// `hostPaths.driverInstallDir` other than /run/nvidia/driver, a vendor's own directory): searched
    /// first for libnvidia-ml, nvidia-smi and nvidia-bug-report.sh, under the host root. An absolute
    /// path as seen on the host (e.g. /opt/nvidia), without `..`, not under /proc, /sys or /dev.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "NODE_PROBE_DRIVER_ROOT",
        value_parser = driver_root
    )]
    pub driver_root: Option<PathBuf>,
    /// Path of libnvidia-ml.so.1, overriding the search.
    #[arg(long, global = true, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Use a built-in simulated node instead of NVML (`node-probe scenarios` lists them).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "fixture")]
    pub simulate: Option<String>,
    /// Load a simulated node from a scenario file (same format as the built-in ones).
    #[arg(long, global = true, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Name of the node being probed, as Kubernetes knows it (reported back; selects the scenario when
    /// NODE_PROBE_SCENARIO_MAP is set).
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Expected GPU count: fewer answering GPUs is a "GPU missing" finding.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub expect_gpus: Option<u32>,
    /// Give up on NVML after this many seconds (plus `--watch`): a hung GPU or driver can block NVML
    /// calls indefinitely, and the kernel log and host facts are still worth reporting then.
    #[arg(long, global = true, value_name = "SECS", default_value_t = DEFAULT_NVML_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub nvml_timeout: u64,
    /// Milliseconds between the two reads of the RDMA NICs' error counters (what rises now versus
    /// lifetime totals); 0 reads them once. Only spent when the node has RDMA devices.
    #[arg(long, global = true, value_name = "MS", default_value_t = DEFAULT_NIC_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(0..=crate::nic::MAX_INTERVAL_MS))]
    pub nic_interval_ms: u64,
    /// The ResourceClaims the API server has allocated on this node (the launcher reads them):
    /// `none`, or `<ns>/<claim>=<driver>/<device>[+...][><pod>:<uid>...]` joined by `,`. Where the kubelet
    /// reports no DRA claim, they name which pods hold which GPUs (`allocation`, `reset`'s preflight).
    #[arg(long, global = true, value_name = "CLAIMS", value_parser = api_claims)]
    pub api_claims: Option<ApiClaims>,
}

/// `--api-claims`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiClaims(pub Vec<gpu_diag::facts::ApiClaimFacts>);

fn api_claims(s: &str) -> Result<ApiClaims, String> {
    gpu_diag::facts::api_claims_arg::decode(s).map(ApiClaims)
}

impl GlobalArgs {
    /// Put what the launcher read from the API server beside what the node says.
    pub fn add_api_facts(&self, facts: &mut gpu_diag::facts::NodeFacts) {
        if let Some(c) = &self.api_claims {
            facts.api_claims = Some(c.0.clone());
        }
    }
}

/// `--driver-root`: the launcher checks the same grammar (`gpu_diag::command::DriverRoot`), but a person
/// runs node-probe too, and this root's code runs as root: a relative path or `..` would not mean what it
/// says (both used to be dropped silently, `/a/../b` searched as `/a/b`).
fn driver_root(s: &str) -> Result<PathBuf, String> {
    s.parse::<gpu_diag::command::DriverRoot>()
        .map(|d| PathBuf::from(d.as_str()))
        .map_err(|e| e.to_string())
}

/// Healthy NVML answers a full collection in well under a second; a GSP RPC timeout (Xid 119) takes 6 s
/// per call, so 30 s separates "slow" from "hung" without eating the launcher's 120 s probe deadline.
pub const DEFAULT_NVML_TIMEOUT_SECS: u64 = 30;

/// Long enough to catch a flapping link or a fast error rate, short beside NVML collection and the
/// launcher's probe deadline.
pub const DEFAULT_NIC_INTERVAL_MS: u64 = 1000;

/// The values of every argument group a command of gpu-diag's table may take
/// (`gpu_diag::command::ArgumentGroup`): the groups a command does not take keep their defaults.
#[derive(Debug, Clone, Default)]
pub struct CommandArgs {
    pub kernel_log: KernelLogArgs,
}

// `ArgumentGroup::KernelLog`: which kernel log to read and the window (`xid`). A line comment, not a
// doc comment: clap's derive would make a doc comment the help of every subcommand that takes the group.
#[derive(Debug, Args, Clone, Default)]
pub struct KernelLogArgs {
    /// Read this file (kmsg records, dmesg or syslog lines) instead of {host-root}/dev/kmsg.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Only events in this window before now (e.g. 30m, 2h, 1d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Also wait this many seconds for new XID events from NVML.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub watch: Option<u32>,
    /// Also read earlier boots from the host's journal and kernel text logs (implied when `--since`
    /// reaches before this boot).
    #[arg(long)]
    pub history: bool,
    /// Set by node-probe for a command whose kernel log streams (`KernelLogInput::Streamed`): the log
    /// streams into the analysis after collection rather than being gathered into the facts (a log of
    /// any size in bounded memory).
    #[arg(skip)]
    pub stream_log: bool,
}
