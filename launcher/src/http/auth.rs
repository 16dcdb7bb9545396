//! Who calls: the access token of every HTTP request, checked as the MCP authorization specification asks
//! of a resource server (2025-11-25 and 2026-07-28, ../shared/reference/mcp-auth.md section 2): signed by
//! one of the issuer's keys (asymmetric algorithms only), issued by the configured issuer, for this
//! server's audience, not expired. The token is never passed on: Kubernetes sees the server's own identity
//! acting for the person ([`crate::cluster::clients::Impersonate`]).
//!
//! A token that fails gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"` (where the client
//! finds the issuer) and reaches nothing behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tokio::sync::RwLock;

use super::config::HttpConfig;
use super::fetch::Fetcher;

pub use crate::mcp::framework::caller::Caller;

/// Why a token was refused, in words for the `error_description` (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Keys are fetched again at most this often when a token names a key not in the set (key rotation).
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// And in any case after this long.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// A token's times may be off by this much (clock skew between the issuer and this server).
const LEEWAY_SECS: u64 = 30;
/// Tokens longer than this are not parsed.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

pub struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: Option<String>,
    user_claim: String,
    user_prefix: String,
    groups_claim: String,
    groups_prefix: String,
    fetch: Fetcher,
    keys: RwLock<Option<Keys>>,
    /// When the last fetch of the keys failed: requests within [`RETRY_FAILED_AFTER`] are refused without
    /// asking the issuer again (a flood of tokens while the issuer is down does not become a flood there).
    failed: std::sync::Mutex<Option<Instant>>,
}

const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

/// Algorithms a token may be signed with: public-key ones only, so a key set's public key can never be
/// used as an HMAC secret (the classic algorithm-confusion forgery), and never `none`.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Verifier {
    pub fn new(cfg: &HttpConfig) -> Result<Arc<Verifier>, String> {
        Ok(Arc::new(Verifier {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience().to_string(),
            jwks_uri: cfg.jwks_uri.clone(),
            user_claim: cfg.user_claim.clone(),
            user_prefix: cfg.user_prefix.clone(),
            groups_claim: cfg.groups_claim.clone(),
            groups_prefix: cfg.groups_prefix.clone(),
            fetch: Fetcher::new(cfg.issuer_ca_file.as_deref())?,
            keys: RwLock::new(None),
            failed: std::sync::Mutex::new(None),
        }))
    }

    /// The issuer's key set: `jwks_uri`, else from its discovery document (whose `issuer` must be ours).
    async fn fetch_keys(&self) -> Result<JwkSet, String> {
        let uri = match &self.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.trim_end_matches('/')
                );
                let doc: Value = self.fetch.json(&url).await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                    return Err(format!(
                        "{url}: its issuer is not {} (OpenID discovery requires them equal)",
                        self.issuer
                    ));
                }
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?
                    .to_string()
            }
        };
        let set: JwkSet = serde_json::from_value(self.fetch.json(&uri).await?)
            .map_err(|e| format!("{uri}: not a JWK set: {e}"))?;
        Ok(set)
    }

    /// The key for `kid`: from the cached set, fetched again when missing (rotation) or old.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, Refused> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(k) => set.find(k).cloned(),
                // No kid: only an unambiguous set answers.
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        {
            let keys = self.keys.read().await;
            if let Some(k) = keys.as_ref() {
                let fresh = k.fetched.elapsed() < MAX_AGE;
                if fresh && let Some(j) = pick(&k.set) {
                    return Ok(j);
                }
                if fresh && k.fetched.elapsed() < REFETCH_AFTER {
                    return Err(Refused(
                        "the token's key is not among the issuer's keys".into(),
                    ));
                }
            }
        }
        let recently_failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < RETRY_FAILED_AFTER);
        if recently_failed {
            return Err(Refused("the issuer's keys could not be fetched".into()));
        }
        let mut keys = self.keys.write().await;
        // Another request may have fetched meanwhile.
        if let Some(k) = keys.as_ref()
            && k.fetched.elapsed() < REFETCH_AFTER
        {
            return pick(&k.set)
                .ok_or_else(|| Refused("the token's key is not among the issuer's keys".into()));
        }
        match self.fetch_keys().await {
            Ok(set) => {
                let j = pick(&set);
                *keys = Some(Keys {
                    set,
                    fetched: Instant::now(),
                });
                j.ok_or_else(|| Refused("the token's key is not among the issuer's keys".into()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the issuer's keys could not be fetched");
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Err(Refused("the issuer's keys could not be fetched".into()))
            }
        }
    }

    /// Check `token` and say whom it names.
    pub async fn verify(&self, token: &str) -> Result<Caller, Refused> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refused("the token is too long".into()));
        }
        let header = decode_header(token).map_err(|_| Refused("not a signed JWT".into()))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(Refused(format!(
                "tokens signed with {:?} are not taken (public-key signatures only)",
                header.alg
            )));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if let Some(ka) = jwk.common.key_algorithm
            && format!("{ka:?}") != format!("{:?}", header.alg)
        {
            return Err(Refused("the token's algorithm is not its key's".into()));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| Refused("unusable key".into()))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let data = decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Refused(
                match e.kind() {
                    K::ExpiredSignature => "the token has expired",
                    K::InvalidAudience => "the token is not for this server (audience)",
                    K::InvalidIssuer => "the token is from another issuer",
                    K::ImmatureSignature => "the token is not valid yet",
                    K::InvalidSignature => "the token's signature does not verify",
                    K::MissingRequiredClaim(_) => "the token lacks exp, iss, aud or sub",
                    _ => "the token could not be verified",
                }
                .into(),
            )
        })?;
        self.caller(&data.claims)
    }

    /// The person a verified token's claims name.
    pub fn caller(&self, claims: &Value) -> Result<Caller, Refused> {
        let name = claims
            .get(&self.user_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Refused(format!(
                    "the token has no `{}` claim naming the person",
                    self.user_claim
                ))
            })?;
        if self.user_claim == "email" && claims.get("email_verified") == Some(&Value::Bool(false)) {
            return Err(Refused("the token's email is not verified".into()));
        }
        let user = format!("{}{name}", self.user_prefix);
        check_name(&user, "user")?;
        let mut groups = Vec::new();
        match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.len() <= 256 => {
                for g in a {
                    let g = g
                        .as_str()
                        .ok_or_else(|| Refused("a group that is not a string".into()))?;
                    let g = format!("{}{g}", self.groups_prefix);
                    check_name(&g, "group")?;
                    groups.push(g);
                }
            }
            Some(_) => return Err(Refused("groups must be a list of at most 256 names".into())),
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect();
        Ok(Caller {
            user,
            groups,
            subject,
        })
    }
}

/// A name the API server will be asked to act for: not one of Kubernetes' own (`system:` users and groups,
/// a service account, a node), bounded, printable.
fn check_name(name: &str, what: &str) -> Result<(), Refused> {
    if name.len() > 256 || name.chars().any(char::is_control) {
        return Err(Refused(format!("the {what} name is not acceptable")));
    }
    if name.starts_with("system:") {
        return Err(Refused(format!(
            "the {what} `{}` is one of Kubernetes' own names; a person cannot act as it",
            name.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(prefix: &str) -> Verifier {
        Verifier {
            issuer: "https://i.example.com".into(),
            audience: "https://m.example.com/mcp".into(),
            jwks_uri: None,
            user_claim: "email".into(),
            user_prefix: prefix.into(),
            groups_claim: "groups".into(),
            groups_prefix: prefix.into(),
            fetch: Fetcher::new(None).unwrap(),
            keys: RwLock::new(None),
            failed: std::sync::Mutex::new(None),
        }
    }

    /// An issuer that answers nothing usable is asked once, not once per request, within the retry window.
    #[tokio::test]
    async fn a_failing_issuer_is_not_asked_for_every_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        // Each connection is counted and closed at once: the fetch fails.
        std::thread::spawn(move || {
            for c in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(c);
            }
        });
        let mut v = verifier("");
        v.jwks_uri = Some(format!("http://127.0.0.1:{port}/keys"));
        let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln";
        for _ in 0..50 {
            assert!(v.verify(token).await.is_err());
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn the_claims_name_a_person_never_a_system_identity() {
        let v = verifier("oidc:");
        let c = v
            .caller(&serde_json::json!({"sub": "1", "email": "alice@example.com", "groups": ["team-a"]}))
            .unwrap();
        assert_eq!(c.user, "oidc:alice@example.com");
        assert_eq!(c.groups, ["oidc:team-a"]);
        let bare = verifier("");
        for claims in [
            serde_json::json!({"email": "system:admin"}),
            serde_json::json!({"email": "a@example.com", "groups": ["system:masters"]}),
            serde_json::json!({"email": "a@example.com", "groups": "team-a"}),
            serde_json::json!({"email": "a@example.com", "groups": [1]}),
            serde_json::json!({"email": ""}),
            serde_json::json!({"name": "alice"}),
            serde_json::json!({"email": "a@example.com", "email_verified": false}),
            serde_json::json!({"email": "a\nb@example.com"}),
        ] {
            assert!(bare.caller(&claims).is_err(), "{claims}");
        }
        // With a prefix, a `system:` claim value is just a name under the prefix.
        assert_eq!(
            v.caller(&serde_json::json!({"email": "system:admin"}))
                .unwrap()
                .user,
            "oidc:system:admin"
        );
    }
}
