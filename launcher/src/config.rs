//! The launcher's resolved settings ([`Config`]), which the MCP server, the subcommands and the readiness
//! checks read: the command line (`crate::cli`) converts into it, so nothing below the CLI knows clap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_diag::command::DriverRoot;

use crate::probe::kube::K8sConfig;
use crate::probe::trust::TrustPolicy;

/// Which tools the server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Only tools that read (the default).
    #[default]
    ReadOnly,
    /// Also the operator tools that change GPUs or nodes.
    Operator,
}

/// A group of tools `--toolsets` picks by name. Which tool is in which group is the registry's
/// (`crate::mcp::tools`), the one place that says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolset {
    /// One node's GPUs now: health, Xids, telemetry, topology, ECC, processes, pods, inventory.
    Node,
    /// A training job across its pods, nodes and GPUs; watching GPUs over a window.
    Workload,
    /// Every GPU node: listing and ranking them, and the cluster's readiness for probes.
    Fleet,
    /// What the cluster's Prometheus recorded; starts no probe.
    History,
    /// Heavier reads: DCGM's or RVS's active diagnostic on idle GPUs, the evidence archive.
    Diagnostics,
    /// Acting on GPUs and nodes (kill, reset, cordon, mark); listed only with `--mode operator`.
    Operator,
}

impl Toolset {
    /// Every group, in the order `setup` and `check_cluster` name them.
    pub const ALL: [Toolset; 6] = [
        Toolset::Node,
        Toolset::Workload,
        Toolset::Fleet,
        Toolset::History,
        Toolset::Diagnostics,
        Toolset::Operator,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Toolset::Node => "node",
            Toolset::Workload => "workload",
            Toolset::Fleet => "fleet",
            Toolset::History => "history",
            Toolset::Diagnostics => "diagnostics",
            Toolset::Operator => "operator",
        }
    }

    /// What the group answers, in a few words (`check_cluster`, `setup`).
    pub fn about(self) -> &'static str {
        match self {
            Toolset::Node => "one node's GPUs now",
            Toolset::Workload => "a training job across its nodes, GPUs over a window",
            Toolset::Fleet => "every GPU node ranked, the cluster's readiness",
            Toolset::History => "the cluster's Prometheus, no probe",
            Toolset::Diagnostics => "DCGM/RVS active diagnostic, evidence archive",
            Toolset::Operator => "kill, reset, cordon, mark; only with --mode operator",
        }
    }

    /// `--toolsets`' value: group names separated by commas; `all` for every group.
    pub fn parse_list(s: &str) -> Result<Vec<Toolset>, String> {
        let mut out = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                out.extend(Toolset::ALL);
                continue;
            }
            match Toolset::ALL.iter().find(|t| t.name() == word) {
                Some(t) => out.push(*t),
                None => {
                    return Err(format!(
                        "--toolsets: no group `{}`; groups: {}, or all",
                        word.escape_default(),
                        Toolset::ALL.map(Toolset::name).join(", ")
                    ));
                }
            }
        }
        if out.is_empty() {
            return Err("--toolsets: name at least one group".into());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Where and how probe pods run, as given (`--kubeconfig`, `--namespace`, `--probe-*`, ...); the
/// Kubernetes runner's settings are derived from it by [`Config::k8s_config`], and `setup` writes it back
/// into the host configuration.
#[derive(Debug, Clone, Default)]
pub struct ClusterSettings {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: String,
    pub probe_image: Option<String>,
    /// `pod` or `ephemeral`.
    pub probe_mode: String,
    pub probe_runtime_class: Option<String>,
    /// activeDeadlineSeconds of probe pods.
    pub probe_deadline: u64,
    /// `auto`, `image` or `copy`.
    pub probe_delivery: String,
    pub probe_bin_dir: Option<PathBuf>,
    pub probe_priority_class: String,
    pub image_pull_secret: Vec<String>,
    pub trust_image: Vec<String>,
    pub trust_images_file: Option<PathBuf>,
    pub target_pod: Option<String>,
    /// `--no-pull`: the default delivery never pulls its fallback base.
    pub no_pull: bool,
    /// `--dcgm-image`: NVIDIA's DCGM image (or a mirror) by digest, for `run_gpu_diagnostic`.
    pub dcgm_image: Option<String>,
    /// `--prometheus`: where the cluster's GPU history is read (`get_gpu_history`); found when not given.
    pub prometheus: crate::cluster::prometheus::PrometheusSetting,
}

impl ClusterSettings {
    /// The built-in trusted sources plus `--trust-image` and `--trust-images-file` (read here).
    pub fn trust_policy(&self) -> Result<TrustPolicy, String> {
        TrustPolicy::with(&self.trust_image, self.trust_images_file.as_deref())
    }
}

/// `--reading-max-age`'s default, in seconds: a conversation's questions about a node come within half a
/// minute, and a GPU's live values older than this are no longer "now" (`mcp::framework::readings`).
pub const DEFAULT_READING_MAX_AGE_SECS: u64 = 20;

/// The launcher's configuration, shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Config {
    pub local: bool,
    pub simulate: Option<String>,
    pub probe_bin: Option<PathBuf>,
    pub mode: Mode,
    /// `--toolsets`: the groups of tools listed, in [`Toolset::ALL`]'s order (the operator group's
    /// tools only with [`Mode::Operator`]).
    pub toolsets: Vec<Toolset>,
    /// Every group's tools, as the server's registry says (filled by the MCP server; empty outside it).
    pub tool_groups: Vec<(Toolset, Vec<&'static str>)>,
    pub probe_timeout: Duration,
    /// `--reading-max-age`: how long a node's reading answers the next read-only tools on that node
    /// (`mcp::framework::readings`); zero keeps none.
    pub reading_max_age: Duration,
    pub evidence_dir: PathBuf,
    /// `--driver-root`: node-probe's `--driver-root` in every run, whichever runner (pod, copy or image
    /// delivery, ephemeral, local); added where the request is made (`mcp::framework::Env::probe`).
    pub driver_root: Option<DriverRoot>,
    pub cluster: ClusterSettings,
    /// Built-in trusted sources plus --trust-image / --trust-images-file ([`ClusterSettings::trust_policy`]).
    pub trust: Arc<TrustPolicy>,
}

impl Config {
    /// Each group, whether it is served, and its tools: how `check_cluster` says which groups exist.
    pub fn toolsets_line(&self) -> String {
        let mut served = Vec::new();
        let mut not = Vec::new();
        for (t, tools) in &self.tool_groups {
            let line = format!("{} ({}: {})", t.name(), t.about(), tools.join(", "));
            if self.serves(*t) {
                served.push(line);
            } else {
                not.push(line);
            }
        }
        let mut out = format!("tool groups served: {}", served.join("; "));
        if !not.is_empty() {
            out.push_str(&format!("; not served: {}", not.join("; ")));
        }
        out.push_str(" (`--toolsets` picks groups; operator tools need `--mode operator`)");
        out
    }

    /// Whether `t`'s tools are listed: picked by `--toolsets`, and operator tools only in operator mode.
    pub fn serves(&self, t: Toolset) -> bool {
        self.toolsets.contains(&t) && (t != Toolset::Operator || self.mode == Mode::Operator)
    }

    /// What every node-probe run gets after its command's own arguments: `--driver-root PATH` when given.
    /// The exec admission policy admits it there, just before `--node-name` (deploy/policies.yaml).
    pub fn probe_args_suffix(&self) -> Vec<String> {
        driver_root_args(self.driver_root.as_ref())
    }

    /// The Kubernetes settings from the CLI flags.
    pub fn k8s_config(&self) -> K8sConfig {
        let c = &self.cluster;
        K8sConfig {
            // Empty values mean "not set": bundle hosts fill `--context=${user_config.context}` with "".
            kubeconfig: c.kubeconfig.clone().filter(|p| !p.as_os_str().is_empty()),
            context: c.context.clone().filter(|c| !c.is_empty()),
            namespace: c.namespace.clone(),
            probe_image: c.probe_image.clone(),
            probe_mode: c.probe_mode.parse().unwrap_or_default(),
            runtime_class: c.probe_runtime_class.clone(),
            active_deadline: Duration::from_secs(if c.probe_deadline == 0 {
                120
            } else {
                c.probe_deadline
            }),
            operator_mode: self.mode == Mode::Operator,
            target_pod: c.target_pod.clone(),
            probe_delivery: c.probe_delivery.parse().unwrap_or_default(),
            probe_bin_dir: c.probe_bin_dir.clone(),
            image_pull_secrets: c.image_pull_secret.clone(),
            priority_class: Some(c.probe_priority_class.clone()),
            trust: self.trust.clone(),
            pull_fallback: !c.no_pull,
            driver_root: self.driver_root.clone(),
            dcgm_image: c.dcgm_image.clone(),
            ..Default::default()
        }
    }
}

/// `--evidence-dir`, else the user's state directory (XDG base directories), else the temp dir.
pub fn default_evidence_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        })
        .unwrap_or_else(std::env::temp_dir);
    state.join("k8s-gpu-mcp/evidence")
}

/// `--driver-root PATH`, or nothing.
pub fn driver_root_args(root: Option<&DriverRoot>) -> Vec<String> {
    root.map(|d| vec![DriverRoot::FLAG.to_string(), d.to_string()])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::Toolset;

    #[test]
    fn toolsets_parse_names_and_all() {
        assert_eq!(
            Toolset::parse_list("node, history,node").unwrap(),
            [Toolset::Node, Toolset::History]
        );
        assert_eq!(Toolset::parse_list("all").unwrap(), Toolset::ALL);
        assert!(
            Toolset::parse_list("gpu")
                .unwrap_err()
                .contains("no group `gpu`")
        );
        assert!(Toolset::parse_list(" , ").is_err());
    }
}
