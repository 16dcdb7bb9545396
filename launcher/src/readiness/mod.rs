//! Is this cluster ready for the launcher? In the manner of `linkerd check` and `flux check --pre`: one
//! row per thing the launcher needs, and for each failure the command that fixes it. Read-only: everything
//! is a get, a list, an access review or a server-side dry run. `k8s-gpu-mcp check` (`crate::commands`) and
//! the `check_cluster` tool (`crate::mcp`) both run [`run`] and show its [`CheckReport`].
//!
//! The permissions checked are derived from deploy/ (the ClusterRoles of `rbac.yaml`, bound as
//! `bindings-example.yaml` binds them, `manifests.rs`), so the check and the manifests cannot drift apart.
//! One file per kind of check, in the order a person fixes them: `kubeconfig.rs`, `namespace.rs`,
//! `access.rs`, `nodes.rs`, `probe_builds.rs`, `admission.rs`, `policies.rs`; `report.rs` holds the rows and
//! the report, `render.rs` writes them as text.

pub mod access;
pub mod admission;
pub mod kubeconfig;
pub mod manifests;
pub mod namespace;
pub mod nodes;
pub mod policies;
pub mod probe_builds;
pub mod render;
pub mod report;

use kube::Client;

use crate::cluster::clients::Clients;
use crate::config::Mode;
use access::{permission_check, whoami};
use admission::{admission_check, openshift_check};
use kubeconfig::credential_plugin_check;
use manifests::{LOG_READER_ROLE, required_permissions};
use namespace::namespace_check;
use nodes::node_checks;
use probe_builds::probe_checks;

pub use kubeconfig::KubeconfigSource;
pub use render::render_text;
pub use report::{CheckOptions, CheckReport, ReadinessCheck, Status};

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
            report.checks.push(ReadinessCheck::fail(
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
            report.checks.push(ReadinessCheck::fail(
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
        Ok(v) => report.checks.push(ReadinessCheck::ok(
            "api-server",
            format!("reachable, Kubernetes {}", v.git_version),
        )),
        Err(e) => {
            report.checks.push(ReadinessCheck::fail(
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
        Err(e) => report.checks.push(ReadinessCheck::fail(
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
    report
        .checks
        .push(policies::check(&client, &opts.k8s, nodes.first().map(|n| n.node.as_str())).await);
}

/// The log reader's line: granted per namespace only (`setup --namespaces`) is a choice, not a failure;
/// diagnose_workload then reads logs only there.
fn log_reader_scope(c: ReadinessCheck) -> ReadinessCheck {
    if c.status != Status::Fail {
        return c;
    }
    ReadinessCheck::warn(
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
