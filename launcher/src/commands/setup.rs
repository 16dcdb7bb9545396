//! `k8s-gpu-mcp setup`: what a cluster and an AI host need, for the current context. Prints deploy/'s
//! namespace and RBAC (optionally with bindings for given users and groups) and the host configuration
//! snippets with absolute paths; `--apply` applies the same manifests with server-side apply.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::{Value, json};

use crate::cli::{SetupArgs, SetupPart};
use crate::cluster::clients::Clients;
use crate::config::{Config, Mode};
use crate::probe::kube::DEFAULT_NAMESPACE;
use crate::readiness::KubeconfigSource;
use crate::readiness::manifests::{
    BINDINGS_YAML, LOG_READER_ROLE, NAMESPACE_YAML, OPERATOR_ROLE, RBAC_YAML, documents,
};
use crate::readiness::policies::{PolicyValues, render};

/// The field manager of `setup --apply`.
const FIELD_MANAGER: &str = "k8s-gpu-mcp-setup";

/// OpenShift only (inert elsewhere: RBAC accepts a rule for an API group the server does not serve): SCC
/// admission lets a pod in only under an SCC that its creator or its service account may `use`, and the probe
/// pod (privileged, host PID and network) fits only `privileged`. This Role grants the probe namespace's
/// `default` service account (what probe pods run as) `use` of it, as Red Hat documents role-based access to
/// SCCs (https://docs.redhat.com/en/documentation/openshift_container_platform/4.16/html/authentication_and_authorization/managing-pod-security-policies,
/// "Role-based access to security context constraints"); the same as
/// `oc adm policy add-scc-to-user privileged -z default -n NS`.
pub fn openshift_scc(ns: &str) -> String {
    format!(
        "# OpenShift: probe pods run as {ns}'s default service account, which must be allowed the privileged SCC.\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: k8s-gpu-mcp-probe-scc\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: k8s-gpu-mcp\n\
         rules:\n  - apiGroups: [security.openshift.io]\n    resources: [securitycontextconstraints]\n    resourceNames: [privileged]\n    verbs: [use]\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: k8s-gpu-mcp-probe-scc\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: k8s-gpu-mcp\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: k8s-gpu-mcp-probe-scc\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: {ns}\n"
    )
}

/// The manifests for namespace `ns`: deploy/00-namespace.yaml (renamed), deploy/rbac.yaml, the admission
/// policies filled with `policies` (None: left out), and bindings of the roles `mode` needs for each user and
/// group given, the log reader in `log_namespaces` only where any are listed (else cluster-wide). The text is
/// what `--apply` applies.
pub fn manifests(
    ns: &str,
    mode: Mode,
    users: &[String],
    groups: &[String],
    log_namespaces: &[String],
    policies: Option<&PolicyValues>,
) -> String {
    let mut out = String::new();
    if ns == DEFAULT_NAMESPACE {
        out.push_str(NAMESPACE_YAML);
    } else {
        out.push_str(&NAMESPACE_YAML.replace(
            &format!("name: {DEFAULT_NAMESPACE}"),
            &format!("name: {ns}"),
        ));
    }
    out.push_str("---\n");
    out.push_str(RBAC_YAML);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("---\n");
    out.push_str(&openshift_scc(ns));
    if let Some(v) = policies {
        out.push_str("---\n");
        out.push_str(&render(v));
    }
    let subjects: Vec<(&str, &String)> = users
        .iter()
        .map(|u| ("User", u))
        .chain(groups.iter().map(|g| ("Group", g)))
        .collect();
    if subjects.is_empty() {
        return out;
    }
    // Bound as deploy/bindings-example.yaml binds them: the probe role by RoleBinding in the namespace.
    let Ok(examples) = documents(BINDINGS_YAML) else {
        return out;
    };
    for b in examples.iter().filter(|b| b["kind"] != "ServiceAccount") {
        let role = b["roleRef"]["name"].as_str().unwrap_or_default();
        if role == OPERATOR_ROLE && mode == Mode::ReadOnly {
            continue;
        }
        let kind = b["kind"].as_str().unwrap_or_default();
        // The log reader per namespace where the owner lists them: a RoleBinding in each.
        let places: Vec<(&str, Option<&str>)> =
            if role == LOG_READER_ROLE && !log_namespaces.is_empty() {
                log_namespaces
                    .iter()
                    .map(|n| ("RoleBinding", Some(n.as_str())))
                    .collect()
            } else if kind == "RoleBinding" {
                vec![(kind, Some(ns))]
            } else {
                vec![(kind, None)]
            };
        for (kind, bind_ns) in places {
            for (skind, sname) in &subjects {
                let name = format!(
                    "{role}-{}-{}",
                    skind.to_lowercase(),
                    crate::cluster::labels::label_value(sname).to_lowercase()
                );
                let namespace = bind_ns
                    .map(|n| format!("\n  namespace: {n}"))
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {name}{namespace}\n  labels:\n    app.kubernetes.io/name: k8s-gpu-mcp\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n  - kind: {skind}\n    apiGroup: rbac.authorization.k8s.io\n    name: {}\n",
                    json!(sname)
                );
            }
        }
    }
    out
}

/// Server-side apply of every document of `yaml`; one `kind/name` line per object on stdout.
pub async fn apply(clients: &Clients, yaml: &str) -> Result<Vec<String>, String> {
    let client = clients.get(None).await.map_err(|e| e.to_string())?;
    let mut applied = Vec::new();
    for doc in documents(yaml)? {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = pinned_kind(&client, &gvk)
            .await
            .map_err(|e| format!("{kind} {name}: {e}"))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(DEFAULT_NAMESPACE);
                Api::namespaced_with(client.clone(), ns, &resource)
            }
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(name, &pp, &Patch::Apply(&doc))
            .await
            .map_err(|e| format!("apply {kind} {name}: {e}"))?;
        applied.push(format!("{}/{name} serverside-applied", resource.plural));
    }
    Ok(applied)
}

/// The launcher's command line for a host: `serve` first (a host starts the MCP server, and the launcher
/// has no default subcommand), then absolute paths, the context and namespace spelled out, so the host's own
/// (minimal) environment does not matter.
pub fn host_args(cfg: &Config) -> (String, Vec<String>) {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "k8s-gpu-mcp".into());
    let c = &cfg.cluster;
    let source = KubeconfigSource::resolve(c.kubeconfig.as_deref());
    let mut args = vec!["serve".to_string()];
    let kubeconfig = source.effective();
    if let Some(k) = &kubeconfig {
        args.extend(["--kubeconfig".to_string(), k.display().to_string()]);
    }
    let context = c
        .context
        .clone()
        .or_else(|| current_context(kubeconfig.as_ref()?));
    if let Some(ctx) = context {
        args.extend(["--context".to_string(), ctx]);
    }
    args.extend(["--namespace".to_string(), c.namespace.clone()]);
    if cfg.mode == Mode::Operator {
        args.extend(["--mode".to_string(), "operator".to_string()]);
    }
    if cfg.toolsets != crate::config::Toolset::ALL {
        let names: Vec<&str> = cfg.toolsets.iter().map(|t| t.name()).collect();
        args.extend(["--toolsets".to_string(), names.join(",")]);
    }
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            args.extend([flag.to_string(), v]);
        }
    };
    opt(
        gpu_diag::command::DriverRoot::FLAG,
        cfg.driver_root.as_ref().map(|d| d.to_string()),
    );
    opt("--probe-image", c.probe_image.clone());
    opt("--probe-runtime-class", c.probe_runtime_class.clone());
    opt(
        "--probe-bin-dir",
        c.probe_bin_dir.as_ref().map(|d| {
            std::fs::canonicalize(d)
                .unwrap_or(d.clone())
                .display()
                .to_string()
        }),
    );
    if c.probe_delivery != "auto" {
        opt("--probe-delivery", Some(c.probe_delivery.clone()));
    }
    // The owner's trusted sources go with the host configuration, so the server an AI host starts trusts
    // exactly what `setup` was told.
    for t in &c.trust_image {
        opt("--trust-image", Some(t.clone()));
    }
    opt(
        "--trust-images-file",
        c.trust_images_file.as_ref().map(|f| {
            std::fs::canonicalize(f)
                .unwrap_or(f.clone())
                .display()
                .to_string()
        }),
    );
    if c.prometheus != crate::cluster::prometheus::PrometheusSetting::Discover {
        opt("--prometheus", Some(c.prometheus.to_string()));
    }
    if c.no_pull {
        args.push("--no-pull".into());
    }
    (exe, args)
}

fn current_context(kubeconfig: &PathBuf) -> Option<String> {
    kube::config::Kubeconfig::read_from(kubeconfig)
        .ok()?
        .current_context
}

/// Configuration snippets for Claude Desktop, Cursor, VS Code and Claude Code.
pub fn host_snippets(exe: &str, args: &[String]) -> String {
    let server = json!({ "command": exe, "args": args });
    let mut vscode = server.clone();
    vscode["type"] = json!("stdio");
    let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let claude_desktop_file = if cfg!(target_os = "macos") {
        "~/Library/Application Support/Claude/claude_desktop_config.json"
    } else {
        "~/.config/Claude/claude_desktop_config.json"
    };
    let quoted: Vec<String> = std::iter::once(exe.to_string())
        .chain(args.iter().cloned())
        .map(|a| shell_quote(&a))
        .collect();
    format!(
        "Claude Desktop ({claude_desktop_file}):\n{}\n\nCursor (~/.cursor/mcp.json):\n{}\n\nVS Code (.vscode/mcp.json):\n{}\n\nClaude Code:\nclaude mcp add --scope user k8s-gpu -- {}\n",
        pretty(json!({ "mcpServers": { "k8s-gpu": server } })),
        pretty(json!({ "mcpServers": { "k8s-gpu": server } })),
        pretty(json!({ "servers": { "k8s-gpu": vscode } })),
        quoted.join(" ")
    )
}

/// The groups `--toolsets` picks from, after the snippets: a host's configuration can serve fewer tools.
fn toolsets_note() -> String {
    let groups: Vec<String> = crate::config::Toolset::ALL
        .iter()
        .map(|t| {
            let tools: Vec<&str> = crate::mcp::tools::tools_of(*t).collect();
            format!("  {}: {} ({})\n", t.name(), t.about(), tools.join(", "))
        })
        .collect();
    format!(
        "\nTool groups (`--toolsets`, every group by default; operator only with --mode operator):\n{}\
         To serve fewer, add for example \"--toolsets\", \"node,workload\" to args.\n",
        groups.concat()
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `k8s-gpu-mcp setup`: what [`run`] answers on stdout; exit 2 when it failed.
pub async fn command(cfg: &Config, a: &SetupArgs) -> ExitCode {
    match run(cfg, a).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("k8s-gpu-mcp setup: {e}");
            ExitCode::from(2)
        }
    }
}

/// `k8s-gpu-mcp setup`: print (or apply) the manifests, print the host snippets. With both printed, the
/// snippets are YAML comments so the output still pipes into `kubectl apply -f -`.
pub async fn run(cfg: &Config, a: &SetupArgs) -> Result<String, String> {
    let ns = &cfg.cluster.namespace;
    let policies = (!a.no_policies).then(|| PolicyValues::from_config(cfg));
    let yaml = manifests(
        ns,
        cfg.mode,
        &a.user,
        &a.group,
        &a.namespaces,
        policies.as_ref(),
    );
    let (exe, args) = host_args(cfg);
    let mut snippets = host_snippets(&exe, &args);
    snippets.push_str(&toolsets_note());
    if a.apply {
        let clients = Clients::connect(
            cfg.cluster.kubeconfig.as_deref(),
            cfg.cluster.context.as_deref(),
        )
        .await?;
        let mut out = apply(&clients, &yaml).await?.join("\n");
        out.push_str("\n\n");
        out.push_str(&snippets);
        return Ok(out);
    }
    Ok(match a.only {
        Some(SetupPart::Manifests) => yaml,
        Some(SetupPart::Hosts) => snippets,
        None => {
            let mut out = yaml;
            out.push_str("\n# --- MCP host configuration (k8s-gpu-mcp setup --only hosts prints it plain) ---\n");
            for line in snippets.lines() {
                out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
            }
            out
        }
    })
}
