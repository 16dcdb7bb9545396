//! neuron (AWS Trainium, Inferentia) events: their class and finding code from the neuron catalog
//! (`kernel_log/neuron_catalog.rs`). A line is judged by itself. The driver names a device by its index
//! (`nd3`), not its PCI address, so the title names the device.

use super::class::{Class, EventCtx, class};
use super::family::Family;
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::DecodedDetail;
use crate::kernel_log::event::Pending;
use crate::kernel_log::neuron_catalog::{self, NeuronCatalogEntry};

fn entry(p: &Pending) -> Option<&'static NeuronCatalogEntry> {
    match &p.detail.decoded {
        Some(DecodedDetail::Neuron { event, .. }) => neuron_catalog::lookup(event),
        _ => None,
    }
}

fn device(p: &Pending) -> Option<&str> {
    match &p.detail.decoded {
        Some(DecodedDetail::Neuron {
            device: Some(d), ..
        }) => Some(d.as_str()),
        _ => None,
    }
}

pub(crate) struct Neuron;

impl Family for Neuron {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Neuron
    }
    fn classify(&self, p: &Pending, _ctx: &EventCtx) -> Option<Class> {
        Some(match entry(p) {
            Some(e) => class(e.severity, e.action, e.meaning),
            None => class(
                Severity::Warning,
                ActionKind::Investigate,
                "a neuron driver line this project does not know: investigate",
            ),
        })
    }
    fn title(&self, p: &Pending) -> String {
        match (entry(p), device(p)) {
            (Some(e), Some(d)) => format!("neuron {} on {d}", e.title),
            (Some(e), None) => format!("neuron {}", e.title),
            (None, _) => "neuron event".into(),
        }
    }
    fn finding_code(&self, p: &Pending, _gpu_has_79: bool) -> String {
        entry(p).map_or_else(|| "neuron.unknown".into(), |e| e.finding.to_string())
    }
    /// The driver resets every device as it loads and whenever a runtime asks (each job's start): such a
    /// routine line (informational, no action) is in the event list but makes no finding, so a healthy
    /// node's answer does not list sixteen resets. A failed one, or a device left in reset, does.
    fn counts(&self, p: &Pending) -> bool {
        entry(p).is_none_or(|e| !(e.severity == Severity::Info && e.action == ActionKind::None))
    }
    fn step(&self, kind: ActionKind, _index: Option<u32>, _pci: Option<&str>) -> String {
        neuron_catalog::action_detail(kind, None)
    }
    fn catalog_source(&self, p: &Pending) -> Option<String> {
        entry(p).map(|e| format!("neuron catalog {} (source: {})", e.mnemonic, e.source))
    }
}
