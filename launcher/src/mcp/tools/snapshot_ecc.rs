//! `snapshot_ecc`: the ECC part of the node's reading (`node-probe describe`, kept for the next questions).

use gpu_diag::command::Command;
use gpu_diag::analysis::ecc::EccReport;

use crate::mcp::framework::readings::MaxAge;
use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::text;

pub struct SnapshotEcc;

impl Tool for SnapshotEcc {
    type Args = Node<MaxAge>;
    type Output = NodeReport<EccReport>;
    const NAME: &'static str = "snapshot_ecc";
    const TITLE: &'static str = "ECC and memory-error snapshot of a node";
    const DESCRIPTION: &'static str = "ECC memory errors per GPU on a node: corrected and uncorrected counts, \
retired pages and remapped rows, AMD HBM RAS errors and bad pages, with what they require (reset, drain, \
RMA). Use it after Xid 48/63/64/94/95 or to decide on replacing a GPU.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::read(cx, Self::NAME, a.target, Command::Ecc, a.args, |d| d.ecc.clone()).await
    }

    fn render(out: &Self::Output) -> String {
        text::node_report_edited("ECC snapshot", out, fold_gaudi_unread)
    }
}

/// A Gaudi's or a Neuron device's NVML-shaped ECC fields are not in its driver's sysfs (the structured
/// result says so field by field): the text names them once for the node instead of a dozen lines per
/// device.
fn fold_gaudi_unread(v: &mut serde_json::Value) {
    use gpu_diag::facts::GpuVendor;
    // The sysfs-only drivers, by the words their readers' errors use; Gaudi's under its own key.
    for (driver, words, key) in [
        ("habanalabs", "habanalabs", "gaudi_not_read"),
        (GpuVendor::Neuron.info().kernel_driver, "the neuron driver", "not_read"),
    ] {
        fold_unread(v, driver, words, key);
    }
}

fn fold_unread(v: &mut serde_json::Value, driver: &str, words: &str, key: &str) {
    use serde_json::Value;
    // An inline error whose message names the driver.
    let unread = |x: &Value| {
        x.get("error").is_some()
            && x.get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.contains(words))
    };
    let mut names = std::collections::BTreeSet::new();
    if let Some(gpus) = v.get_mut("gpus").and_then(Value::as_array_mut) {
        for g in gpus.iter_mut().filter_map(Value::as_object_mut) {
            g.retain(|k, x| {
                let all_unread = unread(x)
                    || x.as_object().is_some_and(|o| {
                        !o.is_empty() && o.get("error").is_none() && o.values().all(unread)
                    });
                if all_unread {
                    names.insert(k.clone());
                }
                !all_unread
            });
        }
    }
    if !names.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert(
            key.into(),
            Value::String(format!(
                "{} (not in the {driver} driver's sysfs: see persistence_caveat)",
                names.into_iter().collect::<Vec<_>>().join(", ")
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// A Gaudi's unread fields leave its row and are named once; an NVIDIA GPU's errors stay.
    #[test]
    fn a_gaudis_unread_fields_are_named_once() {
        let e = |m: &str| json!({"error": "not_supported", "message": m});
        let mut v = json!({"gpus": [
            {"index": 0, "mode": e("NVML said no"), "volatile": {"corrected": 0}},
            {"index": 1, "pci_bus_id": "0000:ca:00.0", "mode": e("not in habanalabs sysfs"),
             "volatile": {"corrected": e("not in habanalabs sysfs"), "uncorrected": e("not in habanalabs sysfs")},
             "uuid": e("the habanalabs driver shows no UUID in sysfs")},
        ]});
        super::fold_gaudi_unread(&mut v);
        assert_eq!(
            v["gaudi_not_read"],
            "mode, uuid, volatile (not in the habanalabs driver's sysfs: see persistence_caveat)"
        );
        assert_eq!(v["gpus"][1], json!({"index": 1, "pci_bus_id": "0000:ca:00.0"}));
        assert_eq!(v["gpus"][0]["mode"]["message"], "NVML said no");
    }
}
