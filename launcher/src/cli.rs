//! Command line: the clap definition of the subcommands and the flags they share, converted into the
//! launcher's [`Config`] (`crate::config`), which is what everything below the CLI reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gpu_diag::command::DriverRoot;

use crate::config::{ClusterSettings, Config, Mode, default_evidence_dir};

#[derive(Debug, Parser)]
#[command(
    name = "k8s-gpu-mcp",
    version,
    about = "MCP server that answers GPU node questions by running node-probe on the node (probe pods), or locally."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Serve MCP over stdio (what an AI host starts), or with --http to many people over streamable HTTP.
    Serve(ServeArgs),
    /// Call one tool and print its result (same code path as MCP); exits 1 when the tool reports an error.
    Call(CallArgs),
    /// Watch a node's GPUs (or a workload's, with -n and KIND/NAME) over a window: a progress bar while it
    /// samples, then the episodes and the pattern (the `watch_gpus` tool); --chart saves the picture.
    Watch(WatchArgs),
    /// A live view of GPUs as they are sampled: a node's, or a workload's across its nodes (KIND/NAME with -n,
    /// or -n NS for every accelerator pod there). Keys: s sort, / filter, space pause, ? help, q quit.
    /// Without a terminal, or with --once, one plain frame.
    Top(TopArgs),
    /// Diagnose a node (its GPUs' health) or a workload (pod/NAME, job/NAME, jobset/NAME, pytorchjob/NAME,
    /// mpijob/NAME, rayjob/NAME with -n): what the tools answer, in colour on a terminal.
    Diagnose(DiagnoseArgs),
    /// Print the launcher version.
    Version,
    /// Delete leftover probe pods (past their deadline, or finished) in --namespace; prints a JSON report.
    Gc(GcArgs),
    /// Check that the cluster is ready: kubeconfig, API server, probe namespace and its Pod Security label,
    /// permissions, GPU nodes, probe image, admission of a probe pod. Exits 1 when a check fails.
    Check(CheckArgs),
    /// Print (or --apply) the namespace and RBAC for the current context, and the MCP host configuration.
    Setup(SetupArgs),
    /// Print the shell completion script for SHELL.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Serve streamable HTTP on ADDRESS:PORT instead of stdio, for many people: each request needs an
    /// access token from the issuer of --http-config and acts with that person's Kubernetes rights.
    #[arg(long, value_name = "ADDRESS:PORT", requires = "http_config")]
    pub http: Option<std::net::SocketAddr>,
    /// The HTTP server's configuration (YAML: url, issuer, claims, TLS, limits; deploy/http/config.yaml).
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only the GPU nodes matching this label selector (default: every GPU node).
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// `text`: the checklist; `json`: the same as one JSON document.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print the call's progress on stderr even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Check a shared server (`serve --http`) instead: this configuration, its issuer, its TLS files, and
    /// that the kubeconfig's identity may impersonate people.
    #[arg(long, value_name = "FILE")]
    pub http_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Apply the manifests to the current context with server-side apply (needs a cluster admin).
    #[arg(long)]
    pub apply: bool,
    /// Also bind the roles --mode needs to this user (repeatable).
    #[arg(long, value_name = "NAME")]
    pub user: Vec<String>,
    /// Also bind the roles --mode needs to this group (repeatable).
    #[arg(long, value_name = "NAME")]
    pub group: Vec<String>,
    /// Print only the manifests or only the host configuration.
    #[arg(long, value_enum, conflicts_with = "apply")]
    pub only: Option<SetupPart>,
    /// Leave out the admission policies (deploy/policies.yaml) that hold the launcher's users to the probe's
    /// shape; `check` then says what is not enforced.
    #[arg(long)]
    pub no_policies: bool,
    /// Bind the pod log reader (diagnose_workload) in these namespaces only, instead of cluster-wide
    /// (comma-separated, repeatable).
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetupPart {
    Manifests,
    Hosts,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete every probe pod of any launcher, also those still within their deadline.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Tool name, e.g. `get_gpu_health` (`k8s-gpu-mcp call list` lists them).
    pub tool: String,
    /// One argument as key=value; the value is parsed as JSON when it is valid JSON (numbers, true),
    /// else taken as a string. Repeatable.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// All arguments as one JSON object; `--arg` entries are merged over it.
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,
    /// `text`: the rendering an AI sees; `json`: the structured result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print the call's progress on stderr even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A node name (`local` in local mode), or KIND/NAME of a workload in -n NS (pod, job, jobset,
    /// pytorchjob, mpijob, rayjob).
    pub target: String,
    /// The workload's namespace (`--namespace` is the probe pods').
    #[arg(short = 'n', long = "workload-namespace", value_name = "NS")]
    pub workload_namespace: Option<String>,
    /// Seconds to watch (5-600).
    #[arg(long, default_value_t = 30)]
    pub seconds: u32,
    /// Milliseconds between samples (250-60000).
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u32,
    /// GPU indices of the node to watch, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub gpus: Vec<u32>,
    /// Write the window's chart (PNG) to this file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// `text`: the answer for people; `json`: the structured result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// A node name (`local` in local mode), or KIND/NAME of a workload in -n NS (pod, job, jobset,
    /// pytorchjob, mpijob, rayjob); with -n alone, every pod of NS that requests accelerators.
    pub target: Option<String>,
    /// The workload's namespace (`--namespace` is the probe pods').
    #[arg(short = 'n', long = "workload-namespace", value_name = "NS")]
    pub workload_namespace: Option<String>,
    /// Milliseconds between samples (250-60000).
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u32,
    /// Print one plain frame once every node has sampled, then quit.
    #[arg(long)]
    pub once: bool,
    /// Seconds each probe pod samples before the next one takes over (10-600): also the longest a pod
    /// outlives a launcher killed outright.
    #[arg(long, default_value_t = 60)]
    pub renew_seconds: u32,
    /// Write what the view cost (its CPU, peak memory, the delay from a sample to the screen) to FILE as
    /// JSON when it ends (the benchmark's figures).
    #[arg(long, value_name = "FILE", hide = true)]
    pub stats: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// A node name (`local` in local mode), or KIND/NAME of a workload in -n NS (pod, job, jobset,
    /// pytorchjob, mpijob, rayjob).
    pub target: String,
    /// The workload's namespace (`--namespace` is the probe pods').
    #[arg(short = 'n', long = "workload-namespace", value_name = "NS")]
    pub workload_namespace: Option<String>,
    /// `text`: the answer for people; `json`: the structured result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `--mode`, the clap face of [`Mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ModeArg {
    /// Only tools that read (the default).
    #[default]
    ReadOnly,
    /// Also the operator tools that change GPUs or nodes.
    Operator,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::ReadOnly => Mode::ReadOnly,
            ModeArg::Operator => Mode::Operator,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Run node-probe as a local child process instead of in probe pods (no cluster needed).
    #[arg(long, global = true)]
    pub local: bool,
    /// Local mode: have node-probe simulate this scenario (`node-probe scenarios` lists them), or load
    /// this scenario file when the value is a path ending in `.json`.
    #[arg(long, global = true, value_name = "SCENARIO")]
    pub simulate: Option<String>,
    /// node-probe binary for local mode (default: next to this executable, then this machine's build in
    /// probes/ beside it (a release archive), then PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub probe_bin: Option<PathBuf>,
    /// `operator` also lists the tools that act on GPUs and nodes.
    #[arg(long, global = true, value_enum, default_value_t = ModeArg::ReadOnly)]
    pub mode: ModeArg,
    /// Groups of tools to list, separated by commas: node, workload, fleet, history, diagnostics,
    /// operator (its tools only with `--mode operator`), or all (the default).
    #[arg(
        long,
        global = true,
        value_name = "GROUPS",
        env = "K8S_GPU_MCP_TOOLSETS",
        default_value = "all"
    )]
    pub toolsets: String,
    /// Log format on stderr (stdout carries only the protocol).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Deadline of one probe run, start to cleanup, in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub probe_timeout: u64,
    /// How long one probe's reading of a node answers the next read-only tools on that node, in seconds
    /// (each answer says how old its reading is; a call's `max_age_s` asks for fresher). 0 reads the node
    /// afresh for every call.
    #[arg(long, global = true, value_name = "SECS", env = "K8S_GPU_MCP_READING_MAX_AGE",
          default_value_t = crate::config::DEFAULT_READING_MAX_AGE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub reading_max_age: u64,
    /// Where `collect_evidence` (and the evidence before each operator action) writes its archives
    /// (default: $XDG_STATE_HOME/k8s-gpu-mcp/evidence, else ~/.local/state/k8s-gpu-mcp/evidence).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "K8S_GPU_MCP_EVIDENCE_DIR"
    )]
    pub evidence_dir: Option<PathBuf>,
    /// A directory on the node holding the NVIDIA driver's files where node-probe's built-in table does not
    /// look (a GPU Operator `driverInstallDir` other than /run/nvidia/driver, a vendor's own directory):
    /// passed to every node-probe run as its --driver-root and searched first. An absolute path as seen on
    /// the host (e.g. /opt/nvidia), read under the host root; no `..`, not under /proc, /sys or /dev.
    #[arg(long, global = true, value_name = "PATH", value_parser = driver_root)]
    pub driver_root: Option<DriverRoot>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `--driver-root`, checked before anything connects or any pod exists: clap's error names the flag.
fn driver_root(s: &str) -> Result<DriverRoot, String> {
    s.parse::<DriverRoot>().map_err(|e| e.to_string())
}

/// `--prometheus`, checked before anything connects: clap's error names the flag.
fn prometheus(s: &str) -> Result<crate::cluster::prometheus::PrometheusSetting, String> {
    s.parse()
}

/// Where and how probe pods run. Consumed by the Kubernetes runner (`crate::probe::kube`).
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config). AI hosts pass a minimal environment,
    /// so set this when KUBECONFIG is not visible to the host.
    #[arg(long, global = true, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Default kubeconfig context (tools may pick another with their `context` argument).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace where probe pods run.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "gpu-diagnostics"
    )]
    pub namespace: String,
    /// Image delivery: an image with node-probe on its PATH (deploy/probe-image/build.sh builds it), e.g.
    /// mirrored in your registry. Copy delivery: the base image node-probe is copied into. Unset (the
    /// default): node-probe is copied into an image each node already has (its status.images: Debian,
    /// Ubuntu, UBI, CUDA or the GPU Operator's driver image), so nothing needs publishing.
    #[arg(long, global = true, value_name = "IMAGE")]
    pub probe_image: Option<String>,
    /// `pod`: a probe pod per call (default); `ephemeral`: an ephemeral container in --target-pod
    /// (sees only that pod: no host root, no kernel log; it cannot be removed afterwards).
    #[arg(long, global = true, value_name = "MODE", default_value = "pod",
          value_parser = ["pod", "ephemeral"])]
    pub probe_mode: String,
    /// RuntimeClass of probe pods. Rarely needed: unset, node-probe loads the node's own libnvidia-ml from
    /// the host's root (read through /proc/1/root; host installs, the GPU Operator's /run/nvidia/driver,
    /// GKE's /home/kubernetes/bin/nvidia, ...). `nvidia` makes the container toolkit inject it instead.
    #[arg(long, global = true, value_name = "NAME")]
    pub probe_runtime_class: Option<String>,
    /// activeDeadlineSeconds of probe pods: the kubelet ends a probe pod after this even if the launcher dies.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub probe_deadline: u64,
    /// How node-probe gets into the probe container. `copy`: the launcher streams the node-probe build for
    /// the node's architecture in over exec (SHA-256 checked) and runs it, in --probe-image or, without it,
    /// in an image the node already has (any glibc image with sh and coreutils). `image`:
    /// --probe-image has node-probe on its PATH (default ghcr.io/k8s-gpu-mcp/node-probe:v<version>).
    /// `auto` (default): `image` when only --probe-image is given, else `copy`.
    #[arg(long, global = true, value_name = "HOW", default_value = "auto",
          value_parser = ["auto", "image", "copy"])]
    pub probe_delivery: String,
    /// Copy delivery: directory with node-probe builds named node-probe-linux-amd64 / node-probe-linux-arm64
    /// (or amd64/node-probe, arm64/node-probe); default: probes/ beside this executable when it exists (a
    /// release archive), else next to it, where a plain `node-probe` also serves nodes of the launcher's own
    /// architecture.
    #[arg(long, global = true, value_name = "DIR")]
    pub probe_bin_dir: Option<PathBuf>,
    /// priorityClassName of probe pods (default system-node-critical: the kubelet admits them on a node under
    /// disk or memory pressure). "" for none; a cluster that refuses the class gets pods without it.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "system-node-critical"
    )]
    pub probe_priority_class: String,
    /// imagePullSecrets of probe pods (a Secret in --namespace), for a --probe-image in a private registry.
    /// Repeatable.
    #[arg(long, global = true, value_name = "SECRET")]
    pub image_pull_secret: Vec<String>,
    /// Default delivery: also trust base images from this source, beside the built-in list (Docker Official
    /// Images and their cloud mirrors, NVIDIA's nvcr.io/nvidia and docker.io/nvidia, Red Hat's registries).
    /// `REGISTRY/NAMESPACE/` trusts everything below it, `REGISTRY/NAMESPACE/REPO` one repository,
    /// `REGISTRY/.../REPO@sha256:DIGEST` one image. Such an image runs as root on the node. Repeatable.
    #[arg(long, global = true, value_name = "PREFIX")]
    pub trust_image: Vec<String>,
    /// Default delivery: trusted sources as --trust-image, one a line (`#` comments).
    #[arg(long, global = true, value_name = "FILE")]
    pub trust_images_file: Option<PathBuf>,
    /// Default delivery: never pull. Without it, a node that lists no trusted glibc base (EKS, GKE and AKS
    /// GPU nodes list only their platform's own images) pulls one official base once, by digest
    /// (debian:bookworm-slim from the registry its platform reaches best); with it, such a node is an error
    /// naming --probe-image and --trust-image.
    #[arg(long, global = true)]
    pub no_pull: bool,
    /// `run_gpu_diagnostic`: NVIDIA's DCGM image by digest (nvcr.io/nvidia/cloud-native/dcgm@sha256:...,
    /// or a mirror of it from a trusted source), pulled where a node does not list one; node-probe is
    /// copied into it. Without it, only nodes that list NVIDIA's DCGM image by digest can run diagnostics.
    #[arg(long, global = true, value_name = "IMAGE@sha256:DIGEST")]
    pub dcgm_image: Option<String>,
    /// Where `get_gpu_history` reads dcgm-exporter's (or AMD's exporter's) series: a Prometheus URL
    /// (`http(s)://HOST:PORT[/PREFIX]`, fetched from this machine), a Service (`NAMESPACE/NAME[:PORT]`, read
    /// through the API server's service proxy with your kubeconfig), or `off`. Unset: the cluster's own
    /// Prometheus is looked for (kube-prometheus-stack, prometheus-operator, the community chart, Thanos,
    /// VictoriaMetrics) in the usual monitoring namespaces. No tool argument can name one.
    #[arg(long, global = true, value_name = "URL|NS/NAME[:PORT]|off", env = "K8S_GPU_MCP_PROMETHEUS",
          value_parser = prometheus)]
    pub prometheus: Option<crate::cluster::prometheus::PrometheusSetting>,
    /// Ephemeral mode: the pod to add the probe container to, `namespace/pod[/container]`.
    #[arg(long, global = true, value_name = "NS/POD[/CONTAINER]")]
    pub target_pod: Option<String>,
}

impl From<&ClusterArgs> for ClusterSettings {
    fn from(c: &ClusterArgs) -> ClusterSettings {
        ClusterSettings {
            kubeconfig: c.kubeconfig.clone(),
            context: c.context.clone(),
            namespace: c.namespace.clone(),
            probe_image: c.probe_image.clone(),
            probe_mode: c.probe_mode.clone(),
            probe_runtime_class: c.probe_runtime_class.clone(),
            probe_deadline: c.probe_deadline,
            probe_delivery: c.probe_delivery.clone(),
            probe_bin_dir: c.probe_bin_dir.clone(),
            probe_priority_class: c.probe_priority_class.clone(),
            image_pull_secret: c.image_pull_secret.clone(),
            trust_image: c.trust_image.clone(),
            trust_images_file: c.trust_images_file.clone(),
            target_pod: c.target_pod.clone(),
            no_pull: c.no_pull,
            dcgm_image: c.dcgm_image.clone().filter(|s| !s.is_empty()),
            prometheus: c.prometheus.clone().unwrap_or_default(),
        }
    }
}

impl GlobalArgs {
    /// The configuration from the flags. What may run as root on a node (the built-in trusted sources plus
    /// `--trust-image` and `--trust-images-file`) is settled here, before anything connects.
    pub fn config(&self) -> Result<Config, String> {
        let cluster = ClusterSettings::from(&self.cluster);
        let trust = cluster.trust_policy()?;
        let toolsets = crate::config::Toolset::parse_list(&self.toolsets)?;
        if toolsets == [crate::config::Toolset::Operator] && self.mode == ModeArg::ReadOnly {
            return Err(
                "--toolsets operator: its tools are listed only with --mode operator; add a read-only \
                 group (node, workload, fleet, history, diagnostics) or --mode operator"
                    .into(),
            );
        }
        Ok(Config {
            local: self.local,
            simulate: self.simulate.clone(),
            probe_bin: self.probe_bin.clone(),
            mode: self.mode.into(),
            toolsets,
            tool_groups: Vec::new(),
            probe_timeout: Duration::from_secs(self.probe_timeout),
            reading_max_age: Duration::from_secs(self.reading_max_age),
            evidence_dir: self
                .evidence_dir
                .clone()
                .unwrap_or_else(default_evidence_dir),
            driver_root: self.driver_root.clone(),
            cluster,
            trust: Arc::new(trust),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(["k8s-gpu-mcp"].iter().chain(args).chain(&["serve"]))
            .map_err(|e| e.to_string())?;
        cli.global.config()
    }

    #[test]
    fn driver_root_is_checked_before_anything_runs_and_reaches_every_probe_argv() {
        let cfg = parse(&["--driver-root", "/opt//nvidia/./lib64/"]).unwrap();
        assert_eq!(
            cfg.probe_args_suffix(),
            ["--driver-root", "/opt/nvidia/lib64"]
        );
        assert_eq!(
            cfg.k8s_config().driver_root.map(|d| d.to_string()),
            Some("/opt/nvidia/lib64".into())
        );
        assert!(parse(&[]).unwrap().probe_args_suffix().is_empty());
        for (bad, why) in [
            ("opt/nvidia", "absolute path"),
            ("/opt/../../etc", "`..`"),
            ("/proc/1/root/opt", "/proc"),
            ("/", "host's own root"),
            ("/opt/nvidia\n--nvml-lib=/tmp/x.so", "control character"),
            ("/opt/a b", "letters, digits"),
        ] {
            let e = parse(&["--driver-root", bad]).unwrap_err();
            assert!(
                e.contains("--driver-root") && e.contains(why),
                "{bad:?}: {e}"
            );
        }
        let long = format!("/{}", "x".repeat(5000));
        let e = parse(&["--driver-root", &long]).unwrap_err();
        assert!(
            e.contains("--driver-root") && e.contains("longer than 1024"),
            "{e}"
        );
    }
}
