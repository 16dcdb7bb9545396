//! The ResourceSlices of the nodes asked about lately, kept current by one watch per node: a node's first
//! call lists its slices (as before) and starts a watch from that list's resourceVersion; its next calls read
//! what the watch keeps instead of listing again. A ResourceSlice changes when its DRA driver republishes
//! (a device taint, a device gone), which the watch delivers as it happens; the node's conditions and pods,
//! which change with every workload, are still read on each call.
//!
//! Bounded: at most [`MAX_WATCHED`] nodes per identity, each watch ending after [`IDLE`] without a call
//! (nothing stays open for a node no one asks about) or on any error, after which the next call lists
//! again. One call's API requests are then the node read, the pod list, and the probe's create, exec
//! and delete (docs/performance.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use serde_json::Value;

/// Nodes whose slices one identity keeps watched; past this a call lists as before.
pub const MAX_WATCHED: usize = 64;
/// A node's watch ends this long after its last call.
pub const IDLE: Duration = Duration::from_secs(300);
/// The API server ends a watch after this long; it is then resumed from the last version seen.
const WATCH_SECS: u32 = 290;
/// Slices kept per node (a DRA driver publishes a few per node; a hostile flood costs bounded memory).
const MAX_SLICES: usize = 256;

struct Watched {
    version: &'static str,
    /// The node's slices by name; None once the watch has ended (the entry is then replaced).
    slices: Mutex<Option<BTreeMap<String, Value>>>,
    last_used: Mutex<Instant>,
}

impl Watched {
    fn live(&self) -> bool {
        self.slices.lock().expect("slices").is_some()
    }
}

#[derive(Default)]
pub struct SliceWatches {
    /// (context, node) -> its watch.
    nodes: Mutex<HashMap<(String, String), Arc<Watched>>>,
    /// Context -> when a watch was refused (RBAC without `watch`): no watch is tried for [`IDLE`] after,
    /// so each call is its one list, not a list and a refused watch.
    refused: Arc<Mutex<HashMap<String, Instant>>>,
}

impl SliceWatches {
    /// The slices of `node` as its live watch of `version` has them, or None (no watch yet, or it ended).
    pub fn cached(
        &self,
        context: Option<&str>,
        node: &str,
        version: &'static str,
    ) -> Option<Vec<Value>> {
        let key = (context.unwrap_or_default().to_string(), node.to_string());
        let w = self
            .nodes
            .lock()
            .expect("slice watches")
            .get(&key)
            .cloned()?;
        if w.version != version {
            return None;
        }
        let slices = w
            .slices
            .lock()
            .expect("slices")
            .as_ref()?
            .values()
            .cloned()
            .collect();
        *w.last_used.lock().expect("last used") = Instant::now();
        Some(slices)
    }

    /// Keep `node`'s slices, just listed at `resource_version`, current with a watch from there (unless as
    /// many nodes are watched already).
    pub fn start(
        &self,
        context: Option<&str>,
        node: &str,
        version: &'static str,
        api: Api<DynamicObject>,
        resource_version: String,
        listed: Vec<Value>,
    ) {
        let key = (context.unwrap_or_default().to_string(), node.to_string());
        if self
            .refused
            .lock()
            .expect("refused watches")
            .get(&key.0)
            .is_some_and(|t| t.elapsed() < IDLE)
        {
            return;
        }
        let refused = self.refused.clone();
        let ctx = key.0.clone();
        let w = {
            let mut m = self.nodes.lock().expect("slice watches");
            m.retain(|_, w| w.live());
            if m.get(&key).is_some_and(|w| w.version == version) || m.len() >= MAX_WATCHED {
                return;
            }
            let slices: BTreeMap<String, Value> = listed
                .into_iter()
                .filter_map(|v| Some((name(&v)?, v)))
                .take(MAX_SLICES)
                .collect();
            let w = Arc::new(Watched {
                version,
                slices: Mutex::new(Some(slices)),
                last_used: Mutex::new(Instant::now()),
            });
            m.insert(key, w.clone());
            w
        };
        let node = node.to_string();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let why = follow(&w, &api, &node, resource_version).await;
                    match why {
                        Ended::Refused(e) => {
                            refused.lock().expect("refused watches").insert(ctx, Instant::now());
                            tracing::info!(%node, "ResourceSlice watch refused ({e}): each call lists the node's slices (grant `watch` on resourceslices, deploy/rbac.yaml)");
                        }
                        Ended::Other(why) => tracing::debug!(%node, "ResourceSlice watch ended: {why}"),
                    }
                    *w.slices.lock().expect("slices") = None;
                });
            }
            Err(_) => *w.slices.lock().expect("slices") = None,
        }
    }
}

fn name(v: &Value) -> Option<String> {
    v.pointer("/metadata/name")?.as_str().map(str::to_string)
}

/// Why a watch ended.
#[derive(Debug)]
enum Ended {
    /// The API server refused it (403: RBAC without `watch`).
    Refused(String),
    Other(String),
}

/// Apply the watch's events to `w` until it fails, the node goes idle, or the slices outgrow the bound.
async fn follow(w: &Watched, api: &Api<DynamicObject>, node: &str, mut rv: String) -> Ended {
    let wp = WatchParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .timeout(WATCH_SECS);
    loop {
        let stream = match api.watch(&wp, &rv).await {
            Ok(s) => s,
            Err(kube::Error::Api(s)) if s.code == 403 => return Ended::Refused(s.message),
            Err(e) => return Ended::Other(format!("watch refused: {e}")),
        };
        futures::pin_mut!(stream);
        loop {
            let idle = IDLE.saturating_sub(w.last_used.lock().expect("last used").elapsed());
            if idle.is_zero() {
                return Ended::Other(format!("no call for {} s", IDLE.as_secs()));
            }
            let ev = match tokio::time::timeout(idle, stream.try_next()).await {
                Err(_) => continue,
                Ok(Err(e)) => return Ended::Other(format!("watch failed: {e}")),
                // The server ended this watch (its timeout): resume from the last version seen.
                Ok(Ok(None)) => break,
                Ok(Ok(Some(ev))) => ev,
            };
            let mut slices = w.slices.lock().expect("slices");
            let Some(map) = slices.as_mut() else {
                return Ended::Other("dropped".into());
            };
            match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    if let Some(v) = o.metadata.resource_version.clone() {
                        rv = v;
                    }
                    let Ok(v) = serde_json::to_value(&o) else {
                        continue;
                    };
                    let Some(n) = name(&v) else { continue };
                    if !map.contains_key(&n) && map.len() >= MAX_SLICES {
                        return Ended::Other(format!("more than {MAX_SLICES} slices on the node"));
                    }
                    map.insert(n, v);
                }
                WatchEvent::Deleted(o) => {
                    if let Some(v) = o.metadata.resource_version.clone() {
                        rv = v;
                    }
                    if let Some(n) = o.metadata.name.as_deref() {
                        map.remove(n);
                    }
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                // 410 Gone and the like: what was missed cannot be known; the next call lists again.
                WatchEvent::Error(e) => {
                    return Ended::Other(format!("watch error {}: {}", e.code, e.message));
                }
            }
        }
    }
}
