//! The people of a shared server (`serve --http`, crate::http): one environment per person:
//! the runner and the cluster backend whose every Kubernetes request (nodes, pods, probe pods, execs, events)
//! carries the person's identity through impersonation, and the person's own report resources. Made on a
//! person's first call and kept (bounded); the server's own environment (its kubeconfig identity) is never
//! handed to a call.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tokio::sync::{Mutex, OnceCell};

use super::Env;
use super::caller::{Caller, caller_of};
use crate::config::Config;

/// People whose environments are kept at once; past it the least recently used idle one goes.
const MAX_PEOPLE: usize = 512;

/// One person's environment, made once by their first call (concurrent first calls share the making).
struct Slot {
    env: Arc<OnceCell<Arc<Env>>>,
    used: std::time::Instant,
}

pub struct CallerEnvs {
    cfg: Config,
    /// Held only to find or add a person's slot, never while their clients are made: one person's first
    /// call does not hold up another person's calls.
    envs: Mutex<HashMap<Caller, Slot>>,
    /// Environments dropped from the map that a call still uses: shut down and dropped once none does
    /// (each time one more retires), the rest at exit.
    retired: Mutex<Vec<Arc<Env>>>,
    /// The shutdowns of retired environments that no call used any more, awaited at exit.
    closing: tokio_util::task::TaskTracker,
    /// Every person's report resources: bounded per person and in all.
    reports: Arc<super::reports::Pool>,
    /// Every person's node readings: bounded per person and in all; one person's never serves another.
    readings: Arc<super::readings::Pool>,
}

impl CallerEnvs {
    pub fn new(cfg: Config) -> Self {
        CallerEnvs {
            readings: super::readings::Pool::new(
                cfg.reading_max_age,
                super::readings::PER_PERSON,
                super::readings::IN_ALL,
            ),
            cfg,
            envs: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
            closing: tokio_util::task::TaskTracker::new(),
            reports: super::reports::Pool::new(super::reports::PER_PERSON, super::reports::IN_ALL),
        }
    }

    /// Retire `env` (its person's slot went): once no call holds it, its runner is shut down (its probe
    /// pods' deletions awaited) and it is dropped, with its clients and connections; those a call still
    /// holds wait for a later retirement or the exit.
    async fn retire(&self, env: Arc<Env>) {
        let mut retired = self.retired.lock().await;
        retired.push(env);
        retired.retain(|e| {
            // Held by this list alone: no call uses it and none can reach it any more.
            if Arc::strong_count(e) > 1 {
                return true;
            }
            let e = e.clone();
            self.closing.spawn(async move { e.runner.shutdown().await });
            false
        });
    }

    /// The environment of `ctx`'s caller. A request without one never gets the server's identity.
    pub async fn env_for(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<Env>, ErrorData> {
        let Some(caller) = caller_of(ctx) else {
            return Err(ErrorData::invalid_request(
                "this server acts only for an authenticated person, and this request names none",
                None,
            ));
        };
        let cell = {
            let mut envs = self.envs.lock().await;
            if let Some(slot) = envs.get_mut(&caller) {
                slot.used = std::time::Instant::now();
                slot.env.clone()
            } else {
                let oldest = (envs.len() >= MAX_PEOPLE)
                    .then(|| {
                        envs.iter()
                            .min_by_key(|(_, s)| s.used)
                            .map(|(c, _)| c.clone())
                    })
                    .flatten();
                // The slot (and its cell's hold on the environment) goes here, so that only calls still
                // running hold it once retired.
                let gone = oldest
                    .and_then(|c| envs.remove(&c))
                    .and_then(|slot| slot.env.get().cloned());
                if let Some(e) = gone {
                    self.retire(e).await;
                }
                let cell = Arc::new(OnceCell::new());
                envs.insert(
                    caller.clone(),
                    Slot {
                        env: cell.clone(),
                        used: std::time::Instant::now(),
                    },
                );
                cell
            }
        };
        cell.get_or_try_init(|| self.connect(&caller))
            .await
            .cloned()
    }

    /// A person's environment: every Kubernetes request as them.
    async fn connect(&self, caller: &Caller) -> Result<Arc<Env>, ErrorData> {
        let mut k8s = self.cfg.k8s_config();
        k8s.impersonate = Some(caller.impersonate());
        // The server's own sweep of leftover probe pods runs once, as itself, not per person.
        k8s.startup_sweep = false;
        let (runner, cluster) = crate::probe::kube::connect(&k8s).await.map_err(|e| {
            ErrorData::internal_error(
                format!("cannot reach the cluster for {}: {e}", caller.user),
                None,
            )
        })?;
        tracing::info!(user = %caller.user, groups = ?caller.groups, "a person's first call: acting as them");
        Ok(Arc::new(Env {
            cfg: self.cfg.clone(),
            runner,
            cluster: Some(cluster),
            reports: self.reports.store(&caller.user),
            // Keyed by everything the reading was made as: the user and their groups (a user's rights
            // change with the groups a token names).
            readings: self.readings.store(&caller.identity_key()),
        }))
    }

    /// The server stops: every person's runner cleans up (probe pods deleted) before exit.
    pub async fn shutdown(&self) {
        let mut all: Vec<Arc<Env>> = self
            .envs
            .lock()
            .await
            .drain()
            .filter_map(|(_, s)| s.env.get().cloned())
            .collect();
        all.append(&mut *self.retired.lock().await);
        for e in all {
            e.runner.shutdown().await;
        }
        self.closing.close();
        self.closing.wait().await;
    }
}

/// Tool calls one person may have running at once (`limits.calls_per_person`), counted by the calls
/// themselves: a slot is taken before the tool's handler runs and goes with the handler's future, when it
/// completes or is dropped. The HTTP gate's own slot ends with the response's stream, but rmcp runs a
/// handler on whose stream the client hung up to its end (it is not cancelled): held only by the stream, a
/// client that posts, hangs up and posts again would start any number of calls (and their privileged
/// probe pods) at once.
pub struct CallSlots {
    per_person: usize,
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// A running call's slot: held by the call's handler, freed when it ends or is dropped.
pub type CallSlot = tokio::sync::OwnedSemaphorePermit;

impl CallSlots {
    pub fn new(per_person: usize) -> Arc<CallSlots> {
        Arc::new(CallSlots {
            per_person: per_person.max(1),
            slots: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A slot of `user`'s, or the refusal that says their limit was hit and by how many calls.
    pub fn take(&self, user: &str) -> Result<CallSlot, ErrorData> {
        let sem = {
            let mut m = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded: people with no call running hold no slot, so their entries can go.
            if m.len() > 4096 {
                m.retain(|_, s| s.available_permits() < self.per_person);
            }
            m.entry(user.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_person)))
                .clone()
        };
        sem.try_acquire_owned().map_err(|_| {
            ErrorData::new(
                rmcp::model::ErrorCode(super::tasks::TOO_MANY_TASKS),
                format!(
                    "{n} tool calls of yours are running (at most {n} per person: limits.calls_per_person); \
                     a call runs to its end even when its client hung up, so a dropped connection frees no \
                     slot; wait for one to finish, then call again",
                    n = self.per_person
                ),
                None,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use clap::Parser;

    use super::*;
    use crate::probe::runner::{ProgressSink, RunError, RunFuture, Runner};

    /// A runner that only counts its shutdowns.
    struct Counted(Arc<AtomicUsize>);

    impl Runner for Counted {
        fn run<'a>(
            &'a self,
            _req: crate::probe::runner::ProbeRequest,
            _progress: ProgressSink,
            _cancel: tokio_util::sync::CancellationToken,
        ) -> RunFuture<'a> {
            Box::pin(async { Err(RunError::Other("not run in this test".into())) })
        }
        fn shutdown<'a>(
            &'a self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {})
        }
    }

    /// A retired environment that no call holds is shut down and dropped when the next one retires; one a
    /// call still holds stays (its runner's cleanup still to come) until the call lets go of it.
    #[tokio::test]
    async fn retired_environments_are_freed_once_no_call_holds_them() {
        let cli = crate::cli::Cli::try_parse_from(["k8s-gpu-mcp", "--local", "serve"]).unwrap();
        let people = CallerEnvs::new(cli.global.config().unwrap());
        let shut = Arc::new(AtomicUsize::new(0));
        let env = || {
            Arc::new(Env {
                cfg: people.cfg.clone(),
                runner: Arc::new(Counted(shut.clone())),
                cluster: None,
                reports: Default::default(),
                readings: crate::mcp::framework::readings::ReadingStore::new(
                    std::time::Duration::ZERO,
                ),
            })
        };
        let (idle, held) = (env(), env());
        let freed = Arc::downgrade(&idle);
        let call = held.clone();
        people.retire(idle).await;
        people.retire(held).await;
        people.closing.close();
        people.closing.wait().await;
        assert_eq!(
            shut.load(Ordering::SeqCst),
            1,
            "the idle one's runner shut down"
        );
        assert!(freed.upgrade().is_none(), "the idle one was dropped");
        assert_eq!(people.retired.lock().await.len(), 1, "the held one stays");
        drop(call);
        people.shutdown().await;
        assert_eq!(
            shut.load(Ordering::SeqCst),
            2,
            "the held one shut down at exit"
        );
        assert!(people.retired.lock().await.is_empty());
    }
}
