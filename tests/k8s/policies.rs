//! `check`'s policies line against scripted API servers: one older than the policy API, one that serves it
//! to a user the policies exempt. (Enforcement itself is proved on the real API server, tests/e2e/policies.rs.)

use serde_json::json;

use super::mock::{mock_client, status};
use crate::probe::kube::K8sConfig;
use crate::readiness::Status;
use crate::readiness::policies::{NAME, NOT_ENFORCED, check};

#[tokio::test]
async fn an_api_server_without_the_policy_api_is_named_with_what_is_not_enforced() {
    // Kubernetes 1.29 and older: the group version serves no validatingadmissionpolicies (v1 has only the
    // webhook configurations there; the policies were beta under v1beta1).
    for answer in [
        (404, status(404, "NotFound", "the server could not find the requested resource")),
        (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "admissionregistration.k8s.io/v1",
                   "resources": [{"name": "validatingwebhookconfigurations", "singularName": "", "namespaced": false,
                                  "kind": "ValidatingWebhookConfiguration", "verbs": ["get"]}]})
            .to_string(),
        ),
    ] {
        let (client, log) = mock_client(move |_| answer.clone());
        let c = check(&client, &K8sConfig::default(), Some("gpu-1")).await;
        assert_eq!((c.name.as_str(), c.status), (NAME, Status::Warn), "{c:?}");
        let detail = &c.detail;
        assert!(detail.contains("has no ValidatingAdmissionPolicy"), "{c:?}");
        assert!(detail.ends_with(NOT_ENFORCED), "{c:?}");
        assert!(!detail.contains('\n'), "one line: {c:?}");
        // Nothing but the discovery was asked.
        assert_eq!(log.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_user_who_may_delete_the_bindings_is_told_they_are_exempt() {
    let (client, log) = mock_client(|r| {
        match r.path.as_str() {
        "/apis/admissionregistration.k8s.io/v1" => (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "admissionregistration.k8s.io/v1",
                   "resources": [{"name": "validatingadmissionpolicies", "singularName": "", "namespaced": false,
                                  "kind": "ValidatingAdmissionPolicy", "verbs": ["get"]}]})
            .to_string(),
        ),
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => (
            201,
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "spec": {}, "status": {"allowed": true}})
            .to_string(),
        ),
        _ => (500, status(500, "InternalError", "unexpected")),
    }
    });
    let c = check(&client, &K8sConfig::default(), None).await;
    assert_eq!((c.name.as_str(), c.status), (NAME, Status::Ok), "{c:?}");
    let detail = &c.detail;
    assert!(detail.contains("exempt"), "{c:?}");
    let log = log.lock().unwrap();
    assert!(
        log[1].body.contains("validatingadmissionpolicybindings"),
        "{:?}",
        log[1]
    );
    assert!(log[1].body.contains("\"delete\""), "{:?}", log[1]);
}
