//! One error type for every tool, and the one table of hints that tells the caller what to do next.

use gpu_diag::contract::ProbeError;

use crate::cluster::ClusterError;
use crate::probe::runner::RunError;

/// Why a tool call failed. Its text (`Display`) is what the client reads: the message, then `hint: ...`
/// when there is something to do about it.
#[derive(Debug)]
pub enum ToolError {
    /// Arguments or a target refused before anything ran; the message says how to call again.
    Invalid(String),
    /// The call was cancelled by the client.
    Cancelled,
    /// The probe could not run (pod, exec, timeout, ...).
    Run { node: String, err: RunError },
    /// node-probe ran and reported a failure document.
    ProbeFailed { node: String, error: ProbeError },
    /// node-probe answered with another kind of report than the tool asked for.
    WrongReport { node: String, tool: String },
    /// The API server refused or failed a read.
    Cluster(ClusterError),
    /// The API server refused or failed a change (cordon): nothing was changed.
    ClusterWrite(ClusterError),
    /// A file on the launcher's own machine could not be written (the evidence directory).
    Local(String),
    /// Not an error: the client is to ask the user and call again (a 2026-07-28 input request). The
    /// route answers it as an `InputRequiredResult`.
    InputRequired(Box<rmcp::model::InputRequiredResult>),
}

impl From<ClusterError> for ToolError {
    fn from(e: ClusterError) -> Self {
        ToolError::Cluster(e)
    }
}

impl ToolError {
    /// The hint table: what the caller can do about each error, if anything.
    fn hint(&self) -> Option<String> {
        use ClusterError as C;
        let h = match self {
            ToolError::Invalid(_)
            | ToolError::Cancelled
            | ToolError::WrongReport { .. }
            | ToolError::InputRequired(_) => {
                return None;
            }
            ToolError::Local(_) => {
                "check that --evidence-dir names a directory the launcher can create and write"
            }
            ToolError::ProbeFailed { error, .. } => return error.hint.clone(),
            ToolError::Run { err, .. } => match err {
                RunError::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
                RunError::Timeout { .. } => {
                    "the node may be overloaded or its GPUs hung; try again, or check the node with kubectl"
                }
                // The message may already name the rules (Pod Security and RBAC texts from probe/ and cluster/).
                RunError::Forbidden(m)
                    if !m.contains("deploy/rbac.yaml") && !m.contains("deploy/policies.yaml") =>
                {
                    "the launcher's credentials lack the RBAC rules in deploy/rbac.yaml (bind them as \
                     deploy/bindings-example.yaml shows)"
                }
                _ => return None,
            },
            ToolError::Cluster(e) => match e {
                C::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
                C::Forbidden(_) => "bind the launcher's user to the reader ClusterRole in deploy/",
                C::UnknownContext { .. } => "omit `context` to use the default context",
                C::BadSelector(_) => {
                    "use Kubernetes label-selector syntax, e.g. `key=value,other!=x` or `key in (a,b)`"
                }
                C::Api(_) => "check that the API server is reachable (`kubectl get nodes`)",
                C::NotFound(_) => {
                    "check the namespace and the name (`kubectl get <kind> -n <namespace>`)"
                }
                C::KindNotInstalled(_) => {
                    "name the workload another way: `job`, `pod` or `label_selector` work on any cluster"
                }
            },
            ToolError::ClusterWrite(e) => match e {
                C::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
                C::Forbidden(_) => {
                    "cordon needs `patch` on nodes: bind the user to the k8s-gpu-mcp-operator ClusterRole \
                     (deploy/rbac.yaml)"
                }
                _ => "check that the API server is reachable (`kubectl get nodes`)",
            },
        };
        Some(h.to_string())
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::Invalid(m) => f.write_str(m)?,
            ToolError::Cancelled => f.write_str("the call was cancelled")?,
            ToolError::Run { node, err } => write!(f, "probe of `{node}` failed: {err}")?,
            ToolError::ProbeFailed { node, error } => write!(
                f,
                "node-probe on `{node}` failed ({:?}): {}",
                error.kind, error.message
            )?,
            ToolError::WrongReport { node, tool } => write!(
                f,
                "node-probe on `{node}` answered with a different report than `{tool}` asked for; the \
                 probe and launcher versions probably differ"
            )?,
            ToolError::Cluster(e) => write!(f, "{e}")?,
            ToolError::ClusterWrite(e) => write!(f, "{e}. Nothing was changed.")?,
            ToolError::Local(m) => f.write_str(m)?,
            ToolError::InputRequired(_) => {
                f.write_str("the user is being asked to confirm; nothing was done yet")?
            }
        }
        if let Some(h) = self.hint() {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ToolError {}
