//! The launcher's admission policies (deploy/policies.yaml): what `setup` prints and applies with the roles,
//! filled with the owner's values, and how `check` sees whether they hold for the user it runs as (the
//! `policies` row).
//!
//! The policies are ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30,
//! <https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/>): CEL run by the API
//! server itself, nothing running in the cluster. Two values differ per owner and are written into the policies'
//! variables here: `trusted` (the image sources of the launcher's trust list and its `--probe-image`) and
//! `probeBuilds` (the SHA-256 of each node-probe build copy delivery may send). Baked into the policy rather than
//! read from a params ConfigMap: a cluster-scoped policy is written by cluster admins only, where a ConfigMap in
//! a namespace is written by that namespace's admins too; the list and the rules change in one apply; and no
//! lookup can be missing (a missing param object would have to deny every call).

use std::path::Path;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};

use super::ReadinessCheck;
use crate::config::Config;
use crate::probe::delivery::{self, Delivery, ProbeBinaries};
use crate::probe::kube::K8sConfig;
use crate::probe::pod;
use crate::probe::trust::{ImageRef, TrustPolicy};

/// The checklist line's name.
pub const NAME: &str = "policies";

/// deploy/policies.yaml as shipped (the built-in trusted sources, no node-probe build listed).
pub const POLICIES_YAML: &str = include_str!("../../deploy/policies.yaml");

pub const PROBE_POD_POLICY: &str = "k8s-gpu-mcp-probe-pod";
pub const EXEC_POLICY: &str = "k8s-gpu-mcp-probe-exec";
pub const EPHEMERAL_POLICY: &str = "k8s-gpu-mcp-ephemeral-container";

/// What `check` says when the policies do not hold, in one line.
pub const NOT_ENFORCED: &str = "not enforced: whoever holds the probe role can create any privileged pod in the probe namespace and exec any command in it (a root shell on every GPU node), and the operator role can exec into and add ephemeral containers to any pod, kube-system included";

/// The owner's values of the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyValues {
    /// Prefixes of the `repo@sha256:…` references a probe may run.
    pub trusted: Vec<String>,
    /// Hex SHA-256 of the node-probe builds copy delivery may send.
    pub probe_builds: Vec<String>,
}

impl PolicyValues {
    /// The trust list and `--probe-image` of `trust`/`probe_image`, and the node-probe builds found in
    /// `bin_dir` (`--probe-bin-dir`, else next to the launcher) for every architecture copy delivery serves.
    pub fn new(trust: &TrustPolicy, probe_image: Option<&str>, bin_dir: Option<&Path>) -> Self {
        let mut trusted = trust.reference_prefixes();
        // An image named by digest is trusted as exactly that content; one named by tag is not (the policy
        // refuses it, as `check` warns).
        if let Some(r) = probe_image.and_then(|i| ImageRef::parse(i).ok())
            && let Some(d) = &r.digest
        {
            let exact = format!("{}@{d}", r.repository);
            if !trusted.contains(&exact) {
                trusted.push(exact);
            }
        }
        let bins = ProbeBinaries::from_flag(bin_dir);
        let mut probe_builds = Vec::new();
        for arch in ["amd64", "arm64"] {
            let Ok(path) = delivery::find_binary(&bins.dir, "", arch, &bins.launcher_arch) else {
                continue;
            };
            if let Ok(data) = std::fs::read(&path) {
                let sum = delivery::sha256_hex(&data);
                if !probe_builds.contains(&sum) {
                    probe_builds.push(sum);
                }
            }
        }
        PolicyValues {
            trusted,
            probe_builds,
        }
    }

    pub fn from_config(cfg: &Config) -> Self {
        PolicyValues::new(
            &cfg.trust,
            cfg.cluster.probe_image.as_deref(),
            cfg.cluster.probe_bin_dir.as_deref(),
        )
    }
}

/// A CEL list of string literals.
fn cel_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// deploy/policies.yaml with `values` in its `trusted` and `probeBuilds` variables.
pub fn render(values: &PolicyValues) -> String {
    let mut out = String::with_capacity(POLICIES_YAML.len() + 1024);
    let mut replace_next: Option<String> = None;
    for line in POLICIES_YAML.lines() {
        if let Some(list) = replace_next.take()
            && let Some(indent) = line.find("expression:")
        {
            // The list goes inside a YAML double-quoted scalar: CEL's quotes are single, and no value holds
            // a double quote or a backslash (image references and hex digits).
            out.push_str(&format!("{}expression: \"{list}\"\n", &line[..indent]));
            continue;
        }
        match line.trim() {
            "- name: trusted" => replace_next = Some(cel_list(&values.trusted)),
            "- name: probeBuilds" => replace_next = Some(cel_list(&values.probe_builds)),
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `check`'s line about the policies, for the user it runs as: whether this API server has the policy API,
/// whether this user is exempt, and otherwise whether a probe pod of another command and an exec of `sh`
/// are refused by the policies (a server-side dry run, and an exec of a pod that does not exist: the API
/// server admits a CONNECT before it looks the pod up, so nothing runs either way); with copy delivery, whether
/// this launcher's node-probe build is among those the exec policy lists.
pub async fn check(client: &Client, k8s: &K8sConfig, node: Option<&str>) -> ReadinessCheck {
    let ns = k8s.namespace.as_str();
    let fix = "k8s-gpu-mcp setup --apply   # as a cluster admin: applies deploy/policies.yaml with this launcher's trust list and node-probe builds";
    match client
        .list_api_group_resources("admissionregistration.k8s.io/v1")
        .await
    {
        Ok(l)
            if l.resources
                .iter()
                .any(|r| r.name == "validatingadmissionpolicies") => {}
        _ => {
            return ReadinessCheck::warn(
                NAME,
                format!(
                    "this API server has no ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, Kubernetes 1.30+): {NOT_ENFORCED}"
                ),
                "upgrade to Kubernetes 1.30 or later, then k8s-gpu-mcp setup --apply; until then bind the roles only to people who may be root on the GPU nodes",
            );
        }
    }
    if may_delete_policy_bindings(client).await {
        return ReadinessCheck::ok(
            NAME,
            format!(
                "you may delete admission policy bindings, so the launcher's policies ({PROBE_POD_POLICY}, {EXEC_POLICY}, {EPHEMERAL_POLICY}) exempt you; they hold the launcher's other users: run check as one to see them enforced"
            ),
        );
    }
    // A probe pod in every way but its command.
    let call = pod::ProbeCall::new(ns, node.unwrap_or("no-gpu-node"), "check");
    let mut hostile = pod::probe_pod(&call, &k8s.pod_options());
    if let Some(c) = hostile.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.command = Some(vec!["sh".into(), "-c".into(), "id".into()]);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let pod_refused = match pods.create(&dry, &hostile).await {
        Err(kube::Error::Api(s)) if s.message.contains(PROBE_POD_POLICY) => true,
        Ok(_) => false,
        // Refused for another reason (no permission, no namespace): the lines above say which.
        Err(e) => {
            return ReadinessCheck::warn(
                NAME,
                format!("cannot tell: a dry-run pod was refused before the policies: {e}"),
                "fix the lines above, then run check again",
            );
        }
    };
    let shell = vec!["sh".to_string(), "-c".into(), "id".into()];
    let exec_refused =
        matches!(exec_admission(client, ns, &shell).await, Err(m) if m.contains(EXEC_POLICY));
    if !pod_refused || !exec_refused {
        let missing: Vec<&str> = [(pod_refused, PROBE_POD_POLICY), (exec_refused, EXEC_POLICY)]
            .iter()
            .filter(|(refused, _)| !refused)
            .map(|(_, p)| *p)
            .collect();
        return ReadinessCheck::warn(
            NAME,
            format!(
                "{} not in force for you: {NOT_ENFORCED}",
                missing.join(", ")
            ),
            fix,
        );
    }
    let delivery = k8s
        .probe_delivery
        .resolve(k8s.probe_bin_dir.is_some(), k8s.probe_image.is_some());
    if delivery == Delivery::Copy {
        let mut bins = ProbeBinaries::from_flag(k8s.probe_bin_dir.as_deref());
        bins.compress = false;
        let arch = bins.launcher_arch.clone();
        if let Ok(p) = bins.payload("", &arch).await {
            // As the launcher's runs will send it, `--driver-root` included.
            let mut args = vec!["health".to_string()];
            args.extend(crate::config::driver_root_args(k8s.driver_root.as_ref()));
            args.extend(["--node-name".to_string(), "check".into()]);
            let argv = p.argv(args);
            if let Err(m) = exec_admission(client, ns, &argv).await
                && m.contains(EXEC_POLICY)
            {
                return ReadinessCheck::fail(
                    NAME,
                    format!(
                        "{EXEC_POLICY} refuses this launcher's node-probe build ({}, SHA-256 {}): copy delivery cannot run",
                        p.path.display(),
                        p.sha256
                    ),
                    fix,
                );
            }
        }
    }
    ReadinessCheck::ok(
        NAME,
        format!(
            "in force for you: a probe pod of another command ({PROBE_POD_POLICY}) and an exec of `sh` ({EXEC_POLICY}) are refused (dry run, nothing ran)"
        ),
    )
}

/// Whether the user may delete admission policy bindings (and so is exempt from the policies).
async fn may_delete_policy_bindings(client: &Client) -> bool {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("admissionregistration.k8s.io".into()),
                resource: Some("validatingadmissionpolicybindings".into()),
                verb: Some("delete".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &review)
        .await
        .ok()
        .and_then(|r| r.status)
        .is_some_and(|s| s.allowed)
}

/// The pod an admission probe names: none such exists, so an admitted exec ends at NotFound.
const ABSENT_POD: &str = "k8s-gpu-mcp-check-no-such-pod";

/// Admission of an exec of `argv` into container `probe` of a pod that does not exist: Ok when admitted (the
/// API server then answers NotFound), Err with the refusal's message otherwise.
async fn exec_admission(client: &Client, ns: &str, argv: &[String]) -> Result<(), String> {
    let ap = kube::api::AttachParams::default()
        .container(pod::PROBE_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let url = <Pod as kube::Resource>::url_path(&(), Some(ns));
    let mut req = kube::core::Request::new(url)
        .exec(ABSENT_POD, argv.to_vec(), &ap)
        .map_err(|e| e.to_string())?;
    // A plain POST (what `create pods/exec` authorizes), no upgrade: admission answers before the pod lookup.
    *req.method_mut() = "POST".parse().map_err(|_| "method".to_string())?;
    match client.request_text(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(kube::Error::Api(s)) => Err(format!("{} {}", s.code, s.message)),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::manifests::documents;

    fn variable(doc: &serde_json::Value, name: &str) -> String {
        doc["spec"]["variables"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == name))
            .and_then(|v| v["expression"].as_str())
            .unwrap_or_else(|| panic!("no variable {name}"))
            .to_string()
    }

    fn policy<'a>(docs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
        docs.iter()
            .find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no policy {name}"))
    }

    #[test]
    fn shipped_policies_hold_the_launchers_own_values() {
        let docs = documents(POLICIES_YAML).unwrap();
        // Every policy has its binding, denying.
        for p in [PROBE_POD_POLICY, EXEC_POLICY, EPHEMERAL_POLICY] {
            policy(&docs, p);
            let b = docs
                .iter()
                .find(|d| {
                    d["kind"] == "ValidatingAdmissionPolicyBinding" && d["metadata"]["name"] == p
                })
                .unwrap_or_else(|| panic!("no binding {p}"));
            assert_eq!(b["spec"]["policyName"], p);
            assert_eq!(b["spec"]["validationActions"], serde_json::json!(["Deny"]));
        }
        // The delivery script, word for word as the launcher sends it.
        let exec = policy(&docs, EXEC_POLICY);
        let script = variable(exec, "deliveryScript");
        assert_eq!(
            script
                .strip_prefix("r'''")
                .and_then(|s| s.strip_suffix("'''")),
            Some(delivery::SCRIPT)
        );
        // The stop of a cancelled DCGM run, word for word too, and its one pid file.
        assert_eq!(
            variable(exec, "stopScript")
                .strip_prefix("r'''")
                .and_then(|s| s.strip_suffix("'''")),
            Some(crate::probe::stop_first::SCRIPT)
        );
        assert!(
            variable(exec, "stop").contains(&format!("'{}'", crate::probe::stop_first::PID_FILE))
        );
        // node-probe's read-only commands, as gpu-diag lists them.
        let names: Vec<String> = gpu_diag::command::Command::ALL
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        assert_eq!(variable(exec, "readOnlyCommands"), cel_list(&names));
        // The built-in trusted sources, in both policies that name images.
        let builtin = cel_list(&TrustPolicy::default().reference_prefixes());
        for p in [PROBE_POD_POLICY, EPHEMERAL_POLICY] {
            assert_eq!(variable(policy(&docs, p), "trusted"), builtin, "{p}");
        }
        assert_eq!(variable(exec, "probeBuilds"), "[]");
        // The launcher's --driver-root grammar (gpu_diag::command::DriverRoot), as the policy spells it.
        let rules = serde_json::to_string(&exec["spec"]["validations"]).unwrap();
        let d = gpu_diag::command::DriverRoot::PATTERN;
        assert!(
            rules.contains(&format!("driverRootPath.matches('{d}')")),
            "{rules}"
        );
        let max = gpu_diag::command::DriverRoot::MAX_LEN;
        assert!(rules.contains(&format!("size(variables.driverRootPath) <= {max}")));
        let top = gpu_diag::command::DriverRoot::REFUSED_TOP.join("|");
        assert!(rules.contains(&format!("matches('^/({top})/')")), "{rules}");
    }

    #[test]
    fn render_writes_the_owners_sources_and_builds_only() {
        let trust = TrustPolicy::with(&["registry.corp.example/gpu/".into()], None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let v = PolicyValues::new(
            &trust,
            Some(&format!(
                "registry.corp.example/tools/node-probe@sha256:{}",
                "a".repeat(64)
            )),
            Some(dir.path()),
        );
        assert!(v.probe_builds.is_empty());
        let v = PolicyValues {
            probe_builds: vec!["ab".repeat(32)],
            ..v
        };
        let text = render(&v);
        let docs = documents(&text).unwrap();
        let trusted = variable(policy(&docs, PROBE_POD_POLICY), "trusted");
        assert!(
            trusted.contains("'registry.corp.example/gpu/'"),
            "{trusted}"
        );
        assert!(
            trusted.contains(&format!(
                "'registry.corp.example/tools/node-probe@sha256:{}'",
                "a".repeat(64)
            )),
            "{trusted}"
        );
        assert!(trusted.contains("'docker.io/library/'"), "{trusted}");
        assert_eq!(
            variable(policy(&docs, EPHEMERAL_POLICY), "trusted"),
            trusted
        );
        assert_eq!(
            variable(policy(&docs, EXEC_POLICY), "probeBuilds"),
            format!("['{}']", "ab".repeat(32))
        );
        // Nothing else changed.
        let same = |a: &str, b: &str| {
            a.lines()
                .filter(|l| !l.contains("expression: \"['") && !l.contains("expression: \"[]\""))
                .eq(b.lines().filter(|l| {
                    !l.contains("expression: \"['") && !l.contains("expression: \"[]\"")
                }))
        };
        assert!(same(&text, POLICIES_YAML));
        assert_eq!(docs.len(), documents(POLICIES_YAML).unwrap().len());
    }

    #[test]
    fn a_probe_image_by_tag_is_not_trusted_by_the_policies() {
        let dir = tempfile::tempdir().unwrap();
        let v = PolicyValues::new(
            &TrustPolicy::default(),
            Some("registry.corp.example/tools/node-probe:v1"),
            Some(dir.path()),
        );
        assert_eq!(v.trusted, TrustPolicy::default().reference_prefixes());
    }
}
