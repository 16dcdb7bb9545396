//! Prompts: investigation playbooks that steer a model to the right tools in the right order.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{GetPromptResult, PromptMessage, Role};
use rmcp::{prompt, prompt_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::server::Launcher;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TriageArgs {
    /// The node to triage (as `kubectl get nodes` prints it, or `local`).
    pub node_name: String,
    /// What was observed, e.g. "pods stuck in ContainerCreating" or "CUDA error: unknown error".
    #[serde(default)]
    pub symptom: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct XidPromptArgs {
    /// The node whose kernel log reported the XID.
    pub node_name: String,
    /// The XID code seen, if known (e.g. 79).
    #[serde(default)]
    pub xid: Option<String>,
    /// How far back to look, e.g. `2h` or `1d`.
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JobArgs {
    /// Nodes the job runs on, comma-separated (e.g. `gpu-node-1,gpu-node-2`), when known.
    #[serde(default)]
    pub nodes: Option<String>,
    /// The job's namespace, to diagnose it as a whole.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `hung` (no progress at all) or `slow` (progress, but below expected throughput).
    #[serde(default)]
    pub symptom: Option<String>,
    /// The job or pod name, to find its pods.
    #[serde(default)]
    pub job: Option<String>,
}

fn user(text: String) -> Vec<PromptMessage> {
    vec![PromptMessage::new_text(Role::User, text)]
}

#[prompt_router(vis = "pub(crate)")]
impl Launcher {
    /// Triage one GPU node: health verdict first, then the narrower tools its findings point to.
    #[prompt(name = "triage_gpu_node", title = "Triage a GPU node")]
    async fn triage_gpu_node(&self, Parameters(a): Parameters<TriageArgs>) -> GetPromptResult {
        let symptom = a
            .symptom
            .map(|s| format!(" The reported symptom is: {s}."))
            .unwrap_or_default();
        GetPromptResult::new(user(format!(
            "Triage the GPUs of node `{node}`.{symptom}\n\
             1. Call get_gpu_health with node_name `{node}` (list_gpu_nodes names the nodes when this one is \
             not found). Report the node verdict and every critical or warning finding with its evidence and \
             recommended action.\n\
             2. Follow the findings: XID findings -> analyze_xid_errors; ECC or row-remapping findings -> \
             snapshot_ecc; thermal, power or clock findings -> get_gpu_telemetry; NVLink, fabric or P2P \
             findings -> inspect_topology; a missing GPU -> get_gpu_inventory; everything at once -> \
             describe_gpu_node. Whether a GPU throttled or logged Xids or ECC errors over the last hours, \
             before anyone looked: get_gpu_history (the cluster's own Prometheus; where it says there is \
             none, go on without it).\n\
             3. Before recommending a GPU reset, drain or reboot, call get_gpu_processes and \
             get_pod_gpu_allocation to name the workloads that would be interrupted (exact device ids when \
             the probe reaches the kubelet).\n\
             4. If a multi-node job on this node is stuck or slow, call diagnose_workload with its namespace \
             and name: it compares this node's GPUs and fabric ports with the job's other nodes.\n\
             5. When the passive facts leave it open whether a GPU is bad (a job failed with no Xid), call \
             run_gpu_diagnostic on its idle GPUs (level 1; levels 2-3 need operator mode): a busy GPU is \
             not tested, a refused run is not a failure.\n\
             6. Answer with: verdict, root cause (with the evidence lines), impact on workloads, and the \
             least disruptive action that fixes it. Say plainly when the facts are incomplete.",
            node = a.node_name
        )))
        .with_description(format!("Triage GPU node {}", a.node_name))
    }

    /// Investigate XID errors on a node: decode, correlate, and decide what to do.
    #[prompt(name = "investigate_xid", title = "Investigate XID errors")]
    async fn investigate_xid(&self, Parameters(a): Parameters<XidPromptArgs>) -> GetPromptResult {
        let since = a
            .since
            .as_deref()
            .map(|s| format!(" with since `{s}`"))
            .unwrap_or_default();
        let code = a
            .xid
            .as_deref()
            .map(|x| {
                format!(
                    " XID {x} was reported; read the resource xid://catalog/{x} for what NVIDIA says it means \
                     and requires."
                )
            })
            .unwrap_or_default();
        GetPromptResult::new(user(format!(
            "Investigate the NVIDIA XID errors on node `{node}`.{code}\n\
             1. Call analyze_xid_errors with node_name `{node}`{since}. List the decoded events per GPU \
             (code, time, meaning) and the correlated findings.\n\
             2. For unfamiliar codes, read xid://catalog/{{code}}.\n\
             3. Memory XIDs (48, 63, 64, 92, 94, 95): call snapshot_ecc to check pending row remaps and \
             uncorrectable counts. Bus/link XIDs (79, 74, SXid, NVLink): call inspect_topology. Thermal or \
             power hints: call get_gpu_telemetry.\n\
             4. Call get_gpu_processes to see which workloads were on the affected GPUs.\n\
             5. Before a GPU reset, a drain or an RMA, call collect_evidence on the node: it keeps the node's \
             nvidia-bug-report, XID history and kernel log, which a reset loses.\n\
             6. Conclude: hardware fault vs application/driver problem, which GPU, and the required action \
             (restart app, reset GPU, drain and reboot, RMA), quoting the evidence.",
            node = a.node_name
        )))
        .with_description(format!("Investigate XID errors on {}", a.node_name))
    }

    /// A distributed training job is hung or slow: find the GPU, link or node that holds it back.
    #[prompt(
        name = "training_job_hung_or_slow",
        title = "Training job hung or slow"
    )]
    async fn training_job_hung_or_slow(
        &self,
        Parameters(a): Parameters<JobArgs>,
    ) -> GetPromptResult {
        let symptom = a.symptom.as_deref().unwrap_or("hung or slow");
        let job = a
            .job
            .as_deref()
            .map(|j| format!(" The job is `{j}`."))
            .unwrap_or_default();
        let nodes = a
            .nodes
            .as_deref()
            .map(|n| format!(" on nodes {n}"))
            .unwrap_or_default();
        let ns = a
            .namespace
            .as_deref()
            .map(|n| format!(" Its namespace is `{n}`."))
            .unwrap_or_default();
        GetPromptResult::new(user(format!(
            "A multi-GPU training job is {symptom}{nodes}.{job}{ns} Find the GPU, link or node that holds it \
             back; NCCL collectives run at the speed of the slowest rank, and one bad GPU or link stalls them \
             all.\n\
             1. Call diagnose_workload with the job's namespace and its name as `job`, `jobset`, \
             `pytorchjob`, `mpijob`, `rayjob` or `pod` (or a `label_selector` matching its pods). It finds \
             every pod, node and GPU of the job, probes each node once, reads each pod's log tail (and a \
             restarted container's previous log) and gives one suspect per thing at fault (a GPU, a rank's \
             pod, a node, its fabric, a pod's NCCL configuration) with all its evidence: Xids and probe \
             findings, pod states, stragglers, and the ranks' own log lines (NCCL watchdog timeouts, NCCL \
             errors, torch elastic's first failure, CUDA errors, a rank on NET/Socket). The first suspect is \
             the first to fail; `collective.lagging_rank` is the rank every other rank waits for, even when \
             it logged nothing; the other ranks' timeouts are consequences, not causes. Follow the first \
             suspect and its `also` codes: xid.* -> analyze_xid_errors on that node; ecc.*, \
             cuda.ecc_uncorrectable -> snapshot_ecc; nvlink.*, pcie.*, nic.*, nccl.ib_completion_error -> \
             inspect_topology; straggler.clocks, power.*, thermal.* -> get_gpu_telemetry; a lagging rank with \
             no hardware evidence -> get_gpu_processes on its node (is it alive, is its GPU busy?) and its \
             own code path (data loader, a rank-dependent branch); pod.* -> the pod's events (`kubectl \
             describe pod`).\n\
             2. When that finds no cause, or to tell stuck from slow, call watch_gpus with the same \
             namespace and name (a window of 30-60 s): it samples every node of the job on one clock and names \
             the pattern: all GPUs pegged at 100% at idle power (a hang in a collective), one GPU computing \
             while the others wait (a straggler or deadlock), one slower (throttled), or progressing.\n\
             3. If the answer lists `not examined`, the diagnosis is incomplete: say what was not examined and \
             give its fix (e.g. `--probe-image`, RBAC per check_cluster) before any conclusion. Only when \
             everything was examined and nothing found, point to the application: its data pipeline, \
             checkpoints and NCCL settings.\n\
             4. Without the job's name, call scan_gpu_nodes with check `health` (narrow it with \
             label_selector if the job's nodes share a label), then on the job's nodes analyze_xid_errors \
             (XID 79/74/NVLink SXids explain hangs; 13/31/43 point to the application), inspect_topology \
             (NVLinks down, P2P unavailable, NIC ports down or flapping) and, for `slow`, get_gpu_telemetry \
             (throttling on one node slows every rank).\n\
             5. Answer with the culprit (node, GPU, link, pod and rank), the evidence, and what to do \
             (exclude the node, reset the GPU, fix the fabric port, fix placement)."
        )))
        .with_description("Find why a distributed training job is hung or slow")
    }
}
