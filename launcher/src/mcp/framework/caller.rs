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
