//! deploy/'s manifests compiled in, and what is read from them: the ClusterRoles of `rbac.yaml` as the
//! permissions each mode needs, scoped as `bindings-example.yaml` binds them (`check` reviews them, `setup`
//! prints and applies the same text).

use k8s_openapi::api::rbac::v1::ClusterRole;
use serde::Serialize;
use serde_json::Value;

use crate::config::Mode;

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
