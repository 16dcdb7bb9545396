//! `analyze_xid_errors`: `node-probe xid` on one node, kernel-log XID/SXid events decoded and correlated.

use std::fmt::Write;

use gpu_diag::command::{Command, Request, Since};
use gpu_diag::contract::Report;
use gpu_diag::kernel_log::report::XidReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::readings::{MAX_ASKED_AGE_SECS, MaxAge};
use crate::mcp::framework::{Cx, Hints, Kept, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::{details, incidents, text};

pub struct AnalyzeXidErrors;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only events this recent, e.g. `30m`, `2h`, `7d` (default: since boot).
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = Since::PATTERN))]
    pub since: Option<String>,
    /// Oldest kept reading to answer from, in seconds (0: read now).
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

impl Tool for AnalyzeXidErrors {
    type Args = Node<XidArgs>;
    type Output = NodeReport<XidReport>;
    const NAME: &'static str = "analyze_xid_errors";
    const TITLE: &'static str = "Analyze XID errors on a node";
    const DESCRIPTION: &'static str = "What a node's kernel-log GPU errors mean (NVIDIA Xid and SXid, amdgpu \
RAS, habanalabs, neuron), per the vendor's catalog and correlated (e.g. Xid 79, GPU fallen off the bus, with \
PCIe errors). Use it when a job crashed or a GPU disappeared.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    /// A conversation's earlier question kept the node's reading, whose kernel-log analysis is this
    /// tool's over the same log: it answers with no probe, saying its age. A window (`since`) or a reading
    /// whose log was cut reads the node's whole log afresh, and the answer says why.
    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let since = a.args.since.as_deref().map(parse_since).transpose()?;
        let max_age = MaxAge {
            max_age_s: a.args.max_age_s,
        };
        cx.check_target(&a.target)?;
        let why = match cx.kept(Self::NAME, &a.target, Command::Xid, max_age, |d| {
            from_reading(&d.xid, since.is_some())
        }) {
            Kept::Answer(report, run) => {
                return Ok(NodeReport {
                    node: a.target.node_name,
                    context: a.target.context,
                    run: *run,
                    report,
                });
            }
            Kept::Cannot(why) => Some(why),
            Kept::None => None,
        };
        let request = Request::Xid { since };
        let mut out = NodeReport::probe(cx, Self::NAME, a.target, request, |r| match r {
            Report::Xid(x) => Some(*x),
            _ => None,
        })
        .await?;
        // This tool may answer from a kept reading, so its fresh answers say their age too.
        out.run.reading_age_s = Some(0);
        out.run.read_afresh_because = why;
        Ok(out)
    }

    fn render(out: &Self::Output) -> String {
        let mut t = text::header(&out.report.title(), &out.node, out.context.as_deref(), &out.run);
        let r = &out.report;
        let _ = writeln!(t, "verdict: {}", text::verdict_label(r.node.verdict));
        // Each code's finding under the incident it belongs to: one fault once.
        let name = |i: u32| {
            let pci = r.gpus.iter().find(|g| g.index == Some(i)).and_then(|g| g.pci_bus_id.as_deref());
            gpu_diag::kernel_log::report::gpu_label(Some(i), pci)
        };
        incidents::render(&gpu_diag::incident::group(&r.findings, &name), &mut t);
        let mut body = String::new();
        details::write_entry(&text::serialized_details(&fold_alike(r)), 0, &mut body);
        if !body.trim().is_empty() {
            t.push_str("details:\n");
            for line in body.lines() {
                let _ = writeln!(t, "  {line}");
            }
        }
        t
    }
}

/// The report with its entries that say the same of different events or GPUs folded into one, which
/// lists the events, GPUs and devices it holds: a node whose driver logs one line per device at boot (16
/// Trainium2 resets, 8 Gaudis initialised) says it once, not once per device. The full report keeps them.
fn fold_alike(r: &gpu_diag::kernel_log::report::XidReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    // The title names them.
    if let Some(o) = v.as_object_mut() {
        o.remove("families");
    }
    if let Some(d) = v.get_mut("event_details") {
        fold(d, &[("event", "events"), ("gpu_index", "gpu_indexes")], true);
    }
    if let Some(g) = v.get_mut("gpus") {
        fold(g, &[("index", "indexes")], false);
    }
    v
}

/// Fold the entries of list `v` alike but for the `keys` (and, with `device`, `decoded.device`): each
/// group of two or more becomes one entry listing their values under the plural names, with `alike`.
fn fold(v: &mut serde_json::Value, keys: &[(&str, &str)], device: bool) {
    use serde_json::{Map, Value, json};
    let Some(items) = v.as_array_mut() else {
        return;
    };
    let split = |d: &Value| {
        let mut same = d.clone();
        let mut who: Vec<Value> = Vec::new();
        if let Some(m) = same.as_object_mut() {
            for (k, _) in keys {
                who.push(m.remove(*k).unwrap_or(Value::Null));
            }
            let dev = m
                .get_mut("decoded")
                .and_then(Value::as_object_mut)
                .filter(|_| device)
                .and_then(|dec| dec.remove("device"));
            who.push(dev.unwrap_or(Value::Null));
        }
        (same, who)
    };
    let mut groups: Vec<(Value, Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    for d in items.iter() {
        let (same, who) = split(d);
        match groups.iter_mut().find(|(s, _, _)| *s == same) {
            Some((_, _, w)) => w.push(who),
            None => groups.push((same, vec![d.clone()], vec![who])),
        }
    }
    if groups.len() == items.len() {
        return;
    }
    *items = groups
        .into_iter()
        .map(|(mut same, first, who)| {
            if who.len() == 1 {
                return first.into_iter().next().unwrap_or(Value::Null);
            }
            let list = |i: usize| {
                let mut out: Vec<Value> = Vec::new();
                for w in &who {
                    if !w[i].is_null() && !out.contains(&w[i]) {
                        out.push(w[i].clone());
                    }
                }
                out
            };
            if let Some(m) = same.as_object_mut() {
                let mut add = Map::new();
                for (i, (_, plural)) in keys.iter().enumerate() {
                    add.insert((*plural).into(), Value::Array(list(i)));
                }
                let devices = list(keys.len());
                if !devices.is_empty() {
                    add.insert("devices".into(), Value::Array(devices));
                }
                add.insert("alike".into(), json!(who.len()));
                m.extend(add);
            }
            same
        })
        .collect();
}

/// The kept reading's kernel-log analysis as this call's answer, or why it cannot be: the reading read the
/// same kernel log (`describe` reads all of kmsg, as `xid` does) but no window of it, and not all of it
/// when records were overwritten while it read.
fn from_reading(x: &XidReport, window: bool) -> Result<XidReport, String> {
    if window {
        return Err("a `since` window is read from the node's whole kernel log; the kept reading holds \
                    this boot's log without one"
            .into());
    }
    if x.log.truncated {
        return Err("the kept reading's kernel log was cut (records overwritten while it read)".into());
    }
    Ok(x.clone())
}

/// The argument as a [`Since`], or the error the caller reads.
fn parse_since(s: &str) -> Result<Since, ToolError> {
    s.parse().map_err(|e| {
        ToolError::Invalid(format!(
            "`since` {e}; omit it for the whole kernel log"
        ))
    })
}
