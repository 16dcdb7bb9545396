//! A neuron (AWS Trainium, Inferentia) record as an event: its catalog entry's mnemonic, the action as its
//! class reads it, the device the line named.

use super::contract::{CatalogStatus, DecodedDetail, EventKind};
use super::event::{Pending, blank_event};
use super::grammar::{NeuronLine, Record};
use super::{amdgpu_catalog, neuron_catalog};

pub(super) fn event(r: &Record, l: NeuronLine) -> Pending {
    let entry = neuron_catalog::lookup(l.event);
    let mut p = blank_event(EventKind::Neuron, r.line, r.ts, l.text);
    p.event.mnemonic = entry.map(|e| e.mnemonic.to_string());
    p.event.immediate_action = entry.map(|e| amdgpu_catalog::bucket(e.action).to_string());
    p.detail.catalog_status = if entry.is_some() {
        CatalogStatus::Catalog
    } else {
        CatalogStatus::Unknown
    };
    p.detail.decoded = Some(DecodedDetail::Neuron {
        event: l.event.to_string(),
        device: l.device,
    });
    p
}
