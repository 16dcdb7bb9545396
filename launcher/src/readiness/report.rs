//! What the readiness checks answer: one [`ReadinessCheck`] row per thing checked, the whole
//! [`CheckReport`], and what to check ([`CheckOptions`]).

use serde::Serialize;

use crate::config::Mode;
use crate::probe::kube::K8sConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the checklist.
// Named `Check` in the tool's output schema, as it was before the readiness checks had their own layer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Check")]
pub struct ReadinessCheck {
    /// What was checked: `kubeconfig`, `credentials` (exec plugins only), `api-server`, `namespace`, `permissions/<role>`, `node/<name>`,
    /// `image/<name>`, `admission`.
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// The command (or step) that fixes a failure or warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl ReadinessCheck {
    pub(crate) fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        ReadinessCheck {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }
    pub(crate) fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail)
    }
    pub(crate) fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Fail, detail).with_fix(fix)
    }
    pub(crate) fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Warn, detail).with_fix(fix)
    }
    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole checklist.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    pub context: Option<String>,
    pub namespace: String,
    /// `read-only` or `operator`: which permissions were required.
    pub mode: String,
    /// The user the API server sees (SelfSubjectReview), when it says.
    pub user: Option<String>,
    pub checks: Vec<ReadinessCheck>,
}

/// What to check: the launcher's Kubernetes settings plus the mode and an optional node selector.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub k8s: K8sConfig,
    pub mode: Mode,
    /// Label selector limiting the GPU nodes checked (all GPU nodes when None).
    pub selector: Option<String>,
}
