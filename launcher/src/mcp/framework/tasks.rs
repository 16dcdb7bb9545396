//! Long tools as MCP tasks: the `io.modelcontextprotocol/tasks` extension (SEP-2663, protocol 2026-07-28)
//! through rmcp's [`TaskManager`].
//!
//! A tool that declares [`super::Tool::TASK`] answers a request that declares the extension in its `_meta`
//! with a task instead of its result: the work runs on, the client polls `tasks/get` (status message:
//! nodes answered of total, with findings, failed), reads the result there, or `tasks/cancel`s it. Any
//! other call gets the plain call with progress notifications as before. Protocol 2025-11-25's own tasks
//! (SEP-1686) use this same store: [`super::tasks_2025`].
//!
//! Cancellation reaches the probes through the call's own token: the fan-out starts no new probe and
//! every running probe deletes its pod (its delete guard) before the task settles as `cancelled`. The
//! session's end (stdin closed, SIGINT/SIGTERM) cancels every task the same way and
//! [`Tasks::end_session`] waits for them, so no probe pod outlives the session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{CallToolResponse, CallToolResult, CreateTaskResult, DetailedTask, TaskPayload};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData, RoleServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a task and then its result are kept (rmcp counts the ttl from creation for a running task, and
/// keeps a finished one for another ttl): longer than any call runs (a 10,000-node scan, an evidence archive
/// of minutes), short enough that a forgotten result does not stay for the whole session. The protocol
/// (SEP-2663) lets the server choose; a client cannot ask for another.
pub const TASK_TTL: Duration = Duration::from_secs(3600);

/// How often a client should poll `tasks/get`: nodes answer in tens of milliseconds each.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// JSON-RPC error code of a call refused because its person's (or the server's) tasks are all running:
/// in the implementation-defined server range, like a 429.
pub const TOO_MANY_TASKS: i32 = -32029;

/// Tasks running at once over stdio (one person's session). Each can hold a fan-out of probes: more is
/// refused, not queued. `serve --http` sets its own bounds, per person and in all ([`Tasks::in_all`]).
const MAX_RUNNING: usize = 8;

/// How long the session's end waits for cancelled tasks to delete their probe pods: a DCGM run's orderly
/// stop before its delete may take `probe::stop_first::STOP_WAIT` (35 s) and its exec's margin.
const END_WAIT: Duration = Duration::from_secs(60);

/// Finished tasks' results kept at most (count, bytes as JSON), per person and in all: past either, the
/// oldest result goes (its memory with it) and its task answers that its result was dropped. rmcp keeps a
/// task for two ttls and would keep its whole result as long; here it keeps an empty stand-in.
const RESULTS_PER_PERSON: (usize, usize) = (16, 64 << 20);
const RESULTS_IN_ALL: (usize, usize) = (256, 256 << 20);

/// The results of finished tasks, oldest first (see [`RESULTS_PER_PERSON`]).
#[derive(Default)]
pub(crate) struct Results {
    /// Task (the manager's id), its person ("" over stdio), its result's size.
    order: VecDeque<(String, String, usize)>,
    kept: HashMap<String, serde_json::Map<String, serde_json::Value>>,
    bytes: usize,
}

impl Results {
    /// Keep task `id`'s result, first dropping the person's oldest past `per`, then anyone's past `all`;
    /// returns the tasks whose results were dropped. A result larger than `per` allows is not kept.
    pub(crate) fn put(
        &mut self,
        id: String,
        owner: String,
        result: serde_json::Map<String, serde_json::Value>,
        per: (usize, usize),
        all: (usize, usize),
    ) -> Vec<String> {
        let size = serde_json::to_vec(&result).map(|v| v.len()).unwrap_or(0);
        if size > per.1.min(all.1) {
            return vec![id];
        }
        let mut dropped = Vec::new();
        loop {
            let (n, b) = self
                .order
                .iter()
                .filter(|(_, o, _)| *o == owner)
                .fold((0, 0), |(n, b), (_, _, s)| (n + 1, b + s));
            if n < per.0 && b + size <= per.1 {
                break;
            }
            let Some(i) = self.order.iter().position(|(_, o, _)| *o == owner) else {
                break;
            };
            dropped.extend(self.drop_at(i));
        }
        while (self.order.len() >= all.0 || self.bytes + size > all.1) && !self.order.is_empty() {
            dropped.extend(self.drop_at(0));
        }
        self.bytes += size;
        self.order.push_back((id.clone(), owner, size));
        self.kept.insert(id, result);
        dropped
    }

    fn drop_at(&mut self, i: usize) -> Option<String> {
        let (id, _, size) = self.order.remove(i)?;
        self.bytes -= size;
        self.kept.remove(&id);
        Some(id)
    }

    /// Results kept and their bytes.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.order.len(), self.bytes)
    }
}

/// The task's work, whose result goes to `results` (bounded) and an empty stand-in to rmcp.
async fn keeping_result(
    results: std::sync::Arc<Mutex<Results>>,
    id: String,
    owner: String,
    work: impl Future<Output = Result<CallToolResult, TaskExit>> + Send + 'static,
) -> Result<CallToolResult, TaskExit> {
    let r = work.await?;
    let map = match serde_json::to_value(&r) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Ok(r),
    };
    let dropped = results.lock().unwrap_or_else(|e| e.into_inner()).put(
        id,
        owner,
        map,
        RESULTS_PER_PERSON,
        RESULTS_IN_ALL,
    );
    if !dropped.is_empty() {
        tracing::info!(tasks = ?dropped, "finished tasks' results dropped to keep the bound");
    }
    Ok(CallToolResult::success(Vec::new()))
}

/// Where a call that runs as a task reports its progress: the task's status message. Put in the request's
/// extensions, so the tool framework ([`super::route`]) reports there instead of in notifications.
#[derive(Clone)]
pub struct TaskProgress(pub TaskContext);

/// The tasks of one session (one `serve` process: stdio carries one session).
pub struct Tasks {
    manager: TaskManager,
    /// Cancelled when the session ends; each task's token is its child.
    session: CancellationToken,
    /// The task operations still running, awaited at the session's end.
    running: TaskTracker,
    /// The tools that run as tasks.
    tools: HashSet<String>,
    /// Over HTTP: each task's person (the user its caller's token names); only they may read, update or
    /// cancel it. Empty over stdio (one person).
    owners: Mutex<HashMap<String, String>>,
    /// Over HTTP: tasks one person may have running at once.
    per_person: Option<usize>,
    /// Tasks running at once for everyone together.
    in_all: usize,
    /// Finished tasks' results (rmcp holds a stand-in).
    results: std::sync::Arc<Mutex<Results>>,
    /// Behind a Service with several replicas: this replica's name, put before each task id it hands out
    /// (`{replica}.{id}`) so that another replica can send a request for it here.
    replica: Option<String>,
}

impl Tasks {
    pub fn new(tools: impl IntoIterator<Item = String>) -> Self {
        Tasks {
            manager: TaskManager::new(),
            session: CancellationToken::new(),
            running: TaskTracker::new(),
            tools: tools.into_iter().collect(),
            owners: Mutex::new(HashMap::new()),
            per_person: None,
            in_all: MAX_RUNNING,
            results: Default::default(),
            replica: None,
        }
    }

    /// Task ids name this replica (`serve --http` with `replicas`).
    pub fn replica(mut self, name: Option<String>) -> Self {
        self.replica = name;
        self
    }

    /// The id a client sees for the manager's `id`.
    fn outer(&self, id: &str) -> String {
        match &self.replica {
            Some(r) => format!("{r}.{id}"),
            None => id.to_string(),
        }
    }

    /// The manager's id for a client's `id` (one naming another replica is no id of this one's).
    fn inner<'a>(&self, id: &'a str) -> Option<&'a str> {
        match &self.replica {
            None => Some(id),
            Some(me) => match crate::mcp::framework::caller::split_replica(id) {
                Some((r, inner)) if r == me => Some(inner),
                _ => None,
            },
        }
    }

    fn unknown(id: &str) -> ErrorData {
        ErrorData::invalid_params(
            format!("no task {}", id.chars().take(128).collect::<String>()),
            None,
        )
    }

    /// Each person at most `n` running tasks (`serve --http`).
    pub fn per_person(mut self, n: usize) -> Self {
        self.per_person = Some(n);
        self
    }

    /// At most `n` running tasks for everyone together (`serve --http`'s `limits.tasks_in_all`).
    pub fn in_all(mut self, n: usize) -> Self {
        self.in_all = n.max(1);
        self
    }

    pub fn tools(&self) -> impl Iterator<Item = &String> {
        self.tools.iter()
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether one more task may start for `context`'s person and in all. Where not, the call is refused
    /// with the reason: run as a plain call instead, a long tool would escape the person's bound on tasks
    /// (a plain call holds one of their few call slots for its whole run instead). [`Self::spawn`] checks
    /// again, under the lock that records the new task, so that calls at once cannot pass it together.
    pub fn room(&self, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let owner = crate::mcp::framework::caller::caller_of(context).map(|c| c.user);
        self.admits(&mut self.owners(), owner.as_deref())
    }

    /// The tasks running for `owner` (None: stdio's one person, whose tasks are not counted apart).
    fn running_for(&self, owners: &mut HashMap<String, String>, owner: &str) -> usize {
        // Expired tasks are forgotten; settled ones stay their owner's until then but do not count.
        owners.retain(|id, _| self.manager.get_task(id).is_ok());
        owners
            .iter()
            .filter(|(id, u)| {
                *u == owner
                    && self
                        .manager
                        .get_task(id)
                        .is_ok_and(|t| !t.status().is_terminal())
            })
            .count()
    }

    /// One more task for `owner`, or the refusal naming the limit it hit (the person's own, or the
    /// server's for everyone) with the numbers. Called with the owners' lock held.
    fn admits(
        &self,
        owners: &mut HashMap<String, String>,
        owner: Option<&str>,
    ) -> Result<(), ErrorData> {
        let busy = |what: String| {
            ErrorData::new(
                rmcp::model::ErrorCode(TOO_MANY_TASKS),
                format!(
                    "{what}; wait for one to finish (tasks/get) or cancel one (tasks/cancel), then call again"
                ),
                None,
            )
        };
        let mine = match (self.per_person, owner) {
            (Some(limit), Some(o)) => {
                let mine = self.running_for(owners, o);
                if mine >= limit {
                    return Err(busy(format!(
                        "{mine} tasks of yours are running (at most {limit} per person: limits.tasks_per_person)"
                    )));
                }
                Some((mine, limit))
            }
            _ => None,
        };
        let running = self.manager.running_task_count();
        if running >= self.in_all {
            let yours = match mine {
                Some((m, l)) => format!(", {m} of them yours (at most {l} per person)"),
                None => String::new(),
            };
            let scope = if self.per_person.is_some() {
                "on this server for everyone together (at most {n} in all: limits.tasks_in_all)"
            } else {
                "in this session (at most {n})"
            }
            .replace("{n}", &self.in_all.to_string());
            return Err(busy(format!("{running} tasks are running {scope}{yours}")));
        }
        Ok(())
    }

    /// Over HTTP, a task is its person's alone: another person's id reads as unknown (its existence is not
    /// told either).
    pub fn owned(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Some(e) = crate::mcp::framework::caller::elsewhere_of(context) {
            // The gate could not hand the request to the replica named in the id.
            return Err(Self::elsewhere(task_id, &e));
        }
        self.owned_by(
            task_id,
            crate::mcp::framework::caller::caller_of(context).as_ref(),
        )
    }

    /// The answer for a task of a replica that could not be asked.
    pub fn elsewhere(task_id: &str, e: &crate::mcp::framework::caller::Elsewhere) -> ErrorData {
        ErrorData::invalid_params(
            format!(
                "task {} was started on replica {}, which {}: a replica's tasks end with it (on its stop \
                 it cancels them and deletes their probe pods); start the call again",
                task_id.chars().take(128).collect::<String>(),
                e.replica,
                e.why
            ),
            None,
        )
    }

    /// [`Self::owned`] for a request that reached no MCP session (a 2025-11-25 task request forwarded from
    /// another replica, answered by the HTTP gate): `caller` None is stdio's one person.
    pub fn owned_by(
        &self,
        task_id: &str,
        caller: Option<&crate::mcp::framework::caller::Caller>,
    ) -> Result<(), ErrorData> {
        let shown = task_id.chars().take(128).collect::<String>();
        let inner = self.inner(task_id);
        let Some(caller) = caller else {
            return Ok(());
        };
        match inner.and_then(|i| self.owners().get(i).cloned()) {
            Some(owner) if owner == caller.user => Ok(()),
            // Tasks live in the memory of the server process that started them; with `replicas`, a
            // request for another replica's task is forwarded there before it reaches this.
            _ => Err(ErrorData::invalid_params(
                format!(
                    "no task {shown} of yours on this server ({}): a task lives in the server process that \
                     started it",
                    self.replica
                        .clone()
                        .unwrap_or_else(crate::cluster::labels::launcher_host)
                ),
                None,
            )),
        }
    }

    /// Whether the call of `tool` in `context` runs as a task: a long tool, and a request that itself
    /// declares the tasks extension in its `_meta` (SEP-2663's rule; a declaration at `initialize` does not
    /// count, where rmcp's `client_capabilities` would fall back to it).
    pub fn wants(&self, tool: &str, context: &RequestContext<RoleServer>) -> bool {
        self.tools.contains(tool)
            && context
                .meta
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
    }

    /// Start `call` (the tool call, given its request context) as a task and answer its handle. The call's
    /// token is the task's own (the request's ends with this answer), cancelled by `tasks/cancel` or the
    /// session's end; its progress goes to the task's status message.
    pub fn spawn<F, Fut>(
        &self,
        mut context: RequestContext<RoleServer>,
        call: F,
    ) -> Result<CreateTaskResult, ErrorData>
    where
        F: FnOnce(RequestContext<RoleServer>) -> Fut,
        Fut: Future<Output = Result<CallToolResponse, ErrorData>> + Send + 'static,
    {
        if self.session.is_cancelled() {
            return Err(ErrorData::invalid_request(
                "the session is ending; no new task starts",
                None,
            ));
        }
        let owner = crate::mcp::framework::caller::caller_of(&context).map(|c| c.user);
        let cancel = self.session.child_token();
        context.ct = cancel.clone();
        let options = TaskOptions::new()
            .with_ttl_ms(TASK_TTL.as_millis() as u64)
            .with_poll_interval_ms(POLL_INTERVAL.as_millis() as u64)
            .with_status_message("starting");
        let running = self.running.clone();
        let (results, person) = (self.results.clone(), owner.clone().unwrap_or_default());
        let mut task = self.start(owner, options, move |tc| {
            context.extensions.insert(TaskProgress(tc.clone()));
            let call = call(context);
            let id = tc.task_id().to_string();
            let work = operation(tc, cancel, call);
            Box::pin(running.track_future(keeping_result(results, id, person, work)))
        })?;
        task.task_id = self.outer(&task.task_id);
        tracing::info!(task = %task.task_id, "tool call runs as a task");
        Ok(CreateTaskResult::new(task))
    }

    /// Start `make`'s task for `owner` if the bounds admit it: checked and recorded under one hold of the
    /// owners' lock, so that calls at once cannot all pass the check before any is counted.
    fn start<M>(
        &self,
        owner: Option<String>,
        options: TaskOptions,
        make: M,
    ) -> Result<rmcp::model::Task, ErrorData>
    where
        M: FnOnce(TaskContext) -> rmcp::task_manager::TaskFuture,
    {
        let mut owners = self.owners();
        self.admits(&mut owners, owner.as_deref())?;
        let task = self.manager.spawn(options, make);
        if let Some(o) = owner {
            owners.insert(task.task_id.clone(), o);
        }
        Ok(task)
    }

    pub fn get(&self, task_id: &str) -> Result<DetailedTask, ErrorData> {
        let inner = self.inner(task_id).ok_or_else(|| Self::unknown(task_id))?;
        let mut t = self.manager.get_task(inner)?;
        t.task.task_id = task_id.to_string();
        if let TaskPayload::Completed { result } = &mut t.payload {
            let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
            match results.kept.get(inner) {
                Some(r) => *result = r.clone(),
                None => {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "task {} completed, but its result was dropped: at most {} results ({} MiB) are \
                             kept per person and {} ({} MiB) in all, the oldest dropped first; start the call \
                             again",
                            task_id.chars().take(128).collect::<String>(),
                            RESULTS_PER_PERSON.0,
                            RESULTS_PER_PERSON.1 >> 20,
                            RESULTS_IN_ALL.0,
                            RESULTS_IN_ALL.1 >> 20
                        ),
                        None,
                    ));
                }
            }
        }
        Ok(t)
    }

    /// `tasks/cancel`: acknowledged at once; the task settles as `cancelled` once its probes' pods are
    /// deleted (poll `tasks/get`).
    pub fn cancel(&self, task_id: &str) -> Result<(), ErrorData> {
        let inner = self.inner(task_id).ok_or_else(|| Self::unknown(task_id))?;
        self.manager.cancel_task(inner)?;
        tracing::info!(task = %task_id, "task cancel requested: no new probes; running probe pods are being deleted");
        Ok(())
    }

    /// `tasks/update`: these tasks ask the client nothing, so every response is ignored (SEP-2663 says
    /// unknown keys are), but an unknown task is an error.
    pub fn update(
        &self,
        task_id: &str,
        responses: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> Result<(), ErrorData> {
        let inner = self.inner(task_id).ok_or_else(|| Self::unknown(task_id))?;
        self.manager.update_task(inner, responses)
    }

    /// The session ended: cancel every task, wait (bounded) until their probes are stopped and their pods
    /// deleted, then drop the task state. Call before the runner's own shutdown.
    pub async fn end_session(&self) {
        self.session.cancel();
        self.running.close();
        if !self.running.is_empty() {
            tracing::info!(
                tasks = self.running.len(),
                "session ended: cancelling the running tasks and deleting their probe pods"
            );
        }
        if tokio::time::timeout(END_WAIT, self.running.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "some tasks did not stop within {} s; their probe pods are deleted as they are dropped",
                END_WAIT.as_secs()
            );
        }
        // Aborts what is left: each probe's delete guard then deletes its pod on the runner's tracker.
        self.manager.shutdown();
    }
}

/// The task's work: the call, cancelled through `cancel` when the client cancels the task, and always
/// awaited to its end so that its probes are stopped and their pods deleted before the task settles.
async fn operation(
    tc: TaskContext,
    cancel: CancellationToken,
    call: impl Future<Output = Result<CallToolResponse, ErrorData>>,
) -> Result<CallToolResult, TaskExit> {
    let mut call = std::pin::pin!(call);
    let response = tokio::select! {
        r = &mut call => r,
        _ = tc.cancelled() => {
            cancel.cancel();
            tc.set_status_message("cancelling: no new probes; deleting the running probe pods");
            call.await
        }
    };
    settle(response, cancel.is_cancelled())
}

/// The task's end from the call's answer: a call stopped by a cancellation settles `cancelled` (its result
/// only says so); one that finished anyway keeps its result (SEP-2663 allows either).
fn settle(
    response: Result<CallToolResponse, ErrorData>,
    cancelled: bool,
) -> Result<CallToolResult, TaskExit> {
    match response {
        Ok(CallToolResponse::Complete(r)) if !(cancelled && r.is_error == Some(true)) => Ok(r),
        _ if cancelled => Err(TaskExit::Cancelled),
        Ok(CallToolResponse::Complete(r)) => Ok(r),
        Ok(_) => Err(TaskExit::Error(ErrorData::internal_error(
            "the tool answered with something other than a result",
            None,
        ))),
        Err(e) => Err(TaskExit::Error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, TaskStatus};

    fn ok() -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text("done")])
    }
    fn tool_error() -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text("the call was cancelled")])
    }

    #[test]
    fn a_cancelled_call_settles_cancelled_unless_it_finished() {
        assert!(matches!(
            settle(Ok(tool_error().into()), true),
            Err(TaskExit::Cancelled)
        ));
        assert!(matches!(
            settle(Err(ErrorData::internal_error("x", None)), true),
            Err(TaskExit::Cancelled)
        ));
        assert!(settle(Ok(ok().into()), true).is_ok());
        // Not cancelled: a tool error is the call's result, a JSON-RPC error fails the task.
        let r = settle(Ok(tool_error().into()), false).expect("a tool error is a result");
        assert_eq!(r.is_error, Some(true));
        assert!(matches!(
            settle(Err(ErrorData::internal_error("x", None)), false),
            Err(TaskExit::Error(_))
        ));
    }

    async fn settled(manager: &TaskManager, id: &str) -> DetailedTask {
        for _ in 0..500 {
            let t = manager.get_task(id).expect("task");
            if t.status().is_terminal() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never settled");
    }

    /// tasks/cancel reaches the call's token, and the task settles only after the call has ended (its
    /// cleanup, here a flag, done).
    #[tokio::test]
    async fn cancel_reaches_the_call_and_waits_for_its_end() {
        let tasks = Tasks::new(["long".to_string()]);
        let cleaned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cleaned.clone();
        let (ctx_tx, ctx_rx) = tokio::sync::oneshot::channel();
        let cancel = tasks.session.child_token();
        let inner = cancel.clone();
        let running = tasks.running.clone();
        let task = tasks.manager.spawn(TaskOptions::new(), move |tc| {
            let _ = ctx_tx.send(tc.clone());
            let call = async move {
                inner.cancelled().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(tool_error().into())
            };
            Box::pin(running.track_future(operation(tc, cancel, call)))
        });
        let _tc = ctx_rx.await.expect("task context");
        assert_eq!(
            tasks.get(&task.task_id).unwrap().status(),
            TaskStatus::Working
        );
        tasks.cancel(&task.task_id).unwrap();
        let t = settled(&tasks.manager, &task.task_id).await;
        assert_eq!(t.status(), TaskStatus::Cancelled);
        assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// Results past a person's bound, then past the bound in all, go oldest first, and their bytes with
    /// them; the person's others and other people's stay.
    #[test]
    fn results_are_bounded_per_person_and_in_all() {
        let r = |n: usize| {
            let mut m = serde_json::Map::new();
            m.insert("text".into(), "x".repeat(n).into());
            m
        };
        let size = serde_json::to_vec(&r(90)).unwrap().len();
        let mut s = Results::default();
        let (per, all) = ((3, 10 * size), (5, 100 * size));
        assert!(s.put("b0".into(), "bob".into(), r(90), per, all).is_empty());
        let mut dropped = Vec::new();
        for i in 0..6 {
            dropped.extend(s.put(format!("a{i}"), "alice".into(), r(90), per, all));
        }
        assert_eq!(dropped, ["a0", "a1", "a2"]);
        assert_eq!(s.usage(), (4, 4 * size));
        assert!(s.kept.contains_key("b0") && s.kept.contains_key("a5"));
        // In all: two more people; the oldest (bob's) goes, then alice's oldest.
        let mut dropped = Vec::new();
        for p in ["c", "d", "e"] {
            dropped.extend(s.put(p.into(), p.into(), r(90), per, all));
        }
        assert_eq!(dropped, ["b0", "a3"]);
        assert_eq!(s.usage(), (5, 5 * size));
        // Bytes: one big result takes the room of the oldest; one bigger than a person's bound is not kept.
        let big = serde_json::to_vec(&r(90 * 8)).unwrap().len();
        let dropped = s.put(
            "big".into(),
            "f".into(),
            r(90 * 8),
            (3, big),
            (5, big + 2 * size),
        );
        assert_eq!(dropped, ["a4", "a5", "c"]);
        assert_eq!(s.usage(), (3, big + 2 * size));
        assert_eq!(
            s.put("huge".into(), "f".into(), r(90 * 100), per, all),
            ["huge"]
        );
    }

    /// A finished task's result is read back whole; once dropped, its task says so instead of answering
    /// an empty result.
    #[tokio::test]
    async fn a_dropped_result_is_answered_as_dropped() {
        let tasks = Tasks::new(Vec::new());
        let mut ids = Vec::new();
        for _ in 0..=RESULTS_PER_PERSON.0 {
            let results = tasks.results.clone();
            let t = tasks.manager.spawn(TaskOptions::new(), move |tc| {
                let id = tc.task_id().to_string();
                Box::pin(keeping_result(results, id, "alice".into(), async {
                    Ok(ok())
                }))
            });
            settled(&tasks.manager, &t.task_id).await;
            ids.push(t.task_id);
        }
        let last = tasks.get(ids.last().unwrap()).expect("the newest result");
        match last.payload {
            TaskPayload::Completed { result } => {
                assert_eq!(result["content"][0]["text"], "done", "{result:?}")
            }
            p => panic!("{p:?}"),
        }
        let e = tasks
            .get(&ids[0])
            .expect_err("the oldest result was dropped");
        assert!(e.message.contains("result was dropped"), "{}", e.message);
    }

    /// A task that runs until `release` is cancelled, for `owner`.
    fn hold(
        tasks: &Tasks,
        owner: &str,
        release: &CancellationToken,
    ) -> Result<rmcp::model::Task, ErrorData> {
        let r = release.clone();
        tasks.start(Some(owner.into()), TaskOptions::new(), move |_tc| {
            Box::pin(async move {
                r.cancelled().await;
                Ok(ok())
            })
        })
    }

    /// Two people: one at their own bound is refused with the person's limit in words and numbers, and
    /// the other still starts theirs; past the bound in all, anyone is refused with that limit named
    /// instead. (With one bound for the whole server, as before, two people at 4 each locked everyone
    /// out.)
    #[tokio::test]
    async fn one_person_at_their_task_bound_does_not_stop_another() {
        let tasks = Tasks::new(Vec::new()).per_person(2).in_all(5);
        let release = CancellationToken::new();
        for _ in 0..2 {
            hold(&tasks, "alice", &release).expect("alice's tasks within her bound");
        }
        let e = hold(&tasks, "alice", &release).expect_err("alice past her bound");
        assert_eq!(e.code.0, TOO_MANY_TASKS);
        assert!(
            e.message
                .contains("2 tasks of yours are running (at most 2 per person"),
            "{}",
            e.message
        );
        // Bob is not held up by alice's bound.
        for _ in 0..2 {
            hold(&tasks, "bob", &release).expect("bob starts while alice is at her bound");
        }
        hold(&tasks, "carol", &release).expect("carol: the fifth in all");
        let e = hold(&tasks, "dave", &release).expect_err("past the bound in all");
        assert_eq!(e.code.0, TOO_MANY_TASKS);
        assert!(
            e.message.contains(
                "5 tasks are running on this server for everyone together (at most 5 in all"
            ) && e.message.contains("0 of them yours"),
            "{}",
            e.message
        );
        // Once alice's and bob's tasks end, everyone may start again.
        release.cancel();
        for _ in 0..500 {
            if tasks.manager.running_task_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        hold(&tasks, "dave", &CancellationToken::new()).expect("room again");
        hold(&tasks, "alice", &CancellationToken::new()).expect("alice again");
    }

    /// Calls at once cannot all pass the check before any is counted: the check and the record are one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn tasks_started_at_once_stay_within_the_bounds() {
        let tasks = std::sync::Arc::new(Tasks::new(Vec::new()).per_person(3).in_all(64));
        let release = CancellationToken::new();
        let mut started = Vec::new();
        for _ in 0..32 {
            let (t, r) = (tasks.clone(), release.clone());
            started.push(tokio::spawn(async move { hold(&t, "alice", &r).is_ok() }));
        }
        let mut ok = 0;
        for s in started {
            ok += usize::from(s.await.unwrap());
        }
        assert_eq!(ok, 3);
        assert_eq!(tasks.manager.running_task_count(), 3);
        release.cancel();
    }

    /// The session's end cancels a running task and waits for it.
    #[tokio::test]
    async fn the_session_end_cancels_and_awaits_running_tasks() {
        let tasks = Tasks::new(Vec::new());
        let cleaned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cleaned.clone();
        let cancel = tasks.session.child_token();
        let inner = cancel.clone();
        tasks.manager.spawn(TaskOptions::new(), |tc| {
            let call = async move {
                inner.cancelled().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(tool_error().into())
            };
            Box::pin(tasks.running.track_future(operation(tc, cancel, call)))
        });
        tokio::time::timeout(Duration::from_secs(5), tasks.end_session())
            .await
            .expect("end_session returns");
        assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(tasks.manager.running_task_count(), 0);
    }
}
