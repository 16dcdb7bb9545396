//! Admission of the probe pod: a server-side dry run of the pod the launcher would start (`admission`),
//! and on OpenShift whether a privileged SCC lets it in (`openshift`).

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};

use super::manifests::PSA_ENFORCE;
use super::nodes::{GpuNodeImage, delivery, gpu_nodes};
use super::{CheckOptions, ReadinessCheck, Status};
use crate::probe::delivery::Delivery;
use crate::probe::pod;

/// A server-side dry-run create of the probe pod the launcher would start (its own pod builder): proves
/// that admission (Pod Security, policy webhooks, quotas) lets it in, without creating anything.
pub(super) async fn admission_check(
    client: &Client,
    opts: &CheckOptions,
    node: Option<&GpuNodeImage>,
) -> ReadinessCheck {
    let name = "admission";
    let ns = &opts.k8s.namespace;
    let node_name = node.map(|n| n.node.as_str()).unwrap_or("no-gpu-node");
    // The default delivery found no base on the node (its `image/` line fails with the fix): a dry run of
    // some other image would only say something about that image, so it waits for that fix.
    if opts.k8s.probe_image.is_none() && node.is_some_and(|n| n.image.is_none()) {
        return ReadinessCheck::warn(
            name,
            format!("not tried: no probe image for {node_name} yet (see image/{node_name})"),
            format!("fix image/{node_name} first, then run check again"),
        );
    }
    let call = pod::ProbeCall::new(ns, node_name, "check");
    let mut pod_opts = opts.k8s.pod_options();
    if let Some(image) = node.and_then(|n| n.image.as_ref()) {
        pod_opts.image = image.clone();
    }
    let mut spec = pod::probe_pod(&call, &pod_opts);
    if delivery(&opts.k8s) == Delivery::Copy {
        pod::apply_copy_delivery(&mut spec);
    }
    let node = node_name;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&pp, &spec).await {
        Ok(_) => ReadinessCheck::ok(
            name,
            format!(
                "a probe pod for {node} is admitted in {ns} (server-side dry run; nothing created)"
            ),
        ),
        Err(kube::Error::Api(s)) => {
            let fix = if s
                .message
                .contains("ValidatingAdmissionPolicy 'k8s-gpu-mcp-")
            {
                "the launcher's admission policies refuse this probe pod: name --probe-image by digest (IMAGE@sha256:DIGEST) from a trusted source, or have a cluster admin run k8s-gpu-mcp setup --apply with this launcher's --trust-image/--probe-image flags".into()
            } else if s.message.contains("PodSecurity") {
                format!("kubectl label namespace {ns} {PSA_ENFORCE}=privileged --overwrite")
            } else if s.is_forbidden() {
                "see the permissions lines above (k8s-gpu-mcp setup --apply, then bind the roles)"
                    .into()
            } else if s.is_not_found() {
                format!("k8s-gpu-mcp setup --apply --namespace {ns}   # as a cluster admin")
            } else {
                "an admission policy refuses the probe pod; ask the cluster admin to exempt the probe namespace".into()
            };
            ReadinessCheck::fail(
                name,
                format!("a probe pod is refused ({}): {}", s.code, s.message),
                fix,
            )
        }
        Err(e) => {
            ReadinessCheck::fail(name, format!("dry-run create: {e}"), "kubectl cluster-info")
        }
    }
}

/// OpenShift's API group: Security Context Constraints admit pods there
/// (https://docs.openshift.com/container-platform/4.16/authentication/managing-security-context-constraints.html).
pub const OPENSHIFT_SCC_GROUP: &str = "security.openshift.io";
/// The label OpenShift's machine-config daemon sets on RHCOS nodes (`node.openshift.io/os_id=rhcos`).
pub const OPENSHIFT_NODE_LABEL: &str = "node.openshift.io/os_id";

/// OpenShift: recognised by its SCC API group or its nodes' label. There the probe pod must be allowed a
/// privileged SCC, for the user who creates it or the namespace's `default` service account; `setup` prints
/// the Role and RoleBinding that give the service account `use` of the `privileged` SCC. The admission dry
/// run goes through SCC admission, so its verdict decides this row. None: not OpenShift.
pub(super) async fn openshift_check(
    client: &Client,
    opts: &CheckOptions,
    admission: &ReadinessCheck,
) -> Option<ReadinessCheck> {
    let groups = client.list_api_groups().await.ok();
    let by_group = groups
        .iter()
        .flat_map(|g| g.groups.iter())
        .any(|g| g.name == OPENSHIFT_SCC_GROUP);
    let by_label = if by_group {
        None
    } else {
        gpu_nodes(client, opts).await.and_then(|nodes| {
            nodes.into_iter().find_map(|n| {
                let v = n
                    .metadata
                    .labels
                    .as_ref()?
                    .get(OPENSHIFT_NODE_LABEL)?
                    .clone();
                Some(format!(
                    "node {} has {OPENSHIFT_NODE_LABEL}={}",
                    n.metadata.name.unwrap_or_default(),
                    crate::cluster::labels::label_value(&v)
                ))
            })
        })
    };
    let why = match (by_group, by_label) {
        (true, _) => format!("the API server serves {OPENSHIFT_SCC_GROUP}"),
        (false, Some(l)) => l,
        (false, None) => return None,
    };
    let ns = &opts.k8s.namespace;
    Some(if admission.status == Status::Ok {
        ReadinessCheck::ok(
            "openshift",
            format!(
                "OpenShift ({why}): the probe pod was admitted, so a privileged SCC is allowed for it in {ns}"
            ),
        )
    } else {
        // A warning: the admission row above already fails; this names the likely cause on OpenShift.
        ReadinessCheck::warn(
            "openshift",
            format!(
                "OpenShift ({why}): probe pods need the privileged SCC, and the admission dry run was refused"
            ),
            format!(
                "k8s-gpu-mcp setup --namespace {ns} --apply   # applies the Role k8s-gpu-mcp-probe-scc (use of SCC privileged) bound to {ns}'s default service account; or: oc adm policy add-scc-to-user privileged -z default -n {ns}"
            ),
        )
    })
}
