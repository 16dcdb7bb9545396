//! The DRA API (`resource.k8s.io`) as the API server serves it: which version to read (one discovery
//! request per context and process, asked again after a 404: 1.32/1.33 serve only betas, and only where
//! the cluster turned DRA on; 1.34+ serve v1), and the ResourceClaims allocated on a node, the claims'
//! second source after the kubelet.
//!
//! A claim is on a node when its allocation's node selector names the node (`matchFields metadata.name
//! In [node]`, what the scheduler writes for node-local devices) or a result's pool is the node (NVIDIA's
//! driver names its pool after the node). Only GPU drivers' devices are kept.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use gpu_diag::attribution::dra::GPU_DRIVERS;
use gpu_diag::facts::{ApiClaimFacts, ApiClaimPodFacts, api_claims_arg};

use super::shared_reads::SharedReads;

/// Versions read, newest first (their paths to devices and consumers are the same).
pub const VERSIONS: &[&str] = &["v1", "v1beta2", "v1beta1"];
const PAGE: u32 = 500;
/// Claims looked at per call: a cluster with more is read in pages up to this many.
const MAX_CLAIMS_SCANNED: usize = 50_000;

/// The newest version of `resource.k8s.io` the API server serves that this launcher reads; `Err` says
/// why none (not served: DRA is off or the cluster is older than 1.32).
pub async fn served_version(client: &kube::Client) -> Result<&'static str, String> {
    let req = http::Request::get("/apis/resource.k8s.io")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request::<APIGroup>(req).await {
        Ok(g) => VERSIONS
            .iter()
            .find(|v| g.versions.iter().any(|s| s.version == **v))
            .copied()
            .ok_or_else(|| {
                let served: Vec<&str> = g.versions.iter().map(|v| v.version.as_str()).collect();
                format!(
                    "resource.k8s.io serves {} only (the launcher reads {}): DRA before 1.32",
                    served.join(", "),
                    VERSIONS.join(", ")
                )
            }),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err("resource.k8s.io is not served by the API server (DRA is off)".into())
        }
        Err(e) => Err(format!(
            "the API server's discovery of resource.k8s.io failed: {}",
            gpu_diag::incident::platform::clean(&e.to_string(), 300)
        )),
    }
}

/// [`served_version`] asked once per context: the answer (a version, or that DRA is not served) is kept
/// in `reads` (the identity's clients' own) until a DRA request answers 404; a failed discovery is not kept.
pub async fn version(
    reads: &SharedReads,
    context: Option<&str>,
    client: &kube::Client,
) -> Result<&'static str, String> {
    if let Some(v) = reads.dra_version(context) {
        return v;
    }
    let v = served_version(client).await;
    if v.as_ref().map_or_else(|why| not_served(why), |_| true) {
        reads.set_dra_version(context, v.clone());
    }
    v
}

/// Whether discovery's error is its answer (not served, or only versions this launcher does not read),
/// not a failed request.
pub fn not_served(why: &str) -> bool {
    why.contains("not served") || why.contains("serves")
}

/// What the API server says of the claims on a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeClaims {
    /// Every claim allocated on the node (GPU drivers' devices only).
    Read(Vec<ApiClaimFacts>),
    /// The API server serves no DRA API this launcher reads (DRA off, or older than 1.32): said as such.
    NoDra(String),
    /// Not asked: no API server (local mode) or a backend that reads no claims.
    NotAsked(String),
    /// Could not be read (forbidden, failed, too many to pass on): the node's own evidence stands alone.
    Unreadable(String),
}

impl NodeClaims {
    /// node-probe's `--api-claims` value, where there is one to give.
    pub fn arg(&self) -> Option<String> {
        match self {
            NodeClaims::Read(c) => Some(api_claims_arg::encode(c)),
            _ => None,
        }
    }

    /// Why the probe got no claims from the API server, for the answer: "not served" (the cluster has no
    /// DRA API: no claim can exist) apart from "not readable" (claims may exist and hold GPUs); `None` when
    /// they were read or nobody was asked.
    pub fn why_not(&self) -> Option<String> {
        match self {
            NodeClaims::NoDra(w) => Some(format!("not served: {w}")),
            NodeClaims::Unreadable(w) => Some(format!("not readable: {w}")),
            NodeClaims::Read(_) | NodeClaims::NotAsked(_) => None,
        }
    }
}

/// The ResourceClaims allocated on `node`: one paged list of claims in all namespaces (and discovery, the
/// first time for `context`).
pub async fn claims_on(
    reads: &SharedReads,
    context: Option<&str>,
    client: kube::Client,
    node: &str,
) -> NodeClaims {
    let ver = match version(reads, context, &client).await {
        Ok(v) => v,
        Err(w) if not_served(&w) => return NodeClaims::NoDra(w),
        Err(w) => return NodeClaims::Unreadable(w),
    };
    let gvk = GroupVersionKind::gvk("resource.k8s.io", ver, "ResourceClaim");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "resourceclaims");
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut lp = ListParams::default().limit(PAGE);
    let mut out = Vec::new();
    let mut scanned = 0usize;
    loop {
        let page = match api.list(&lp).await {
            Ok(p) => p,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                reads.forget_dra_version(context);
                return NodeClaims::Unreadable(format!(
                    "ResourceClaims ({ver}) not served any more (the API changed since it was asked; the \
                     next call asks again): {}",
                    gpu_diag::incident::platform::clean(&s.message, 300)
                ));
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                return NodeClaims::Unreadable(format!(
                    "ResourceClaims not readable: forbidden by RBAC (the reader role of deploy/rbac.yaml \
                     lists resource.k8s.io resourceclaims): {}",
                    gpu_diag::incident::platform::clean(&s.message, 300)
                ));
            }
            Err(e) => {
                return NodeClaims::Unreadable(format!(
                    "ResourceClaims not readable: {}",
                    gpu_diag::incident::platform::clean(&e.to_string(), 300)
                ));
            }
        };
        scanned += page.items.len();
        for o in &page.items {
            if let Some(c) = serde_json::to_value(o)
                .ok()
                .and_then(|v| claim_on(&v, node))
            {
                out.push(c);
            }
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() && scanned < MAX_CLAIMS_SCANNED => lp = lp.continue_token(&c),
            Some(c) if !c.is_empty() => {
                return NodeClaims::Unreadable(format!(
                    "more than {MAX_CLAIMS_SCANNED} ResourceClaims in the cluster: not all were read"
                ));
            }
            _ => break,
        }
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if out.len() > api_claims_arg::MAX_CLAIMS
        || api_claims_arg::encode(&out).len() > api_claims_arg::MAX_LEN
    {
        // Cutting the list would make claimed GPUs read free: give none rather than part.
        return NodeClaims::Unreadable(format!(
            "{} ResourceClaims are allocated on {node}: more than node-probe is given (its --api-claims \
             holds {} bytes)",
            out.len(),
            api_claims_arg::MAX_LEN
        ));
    }
    NodeClaims::Read(out)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Whether a node selector names `node` by `metadata.name`.
fn selects(sel: &Value, node: &str) -> bool {
    sel.get("nodeSelectorTerms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t.get("matchFields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|f| {
            text(f, &["key"]) == Some("metadata.name")
                && text(f, &["operator"]) == Some("In")
                && f.get("values")
                    .and_then(Value::as_array)
                    .is_some_and(|vs| vs.iter().any(|v| v.as_str() == Some(node)))
        })
}

/// One ResourceClaim (JSON of any version read) as a claim on `node`, or `None` when it holds no GPU
/// driver's device there (pure: the unit tests feed it claims).
pub fn claim_on(v: &Value, node: &str) -> Option<ApiClaimFacts> {
    let alloc = v.get("status")?.get("allocation")?;
    let on_node = alloc.get("nodeSelector").is_some_and(|s| selects(s, node));
    let results = alloc.get("devices")?.get("results")?.as_array()?;
    let devices: Vec<String> = results
        .iter()
        .filter(|r| on_node || text(r, &["pool"]) == Some(node))
        .filter_map(|r| {
            let driver = text(r, &["driver"])?;
            let device = text(r, &["device"])?;
            GPU_DRIVERS
                .contains(&driver)
                .then(|| format!("{driver}/{device}"))
        })
        .collect();
    if devices.is_empty() {
        return None;
    }
    let pods = v["status"]
        .get("reservedFor")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            text(r, &["resource"]) == Some("pods")
                && text(r, &["apiGroup"]).unwrap_or("").is_empty()
        })
        .filter_map(|r| {
            Some(ApiClaimPodFacts {
                name: text(r, &["name"])?.to_string(),
                uid: text(r, &["uid"]).unwrap_or_default().to_string(),
            })
        })
        .collect();
    Some(ApiClaimFacts {
        namespace: text(v, &["metadata", "namespace"])?.to_string(),
        name: text(v, &["metadata", "name"])?.to_string(),
        devices,
        pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(node_sel: Option<&str>, pool: &str, driver: &str) -> Value {
        let mut alloc = json!({"devices": {"results": [
            {"request": "gpu", "driver": driver, "pool": pool, "device": "gpu-3"}]}});
        if let Some(n) = node_sel {
            alloc["nodeSelector"] = json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [n]}]}]});
        }
        json!({"metadata": {"namespace": "ml", "name": "train-0-gpu-abc12"},
               "status": {"allocation": alloc, "reservedFor": [
                   {"resource": "pods", "name": "train-0", "uid": "0d3c4b1e-1111-4222-8333-444455556666"},
                   {"apiGroup": "example.com", "resource": "things", "name": "x", "uid": "1"}]}})
    }

    #[test]
    fn a_claim_is_on_the_node_its_selector_or_pool_names() {
        let c = claim_on(&claim(Some("gpu-5"), "pool-x", "gpu.nvidia.com"), "gpu-5").unwrap();
        assert_eq!(c.devices, ["gpu.nvidia.com/gpu-3"]);
        assert_eq!(c.pods.len(), 1, "only pods are holders");
        assert_eq!(c.pods[0].name, "train-0");
        // NVIDIA's pool is the node.
        assert!(claim_on(&claim(None, "gpu-5", "gpu.nvidia.com"), "gpu-5").is_some());
        // Another node, another driver, no allocation: nothing.
        assert!(claim_on(&claim(Some("gpu-6"), "gpu-6", "gpu.nvidia.com"), "gpu-5").is_none());
        assert!(claim_on(&claim(Some("gpu-5"), "gpu-5", "nic.example.com"), "gpu-5").is_none());
        assert!(
            claim_on(
                &json!({"metadata": {"namespace": "a", "name": "b"}, "status": {}}),
                "gpu-5"
            )
            .is_none()
        );
    }

    #[test]
    fn too_many_claims_are_none_given_not_some() {
        let many: Vec<ApiClaimFacts> = (0..300)
            .map(|i| ApiClaimFacts {
                namespace: "ml".into(),
                name: format!("c{i}"),
                devices: vec!["gpu.nvidia.com/gpu-0".into()],
                pods: vec![],
            })
            .collect();
        assert!(many.len() > api_claims_arg::MAX_CLAIMS);
        assert_eq!(NodeClaims::Unreadable("x".into()).arg(), None);
        assert_eq!(NodeClaims::Read(vec![]).arg().as_deref(), Some("none"));
    }
}
