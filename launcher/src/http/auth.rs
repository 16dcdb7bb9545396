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
use std::sync::atomic::{AtomicUsize, Ordering};

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
/// Keys past [`MAX_AGE`] still verify for this long while the issuer cannot be reached (an issuer outage
/// is not a server outage for people whose keys are known).
const SERVE_STALE_FOR: Duration = Duration::from_secs(24 * 3600);
/// At most this many tokens naming a key not in the cache wait for one fetch of the keys; more are refused.
const MAX_WAITING_FOR_KEYS: usize = 64;
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
    /// The issuer's keys as last fetched; the lock is never held across an await.
    keys: std::sync::RwLock<Option<Arc<Keys>>>,
    /// Held by the one fetch of the keys in flight.
    refresh: tokio::sync::Mutex<()>,
    /// Tokens naming an unknown key that wait for that fetch.
    waiting: AtomicUsize,
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
            keys: std::sync::RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
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
                let jwks = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{url}: no jwks_uri"))?;
                check_key_url(jwks).map_err(|e| format!("{url}: {e}"))?;
                jwks.to_string()
            }
        };
        let set: JwkSet = serde_json::from_value(self.fetch.json(&uri).await?)
            .map_err(|e| format!("{uri}: not a JWK set: {e}"))?;
        Ok(set)
    }

    /// The key for `kid`: from the cached set, fetched again when missing (rotation) or old.
    ///
    /// The cache is read under a lock never held across an await, so a fetch (up to the fetcher's timeouts)
    /// never stalls a token whose key is known. Fetches are single-flight (`refresh`); a token naming an
    /// unknown key waits for the fetch in flight, and at most [`MAX_WAITING_FOR_KEYS`] wait at once: random
    /// key ids from anyone cannot pile up behind an issuer outage. Keys older than [`MAX_AGE`] are still
    /// served while a fresh set is being fetched, and for up to [`SERVE_STALE_FOR`] while the issuer is down.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, Refused> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(k) => set.find(k).cloned(),
                // No kid: only an unambiguous set answers.
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        let not_ours = || Refused("the token's key is not among the issuer's keys".into());
        let (cached, age) = match self.cached() {
            Some(k) => (pick(&k.set), Some(k.fetched.elapsed())),
            None => (None, None),
        };
        match (cached, age) {
            (Some(j), Some(a)) if a < MAX_AGE => return Ok(j),
            (Some(j), Some(a)) => {
                // Old but known: one request refreshes, every other is served from the cache meanwhile.
                if let Ok(_flight) = self.refresh.try_lock() {
                    if self.recently_failed() {
                        return if a < SERVE_STALE_FOR {
                            Ok(j)
                        } else {
                            Err(self.unavailable())
                        };
                    }
                    return match self.fetch_and_store().await {
                        Ok(set) => pick(&set).ok_or_else(not_ours),
                        Err(_) if a < SERVE_STALE_FOR => Ok(j),
                        Err(_) => Err(self.unavailable()),
                    };
                }
                return if a < SERVE_STALE_FOR {
                    Ok(j)
                } else {
                    Err(self.unavailable())
                };
            }
            // An unknown key named again within the refetch interval: no new fetch (rotation is slower).
            (None, Some(a)) if a < REFETCH_AFTER => return Err(not_ours()),
            _ => {}
        }
        if self.recently_failed() {
            return Err(self.unavailable());
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _unwait = scopeguard_waiting(&self.waiting);
        if waiting >= MAX_WAITING_FOR_KEYS {
            return Err(Refused(
                "too many tokens wait for the issuer's keys; try again shortly".into(),
            ));
        }
        let _flight = self.refresh.lock().await;
        // The fetch this request waited for may have brought its key, or failed.
        if let Some(k) = self.cached()
            && k.fetched.elapsed() < REFETCH_AFTER
        {
            return pick(&k.set).ok_or_else(not_ours);
        }
        if self.recently_failed() {
            return Err(self.unavailable());
        }
        let set = self
            .fetch_and_store()
            .await
            .map_err(|_| self.unavailable())?;
        pick(&set).ok_or_else(not_ours)
    }

    fn cached(&self) -> Option<Arc<Keys>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn recently_failed(&self) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < RETRY_FAILED_AFTER)
    }

    fn unavailable(&self) -> Refused {
        Refused("the issuer's keys could not be fetched".into())
    }

    /// Fetch the key set (no lock held but the single-flight guard) and keep it.
    async fn fetch_and_store(&self) -> Result<JwkSet, String> {
        match self.fetch_keys().await {
            Ok(set) => {
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Keys {
                    set: set.clone(),
                    fetched: Instant::now(),
                }));
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the issuer's keys could not be fetched");
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                Err(e)
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
        // Only JSON `true` vouches for an address: a string "false" (or "true"), a missing claim or any
        // other value would let anyone who can type an unverified address act as its owner.
        if self.user_claim == "email" && claims.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(Refused(
                "the token's email is not verified (`email_verified` must be true)".into(),
            ));
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

/// A key set's URL as discovery names it: https, plain http only on a loopback address (tests), as the
/// configured `jwks_uri` must be: keys fetched in the clear could be swapped by anyone on the path.
fn check_key_url(url: &str) -> Result<(), String> {
    let u = super::config::url_parts(url).map_err(|e| format!("jwks_uri {e}"))?;
    if !u.https && !crate::cluster::clients::is_loopback_host(&u.host) {
        return Err(format!("jwks_uri {url} is not https"));
    }
    Ok(())
}

/// Counts a waiting request down when it leaves, whichever way.
fn scopeguard_waiting(n: &AtomicUsize) -> impl Drop + '_ {
    struct Unwait<'a>(&'a AtomicUsize);
    impl Drop for Unwait<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Unwait(n)
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
pub(super) mod tests {
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
            keys: std::sync::RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            waiting: AtomicUsize::new(0),
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
            .caller(&serde_json::json!({"sub": "1", "email": "alice@example.com", "email_verified": true, "groups": ["team-a"]}))
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
            // Only JSON true vouches: a string, a number or no claim at all does not.
            serde_json::json!({"email": "a@example.com", "email_verified": "false"}),
            serde_json::json!({"email": "a@example.com", "email_verified": "true"}),
            serde_json::json!({"email": "a@example.com", "email_verified": 1}),
            serde_json::json!({"email": "a@example.com"}),
            serde_json::json!({"email": "a\nb@example.com", "email_verified": true}),
        ] {
            assert!(bare.caller(&claims).is_err(), "{claims}");
        }
        // With a prefix, a `system:` claim value is just a name under the prefix.
        assert_eq!(
            v.caller(&serde_json::json!({"email": "system:admin", "email_verified": true}))
                .unwrap()
                .user,
            "oidc:system:admin"
        );
    }

    /// A loopback server that accepts connections and never answers (an issuer that hangs), counting them.
    fn hanging_issuer() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(c);
            }
        });
        (format!("http://127.0.0.1:{port}"), asked)
    }

    /// An RS256 key (openssl, as the e2e issuer makes its own) and its JWK named `kid`.
    pub(in crate::http) fn rsa_key(kid: &str) -> (jsonwebtoken::EncodingKey, Jwk) {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{out:?}");
        let enc = jsonwebtoken::EncodingKey::from_rsa_pem(&out.stdout).unwrap();
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(kid.into());
        (enc, jwk)
    }

    fn signed(enc: &jsonwebtoken::EncodingKey, kid: &str, v: &Verifier) -> String {
        let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
        h.kid = Some(kid.into());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({"iss": v.issuer, "aud": v.audience, "sub": "1",
            "exp": now + 600, "email": "alice@example.com", "email_verified": true});
        jsonwebtoken::encode(&h, &claims, enc).unwrap()
    }

    /// Random key ids while the issuer hangs: the tokens whose key is cached are answered at once (the fetch
    /// holds no lock they need), the issuer is asked once, and the unknown ids beyond the bound are refused
    /// without waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_key_ids_with_a_hanging_issuer_do_not_stall_known_keys() {
        let (base, asked) = hanging_issuer();
        let (enc, jwk) = rsa_key("k1");
        let mut v = verifier("");
        v.jwks_uri = Some(format!("{base}/keys"));
        // Known keys, fetched long enough ago that an unknown id may ask again.
        *v.keys.write().unwrap() = Some(Arc::new(Keys {
            set: JwkSet { keys: vec![jwk] },
            fetched: Instant::now() - REFETCH_AFTER - Duration::from_secs(1),
        }));
        let v = Arc::new(v);
        let good = signed(&enc, "k1", &v);
        // Signed first: RSA signing in a debug build under load is slow, and the fetch's clock runs from
        // the first unknown id.
        let unknown: Vec<String> = (0..(MAX_WAITING_FOR_KEYS + 100))
            .map(|i| signed(&enc, &format!("random-{i}"), &v))
            .collect();
        let mut flood = Vec::new();
        for t in unknown {
            let v = v.clone();
            flood.push(tokio::spawn(async move { v.verify(&t).await }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The fetch hangs for the fetcher's timeout (tens of seconds); a known key must not wait for it.
        let t0 = Instant::now();
        for _ in 0..100 {
            let c = tokio::time::timeout(Duration::from_secs(5), v.verify(&good))
                .await
                .expect("a known key waited for the issuer's fetch")
                .expect("the known key verifies");
            assert_eq!(c.user, "alice@example.com");
        }
        eprintln!(
            "100 known-key verifications during the flood: {:?}",
            t0.elapsed()
        );
        // Beyond the bound, unknown ids are refused at once instead of queueing.
        let mut refused_at_once = 0;
        for f in flood.iter_mut() {
            // (Those that waited end when the fetch times out, which a slow machine may reach.)
            if let Ok(Ok(Err(r))) = tokio::time::timeout(Duration::from_millis(1), f).await
                && r.0.contains("too many")
            {
                refused_at_once += 1;
            }
        }
        assert!(refused_at_once >= 100, "refused at once: {refused_at_once}");
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one fetch in flight"
        );
        for f in flood {
            f.abort();
        }
    }

    /// A discovery document that names its keys at a plain-http address off loopback is refused before the
    /// keys are asked for.
    #[tokio::test]
    async fn discovered_key_urls_must_be_https() {
        assert!(check_key_url("https://i.example.com/keys").is_ok());
        assert!(check_key_url("http://127.0.0.1:5556/keys").is_ok());
        assert!(check_key_url("http://i.example.com/keys").is_err());
        assert!(check_key_url("ftp://i.example.com/keys").is_err());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let b = base.clone();
        let app = axum::Router::new().route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let b = b.clone();
                async move {
                    axum::Json(serde_json::json!({"issuer": b, "jwks_uri": "http://keys.example.com/jwks"}))
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut v = verifier("");
        v.issuer = base;
        let e = v.fetch_keys().await.unwrap_err();
        assert!(e.contains("not https"), "{e}");
    }
}
