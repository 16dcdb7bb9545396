//! What the DRA drivers say about their devices: the taints of ResourceSlice devices (KEP-5055;
//! `resource.k8s.io` v1 and v1beta2 `spec.devices[].taints[]`, v1beta1 `spec.devices[].basic.taints[]`) and
//! the devices' GPU UUIDs (their `uuid` attribute), read in one paged list per call (one node's slices, or
//! the fleet's). The version read is the newest the API server serves (asked once per context). A list refused (403) or not served
//! (404) is "not readable" with the reason, never "no taints".
//!
//! Slices are written by the DRA driver's service account; tenants cannot write them, yet a compromised
//! driver or node could: every text taken from them is bounded by `gpu_diag::incident::platform`.

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use gpu_diag::incident::platform::{self, DeviceTaint, PlatformMark};

use super::shared_reads::SharedReads;

/// Slices per list page.
const PAGE: u32 = 500;
/// Devices read per slice and taints per device (1.36 allows 64 devices in a tainted slice, 16 taints
/// per device): a hostile slice costs bounded work.
const MAX_DEVICES: usize = 1024;
const MAX_TAINTS: usize = 16;
/// Taint marks kept per node: more says nothing new and would crowd the answer.
pub const MAX_MARKS_PER_NODE: usize = 32;

/// The slices' word, by node.
#[derive(Debug, Default, Clone)]
pub struct DeviceWord {
    /// Node -> a mark per device taint.
    pub marks: BTreeMap<String, Vec<PlatformMark>>,
    /// `<driver>/<pool>/<device>` -> the GPU's UUID, where the device publishes one.
    pub uuids: BTreeMap<String, String>,
    /// Why the slices could not be read (shown once); `None` when they were.
    pub unreadable: Option<String>,
    /// Node -> the GPUs and partitions AMD's DRA driver (`gpu.amd.com`) publishes there.
    pub amd: BTreeMap<String, super::amd::SliceDevices>,
    /// Node -> the devices each GPU DRA driver (the vendors' table, `gpu_diag::facts::vendor`) publishes there:
    /// a node whose GPUs exist only as ResourceSlices (NVIDIA's GPU Operator in its DRA-only mode, no device
    /// plugin capacity) is a GPU node by these.
    pub gpu_devices: BTreeMap<String, BTreeMap<String, usize>>,
}

impl DeviceWord {
    /// A kubelet health mark's GPU, from the slice device its resource id names.
    pub fn fill_uuids(&self, marks: &mut [PlatformMark]) {
        for m in marks.iter_mut().filter(|m| m.gpu_uuid.is_none()) {
            if let Some(u) = m.device.as_ref().and_then(|d| self.uuids.get(d)) {
                m.gpu_uuid = Some(u.clone());
            }
        }
    }
}

/// The ResourceSlices of `node` (all nodes when `None`), read once: one paged list of the newest served
/// version (and discovery, the first time for `context`).
pub async fn read(
    reads: &SharedReads,
    context: Option<&str>,
    client: kube::Client,
    node: Option<&str>,
) -> DeviceWord {
    let mut word = DeviceWord::default();
    let ver = match super::dra_api::version(reads, context, &client).await {
        Ok(v) => v,
        // No DRA API: no slice and no taint can exist, which is no unknown.
        Err(why) if super::dra_api::not_served(&why) => return word,
        Err(why) => {
            word.unreadable = Some(format!(
                "ResourceSlices not readable: {why}; device taints unknown"
            ));
            return word;
        }
    };
    if let Some(n) = node
        && let Some(slices) = reads.slices.cached(context, n, ver)
    {
        for v in &slices {
            add_slice(v, &mut word);
        }
        return word;
    }
    let gvk = GroupVersionKind::gvk("resource.k8s.io", ver, "ResourceSlice");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "resourceslices");
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut lp = ListParams::default().limit(PAGE);
    if let Some(n) = node {
        lp = lp.fields(&format!("spec.nodeName={n}"));
    }
    let mut first_page = true;
    loop {
        match api.list(&lp).await {
            Ok(page) => {
                let mut listed = Vec::with_capacity(page.items.len());
                for o in &page.items {
                    if let Ok(v) = serde_json::to_value(o) {
                        add_slice(&v, &mut word);
                        listed.push(v);
                    }
                }
                match page.metadata.continue_ {
                    Some(c) if !c.is_empty() => {
                        first_page = false;
                        lp = lp.continue_token(&c);
                    }
                    _ => {
                        // One node's slices in one page: kept current by a watch from here.
                        if let (Some(n), true, Some(rv)) =
                            (node, first_page, page.metadata.resource_version)
                        {
                            reads.slices.start(context, n, ver, api, rv, listed);
                        }
                        return word;
                    }
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                reads.forget_dra_version(context);
                word.unreadable = Some(format!(
                    "ResourceSlices ({ver}) not served any more (the API changed since it was asked; the next \
                     call asks again); device taints unknown"
                ));
                return word;
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                word.unreadable = Some(format!(
                    "ResourceSlices ({ver}) not readable: forbidden by RBAC ({}); device taints unknown",
                    platform::clean(&s.message, platform::MAX_MESSAGE)
                ));
                return word;
            }
            Err(e) => {
                word.unreadable = Some(format!(
                    "ResourceSlices ({ver}) not readable: {}; device taints unknown",
                    platform::clean(&e.to_string(), platform::MAX_MESSAGE)
                ));
                return word;
            }
        }
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// One slice's taint marks and device UUIDs (pure: the unit tests feed it JSON of each version).
pub fn add_slice(v: &Value, word: &mut DeviceWord) {
    let spec = match v.get("spec") {
        Some(s) => s,
        None => return,
    };
    let driver = text(spec, &["driver"]).unwrap_or_default();
    let pool = text(spec, &["pool", "name"]).unwrap_or_default();
    let Some(node) = text(spec, &["nodeName"])
        .or(Some(pool))
        .filter(|n| !n.is_empty())
    else {
        return;
    };
    let node = platform::clean(node, platform::MAX_NAME);
    let devices = spec.get("devices").and_then(Value::as_array);
    for d in devices.into_iter().flatten().take(MAX_DEVICES) {
        let name = text(d, &["name"]).unwrap_or_default();
        // v1beta1 nests a device's fields under `basic`.
        let body = d.get("basic").unwrap_or(d);
        if gpu_diag::facts::GpuVendor::of_dra_driver(driver).is_some() {
            *word
                .gpu_devices
                .entry(node.clone())
                .or_default()
                .entry(driver.to_string())
                .or_default() += 1;
        }
        if driver == super::amd::AMD_DRA_DRIVER {
            word.amd.entry(node.clone()).or_default().add(body);
        }
        let uuid = ["uuid", "gpu.nvidia.com/uuid"]
            .iter()
            .find_map(|k| text(body, &["attributes", k, "string"]));
        let id = format!(
            "{}/{}/{}",
            platform::clean(driver, platform::MAX_NAME),
            platform::clean(pool, platform::MAX_NAME),
            platform::clean(name, platform::MAX_NAME)
        );
        if let Some(u) = uuid {
            word.uuids
                .insert(id, platform::clean(u, platform::MAX_NAME));
        }
        let taints = body.get("taints").and_then(Value::as_array);
        for t in taints.into_iter().flatten().take(MAX_TAINTS) {
            let Some(key) = text(t, &["key"]) else {
                continue;
            };
            let marks = word.marks.entry(node.clone()).or_default();
            if marks.len() >= MAX_MARKS_PER_NODE {
                return;
            }
            marks.push(platform::classify_taint(&DeviceTaint {
                driver,
                pool,
                device: name,
                key,
                value: text(t, &["value"]),
                effect: text(t, &["effect"]).unwrap_or_default(),
                time_added: text(t, &["timeAdded"]),
                gpu_uuid: uuid,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::finding::Severity;
    use gpu_diag::incident::platform::{PlatformFault, PlatformSource};
    use serde_json::json;

    #[test]
    fn gpu_drivers_devices_by_node_and_no_other_driver() {
        let mut w = DeviceWord::default();
        for (driver, node, n) in [
            ("gpu.nvidia.com", "dra-only", 2),
            ("gpu.amd.com", "mi300x", 1),
            ("net.example.com", "nic-only", 4),
        ] {
            let devices: Vec<_> = (0..n).map(|i| json!({"name": format!("d{i}")})).collect();
            add_slice(
                &json!({"spec": {"driver": driver, "nodeName": node, "pool": {"name": node},
                  "devices": devices}}),
                &mut w,
            );
        }
        assert_eq!(w.gpu_devices["dra-only"]["gpu.nvidia.com"], 2);
        assert_eq!(w.gpu_devices["mi300x"]["gpu.amd.com"], 1);
        assert!(
            !w.gpu_devices.contains_key("nic-only"),
            "{:?}",
            w.gpu_devices
        );
    }

    #[test]
    fn v1_and_v1beta1_slices() {
        let mut w = DeviceWord::default();
        add_slice(
            &json!({"spec": {"driver": "gpu.nvidia.com", "nodeName": "n1", "pool": {"name": "n1"},
              "devices": [
                {"name": "gpu-0", "attributes": {"uuid": {"string": "GPU-0000"}}},
                {"name": "gpu-1", "attributes": {"uuid": {"string": "GPU-1111"}},
                 "taints": [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule",
                             "timeAdded": "2026-11-20T10:00:00Z"}]}]}}),
            &mut w,
        );
        add_slice(
            &json!({"spec": {"driver": "gpu.nvidia.com", "pool": {"name": "n2"},
              "devices": [{"name": "gpu-3", "basic": {
                 "attributes": {"gpu.nvidia.com/uuid": {"string": "GPU-3333"}},
                 "taints": [{"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule"}]}}]}}),
            &mut w,
        );
        let m = &w.marks["n1"];
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].source, PlatformSource::DraDriverTaint);
        assert_eq!(m[0].fault, PlatformFault::Xid { code: Some(79) });
        assert_eq!(m[0].gpu_uuid.as_deref(), Some("GPU-1111"));
        assert_eq!(m[0].device.as_deref(), Some("gpu.nvidia.com/n1/gpu-1"));
        assert_eq!(m[0].since.as_deref(), Some("2026-11-20T10:00:00Z"));
        let lost = &w.marks["n2"][0];
        assert_eq!(
            (lost.fault, lost.severity, lost.gpu_uuid.as_deref()),
            (
                PlatformFault::GpuMissing,
                Severity::Critical,
                Some("GPU-3333")
            )
        );
        assert_eq!(w.uuids["gpu.nvidia.com/n1/gpu-0"], "GPU-0000");
        let mut health = vec![
            platform::classify_resource_health(&platform::ResourceHealth {
                pod: "a/p",
                name: "claim:c/gpu",
                resource_id: "gpu.nvidia.com/n1/gpu-0",
                health: "Unhealthy",
                ..Default::default()
            })
            .unwrap(),
        ];
        w.fill_uuids(&mut health);
        assert_eq!(health[0].gpu_uuid.as_deref(), Some("GPU-0000"));
    }

    /// AMD's DRA driver (ROCm/k8s-gpu-dra-driver docs): whole GPUs `type=amdgpu` and partitions
    /// `type=amdgpu-partition`, named `gpu-<card>-<renderD>`, with `productName` and `partitionProfile`.
    #[test]
    fn amd_slices_count_gpus_and_partitions_per_node() {
        let dev = |name: &str, kind: &str| {
            json!({"name": name, "attributes": {
                "type": {"string": kind}, "pciAddr": {"string": "0000:19:00.0"},
                "cardIndex": {"int": 1}, "renderIndex": {"int": 128},
                "productName": {"string": "AMD_Instinct_MI300X_OAM"},
                "partitionProfile": {"string": "spx_nps1"}}})
        };
        let mut w = DeviceWord::default();
        add_slice(
            &json!({"spec": {"driver": "gpu.amd.com", "nodeName": "mi300x-dra", "pool": {"name": "mi300x-dra"},
              "devices": [dev("gpu-1-128", "amdgpu"), dev("gpu-2-129", "amdgpu")]}}),
            &mut w,
        );
        add_slice(
            &json!({"spec": {"driver": "gpu.amd.com", "nodeName": "mi300x-cpx", "pool": {"name": "mi300x-cpx"},
              "devices": [{"name": "gpu-9-136", "basic": {"attributes": {
                  "type": {"string": "amdgpu-partition"}, "partitionProfile": {"string": "cpx_nps4"}}}}]}}),
            &mut w,
        );
        // NVIDIA's slices are not AMD's.
        add_slice(
            &json!({"spec": {"driver": "gpu.nvidia.com", "nodeName": "h100", "pool": {"name": "h100"},
              "devices": [{"name": "gpu-0"}]}}),
            &mut w,
        );
        assert_eq!(w.amd.len(), 2);
        let d = &w.amd["mi300x-dra"];
        assert_eq!((d.gpus, d.partitions), (2, 0));
        assert_eq!(d.product.as_deref(), Some("AMD_Instinct_MI300X_OAM"));
        let c = &w.amd["mi300x-cpx"];
        assert_eq!((c.gpus, c.partitions), (0, 1));
        assert_eq!(c.partition_profile.as_deref(), Some("cpx_nps4"));
    }

    #[test]
    fn a_hostile_slice_costs_bounded_marks() {
        let taints: Vec<Value> = (0..100)
            .map(|i| json!({"key": format!("x{i}\u{202e}"), "effect": "NoExecute"}))
            .collect();
        let devices: Vec<Value> = (0..100)
            .map(|i| json!({"name": format!("gpu-{i}"), "taints": taints}))
            .collect();
        let mut w = DeviceWord::default();
        add_slice(
            &json!({"spec": {"driver": "d", "nodeName": "n", "pool": {"name": "p"}, "devices": devices}}),
            &mut w,
        );
        assert_eq!(w.marks["n"].len(), MAX_MARKS_PER_NODE);
        assert!(!w.marks["n"][0].condition.contains('\u{202e}'));
        // No spec, no node: nothing.
        add_slice(&json!({"spec": {"devices": devices}}), &mut w);
        add_slice(&json!({"kind": "x"}), &mut w);
        assert_eq!(w.marks.len(), 1);
    }
}
