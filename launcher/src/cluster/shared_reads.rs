//! What one call's parts would otherwise each ask the API server: a node read in flight is shared by
//! whoever asks for the same node meanwhile (the probe's readiness check and the tool's platform join start
//! together), and the version of `resource.k8s.io` the API server serves is asked once per context.
//!
//! Both live in [`super::clients::Clients`], which acts for one identity (a person on the team server has
//! their own), so nothing read under one person's rights is handed to another. Only a read in flight is
//! shared: the next call reads the node afresh. A node's ResourceSlices are kept by a watch
//! ([`super::slice_watch`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::Api;

type NodeRead = Shared<BoxFuture<'static, Option<Option<Arc<Node>>>>>;

#[derive(Default)]
pub struct SharedReads {
    nodes: Mutex<HashMap<(String, String), NodeRead>>,
    /// Context ("" for the default) -> the version read, or why none is served.
    dra: Mutex<HashMap<String, Result<&'static str, String>>>,
    /// The ResourceSlices of nodes asked about lately, kept by their watches.
    pub slices: super::slice_watch::SliceWatches,
}

/// Takes the read out of the map when its starter is done with it (or dropped), if it is still the one there.
struct InFlight<'a> {
    reads: &'a SharedReads,
    key: (String, String),
    read: NodeRead,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut m = self.reads.nodes.lock().expect("node reads");
        if m.get(&self.key).is_some_and(|r| r.ptr_eq(&self.read)) {
            m.remove(&self.key);
        }
    }
}

impl SharedReads {
    /// GET node `name` through `client`, joining a read of the same node already in flight. A failed
    /// shared read is not handed on: each caller then reads for itself and sees its own error.
    pub async fn node(
        &self,
        context: Option<&str>,
        client: &Client,
        name: &str,
    ) -> Result<Option<Node>, kube::Error> {
        let key = (context.unwrap_or_default().to_string(), name.to_string());
        let (read, _starter) = {
            let mut m = self.nodes.lock().expect("node reads");
            match m.get(&key) {
                Some(r) => (r.clone(), None),
                None => {
                    let api: Api<Node> = Api::all(client.clone());
                    let n = name.to_string();
                    let r: NodeRead =
                        async move { api.get_opt(&n).await.ok().map(|o| o.map(Arc::new)) }
                            .boxed()
                            .shared();
                    m.insert(key.clone(), r.clone());
                    let guard = InFlight {
                        reads: self,
                        key,
                        read: r.clone(),
                    };
                    (r, Some(guard))
                }
            }
        };
        match read.await {
            Some(n) => Ok(n.map(Arc::unwrap_or_clone)),
            None => Api::<Node>::all(client.clone()).get_opt(name).await,
        }
    }

    /// The DRA version known for `context`, if asked before.
    pub fn dra_version(&self, context: Option<&str>) -> Option<Result<&'static str, String>> {
        self.dra
            .lock()
            .expect("dra versions")
            .get(context.unwrap_or_default())
            .cloned()
    }

    /// Keep what discovery said: a version, or that the group is not served. Failures of the request itself
    /// are not kept (the caller does not pass them).
    pub fn set_dra_version(&self, context: Option<&str>, v: Result<&'static str, String>) {
        self.dra
            .lock()
            .expect("dra versions")
            .insert(context.unwrap_or_default().to_string(), v);
    }

    /// The API server answered a DRA request with 404: the group changed (an upgrade, DRA turned on or
    /// off); the next call asks discovery again.
    pub fn forget_dra_version(&self, context: Option<&str>) {
        self.dra
            .lock()
            .expect("dra versions")
            .remove(context.unwrap_or_default());
    }
}
