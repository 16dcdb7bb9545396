//! Who a request acts for on a shared server (`serve --http`, crate::http): the HTTP gate puts the
//! [`Caller`] in the request's extensions once its token is checked; over stdio there is none.

use rmcp::RoleServer;
use rmcp::service::RequestContext;

/// The person a request acts for: their Kubernetes user and groups (the token's claims with the configured
/// prefixes), and the token's subject for the logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user: String,
    pub groups: Vec<String>,
    pub subject: String,
}

impl Caller {
    /// The identity a request's Kubernetes reads are made as (user and groups, as impersonated), one
    /// string: what a reading made with this person's rights is kept under.
    pub fn identity_key(&self) -> String {
        let mut groups = self.groups.clone();
        groups.sort();
        // NUL appears in no Kubernetes user or group name: no two identities write the same key.
        format!("{}\0{}", self.user, groups.join("\0"))
    }

    pub fn impersonate(&self) -> crate::cluster::clients::Impersonate {
        crate::cluster::clients::Impersonate {
            user: self.user.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// The caller of a request that came over HTTP (the gate put it in the request's extensions).
pub fn caller_of(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<Caller>()
        .cloned()
}

/// Over HTTP with several replicas: the request names a task of another replica that could not be asked
/// (stopped, stopping, not ready); the gate says which and why, and the answer tells the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    pub replica: String,
    pub why: String,
}

pub fn elsewhere_of(ctx: &RequestContext<RoleServer>) -> Option<Elsewhere> {
    ctx.extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<Elsewhere>()
        .cloned()
}

/// The replica an id names (`{pod}.{id}`: a pod's name may hold dots, the id after the last one does not),
/// and the id within it.
pub fn split_replica(id: &str) -> Option<(&str, &str)> {
    let (replica, inner) = id.rsplit_once('.')?;
    let pod_name = !replica.is_empty()
        && replica.len() <= 253
        && replica
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && replica.as_bytes()[0].is_ascii_alphanumeric();
    (pod_name && !inner.is_empty()).then_some((replica, inner))
}

#[cfg(test)]
mod identity_tests {
    use super::Caller;

    fn caller(user: &str, groups: &[&str]) -> Caller {
        Caller {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            subject: "sub".into(),
        }
    }

    /// A reading is kept under the identity it was made as: another user, or the same user with other
    /// groups (other rights), is another key; the groups' order and the token's subject are not.
    #[test]
    fn identity_key_is_user_and_groups() {
        let alice = caller("oidc:alice", &["oidc:sre", "system:authenticated"]);
        assert_eq!(
            alice.identity_key(),
            caller("oidc:alice", &["system:authenticated", "oidc:sre"]).identity_key()
        );
        assert_ne!(
            alice.identity_key(),
            caller("oidc:alice", &["system:authenticated"]).identity_key()
        );
        assert_ne!(
            alice.identity_key(),
            caller("oidc:bob", &["oidc:sre", "system:authenticated"]).identity_key()
        );
        // No user/group split makes two identities one key.
        assert_ne!(
            caller("a", &["b"]).identity_key(),
            caller("a\0b", &[]).identity_key()
        );
    }
}
