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
    /// Environments dropped from the map, whose runners still need their shutdown at exit.
    retired: Mutex<Vec<Arc<Env>>>,
}

impl CallerEnvs {
    pub fn new(cfg: Config) -> Self {
        CallerEnvs {
            cfg,
            envs: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
        }
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
                if envs.len() >= MAX_PEOPLE
                    && let Some(oldest) = envs
                        .iter()
                        .min_by_key(|(_, s)| s.used)
                        .map(|(c, _)| c.clone())
                    && let Some(slot) = envs.remove(&oldest)
                    && let Some(e) = slot.env.get()
                {
                    self.retired.lock().await.push(e.clone());
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
            reports: Default::default(),
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
    }
}
