//! An OpenID issuer of a test's own: an RSA key made for the run, the discovery document and key set on a
//! loopback port, RS256 access tokens with any claims (tests/e2e/http.rs, tests/e2e/replicas.rs, the
//! real-node team server case).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, jwk::Jwk};
use serde_json::{Value, json};

/// An RSA key made for this run (openssl), as the issuer's signing key and its JWK.
pub struct Key {
    enc: EncodingKey,
    pub jwk: Jwk,
}

pub fn rsa_key(kid: &str) -> Key {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl genpkey");
    assert!(out.status.success(), "openssl: {out:?}");
    let enc = EncodingKey::from_rsa_pem(&out.stdout).expect("RSA PEM");
    let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::RS256).expect("JWK");
    jwk.common.key_id = Some(kid.into());
    Key { enc, jwk }
}

/// The test's issuer: `/.well-known/openid-configuration` and `/jwks` on a loopback port.
pub async fn issuer(keys: Vec<Jwk>) -> String {
    issuer_that_may_hang(keys, Default::default()).await
}

/// [`issuer`] whose key set hangs for a minute per request while `hang` is set: an issuer down or slow.
pub async fn issuer_that_may_hang(
    keys: Vec<Jwk>,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let b = b.clone();
                async move { axum::Json(json!({"issuer": b, "jwks_uri": format!("{b}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let keys = keys.clone();
                let hang = hang.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    if hang {
                        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    }
                    axum::Json(json!({ "keys": keys }))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn token(key: &Key, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = key.jwk.common.key_id.clone();
    encode(&h, &claims, &key.enc).expect("sign")
}

/// [`token`] under another key id than the key's own (a key the issuer never published).
#[allow(dead_code)]
pub fn token_with_kid(key: &Key, kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    encode(&h, &claims, &key.enc).expect("sign")
}
