//! `analyze_xid_errors`: `node-probe xid` on one node, kernel-log XID/SXid events decoded and correlated.

use gpu_diag::Command;
use gpu_diag::contract::Report;
use gpu_diag::xid::report::XidReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::tool::{Cx, Hints, Node, NodeReport, Tool, ToolError, text};

pub struct AnalyzeXidErrors;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only events in this window before now: a number and a unit s, m, h or d (e.g. `30m`, `2h`, `7d`).
    /// Omit for everything in the kernel log since boot.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub since: Option<String>,
}

impl Tool for AnalyzeXidErrors {
    type Args = Node<XidArgs>;
    type Output = NodeReport<XidReport>;
    const NAME: &'static str = "analyze_xid_errors";
    const TITLE: &'static str = "Analyze XID errors on a node";
    const DESCRIPTION: &'static str = "Read the node's kernel log for NVIDIA XID/SXid events, decode each against NVIDIA's \
catalog (meaning, likely cause, required action) and correlate them (e.g. XID 79 'fallen off the bus' \
with PCIe errors). Use it when a CUDA job crashed or hung, a GPU disappeared, or the kernel log mentions \
NVRM. Returns decoded events per GPU and findings with the recommended action.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let mut args = vec![Command::Xid.arg().to_string()];
        if let Some(s) = &a.args.since {
            check_since(s)?;
            args.push("--since".into());
            args.push(s.clone());
        }
        NodeReport::probe(cx, Self::NAME, a.target, args, |r| match r {
            Report::Xid(x) => Some(*x),
            _ => None,
        })
        .await
    }

    fn render(out: &Self::Output) -> String {
        text::node_report("XID analysis", out)
    }
}

pub fn check_since(s: &str) -> Result<(), ToolError> {
    let ok = s.len() >= 2
        && s.len() <= 7
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !s.starts_with('0')
        && matches!(s.as_bytes()[s.len() - 1], b's' | b'm' | b'h' | b'd');
    if ok {
        Ok(())
    } else {
        Err(ToolError::Invalid(format!(
            "`since` must be a number and a unit s, m, h or d, like `30m`, `2h` or `7d` (got `{s}`); \
             omit it for the whole kernel log"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_number_and_a_unit() {
        for ok in ["30m", "2h", "7d", "999999s"] {
            assert!(check_since(ok).is_ok(), "{ok}");
        }
        for bad in ["", "m", "0h", "2w", "1.5h", "yesterday", "1234567s"] {
            assert!(check_since(bad).is_err(), "{bad}");
        }
    }
}
