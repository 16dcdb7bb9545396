//! `k8s-gpu-mcp check`: is this cluster ready for the launcher? In the manner of `linkerd check` and
//! `flux check --pre`: one line per thing the launcher needs, and for each failure the command that fixes
//! it. Read-only: everything is a get, a list, an access review or a server-side dry run.
//!
//! The permissions checked are derived from deploy/ (the ClusterRoles of `rbac.yaml`, bound as
//! `bindings-example.yaml` binds them), so the check and the manifests cannot drift apart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{CheckArgs, Config, Mode, OutputFormat};
use crate::cluster::backend::{gpu_node, is_gpu_node};
use crate::cluster::clients::Clients;
use crate::probe::delivery::{self, Delivery, DeliveryError, ProbeBinaries};
use crate::probe::kube::K8sConfig;
use crate::probe::node_image;
use crate::probe::pod;
use crate::probe::trust::{ImageRef, TrustPolicy};

/// deploy/'s manifests, compiled in (launcher/deploy links to the repository's deploy/, so the published
/// crate carries them too).
pub const NAMESPACE_YAML: &str = include_str!("../../deploy/00-namespace.yaml");
pub const RBAC_YAML: &str = include_str!("../../deploy/rbac.yaml");
pub const BINDINGS_YAML: &str = include_str!("../../deploy/bindings-example.yaml");

/// The Pod Security label the probe namespace needs: probe pods are privileged, hostPID, host `/`.
pub const PSA_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// The ClusterRole only operator mode needs; every other role of rbac.yaml is needed by both modes.
pub const OPERATOR_ROLE: &str = "k8s-gpu-mcp-operator";
/// The ClusterRole `setup --namespaces` binds per namespace.
pub const LOG_READER_ROLE: &str = "k8s-gpu-mcp-log-reader";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    /// What was checked: `kubeconfig`, `credentials` (exec plugins only), `api-server`, `namespace`, `permissions/<role>`, `node/<name>`,
    /// `image/<name>`, `admission`.
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// The command (or step) that fixes a failure or warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }
    pub(crate) fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail)
    }
    pub(crate) fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Fail, detail).with_fix(fix)
    }
    pub(crate) fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Warn, detail).with_fix(fix)
    }
    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole checklist.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    pub context: Option<String>,
    pub namespace: String,
    /// `read-only` or `operator`: which permissions were required.
    pub mode: String,
    /// The user the API server sees (SelfSubjectReview), when it says.
    pub user: Option<String>,
    pub checks: Vec<Check>,
}

/// What to check: the launcher's Kubernetes settings plus the mode and an optional node selector.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub k8s: K8sConfig,
    pub mode: Mode,
    /// Label selector limiting the GPU nodes checked (all GPU nodes when None).
    pub selector: Option<String>,
}

/// `k8s-gpu-mcp check`: the checklist (text or JSON) on stdout; exit 1 when a check failed.
pub async fn command(cfg: &Config, a: &CheckArgs) -> ExitCode {
    let opts = CheckOptions {
        k8s: cfg.k8s_config(),
        mode: cfg.mode,
        selector: a.selector.clone(),
    };
    let report = run(&opts).await;
    match a.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        OutputFormat::Text => print!("{}", render_text(&report)),
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Run every check against the cluster of `opts.k8s` (kubeconfig, context).
pub async fn run(opts: &CheckOptions) -> CheckReport {
    let mut report = CheckReport {
        ok: true,
        context: opts.k8s.context.clone(),
        namespace: opts.k8s.namespace.clone(),
        mode: match opts.mode {
            Mode::ReadOnly => "read-only".into(),
            Mode::Operator => "operator".into(),
        },
        user: None,
        checks: Vec::new(),
    };
    let source = KubeconfigSource::resolve(opts.k8s.kubeconfig.as_deref());
    // Before connecting: kube runs an exec plugin while it builds the client.
    let credentials = credential_plugin_check(&source, opts.k8s.context.as_deref());
    let connected =
        Clients::connect(opts.k8s.kubeconfig.as_deref(), opts.k8s.context.as_deref()).await;
    let clients = match connected {
        Ok(c) => c,
        Err(e) => {
            report.checks.push(Check::fail(
                "kubeconfig",
                format!("{}: {e}", source.describe()),
                "kubectl config get-contexts   # then pass --kubeconfig PATH and --context NAME",
            ));
            report.checks.extend(credentials);
            return finish(report);
        }
    };
    report.context = clients.default_context().map(str::to_string);
    report.checks.push(source.check(report.context.as_deref()));
    report.checks.extend(credentials);
    let client = match clients.get(None).await {
        Ok(c) => c,
        Err(e) => {
            report.checks.push(Check::fail(
                "api-server",
                e.to_string(),
                "kubectl cluster-info",
            ));
            return finish(report);
        }
    };
    checks_with_client(client, opts, &mut report).await;
    finish(report)
}

/// The checks that need the API server, in the order a person fixes them.
async fn checks_with_client(client: Client, opts: &CheckOptions, report: &mut CheckReport) {
    let ctx_flag = report
        .context
        .as_deref()
        .map(|c| format!(" --context {c}"))
        .unwrap_or_default();
    match client.apiserver_version().await {
        Ok(v) => report.checks.push(Check::ok(
            "api-server",
            format!("reachable, Kubernetes {}", v.git_version),
        )),
        Err(e) => {
            report.checks.push(Check::fail(
                "api-server",
                format!("unreachable: {e}"),
                format!("kubectl{ctx_flag} cluster-info"),
            ));
            return;
        }
    }
    report.user = whoami(&client).await;
    let ns = opts.k8s.namespace.as_str();
    report.checks.push(namespace_check(&client, ns).await);
    let subject = report.user.as_deref().unwrap_or("YOUR-USER");
    match required_permissions(ns, opts.mode) {
        Ok(roles) => {
            for role in &roles {
                let mut c = permission_check(&client, role, subject).await;
                if role.role == LOG_READER_ROLE {
                    c = log_reader_scope(c);
                }
                report.checks.push(c);
            }
        }
        Err(e) => report.checks.push(Check::fail(
            "permissions",
            format!("deploy/ manifests compiled into this launcher do not parse: {e}"),
            "report this as a bug",
        )),
    }
    let nodes = node_checks(&client, opts, report).await;
    report.checks.extend(probe_checks(&client, opts).await);
    let admission = admission_check(&client, opts, nodes.first()).await;
    let openshift = openshift_check(&client, opts, &admission).await;
    report.checks.push(admission);
    report.checks.extend(openshift);
    report.checks.push(policy_line(
        crate::commands::policies::check(
            &client,
            &opts.k8s,
            nodes.first().map(|(n, _)| n.as_str()),
        )
        .await,
    ));
}

/// The policies' line of the checklist.
fn policy_line(l: crate::commands::policies::Line) -> Check {
    use crate::commands::policies::{Line, NAME};
    match l {
        Line::Ok(d) => Check::ok(NAME, d),
        Line::Warn(d, fix) => Check::warn(NAME, d, fix),
        Line::Fail(d, fix) => Check::fail(NAME, d, fix),
    }
}

/// The log reader's line: granted per namespace only (`setup --namespaces`) is a choice, not a failure;
/// diagnose_workload then reads logs only there.
fn log_reader_scope(c: Check) -> Check {
    if c.status != Status::Fail {
        return c;
    }
    Check::warn(
        c.name,
        format!(
            "{}; diagnose_workload reads pod logs only in the namespaces where the role is bound (setup --namespaces binds it per namespace)",
            c.detail
        ),
        c.fix.unwrap_or_default(),
    )
}

fn finish(mut report: CheckReport) -> CheckReport {
    report.ok = !report.checks.iter().any(|c| c.status == Status::Fail);
    report
}

/// Which kubeconfig the launcher reads, and which one an AI host would read: hosts start the launcher with
/// their own (minimal) environment, so a `$KUBECONFIG` from the user's shell is not there.
#[derive(Debug, Clone)]
pub struct KubeconfigSource {
    /// The value in use (`--kubeconfig` or `$KUBECONFIG`; may be a `:`-separated list).
    pub path: Option<PathBuf>,
    pub from_env: bool,
    /// `~/.kube/config`, what a host without `$KUBECONFIG` and without `--kubeconfig` reads.
    pub home_default: Option<PathBuf>,
}

impl KubeconfigSource {
    pub fn resolve(flag: Option<&Path>) -> Self {
        let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
        let home_default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
        KubeconfigSource {
            path: flag.map(Path::to_path_buf),
            from_env: flag.is_some() && env.as_deref() == flag.map(Path::as_os_str),
            home_default,
        }
    }

    /// The file the launcher reads now (absolute when it exists), for host configuration snippets.
    pub fn effective(&self) -> Option<PathBuf> {
        let p = self.path.clone().or_else(|| self.home_default.clone())?;
        if std::env::split_paths(p.as_os_str()).count() > 1 {
            return Some(p);
        }
        Some(std::fs::canonicalize(&p).unwrap_or(p))
    }

    fn describe(&self) -> String {
        match (&self.path, self.from_env) {
            (Some(p), true) => format!("kubeconfig {} (from $KUBECONFIG)", p.display()),
            (Some(p), false) => format!("kubeconfig {} (from --kubeconfig)", p.display()),
            (None, _) => match &self.home_default {
                Some(p) if p.exists() => format!("kubeconfig {}", p.display()),
                _ => "no kubeconfig (in-cluster service account)".into(),
            },
        }
    }

    fn check(&self, context: Option<&str>) -> Check {
        let ctx = context.unwrap_or("(in-cluster)");
        let detail = format!("{}, context {ctx}", self.describe());
        let Some(path) = self.path.as_ref().filter(|_| self.from_env) else {
            return Check::ok("kubeconfig", detail);
        };
        // Only $KUBECONFIG is at risk: an AI host started from a desktop does not inherit it.
        let same_as_home = self
            .home_default
            .as_ref()
            .is_some_and(|h| std::fs::canonicalize(h).ok() == std::fs::canonicalize(path).ok());
        if same_as_home {
            return Check::ok("kubeconfig", detail);
        }
        let host_reads = match &self.home_default {
            Some(h) if h.exists() => format!("{} (another file)", h.display()),
            Some(h) => format!("{} (missing)", h.display()),
            None => "no kubeconfig".into(),
        };
        Check::warn(
            "kubeconfig",
            format!("{detail}; an AI host that does not inherit $KUBECONFIG reads {host_reads}"),
            format!(
                "put `--kubeconfig {} --context {ctx}` into the host configuration (k8s-gpu-mcp setup prints it)",
                path.display()
            ),
        )
    }
}

/// An exec credential plugin (`aws`, `gke-gcloud-auth-plugin`, `kubelogin`) named without a path resolves on
/// the PATH of whoever starts the launcher, and AI hosts started from a desktop get a short PATH (macOS:
/// `/usr/bin:/bin:/usr/sbin:/sbin`). None when the context uses no plugin.
fn credential_plugin_check(source: &KubeconfigSource, context: Option<&str>) -> Option<Check> {
    let path = source.effective()?;
    let kc = kube::config::Kubeconfig::read_from(&path).ok()?;
    let ctx = context.or(kc.current_context.as_deref())?;
    let user = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let exec = kc
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?
        .exec
        .as_ref()?;
    let cmd = exec.command.as_deref()?;
    let name = "credentials";
    if cmd.contains('/') {
        return Some(Check::ok(
            name,
            format!("exec plugin {cmd} (absolute path)"),
        ));
    }
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    });
    let fix_in = format!("user {user} in {}", path.display());
    Some(match found {
        Some(p)
            if ["/usr/bin", "/bin"]
                .iter()
                .any(|d| p.parent() == Some(Path::new(d))) =>
        {
            Check::ok(name, format!("exec plugin {cmd} at {}", p.display()))
        }
        Some(p) => Check::warn(
            name,
            format!(
                "exec plugin `{cmd}` is {} on your PATH; an AI host started from the desktop may not have that directory on its PATH",
                p.display()
            ),
            format!("set exec.command to {} ({fix_in})", p.display()),
        ),
        None => Check::fail(
            name,
            format!("exec plugin `{cmd}` is not on PATH"),
            format!("install {cmd}, or set exec.command to its absolute path ({fix_in})"),
        ),
    })
}

/// The user name the API server sees (SelfSubjectReview, GA since Kubernetes 1.28).
async fn whoami(client: &Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username
}

/// The probe namespace exists and Pod Security admits privileged pods there.
async fn namespace_check(client: &Client, ns: &str) -> Check {
    let name = "namespace";
    let label_fix = format!("kubectl label namespace {ns} {PSA_ENFORCE}=privileged --overwrite");
    let api: Api<Namespace> = Api::all(client.clone());
    let found = match api.get_opt(ns).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Check::fail(
                name,
                format!("{ns} does not exist"),
                format!("k8s-gpu-mcp setup --apply --namespace {ns}   # as a cluster admin"),
            );
        }
        Err(kube::Error::Api(s)) if s.is_forbidden() => {
            return Check::fail(
                name,
                format!(
                    "cannot read namespace {ns} (forbidden): it does not exist, or the probe role is not bound to you there"
                ),
                format!("k8s-gpu-mcp setup --apply --namespace {ns}   # as a cluster admin"),
            );
        }
        Err(e) => {
            return Check::fail(
                name,
                format!("get namespace {ns}: {e}"),
                "kubectl cluster-info",
            );
        }
    };
    let enforce = found
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(PSA_ENFORCE))
        .map(String::as_str);
    match enforce {
        Some("privileged") => Check::ok(name, format!("{ns} exists, {PSA_ENFORCE}=privileged")),
        Some(level) => Check::fail(
            name,
            format!(
                "{ns} has {PSA_ENFORCE}={level}: Pod Security refuses probe pods (privileged, hostPID, host /)"
            ),
            label_fix,
        ),
        None => Check::fail(
            name,
            format!(
                "{ns} has no {PSA_ENFORCE} label: the cluster's default Pod Security level applies, which usually refuses probe pods (privileged, hostPID, host /)"
            ),
            label_fix,
        ),
    }
}

/// One permission: `verb` on `resource[/subresource]` in `group`, in `namespace` (None: cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub verb: String,
    pub namespace: Option<String>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(s) = &self.subresource {
            write!(f, "/{s}")?;
        }
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        Ok(())
    }
}

/// A ClusterRole of deploy/rbac.yaml with where it is bound (from bindings-example.yaml).
#[derive(Debug, Clone)]
pub struct RequiredRole {
    pub role: String,
    /// The probe namespace for a role bound by RoleBinding; None for a ClusterRoleBinding.
    pub namespace: Option<String>,
    pub permissions: Vec<Permission>,
}

/// The permissions `mode` needs, per ClusterRole, derived from deploy/.
pub fn required_permissions(ns: &str, mode: Mode) -> Result<Vec<RequiredRole>, String> {
    let roles: Vec<ClusterRole> = documents(RBAC_YAML)?
        .into_iter()
        .filter(|d| d["kind"] == "ClusterRole")
        .map(|d| serde_json::from_value(d).map_err(|e| format!("rbac.yaml: {e}")))
        .collect::<Result<_, _>>()?;
    let bindings = documents(BINDINGS_YAML)?;
    let mut out = Vec::new();
    for role in roles {
        let name = role.metadata.name.clone().unwrap_or_default();
        if name == OPERATOR_ROLE && mode == Mode::ReadOnly {
            continue;
        }
        let kind = bindings
            .iter()
            .find(|b| b["roleRef"]["name"] == name.as_str())
            .and_then(|b| b["kind"].as_str())
            .ok_or_else(|| format!("bindings-example.yaml binds no role {name}"))?;
        let namespace = match kind {
            "RoleBinding" => Some(ns.to_string()),
            _ => None,
        };
        let mut permissions = Vec::new();
        for rule in role.rules.iter().flatten() {
            for group in rule.api_groups.iter().flatten() {
                for res in rule.resources.iter().flatten() {
                    let (resource, subresource) = match res.split_once('/') {
                        Some((r, s)) => (r.to_string(), Some(s.to_string())),
                        None => (res.clone(), None),
                    };
                    for verb in &rule.verbs {
                        let p = Permission {
                            group: group.clone(),
                            resource: resource.clone(),
                            subresource: subresource.clone(),
                            verb: verb.clone(),
                            namespace: namespace.clone(),
                        };
                        if !permissions.contains(&p) {
                            permissions.push(p);
                        }
                    }
                }
            }
        }
        out.push(RequiredRole {
            role: name,
            namespace,
            permissions,
        });
    }
    Ok(out)
}

/// The YAML documents of a manifest file as JSON values (empty documents dropped).
pub fn documents(yaml: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

/// SelfSubjectAccessReview for each permission of a role; one checklist line per role.
async fn permission_check(client: &Client, role: &RequiredRole, subject: &str) -> Check {
    let name = format!("permissions/{}", role.role);
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for p in &role.permissions {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.clone()),
                    resource: Some(p.resource.clone()),
                    subresource: p.subresource.clone(),
                    verb: Some(p.verb.clone()),
                    namespace: p.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(p.to_string()),
            Err(e) => {
                return Check::fail(
                    name,
                    format!("access review failed: {e}"),
                    "kubectl auth can-i --list",
                );
            }
        }
    }
    let scope = match &role.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".into(),
    };
    if missing.is_empty() {
        return Check::ok(
            name,
            format!("all {} permissions {scope}", role.permissions.len()),
        );
    }
    let safe = crate::cluster::labels::label_value(subject).to_lowercase();
    let bind = match &role.namespace {
        Some(ns) => format!(
            "kubectl create rolebinding {}-{safe} -n {ns} --clusterrole={} --user={subject}",
            role.role, role.role
        ),
        None => format!(
            "kubectl create clusterrolebinding {}-{safe} --clusterrole={} --user={subject}",
            role.role, role.role
        ),
    };
    Check::fail(
        name,
        format!(
            "{} of {} permissions missing {scope}: {}",
            missing.len(),
            role.permissions.len(),
            missing.join(", ")
        ),
        format!("k8s-gpu-mcp setup --apply   # as a cluster admin (the roles), then: {bind}"),
    )
}

/// GPU nodes, their readiness and, per node, whether the delivery has an image to use. Returns the GPU
/// nodes with the image a probe would use there, Ready ones first (the admission dry run uses the first).
async fn node_checks(
    client: &Client,
    opts: &CheckOptions,
    report: &mut CheckReport,
) -> Vec<(String, Option<String>)> {
    let api: Api<Node> = Api::all(client.clone());
    let mut lp = ListParams::default();
    if let Some(s) = &opts.selector {
        lp = lp.labels(s);
    }
    let nodes = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            report.checks.push(Check::fail(
                "gpu-nodes",
                format!("list nodes: {e}"),
                "see permissions/k8s-gpu-mcp-reader",
            ));
            return Vec::new();
        }
    };
    let gpu: Vec<&Node> = nodes.iter().filter(|n| is_gpu_node(n)).collect();
    let within = opts
        .selector
        .as_deref()
        .map(|s| format!(" matching {s}"))
        .unwrap_or_default();
    if gpu.is_empty() {
        report.checks.push(Check::fail(
            "gpu-nodes",
            format!(
                "no GPU nodes{within} among {} nodes (none has nvidia.com/* capacity or nvidia.com/gpu.present=true)",
                nodes.len()
            ),
            "install the NVIDIA device plugin or GPU Operator; check with: kubectl get nodes -L nvidia.com/gpu.present",
        ));
        return Vec::new();
    }
    report.checks.push(Check::ok(
        "gpu-nodes",
        format!("{} GPU nodes{within}", gpu.len()),
    ));
    let delivery = delivery(&opts.k8s);
    let configured = opts.k8s.probe_image.as_deref();
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for n in gpu {
        let g = gpu_node(n, &[]);
        let arch = g.architecture.as_deref().unwrap_or("unknown arch");
        let mut check = if g.ready {
            Check::ok(
                format!("node/{}", g.name),
                format!("Ready, {} GPUs, {arch}", g.gpu_capacity),
            )
        } else {
            Check::fail(
                format!("node/{}", g.name),
                format!("not Ready ({})", g.problem_conditions.join(", ")),
                format!("kubectl describe node {}", g.name),
            )
        };
        if g.ready && g.unschedulable {
            // Probe pods bind by nodeName and tolerate everything, so cordoned nodes still work.
            check.detail.push_str(", cordoned (probes still run there)");
        }
        report.checks.push(check);
        let (check, image) = image_check(n, delivery, configured, &opts.k8s.trust);
        report.checks.push(check);
        if g.ready {
            ready.push((g.name, image));
        } else {
            not_ready.push((g.name, image));
        }
    }
    ready.extend(not_ready);
    ready
}

fn delivery(k: &K8sConfig) -> Delivery {
    k.probe_delivery
        .resolve(k.probe_bin_dir.is_some(), k.probe_image.is_some())
}

/// Whether the delivery has an image to use on `node`, and which. One function on purpose: the delivery
/// decides what "usable" means. `configured` is --probe-image: with image delivery the node pulls it if
/// needed; with copy delivery it must already be there. Without it (the default delivery) node-probe is
/// copied into a trusted image the node lists by digest, chosen as the runner chooses it
/// (`node_image::rank`); the others are named with why they were refused.
pub fn image_check(
    node: &Node,
    delivery: Delivery,
    configured: Option<&str>,
    policy: &TrustPolicy,
) -> (Check, Option<String>) {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let name = format!("image/{node_name}");
    let image_count = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map_or(0, Vec::len);
    let listing = format!(
        "kubectl get node {node_name} -o jsonpath='{{range .status.images[*]}}{{.names}}{{\"\\n\"}}{{end}}'"
    );
    let Some(image) = configured else {
        let refused = node_image::refused(node, policy, 12);
        let refused_text = if refused.is_empty() {
            String::new()
        } else {
            format!("; refused: {}", refused.join(", "))
        };
        return match node_image::rank(node, &BTreeSet::new(), policy)
            .into_iter()
            .next()
        {
            Some(c) => (
                Check::ok(
                    name,
                    format!(
                        "node-probe is copied into {} ({}), a trusted image the node lists by digest{refused_text}",
                        c.label, c.image
                    ),
                ),
                Some(c.image),
            ),
            None => (
                Check::fail(
                    name,
                    format!(
                        "none of the node's {image_count} images is a glibc base with sh and tar from a trusted source, listed by digest{refused_text}"
                    ),
                    format!(
                        "pre-pull a trusted base (e.g. docker.io/library/debian:bookworm-slim) on the node, or trust your own registry's bases with --trust-image REGISTRY/NAMESPACE/, or name an image with --probe-image IMAGE@sha256:DIGEST (--probe-delivery copy, or the probe image of deploy/probe-image) (list the node's images: {listing})"
                    ),
                ),
                None,
            ),
        };
    };
    let parsed = match ImageRef::parse(image) {
        Ok(r) => r,
        Err(e) => {
            return (
                Check::fail(
                    name,
                    format!("--probe-image: {e}"),
                    "give a reference such as registry.example.com/ns/node-probe@sha256:DIGEST",
                ),
                None,
            );
        }
    };
    let present = node_image::lists(node, image);
    let mut check = match (delivery, present) {
        (_, true) => Check::ok(name, format!("{image} is on the node")),
        (Delivery::Copy, false) => Check::fail(
            name,
            format!(
                "copy delivery streams node-probe into {image}, which the node does not have ({image_count} images listed); the pod would pull it"
            ),
            format!(
                "pick a glibc image with sh and tar that the node has (--probe-image IMAGE); list them with: {listing}"
            ),
        ),
        (Delivery::Image, false) => Check::warn(
            name,
            format!(
                "{image} is not on the node yet ({image_count} images listed): the first probe pulls it, which needs the registry reachable from the node"
            ),
            format!(
                "pre-pull {image} on the node, or leave out --probe-image: node-probe is then copied into an image the node has"
            ),
        ),
    };
    // A tag can be re-pointed (in the registry, or on the node): what runs as root should be named by digest.
    if parsed.digest.is_none() && check.status != Status::Fail {
        check = Check::warn(
            check.name,
            format!(
                "{}; --probe-image is given by tag, and a tag can be re-pointed to other content that then runs as root on the node",
                check.detail
            ),
            format!(
                "pin it by digest: --probe-image {}@sha256:DIGEST (the digest the registry or `crane digest` reports)",
                parsed.repository
            ),
        );
    }
    (check, Some(image.to_string()))
}

/// A server-side dry-run create of the probe pod the launcher would start (its own pod builder): proves
/// that admission (Pod Security, policy webhooks, quotas) lets it in, without creating anything.
async fn admission_check(
    client: &Client,
    opts: &CheckOptions,
    node: Option<&(String, Option<String>)>,
) -> Check {
    let name = "admission";
    let ns = &opts.k8s.namespace;
    let node_name = node.map(|(n, _)| n.as_str()).unwrap_or("no-gpu-node");
    // The default delivery found no base on the node (its `image/` line fails with the fix): a dry run of
    // some other image would only say something about that image, so it waits for that fix.
    if opts.k8s.probe_image.is_none() && matches!(node, Some((_, None))) {
        return Check::warn(
            name,
            format!("not tried: no probe image for {node_name} yet (see image/{node_name})"),
            format!("fix image/{node_name} first, then run check again"),
        );
    }
    let call = pod::ProbeCall::new(ns, node_name, "check");
    let mut pod_opts = opts.k8s.pod_options();
    if let Some((_, Some(image))) = node {
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
        Ok(_) => Check::ok(
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
            Check::fail(
                name,
                format!("a probe pod is refused ({}): {}", s.code, s.message),
                fix,
            )
        }
        Err(e) => Check::fail(name, format!("dry-run create: {e}"), "kubectl cluster-info"),
    }
}

/// The GPU nodes of the selection (for the checks that need the Node objects; None: the list failed, which
/// `node_checks` already reported).
async fn gpu_nodes(client: &Client, opts: &CheckOptions) -> Option<Vec<Node>> {
    let mut lp = ListParams::default();
    if let Some(s) = &opts.selector {
        lp = lp.labels(s);
    }
    let api: Api<Node> = Api::all(client.clone());
    let nodes = api.list(&lp).await.ok()?.items;
    Some(nodes.into_iter().filter(is_gpu_node).collect())
}

/// A node-probe build as copy delivery would send it: where it is and the oldest glibc it runs on.
#[derive(Debug, Clone)]
pub struct ProbeBuild {
    pub path: PathBuf,
    pub glibc: Option<(u32, u32)>,
}

/// Look up and read the build for `arch` as the launcher would ([`ProbeBinaries`]'s directory and names).
pub fn probe_build(bins: &ProbeBinaries, node: &str, arch: &str) -> Result<ProbeBuild, String> {
    let no_build = |looked: String| {
        format!("no node-probe for linux/{arch} (node {node}): looked for {looked}")
    };
    let path = match delivery::find_binary(&bins.dir, node, arch, &bins.launcher_arch) {
        Ok(p) => p,
        Err(DeliveryError::NoBinary { looked, .. }) => return Err(no_build(looked)),
        Err(e) => return Err(e.to_string()),
    };
    let data =
        std::fs::read(&path).map_err(|e| format!("node-probe build {}: {e}", path.display()))?;
    let payload = delivery::Payload::build(arch, &path, &data).map_err(|e| e.to_string())?;
    Ok(ProbeBuild {
        path,
        glibc: payload.glibc,
    })
}

/// Copy delivery (the default): for each GPU node, the node-probe build for its architecture
/// (`status.nodeInfo.architecture`) and whether the base image node-probe goes into can run it: its glibc
/// as far as the image's name tells ([`node_image::glibc_of`]). A base known to be older is not tried by the
/// delivery; the row says which image is used instead, or that none is left. One row per node
/// (`probe/<node>`); none with image delivery (node-probe is in the probe image).
async fn probe_checks(client: &Client, opts: &CheckOptions) -> Vec<Check> {
    if delivery(&opts.k8s) != Delivery::Copy {
        return Vec::new();
    }
    let Some(nodes) = gpu_nodes(client, opts).await else {
        return Vec::new();
    };
    let bins = ProbeBinaries::from_flag(opts.k8s.probe_bin_dir.as_deref());
    let mut builds: std::collections::HashMap<String, Result<ProbeBuild, String>> =
        Default::default();
    nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let arch = n
                .status
                .as_ref()
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.architecture.clone())
                .unwrap_or_default();
            let build = builds
                .entry(arch.clone())
                .or_insert_with(|| probe_build(&bins, &name, &arch));
            probe_check(
                n,
                &arch,
                build,
                &bins.dir,
                opts.k8s.probe_image.as_deref(),
                &opts.k8s.trust,
            )
        })
        .collect()
}

/// One node's `probe/<node>` row (see [`probe_checks`]).
pub fn probe_check(
    node: &Node,
    arch: &str,
    build: &Result<ProbeBuild, String>,
    dir: &Path,
    configured: Option<&str>,
    policy: &TrustPolicy,
) -> Check {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let name = format!("probe/{node_name}");
    let release =
        "the release archive's probes/ (built for glibc 2.28 by packaging/build-probes.sh)";
    let b = match build {
        Ok(b) => b,
        Err(e) => {
            // The cached error names the first node of this architecture; name this one.
            let e = match e.split_once("): ") {
                Some((head, rest)) if head.starts_with("no node-probe for linux/") => {
                    format!("no node-probe for linux/{arch} (node {node_name}): {rest}")
                }
                _ => e.clone(),
            };
            let fix = if arch.is_empty() {
                "the node reports no status.nodeInfo.architecture; use --probe-image with the probe image (deploy/probe-image)".to_string()
            } else {
                format!(
                    "put node-probe-linux-{arch} in {} (or name its directory with --probe-bin-dir DIR), or download the release archive, which holds the amd64 and arm64 builds",
                    dir.display()
                )
            };
            return Check::fail(name, e, fix);
        }
    };
    let Some(need) = b.glibc else {
        return Check::ok(
            name,
            format!(
                "node-probe {} for linux/{arch} (no glibc version needed)",
                b.path.display()
            ),
        );
    };
    let needs = format!("needs glibc {}.{} or newer", need.0, need.1);
    let build_text = format!("node-probe {} for linux/{arch} {needs}", b.path.display());
    let fix_old =
        format!("use a node-probe built for an older glibc: {release}, with --probe-bin-dir DIR");
    let judge = |image: &str, extra: String| match node_image::glibc_of(image) {
        Some((has, why)) if has < need => Check::fail(
            name.clone(),
            format!(
                "{build_text}; {image} has glibc {}.{} ({why}){extra}",
                has.0, has.1
            ),
            fix_old.clone(),
        ),
        Some((has, why)) => Check::ok(
            name.clone(),
            format!(
                "{build_text}; {image} has glibc {}.{} ({why}){extra}",
                has.0, has.1
            ),
        ),
        None => Check::warn(
            name.clone(),
            format!("{build_text}; the glibc of {image} cannot be told from its name{extra}"),
            format!(
                "if a call fails with `GLIBC_{}.{}' not found`, {fix_old}",
                need.0, need.1
            ),
        ),
    };
    if let Some(image) = configured {
        return judge(image, String::new());
    }
    let (usable, too_old) = node_image::rank_for(node, &BTreeSet::new(), policy, Some(need));
    let skipped = if too_old.is_empty() {
        String::new()
    } else {
        format!("; not tried, too old: {}", too_old.join(", "))
    };
    match usable.first() {
        Some(c) => judge(&c.label, skipped),
        None if !too_old.is_empty() => Check::fail(
            name,
            format!("{build_text}; every trusted base the node lists is older{skipped}"),
            fix_old,
        ),
        // No base at all: the image/ row says so and how to fix it.
        None => Check::ok(name, build_text),
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
async fn openshift_check(client: &Client, opts: &CheckOptions, admission: &Check) -> Option<Check> {
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
        Check::ok(
            "openshift",
            format!(
                "OpenShift ({why}): the probe pod was admitted, so a privileged SCC is allowed for it in {ns}"
            ),
        )
    } else {
        // A warning: the admission row above already fails; this names the likely cause on OpenShift.
        Check::warn(
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

/// The checklist as text: one line per check, the fix indented below failures and warnings.
pub fn render_text(r: &CheckReport) -> String {
    let mut out = format!(
        "k8s-gpu-mcp check: context {}, namespace {}, mode {}{}\n",
        r.context.as_deref().unwrap_or("(in-cluster)"),
        r.namespace,
        r.mode,
        r.user
            .as_deref()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default()
    );
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "[ok]  ",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
        };
        out.push_str(&format!("{mark} {}: {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("       fix: {fix}\n"));
        }
    }
    let count = |s: Status| r.checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} checks: {} ok, {} warnings, {} failed\n",
        r.checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_of_rbac_yaml_is_required_and_scoped_by_its_binding() {
        let ro = required_permissions("probe-ns", Mode::ReadOnly).unwrap();
        let op = required_permissions("probe-ns", Mode::Operator).unwrap();
        let names = |v: &[RequiredRole]| v.iter().map(|r| r.role.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&ro),
            ["k8s-gpu-mcp-reader", LOG_READER_ROLE, "k8s-gpu-mcp-probe"]
        );
        assert_eq!(
            names(&op),
            [
                "k8s-gpu-mcp-reader",
                LOG_READER_ROLE,
                "k8s-gpu-mcp-probe",
                OPERATOR_ROLE
            ]
        );
        let probe = &ro[2];
        assert_eq!(probe.namespace.as_deref(), Some("probe-ns"));
        assert!(ro[0].namespace.is_none());
        let exec = Permission {
            group: String::new(),
            resource: "pods".into(),
            subresource: Some("exec".into()),
            verb: "create".into(),
            namespace: Some("probe-ns".into()),
        };
        assert!(probe.permissions.contains(&exec), "{:?}", probe.permissions);
        assert_eq!(exec.to_string(), "create pods/exec");
        // The node mark's condition (nodes/status) is the operator role's alone.
        let status = Permission {
            group: String::new(),
            resource: "nodes".into(),
            subresource: Some("status".into()),
            verb: "patch".into(),
            namespace: None,
        };
        assert!(
            op[3].permissions.contains(&status),
            "{:?}",
            op[3].permissions
        );
        assert!(
            ro.iter().all(|r| r
                .permissions
                .iter()
                .all(|p| p.subresource.as_deref() != Some("status"))),
            "{ro:?}"
        );
        assert_eq!(status.to_string(), "patch nodes/status");
    }
}
