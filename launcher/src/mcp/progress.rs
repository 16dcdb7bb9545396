//! MCP progress notifications, sent only when the client asked for them with a progress token.
//!
//! Runners report phases synchronously ([`ProgressSink`]); notifications are async, so they go through a
//! channel to one forwarding task, which keeps them in order. [`Progress::finish`] flushes the channel
//! before the tool replies, so every notification precedes the result. A call that runs as a task
//! (`crate::mcp::framework::tasks`) reports to the task's status message instead, which `tasks/get` shows.

use std::sync::{Arc, Mutex};

use rmcp::model::{ProgressNotificationParam, ProgressToken, RequestMetaObject};
use rmcp::task_manager::TaskContext;
use rmcp::{Peer, RoleServer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::probe::runner::{Phase, ProgressSink};

struct Update {
    progress: f64,
    total: Option<f64>,
    message: String,
}

pub struct Progress {
    tx: Option<mpsc::UnboundedSender<Update>>,
    /// The task the call runs as: updates become its status message (no notifications: the request that
    /// carried a progress token was answered with the task).
    status: Option<TaskContext>,
    task: Option<JoinHandle<()>>,
    /// Progress values must increase; this is the last one sent.
    last: Arc<Mutex<f64>>,
}

/// Position of a phase in a single probe run (progress `n` of [`PHASES_TOTAL`]).
pub fn phase_step(p: Phase) -> f64 {
    match p {
        Phase::StartingProbe => 1.0,
        Phase::WaitingForProbe => 2.0,
        Phase::Probing => 3.0,
        Phase::CleaningUp => 4.0,
        Phase::Done => 5.0,
    }
}
pub const PHASES_TOTAL: f64 = 5.0;

pub fn phase_message(p: Phase, node: &str) -> String {
    match p {
        Phase::StartingProbe => format!("starting probe for node {node}"),
        Phase::WaitingForProbe => format!("waiting for the probe on {node} to start"),
        Phase::Probing => format!("probing {node}"),
        Phase::CleaningUp => format!("cleaning up the probe on {node}"),
        Phase::Done => format!("done: {node}"),
    }
}

impl Progress {
    /// A reporter for one request; silent when the request carried no progress token.
    pub fn new(meta: &RequestMetaObject, peer: &Peer<RoleServer>) -> Self {
        Self::with_token(meta.get_progress_token(), peer.clone())
    }

    pub fn with_token(token: Option<ProgressToken>, peer: Peer<RoleServer>) -> Self {
        let last = Arc::new(Mutex::new(0.0));
        let Some(token) = token else {
            return Progress {
                tx: None,
                status: None,
                task: None,
                last,
            };
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Update>();
        let task = tokio::spawn(async move {
            while let Some(u) = rx.recv().await {
                let mut p = ProgressNotificationParam::new(token.clone(), u.progress)
                    .with_message(u.message);
                if let Some(t) = u.total {
                    p = p.with_total(t);
                }
                if let Err(e) = peer.notify_progress(p).await {
                    tracing::debug!(error = %e, "progress notification not delivered");
                }
            }
        });
        Progress {
            tx: Some(tx),
            status: None,
            task: Some(task),
            last,
        }
    }

    /// A reporter for a call that runs as a task: each update becomes the task's status message.
    pub fn for_task(task: TaskContext) -> Self {
        Progress {
            tx: None,
            status: Some(task),
            task: None,
            last: Arc::new(Mutex::new(0.0)),
        }
    }

    /// Report `progress` of `total`; values that do not increase are dropped.
    pub fn report(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        send(
            &self.tx,
            &self.status,
            &self.last,
            progress,
            total,
            message.into(),
        );
    }

    /// The last progress value sent (0 before any): a long run's own ticks start only once its probe
    /// reports [`Phase::Probing`].
    pub fn current(&self) -> f64 {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sink that turns a single probe run's phases into progress `n of 5`.
    pub fn phase_sink(&self, node: &str) -> ProgressSink {
        let tx = self.tx.clone();
        let status = self.status.clone();
        let last = self.last.clone();
        let node = node.to_string();
        Arc::new(move |phase| {
            send(
                &tx,
                &status,
                &last,
                phase_step(phase),
                Some(PHASES_TOTAL),
                phase_message(phase, &node),
            )
        })
    }

    /// A reporter another task can own (a long call's clock ticks while its probes run).
    pub fn reporter(&self) -> Arc<dyn Fn(f64, Option<f64>, String) + Send + Sync> {
        let tx = self.tx.clone();
        let status = self.status.clone();
        let last = self.last.clone();
        Arc::new(move |progress, total, message| {
            send(&tx, &status, &last, progress, total, message)
        })
    }

    /// Deliver everything reported so far, then stop.
    pub async fn finish(mut self) {
        self.tx.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn send(
    tx: &Option<mpsc::UnboundedSender<Update>>,
    status: &Option<TaskContext>,
    last: &Mutex<f64>,
    progress: f64,
    total: Option<f64>,
    message: String,
) {
    if tx.is_none() && status.is_none() {
        return;
    }
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    if progress <= *last {
        return;
    }
    *last = progress;
    if let Some(task) = status {
        task.set_status_message(message);
        return;
    }
    let Some(tx) = tx else { return };
    let _ = tx.send(Update {
        progress,
        total,
        message,
    });
}

/// A sink that ignores phases (scans report n of N instead).
pub fn null_sink() -> ProgressSink {
    Arc::new(|_| {})
}
