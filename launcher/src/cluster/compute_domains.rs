//! The ComputeDomains of NVIDIA's DRA driver (`resource.nvidia.com/v1beta1`, a CRD): one list per call that
//! lists nodes. A cluster without the CRD, or a user not allowed to read it, has none: IMEX is then not
//! judged, which is what a cluster without ComputeDomains needs.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use gpu_diag::incident::imex::{self, ComputeDomain};

/// Every ComputeDomain of the cluster, parsed; empty where the API has none or refuses.
pub async fn list(client: kube::Client) -> Vec<ComputeDomain> {
    let gvk = GroupVersionKind::gvk("resource.nvidia.com", "v1beta1", "ComputeDomain");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "computedomains");
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    match api.list(&ListParams::default()).await {
        Ok(l) => l
            .items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .filter_map(|v| imex::parse(&v))
            .collect(),
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => {
            tracing::info!("ComputeDomains not read (IMEX not judged): {e}");
            Vec::new()
        }
    }
}
