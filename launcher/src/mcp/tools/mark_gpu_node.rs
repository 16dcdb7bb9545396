//! `mark_gpu_node` (operator mode): the scheduler signal of a verdict. A NoSchedule taint (NoExecute only
//! on request) and/or a label, both `gpu-diag.k8s-gpu-mcp.io/unhealthy=<reason>`, and the node condition
//! `GpuDiagUnhealthy=True` with the verdict, the GPU and the evidence digest, written through `nodes/status`
//! by a strategic merge patch (conditions merge by type: the kubelet's are untouched). Dry run first or
//! confirmation; audited with an Event on the Node. `clear_gpu_node_mark` undoes exactly this.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::cluster::{MarkRequest, MarkResult};
use crate::mcp::framework::action::{ClusterAction, OperatorOutput};
use crate::mcp::framework::node_mark::{judge_mark, render_mark};
use crate::mcp::framework::schema::check_not_blank;
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

pub struct MarkGpuNode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum TaintEffect {
    /// No new pods without a toleration; running pods stay (the default).
    NoSchedule,
    /// Also evicts running pods that do not tolerate it: only on explicit request.
    NoExecute,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkArgs {
    /// Reason code, e.g. `XidError79`, `EccUncorrectable` (taint and label value).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Z][A-Za-z0-9]{0,62}$"))]
    pub reason: String,
    /// The verdict in one line, e.g. `GPU 3 fell off the bus, XID 79`.
    #[schemars(length(min = 1, max = 512))]
    pub message: String,
    /// The GPU the verdict is about (index or UUID).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 64))]
    pub gpu: Option<String>,
    /// Evidence archive digest, `sha256:<64 hex>`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 64, max = 71))]
    pub evidence_sha256: Option<String>,
    /// Taint the node (default true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub taint: Option<bool>,
    #[serde(default)]
    #[schemars(with = "TaintEffect")]
    pub taint_effect: Option<TaintEffect>,
    /// Label the node (default true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub label: Option<bool>,
    /// Server-side dry run only; no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Where the client can ask no one: `<node_name>` (`<node_name>/gpu/<gpu>` with gpu).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 330))]
    pub confirm: Option<String>,
}

/// The reason code: a CamelCase condition reason that is also a valid label value.
pub fn check_reason(s: &str) -> Result<(), ToolError> {
    let ok = (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ToolError::Invalid(format!(
            "`reason` must be a CamelCase code of 1-63 letters and digits starting with a capital \
             (e.g. XidError79), got `{}`",
            s.chars().take(80).collect::<String>()
        )))
    }
}

/// A GPU index (0-999) or a GPU/MIG UUID.
fn check_gpu(s: &str) -> Result<(), ToolError> {
    let index = !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    let uuid = ["GPU-", "MIG-"].iter().any(|p| {
        s.strip_prefix(p).is_some_and(|r| {
            (8..=60).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        })
    });
    if index || uuid {
        Ok(())
    } else {
        Err(ToolError::Invalid(
            "`gpu` must be a GPU index (0-999) or a GPU/MIG UUID as nvidia-smi -L prints it".into(),
        ))
    }
}

/// `sha256:<64 lowercase hex>` (the prefix may be omitted); returned in that form.
fn check_digest(s: &str) -> Result<String, ToolError> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
    } else {
        Err(ToolError::Invalid(
            "`evidence_sha256` must be a SHA-256 digest: `sha256:` and 64 hex digits".into(),
        ))
    }
}

/// The condition's message: the verdict, then the GPU and evidence when given.
pub fn condition_message(message: &str, gpu: Option<&str>, evidence: Option<&str>) -> String {
    let mut m = message.trim().to_string();
    if let Some(g) = gpu {
        m.push_str(&format!("; gpu {g}"));
    }
    if let Some(e) = evidence {
        m.push_str(&format!("; evidence {e}"));
    }
    m.push_str("; set by k8s-gpu-mcp");
    m
}

impl Tool for MarkGpuNode {
    type Args = Node<MarkArgs>;
    type Output = OperatorOutput<MarkResult>;
    const NAME: &'static str = "mark_gpu_node";
    const TITLE: &'static str = "Mark a GPU node unhealthy for the scheduler";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. Mark a node unhealthy for the scheduler: a \
`gpu-diag.k8s-gpu-mcp.io/unhealthy` NoSchedule taint, label and GpuDiagUnhealthy condition with the verdict; \
running pods stay. dry_run=true checks it; otherwise a person confirms; audited.";
    const HINTS: Hints = Hints {
        idempotent: true,
        ..Hints::DESTRUCTIVE
    };

    async fn run(
        cx: &Cx,
        Node { target: t, args: a }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        let op = ClusterAction::start(cx, Self::NAME, "to mark", t)?;
        check_reason(&a.reason)?;
        // Length and control characters: the schema's limits, checked before `run`.
        check_not_blank("message", &a.message).map_err(ToolError::Invalid)?;
        if let Some(g) = &a.gpu {
            check_gpu(g)?;
        }
        let evidence = a.evidence_sha256.as_deref().map(check_digest).transpose()?;
        let taint = a.taint.unwrap_or(true);
        let label = a.label.unwrap_or(true);
        if a.taint_effect.is_some() && !taint {
            return Err(ToolError::Invalid(
                "`taint_effect` was given with taint=false; drop one of them".into(),
            ));
        }
        let effect = match a.taint_effect.unwrap_or(TaintEffect::NoSchedule) {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        };
        let dry_run = a.dry_run.unwrap_or(false);
        let node = op.node().to_string();
        let target = match &a.gpu {
            Some(g) => format!("{node}/gpu/{g}"),
            None => node.clone(),
        };
        let req = MarkRequest {
            node: node.clone(),
            reason: a.reason.clone(),
            message: condition_message(&a.message, a.gpu.as_deref(), evidence.as_deref()),
            taint_effect: taint.then(|| effect.to_string()),
            label,
            dry_run,
        };
        let summary = format!(
            "mark node {node} {}: {}{}condition GpuDiagUnhealthy=True ({})",
            a.reason,
            if taint {
                format!("taint {effect}, ")
            } else {
                String::new()
            },
            if label { "label, " } else { "" },
            req.message
        );
        let confirmed_by = op
            .confirm(Self::NAME, &target, dry_run, a.confirm.as_deref(), &summary)
            .await?;
        let outcome = op.cluster.mark_node(op.context(), &req).await;
        op.finish(Self::NAME, target, confirmed_by, outcome, judge_mark(&req.message))
            .await
    }

    fn render(o: &Self::Output) -> String {
        render_mark(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_arguments_are_refused() {
        assert!(check_reason("XidError79").is_ok());
        for bad in ["", "xid", "Xid 79", "Xid-79", "Xid\n", &"A".repeat(64), "Ünhealthy"] {
            assert!(check_reason(bad).is_err(), "{bad:?}");
        }
        assert!(check_gpu("3").is_ok());
        assert!(check_gpu("GPU-8f2c1d3e-0b1a-4c5d-9e8f-123456789abc").is_ok());
        for bad in ["", "1000", "-1", "GPU-", "GPU-zzzzzzzz", "gpu 3"] {
            assert!(check_gpu(bad).is_err(), "{bad:?}");
        }
        let d = "A".repeat(64);
        assert_eq!(check_digest(&d).unwrap(), format!("sha256:{}", "a".repeat(64)));
        assert!(check_digest(&format!("sha256:{}", "g".repeat(64))).is_err());
        assert!(check_digest("sha256:abc").is_err());
    }

    /// The message's limits are the schema's (checked by the route before `run`) plus the blank check:
    /// every value the tool's own text check refused is still refused, the blank one with its own words.
    #[test]
    fn the_message_is_one_bounded_line_with_a_word() {
        use crate::mcp::framework::schema::{check_args, input_schema};
        let schema = input_schema::<Node<MarkArgs>>();
        let call = |message: &str| {
            let serde_json::Value::Object(args) = serde_json::json!({
                "node_name": "gpu-node-5", "reason": "XidError79", "message": message
            }) else {
                unreachable!()
            };
            check_args(&schema, &args)
        };
        assert!(call("GPU 3 fell off the bus").is_ok());
        assert!(call(&"x".repeat(512)).is_ok());
        for bad in ["", "a\nb", "a\u{1b}[31m", &"x".repeat(513)] {
            assert!(call(bad).is_err(), "{bad:?}");
        }
        assert!(check_not_blank("message", "GPU 3 fell off the bus").is_ok());
        for blank in ["  ", "\u{a0}"] {
            assert!(call(blank).is_ok(), "the schema lets {blank:?} through");
            assert!(check_not_blank("message", blank).is_err(), "{blank:?}");
        }
    }

    #[test]
    fn condition_message_carries_gpu_and_evidence() {
        let m = condition_message("XID 79", Some("3"), Some("sha256:ab"));
        assert_eq!(m, "XID 79; gpu 3; evidence sha256:ab; set by k8s-gpu-mcp");
    }
}
