//! Contexts: read from the kubeconfig (a file or a KUBECONFIG-style list), checked, one client each.

use crate::cluster::ClusterError;
use crate::cluster::clients::Clients;

const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: c1
  cluster: {server: "http://127.0.0.1:9"}
users:
- name: u1
  user: {token: "t"}
contexts:
- name: prod
  context: {cluster: c1, user: u1}
- name: staging
  context: {cluster: c1, user: u1, namespace: x}
"#;

#[tokio::test]
async fn contexts_are_checked_and_clients_cached() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, KUBECONFIG).unwrap();
    let c = Clients::connect(Some(&path), None).await.unwrap();
    assert_eq!(c.default_context(), Some("prod"));
    let mut ctx = c.contexts();
    ctx.sort();
    assert_eq!(ctx, ["prod", "staging"]);
    c.get(Some("staging")).await.unwrap();
    c.get(None).await.unwrap();
    match c.get(Some("dev")).await {
        Err(ClusterError::UnknownContext { context, known }) => {
            assert_eq!(context, "dev");
            assert_eq!(known, "prod, staging");
        }
        other => panic!("expected UnknownContext, got {:?}", other.map(|_| ())),
    }
    // --context is checked at startup too
    let e = Clients::connect(Some(&path), Some("dev"))
        .await
        .err()
        .unwrap();
    assert!(e.contains("unknown kubeconfig context `dev`"), "{e}");
    // a KUBECONFIG-style list with a missing file (what --kubeconfig gets from $KUBECONFIG)
    let list = std::env::join_paths([dir.path().join("missing"), path.clone()]).unwrap();
    let c = Clients::connect(Some(std::path::Path::new(&list)), Some("staging"))
        .await
        .unwrap();
    assert_eq!(c.default_context(), Some("staging"));
    assert!(
        Clients::connect(Some(&dir.path().join("missing")), None)
            .await
            .is_err()
    );
}

#[test]
fn loopback_api_servers_are_recognised() {
    use crate::cluster::clients::is_loopback_url;
    for u in [
        "https://127.0.0.1:6443",
        "https://127.0.0.2",
        "https://[::1]:6443/",
        "https://localhost:6443",
        "https://LOCALHOST",
        "https://user@127.0.0.1:6443/path",
    ] {
        assert!(is_loopback_url(u), "{u}");
    }
    for u in [
        "https://10.0.0.1:6443",
        "https://api.prod.example.com",
        "https://localhost.example.com:6443",
        "https://[2001:db8::1]:6443",
        "https://127.0.0.1.nip.io",
        "",
    ] {
        assert!(!is_loopback_url(u), "{u}");
    }
}
