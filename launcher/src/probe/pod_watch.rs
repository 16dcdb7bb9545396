//! One watch for all the probe pods of a many-node call, instead of one per pod: it selects the call's
//! batch label and hands each event to the waiter of that pod, matched by the pod's name and, once the
//! create answered, its UID. The label only narrows what the API server sends: anyone who may create pods
//! in the probe namespace can copy it, and such pods reach no waiter (SECURITY.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::core::Status;
use tokio::sync::watch;

use super::lifecycle::{Progress, WaitError, classify_pod};
use super::pod::PROBE_CONTAINER;

/// What the watch last said about one pod.
#[derive(Debug, Clone)]
enum Seen {
    Nothing,
    Progress(Progress),
    /// The pod went away before it ran.
    Gone,
    /// The watch cannot be had (RBAC, a missing namespace): every waiter fails with it.
    Broken(Box<Status>),
}

struct Slot {
    uid: Option<String>,
    tx: watch::Sender<Seen>,
}

#[derive(Default)]
struct Table {
    slots: HashMap<String, Slot>,
    broken: Option<Box<Status>>,
}

pub struct PodWatch {
    pods: Api<Pod>,
    selector: String,
    table: Arc<Mutex<Table>>,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl PodWatch {
    /// A watch of the pods of `pods`' namespace that `selector` (the batch label) selects; it starts with
    /// the first [`Self::subscribe`] and stops when dropped.
    pub fn new(pods: Api<Pod>, selector: String) -> Self {
        PodWatch {
            pods,
            selector,
            table: Arc::default(),
            task: OnceLock::new(),
        }
    }

    /// Wait for the pod `name`: call before its create is sent, so that no event about it is missed.
    pub fn subscribe(&self, name: &str) -> Subscription {
        self.task.get_or_init(|| {
            tokio::spawn(run(
                self.pods.clone(),
                self.selector.clone(),
                self.table.clone(),
            ))
            .abort_handle()
        });
        let mut t = lock(&self.table);
        let first = match &t.broken {
            Some(s) => Seen::Broken(s.clone()),
            None => Seen::Nothing,
        };
        let (tx, rx) = watch::channel(first);
        t.slots.insert(name.to_string(), Slot { uid: None, tx });
        Subscription {
            name: name.to_string(),
            table: self.table.clone(),
            rx,
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        if let Some(t) = self.task.get() {
            t.abort();
        }
    }
}

fn lock(t: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// One pod's waiter; dropping it stops the deliveries (events about the pod are then ignored).
pub struct Subscription {
    name: String,
    table: Arc<Mutex<Table>>,
    rx: watch::Receiver<Seen>,
}

impl Subscription {
    /// The create answered with `pod`: only events with its UID count from now on, and its state is the
    /// first one unless the watch already said more.
    pub fn created(&self, pod: &Pod) {
        let mut t = lock(&self.table);
        let Some(slot) = t.slots.get_mut(&self.name) else {
            return;
        };
        let uid = pod.metadata.uid.clone();
        if slot.uid.is_some() && slot.uid != uid {
            // An earlier pod of this name was taken for ours: forget what it said.
            slot.tx.send_replace(Seen::Nothing);
        }
        slot.uid = uid;
        if matches!(*slot.tx.borrow(), Seen::Nothing) {
            slot.tx
                .send_replace(Seen::Progress(classify_pod(pod, PROBE_CONTAINER)));
        }
    }

    /// Until the pod runs (Ok) or never will (Err). `last` keeps the latest Waiting description for the
    /// timeout message. No timeout here: callers bound it.
    pub async fn running(&mut self, last: &mut String) -> Result<(), WaitError> {
        loop {
            let seen = self.rx.borrow_and_update().clone();
            match seen {
                Seen::Progress(Progress::Running) => {
                    "Running".clone_into(last);
                    return Ok(());
                }
                Seen::Progress(Progress::Failed(r)) => return Err(WaitError::NotStarted(r)),
                Seen::Progress(Progress::Waiting(s)) => *last = s,
                Seen::Gone => {
                    return Err(WaitError::NotStarted(format!(
                        "pod {} was deleted before it started",
                        self.name
                    )));
                }
                Seen::Broken(s) => return Err(WaitError::Api(kube::Error::Api(s))),
                Seen::Nothing => {}
            }
            if self.rx.changed().await.is_err() {
                return Err(WaitError::NotStarted(
                    "the watch of the probe pods ended".into(),
                ));
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.table).slots.remove(&self.name);
    }
}

impl Table {
    /// An event about `pod`: to its waiter if there is one and the UID is the one it created.
    fn deliver(&mut self, pod: &Pod, deleted: bool) {
        let Some(name) = pod.metadata.name.as_deref() else {
            return;
        };
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        match (&slot.uid, &pod.metadata.uid) {
            (Some(ours), Some(theirs)) if ours != theirs => return,
            // Before the create answered, the pod of this name is ours: the name is random and the
            // namespace holds one pod per name.
            (None, uid) => slot.uid.clone_from(uid),
            _ => {}
        }
        slot.tx.send_replace(if deleted {
            Seen::Gone
        } else {
            Seen::Progress(classify_pod(pod, PROBE_CONTAINER))
        });
    }

    fn break_all(&mut self, s: Box<Status>) {
        for slot in self.slots.values() {
            slot.tx.send_replace(Seen::Broken(s.clone()));
        }
        self.broken = Some(s);
    }
}

/// Errors no retry mends: every waiter gets them.
fn fatal(s: &Status) -> bool {
    matches!(s.code, 401 | 403 | 404)
}

/// The watch loop: from resourceVersion 0 (the API server's cache: the current state of the selected pods,
/// then every change), resumed from the last version seen when the stream ends, relisted after 410 Gone.
async fn run(pods: Api<Pod>, selector: String, table: Arc<Mutex<Table>>) {
    let mut rv = "0".to_string();
    let mut pause = Duration::from_millis(100);
    loop {
        let wp = WatchParams::default().labels(&selector).timeout(290);
        let stream = match pods.watch(&wp, &rv).await {
            Ok(s) => s,
            Err(kube::Error::Api(s)) if fatal(&s) => {
                tracing::warn!(error = %s.message, "cannot watch the probe pods");
                lock(&table).break_all(s);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "watch of the probe pods failed; again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let mut stream = stream.boxed();
        let mut events = 0usize;
        let mut relist = false;
        loop {
            match stream.try_next().await {
                Ok(Some(ev)) => {
                    events += 1;
                    match ev {
                        WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                            rv = p.metadata.resource_version.clone().unwrap_or(rv);
                            lock(&table).deliver(&p, false);
                        }
                        WatchEvent::Deleted(p) => {
                            rv = p.metadata.resource_version.clone().unwrap_or(rv);
                            lock(&table).deliver(&p, true);
                        }
                        WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                        WatchEvent::Error(s) if s.code == 410 => {
                            relist = true;
                            break;
                        }
                        WatchEvent::Error(s) => {
                            tracing::debug!(error = %s.message, "watch of the probe pods: error event; again");
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "watch of the probe pods broke; again");
                    break;
                }
            }
        }
        if relist {
            match pods.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => {
                    let mut t = lock(&table);
                    for p in &list.items {
                        t.deliver(p, false);
                    }
                    // A created pod missing from the list was deleted meanwhile.
                    let present: Vec<&str> = list
                        .items
                        .iter()
                        .filter_map(|p| p.metadata.name.as_deref())
                        .collect();
                    for (name, slot) in &t.slots {
                        if slot.uid.is_some() && !present.contains(&name.as_str()) {
                            slot.tx.send_replace(Seen::Gone);
                        }
                    }
                    rv = list.metadata.resource_version.unwrap_or_else(|| "0".into());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "relist of the probe pods failed; again");
                    rv = "0".into();
                }
            }
        }
        if events == 0 {
            // A watch that closes at once, repeatedly, must not spin.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        } else {
            pause = Duration::from_millis(100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, PodStatus};
    use kube::api::ObjectMeta;

    fn pod(name: &str, uid: &str, state: &str) -> Pod {
        let mut cs = ContainerStatus {
            name: PROBE_CONTAINER.into(),
            ..Default::default()
        };
        let mut phase = "Pending";
        cs.state = Some(match state {
            "running" => {
                phase = "Running";
                ContainerState {
                    running: Some(Default::default()),
                    ..Default::default()
                }
            }
            _ => ContainerState {
                waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
                    reason: Some(state.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        });
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(vec![cs]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A subscription whose table the test drives directly (no API server).
    fn subscribe(table: &Arc<Mutex<Table>>, name: &str) -> Subscription {
        let (tx, rx) = watch::channel(Seen::Nothing);
        lock(table)
            .slots
            .insert(name.into(), Slot { uid: None, tx });
        Subscription {
            name: name.into(),
            table: table.clone(),
            rx,
        }
    }

    async fn outcome(s: &mut Subscription) -> Option<Result<(), String>> {
        let mut last = String::new();
        let r = tokio::time::timeout(Duration::from_millis(50), s.running(&mut last)).await;
        r.ok().map(|r| {
            r.map_err(|e| match e {
                WaitError::NotStarted(m) => m,
                WaitError::Api(e) => e.to_string(),
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn each_waiter_gets_its_own_pods_events() {
        let t = Arc::new(Mutex::new(Table::default()));
        let mut a = subscribe(&t, "gpu-probe-a-1");
        let mut b = subscribe(&t, "gpu-probe-b-2");
        a.created(&pod("gpu-probe-a-1", "uid-a", "ContainerCreating"));
        b.created(&pod("gpu-probe-b-2", "uid-b", "ContainerCreating"));
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-a", "running"), false);
        lock(&t).deliver(&pod("gpu-probe-b-2", "uid-b", "ErrImagePull"), false);
        assert_eq!(outcome(&mut a).await, Some(Ok(())));
        let err = outcome(&mut b).await.expect("b fails").unwrap_err();
        assert!(err.contains("ErrImagePull"), "{err}");
    }

    /// Pods carrying the batch label that are not the call's own (a tenant copied the label) reach no
    /// waiter: another name, or the same name with another UID.
    #[tokio::test(start_paused = true)]
    async fn pods_that_are_not_ours_are_ignored() {
        let t = Arc::new(Mutex::new(Table::default()));
        let mut a = subscribe(&t, "gpu-probe-a-1");
        a.created(&pod("gpu-probe-a-1", "uid-a", "ContainerCreating"));
        lock(&t).deliver(&pod("gpu-probe-a-1-decoy", "uid-x", "ErrImagePull"), false);
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-x", "ErrImagePull"), false);
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-x", "running"), true);
        assert_eq!(outcome(&mut a).await, None, "still waiting for its own pod");
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-a", "running"), false);
        assert_eq!(outcome(&mut a).await, Some(Ok(())));
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_before_the_create_answered_is_kept() {
        let t = Arc::new(Mutex::new(Table::default()));
        let mut a = subscribe(&t, "gpu-probe-a-1");
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-a", "running"), false);
        // The create's own answer is older than what the watch said: it does not overwrite it.
        a.created(&pod("gpu-probe-a-1", "uid-a", "ContainerCreating"));
        assert_eq!(outcome(&mut a).await, Some(Ok(())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_pod_and_a_broken_watch_end_the_wait() {
        let t = Arc::new(Mutex::new(Table::default()));
        let mut a = subscribe(&t, "gpu-probe-a-1");
        let mut b = subscribe(&t, "gpu-probe-b-2");
        a.created(&pod("gpu-probe-a-1", "uid-a", "ContainerCreating"));
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-a", "ContainerCreating"), true);
        let err = outcome(&mut a).await.expect("ends").unwrap_err();
        assert!(err.contains("deleted before it started"), "{err}");
        lock(&t).break_all(Box::new(
            Status::failure("pods is forbidden", "Forbidden").with_code(403),
        ));
        let err = outcome(&mut b).await.expect("ends").unwrap_err();
        assert!(err.contains("forbidden"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_waiter_leaves_the_table() {
        let t = Arc::new(Mutex::new(Table::default()));
        let a = subscribe(&t, "gpu-probe-a-1");
        drop(a);
        assert!(lock(&t).slots.is_empty());
        // Its pod's later events (our own delete) go nowhere.
        lock(&t).deliver(&pod("gpu-probe-a-1", "uid-a", "running"), true);
    }
}
