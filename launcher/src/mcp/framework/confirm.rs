//! Confirmation of an operator action by a person, on every protocol version.
//!
//! - 2026-07-28 clients that declare elicitation (per request, in `_meta`): the call is answered with an
//!   `InputRequiredResult` carrying one elicitation (SEP-2322 multi round-trip requests); the client asks
//!   the user and calls again with `inputResponses` and the echoed `requestState`.
//! - 2025-11-25 and older clients that declared elicitation: an `elicitation/create` request mid-call.
//! - Clients that declare neither: the `confirm` argument repeating the target. The model may fill it
//!   itself, so the answer and the audit record say that no person was asked.
//!
//! `requestState` comes back from the client and may be forged (arguments may come from injected text),
//! so it carries nothing but a random nonce. What was asked is kept here: the tool, the target, a digest of
//! the arguments and an expiry; a nonce is taken out of the table on its first use, whatever the outcome.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use rmcp::model::{
    ClientResult, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses,
    JsonObject, ProtocolVersion, Request, RequestMetaObject, ServerRequest,
};
use rmcp::{Peer, RoleServer};
use serde_json::Value;
use sha2::Digest;

pub use gpu_diag::operator::reset::Seen;

/// How this call can ask a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `elicitation/create` mid-call (2025-11-25 and older, capability declared at initialize).
    Elicitation,
    /// An `InputRequiredResult` and a retry (2026-07-28, elicitation declared in the request's `_meta`).
    InputRequest,
    /// Neither: only the `confirm` argument, which no person needs to have seen.
    ConfirmArgument,
}

impl Channel {
    /// What the client declared for this request: the request's own `_meta` first (2026-07-28 carries
    /// version and capabilities on every request), else what it said at initialize.
    pub fn of(meta: &RequestMetaObject, peer: &Peer<RoleServer>) -> Channel {
        let info = peer.peer_info();
        let version = meta
            .protocol_version()
            .or_else(|| info.as_ref().map(|i| i.protocol_version.clone()));
        let caps = meta
            .client_capabilities()
            .or_else(|| info.as_ref().map(|i| i.capabilities.clone()));
        // Form mode is what a confirmation needs; an empty `elicitation: {}` means form mode.
        let form = caps
            .and_then(|c| c.elicitation)
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        match version {
            _ if !form => Channel::ConfirmArgument,
            Some(v) if v >= ProtocolVersion::V_2026_07_28 => Channel::InputRequest,
            Some(_) => Channel::Elicitation,
            None => Channel::ConfirmArgument,
        }
    }

    /// Whether a person can be asked (and so should see the preflight first).
    pub fn asks_a_person(self) -> bool {
        self != Channel::ConfirmArgument
    }
}

/// One call's confirmation context: how the client can be asked, what it sent back from an earlier round,
/// and a digest of its arguments (a pending confirmation is bound to them).
pub struct CallConfirm {
    pub channel: Channel,
    pub args_digest: [u8; 32],
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
    /// Over HTTP, the person who called (their confirmation is theirs alone); None over stdio.
    pub person: Option<String>,
}

impl CallConfirm {
    /// SHA-256 of the arguments with object keys sorted, so the same arguments digest the same however
    /// a client orders them.
    pub fn digest(args: &JsonObject) -> [u8; 32] {
        fn canon(v: &Value, out: &mut String) {
            match v {
                Value::Object(m) => {
                    let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
                    pairs.sort_by_key(|(k, _)| *k);
                    out.push('{');
                    for (i, (k, v)) in pairs.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::String(k.clone()).to_string());
                        out.push(':');
                        canon(v, out);
                    }
                    out.push('}');
                }
                Value::Array(a) => {
                    out.push('[');
                    for (i, x) in a.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        canon(x, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut s = String::new();
        canon(&Value::Object(args.clone()), &mut s);
        sha2::Sha256::digest(s.as_bytes()).into()
    }

    /// True when this call answers an earlier input request (it carries `requestState` or
    /// `inputResponses`): it is checked against the pending table, never asked again.
    pub fn is_retry(&self) -> bool {
        self.request_state.is_some() || self.input_responses.is_some()
    }
}

/// How a confirmation went.
pub enum Confirmed {
    /// Approved; how (`elicitation`, `input_request`, `confirm_argument`).
    Yes(&'static str),
    /// Approved by a person who also overrode the refusal of GPUs whose holders no source can vouch for;
    /// how (`elicitation`, `input_request`). Only where the form offered it: never from `confirm`.
    YesOverriding(&'static str),
    /// Refused: the message for the caller.
    No(String),
    /// The client is to ask the user and call again (2026-07-28).
    Ask(Box<InputRequiredResult>),
}

/// Whether `confirmed_by` means a person approved.
pub fn human_confirmed(confirmed_by: &str) -> bool {
    matches!(confirmed_by, "elicitation" | "input_request")
}

/// How long the user has to answer an input request.
const PENDING_TTL: Duration = Duration::from_secs(300);
/// At most this many confirmations wait at once for one person (a flood evicts that person's oldest), and
/// in all (a shared server's people together; past it the oldest go).
const PENDING_PER_PERSON: usize = 64;
const PENDING_MAX: usize = 4096;
/// The key of the one elicitation in an input request.
const INPUT_KEY: &str = "confirm";
/// The form's field for a person's override of unknown GPU holders (offered only where the preflight
/// refused for that alone).
pub const OVERRIDE_FIELD: &str = "override_unknown_holders";

struct Pending {
    person: Option<String>,
    tool: String,
    target: String,
    args_digest: [u8; 32],
    /// The form offered the override: only then may the answer carry it.
    offered_override: bool,
    /// What the person is shown in this round, which the act of the retry is bound to.
    seen: Option<Seen>,
    expires: Instant,
}

/// Confirmations waiting for the user's answer, by nonce.
#[derive(Default)]
struct Table(Mutex<HashMap<String, Pending>>);

impl Table {
    fn remember(&self, nonce: String, p: Pending) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        t.retain(|_, p| p.expires > now);
        let oldest = |t: &HashMap<String, Pending>, person: Option<&Option<String>>| {
            t.iter()
                .filter(|(_, q)| person.is_none_or(|who| q.person == *who))
                .min_by_key(|(_, q)| q.expires)
                .map(|(k, _)| k.clone())
        };
        while t.values().filter(|q| q.person == p.person).count() >= PENDING_PER_PERSON {
            let Some(k) = oldest(&t, Some(&p.person)) else {
                break;
            };
            t.remove(&k);
        }
        while t.len() >= PENDING_MAX {
            let Some(k) = oldest(&t, None) else {
                break;
            };
            t.remove(&k);
        }
        t.insert(nonce, p);
    }

    /// Take `nonce` out of the table (single use), if it is there, unexpired and `person`'s: another
    /// person's nonce stays for its owner and reads as unknown.
    fn take(&self, nonce: &str, person: &Option<String>) -> Option<Pending> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t.get(nonce)?.person != *person {
            return None;
        }
        let p = t.remove(nonce)?;
        (p.expires > Instant::now()).then_some(p)
    }
}

/// The pending confirmations of this process (one stdio session, or a shared server's people); each entry
/// is bound to its person, tool, target and arguments, not only to the session.
static PENDING: LazyLock<Table> = LazyLock::new(Table::default);

/// Behind a Service with several replicas: this replica's name, put before each nonce (`{replica}.{nonce}`)
/// so that a retry reaching another replica is forwarded here (crate::http::replicas).
static REPLICA: OnceLock<String> = OnceLock::new();

pub fn name_replica(name: &str) {
    let _ = REPLICA.set(name.to_string());
}

fn new_nonce() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a confirmation nonce: {e}"))?;
    // URL-safe base64 has no dot, so the replica's name stays apart.
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Ok(match REPLICA.get() {
        Some(r) => format!("{r}.{n}"),
        None => n,
    })
}

/// The form a person answers: one required boolean, and where `offer` names the sources that could not
/// say who holds a GPU, a second one to override that refusal.
fn form(
    target: &str,
    summary: &str,
    offer: Option<&[String]>,
) -> Result<ElicitRequestParams, String> {
    let mut schema = ElicitationSchema::builder().required_bool("approve");
    if let Some(sources) = offer {
        schema = schema.bool_property(OVERRIDE_FIELD, |b| {
            b.description(format!(
                "The preflight refused because no source could say who holds the GPU ({}). Set to true only \
                 if you know no pod holds it: the action then goes ahead, and the audit records your override.",
                sources.join(", ")
            ))
            .with_default(false)
        });
    }
    let schema = schema
        .description("Set approve to true to perform the action.")
        .build()
        .map_err(|e| format!("cannot build the confirmation form: {e}"))?;
    let mut message = format!("Approve this operator action on {target}?");
    if offer.is_some() {
        message.push_str(
            " The preflight REFUSED it: who holds the GPU is not known. It goes ahead only if you also set \
             override_unknown_holders.",
        );
    }
    if !summary.is_empty() {
        message.push('\n');
        message.push_str(summary);
    }
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    })
}

/// The user's answer to the form, as a confirmation of `target`. An override counts only where the form
/// offered it (`offered`); one the form did not offer is ignored, and the preflight refuses as before.
fn judge(r: &ElicitResult, target: &str, how: &'static str, offered: bool) -> Confirmed {
    let field = |k: &str| {
        r.content
            .as_ref()
            .and_then(|c| c.get(k))
            .and_then(Value::as_bool)
    };
    match r.action {
        ElicitationAction::Accept if field("approve") == Some(true) => {
            if offered && field(OVERRIDE_FIELD) == Some(true) {
                Confirmed::YesOverriding(how)
            } else {
                Confirmed::Yes(how)
            }
        }
        ElicitationAction::Accept => Confirmed::No(format!(
            "the user did not approve the action on `{target}`. Nothing was done."
        )),
        ElicitationAction::Decline => Confirmed::No(format!(
            "the user declined the action on `{target}`. Nothing was done."
        )),
        _ => Confirmed::No(format!(
            "the user cancelled the action on `{target}`. Nothing was done."
        )),
    }
}

/// Ask the user through elicitation (2025-11-25 and older) to approve `target`.
async fn elicit(
    peer: &Peer<RoleServer>,
    target: &str,
    summary: &str,
    offer: Option<&[String]>,
) -> Confirmed {
    let params = match form(target, summary, offer) {
        Ok(p) => p,
        Err(e) => return Confirmed::No(e),
    };
    let req = ServerRequest::ElicitRequest(Request::new(params));
    match peer.send_request(req).await {
        Ok(ClientResult::ElicitResult(r)) => judge(&r, target, "elicitation", offer.is_some()),
        Ok(other) => Confirmed::No(format!(
            "the client answered the confirmation request with {other:?}. Nothing was done."
        )),
        Err(e) => Confirmed::No(format!(
            "the confirmation request failed: {e}. Nothing was done."
        )),
    }
}

/// Answer with an input request (2026-07-28): the form, and a fresh nonce bound to this call.
fn ask(
    call: &CallConfirm,
    tool: &str,
    target: &str,
    summary: &str,
    offer: Option<&[String]>,
    seen: Option<&Seen>,
) -> Confirmed {
    let params = match form(target, summary, offer) {
        Ok(p) => p,
        Err(e) => return Confirmed::No(e),
    };
    let nonce = match new_nonce() {
        Ok(n) => n,
        Err(e) => return Confirmed::No(format!("{e}. Nothing was done.")),
    };
    PENDING.remember(
        nonce.clone(),
        Pending {
            person: call.person.clone(),
            tool: tool.to_string(),
            target: target.to_string(),
            args_digest: call.args_digest,
            offered_override: offer.is_some(),
            seen: seen.cloned(),
            expires: Instant::now() + PENDING_TTL,
        },
    );
    let mut requests = InputRequests::new();
    requests.insert(
        INPUT_KEY.to_string(),
        InputRequest::Elicitation(ElicitRequest::new(params)),
    );
    Confirmed::Ask(Box::new(InputRequiredResult::new(
        Some(requests),
        Some(nonce),
    )))
}

/// A retry that answers an input request: the nonce must be one this process issued, unused and
/// unexpired, for this tool, target and arguments; the answer must be the user's explicit approval.
#[cfg(test)]
fn check_retry(call: &CallConfirm, tool: &str, target: &str) -> Confirmed {
    check_retry_seen(call, tool, target).0
}

/// [`check_retry`], with what the person was shown in the first round.
fn check_retry_seen(call: &CallConfirm, tool: &str, target: &str) -> (Confirmed, Option<Seen>) {
    let refuse = |why: &str| {
        (
            Confirmed::No(format!(
                "{tool} on `{target}`: {why}; call again without requestState and inputResponses to be \
                 asked anew. Nothing was done."
            )),
            None,
        )
    };
    let Some(state) = call.request_state.as_deref() else {
        return refuse("inputResponses came without the requestState of the input request");
    };
    let Some(p) = PENDING.take(state, &call.person) else {
        return refuse("the requestState is unknown, already used or expired");
    };
    if p.tool != tool || p.target != target || p.args_digest != call.args_digest {
        return refuse(&format!(
            "the requestState was issued for {} on `{}` with other arguments; a confirmation answers \
             exactly the call it was asked for",
            p.tool, p.target
        ));
    }
    let Some(answer) = call.input_responses.as_ref().and_then(|r| r.get(INPUT_KEY)) else {
        return refuse("the retry carries no answer to the confirmation");
    };
    match serde_json::from_value::<ElicitResult>(answer.clone()) {
        Ok(r) => (
            judge(&r, target, "input_request", p.offered_override),
            p.seen,
        ),
        Err(_) => refuse("the answer to the confirmation is not an elicitation result"),
    }
}

/// The `confirm` argument split into the target it repeats and the pin after `@`, if any
/// (`gpu-node-5/gpu/3@pci=0000:c1:00.0;uuid=GPU-...`, as a dry run's `confirm_with` gives it). Neither a
/// node name, a GPU selector nor a pid holds `@`.
pub fn split_confirm(c: &str) -> (&str, Option<&str>) {
    match c.split_once('@') {
        Some((t, pin)) => (t, Some(pin)),
        None => (c, None),
    }
}

/// The pin a `confirm` argument carries, as what was seen: the GPU's identity only. An override never
/// comes from `confirm` (the model may have filled it), so a `seen=` list is refused, as is an empty pin.
pub fn pin_of_confirm(tool: &str, pin: &str) -> Result<Seen, String> {
    let bad = |why: String| {
        format!(
            "{tool}: the pin after `@` in `confirm` {why}; repeat the `confirm_with` of the dry run \
             exactly, or the target alone. Nothing was done."
        )
    };
    // A kill's pin names the process (`start=<ticks>;pod=<uid|->`), a reset's the GPU.
    if pin.starts_with("start=") {
        let (p, seen) = gpu_diag::operator::kill::parse_approved(pin).map_err(&bad)?;
        if !seen.is_empty() {
            return Err(bad(
                "carries `seen=`: only a person can override unknown holders".into(),
            ));
        }
        return Ok(Seen {
            pin: None,
            unknown: Vec::new(),
            process: Some(p),
        });
    }
    let (p, seen) = gpu_diag::operator::reset::parse_approved(pin).map_err(&bad)?;
    if !seen.is_empty() {
        return Err(bad(
            "carries `seen=`: only a person can override unknown holders".into(),
        ));
    }
    if p.is_empty() {
        return Err(bad("names nothing".into()));
    }
    Ok(Seen {
        pin: Some(p),
        unknown: Vec::new(),
        process: None,
    })
}

/// The `confirm` argument check: given and repeating the target (with or without a pin), else why not.
pub fn check_confirm(tool: &str, target: &str, confirm: Option<&str>) -> Result<(), String> {
    match confirm.map(split_confirm) {
        Some((c, _)) if c == target => Ok(()),
        Some(_) => Err(format!(
            "confirmation mismatch: `confirm` must repeat the target exactly, expected `{target}`, got \
             `{}`. Nothing was done.",
            confirm.unwrap_or_default()
        )),
        None => Err(format!(
            "{tool} acts on `{target}` and needs confirmation: this client declares neither elicitation nor \
             input requests, so no person can be asked here. Call again with confirm=\"{target}\" once the \
             user has approved it{}. Nothing was done.",
            if tool == "reset_gpu" {
                " (a dry run gives `confirm_with`, which also binds the act to the GPU it showed)"
            } else {
                ""
            }
        )),
    }
}

/// Confirm `tool` on `target`: a wrong `confirm` is refused on every path; a retry is checked against
/// its pending input request; otherwise the person is asked where the client allows it, else the
/// `confirm` argument decides. `offer`: the sources that could not say who holds a GPU, where the
/// preflight refused for that alone; the person is then offered the override (the `confirm` argument
/// never overrides).
///
/// `seen`: what the person is shown (the preflight's GPU identity and unknowns); the answer gives back
/// what the approving person saw, from this round or, on a retry, from the round that asked (kept here,
/// never taken from the client). Where only `confirm` decides, the pin it repeats from a dry run's
/// `confirm_with` (identity only, never an override), else `None`.
#[allow(clippy::too_many_arguments)]
pub async fn confirm(
    peer: &Peer<RoleServer>,
    call: &CallConfirm,
    tool: &str,
    target: &str,
    confirm_arg: Option<&str>,
    summary: &str,
    offer: Option<&[String]>,
    seen: Option<&Seen>,
) -> (Confirmed, Option<Seen>) {
    if let Err(e) = check_confirm(tool, target, confirm_arg)
        && confirm_arg.is_some()
    {
        return (Confirmed::No(e), None);
    }
    // A pin in `confirm` must parse on every path, even where a person is asked (whose round pins).
    let pinned = match confirm_arg.map(split_confirm) {
        Some((_, Some(pin))) => match pin_of_confirm(tool, pin) {
            Ok(s) => Some(s),
            Err(e) => return (Confirmed::No(e), None),
        },
        _ => None,
    };
    if call.is_retry() {
        return check_retry_seen(call, tool, target);
    }
    match call.channel {
        Channel::Elicitation => (elicit(peer, target, summary, offer).await, seen.cloned()),
        Channel::InputRequest => (ask(call, tool, target, summary, offer, seen), None),
        // No person saw a preflight here: the act is bound to what the dry run showed the caller, where
        // `confirm` repeats its pin.
        Channel::ConfirmArgument => match check_confirm(tool, target, confirm_arg) {
            Ok(()) => (Confirmed::Yes("confirm_argument"), pinned),
            Err(e) => (Confirmed::No(e), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(args: Value, state: Option<&str>, answer: Option<Value>) -> CallConfirm {
        CallConfirm {
            channel: Channel::InputRequest,
            args_digest: CallConfirm::digest(args.as_object().unwrap()),
            input_responses: answer.map(|a| [(INPUT_KEY.to_string(), a)].into_iter().collect()),
            request_state: state.map(str::to_string),
            person: None,
        }
    }

    fn asked(c: &CallConfirm, tool: &str, target: &str) -> String {
        match ask(c, tool, target, "summary", None, None) {
            Confirmed::Ask(r) => {
                assert!(r.input_requests.as_ref().unwrap().contains_key(INPUT_KEY));
                r.request_state.clone().unwrap()
            }
            _ => panic!("not asked"),
        }
    }

    fn refused(c: Confirmed) -> String {
        match c {
            Confirmed::No(m) => m,
            Confirmed::Yes(h) | Confirmed::YesOverriding(h) => panic!("approved by {h}"),
            Confirmed::Ask(_) => panic!("asked"),
        }
    }

    #[test]
    fn confirm_must_repeat_the_target() {
        assert!(check_confirm("kill_gpu_process", "n/pid/5", Some("n/pid/5")).is_ok());
        let e = check_confirm("kill_gpu_process", "n/pid/5", Some("n/pid/6")).unwrap_err();
        assert!(e.contains("expected `n/pid/5`, got `n/pid/6`"), "{e}");
        let e = check_confirm("reset_gpu", "n/gpu/3", None).unwrap_err();
        assert!(e.contains("confirm=\"n/gpu/3\""), "{e}");
    }

    #[test]
    fn digest_ignores_key_order_not_values() {
        let a = json!({"node_name": "n", "pid": 5, "x": {"b": 1, "a": 2}});
        let b = json!({"x": {"a": 2, "b": 1}, "pid": 5, "node_name": "n"});
        let c = json!({"node_name": "n", "pid": 6, "x": {"b": 1, "a": 2}});
        let d = |v: &Value| CallConfirm::digest(v.as_object().unwrap());
        assert_eq!(d(&a), d(&b));
        assert_ne!(d(&a), d(&c));
    }

    #[test]
    fn a_nonce_is_single_use_and_bound_to_its_call() {
        let args = json!({"node_name": "n", "pid": 5});
        let yes = json!({"action": "accept", "content": {"approve": true}});
        let state = asked(
            &call(args.clone(), None, None),
            "kill_gpu_process",
            "n/pid/5",
        );
        assert!(state.len() >= 40, "{state}");
        let ok = check_retry(
            &call(args.clone(), Some(&state), Some(yes.clone())),
            "kill_gpu_process",
            "n/pid/5",
        );
        assert!(matches!(ok, Confirmed::Yes("input_request")));
        // Used once: a replay is refused.
        let m = refused(check_retry(
            &call(args.clone(), Some(&state), Some(yes.clone())),
            "kill_gpu_process",
            "n/pid/5",
        ));
        assert!(m.contains("unknown, already used or expired"), "{m}");
        // Forged.
        let m = refused(check_retry(
            &call(args.clone(), Some("forged"), Some(yes.clone())),
            "kill_gpu_process",
            "n/pid/5",
        ));
        assert!(m.contains("unknown"), "{m}");
        // Issued for another pid, replayed for this one: refused, and burnt.
        let other = json!({"node_name": "n", "pid": 6});
        let state = asked(&call(other, None, None), "kill_gpu_process", "n/pid/6");
        let m = refused(check_retry(
            &call(args.clone(), Some(&state), Some(yes.clone())),
            "kill_gpu_process",
            "n/pid/5",
        ));
        assert!(
            m.contains("issued for kill_gpu_process on `n/pid/6`"),
            "{m}"
        );
        // Same target, other arguments (e.g. a longer grace): refused.
        let state = asked(
            &call(args.clone(), None, None),
            "kill_gpu_process",
            "n/pid/5",
        );
        let m = refused(check_retry(
            &call(
                json!({"node_name": "n", "pid": 5, "grace_seconds": 1}),
                Some(&state),
                Some(yes.clone()),
            ),
            "kill_gpu_process",
            "n/pid/5",
        ));
        assert!(m.contains("other arguments"), "{m}");
        // Declined, not approved, no answer, no state.
        for (answer, words) in [
            (Some(json!({"action": "decline"})), "declined"),
            (Some(json!({"action": "cancel"})), "cancelled"),
            (
                Some(json!({"action": "accept", "content": {"approve": false}})),
                "did not approve",
            ),
            (Some(json!({"approve": true})), "not an elicitation result"),
            (None, "no answer"),
        ] {
            let state = asked(&call(args.clone(), None, None), "reset_gpu", "n/pid/5");
            let m = refused(check_retry(
                &call(args.clone(), Some(&state), answer),
                "reset_gpu",
                "n/pid/5",
            ));
            assert!(m.contains(words), "{words}: {m}");
        }
        let m = refused(check_retry(
            &call(args, None, Some(yes)),
            "reset_gpu",
            "n/pid/5",
        ));
        assert!(m.contains("without the requestState"), "{m}");
    }

    /// The override counts only where the form offered it, and only with the approval.
    #[test]
    fn an_override_only_where_offered_and_approved() {
        let args = json!({"node_name": "n", "gpu": "0"});
        let over = json!({"action": "accept", "content": {"approve": true, OVERRIDE_FIELD: true}});
        let sources = vec!["kubelet PodResources (device plugins)".to_string()];
        // Offered: the form carries the field, and the approval with it overrides.
        let c = call(args.clone(), None, None);
        let Confirmed::Ask(r) = ask(&c, "reset_gpu", "n/gpu/0", "s", Some(&sources), None) else {
            panic!("not asked")
        };
        let form = serde_json::to_string(&r.input_requests).unwrap();
        assert!(
            form.contains(OVERRIDE_FIELD) && form.contains("kubelet PodResources"),
            "{form}"
        );
        let state = r.request_state.clone().unwrap();
        assert!(matches!(
            check_retry(
                &call(args.clone(), Some(&state), Some(over.clone())),
                "reset_gpu",
                "n/gpu/0"
            ),
            Confirmed::YesOverriding("input_request")
        ));
        // Not offered (the preflight named no unknown): an override in the answer is not one.
        let state = asked(&call(args.clone(), None, None), "reset_gpu", "n/gpu/0");
        assert!(matches!(
            check_retry(
                &call(args.clone(), Some(&state), Some(over.clone())),
                "reset_gpu",
                "n/gpu/0"
            ),
            Confirmed::Yes("input_request")
        ));
        // Offered but not set, or set without the approval.
        let c = call(args.clone(), None, None);
        let Confirmed::Ask(r) = ask(&c, "reset_gpu", "n/gpu/0", "s", Some(&sources), None) else {
            panic!("not asked")
        };
        let state = r.request_state.clone().unwrap();
        let plain = json!({"action": "accept", "content": {"approve": true}});
        assert!(matches!(
            check_retry(
                &call(args.clone(), Some(&state), Some(plain)),
                "reset_gpu",
                "n/gpu/0"
            ),
            Confirmed::Yes(_)
        ));
        let r: ElicitResult = serde_json::from_value(
            json!({"action": "accept", "content": {"approve": false, OVERRIDE_FIELD: true}}),
        )
        .unwrap();
        assert!(matches!(
            judge(&r, "n/gpu/0", "elicitation", true),
            Confirmed::No(_)
        ));
    }

    fn pending(person: Option<&str>, secs: u64) -> Pending {
        Pending {
            person: person.map(str::to_string),
            tool: "cordon_gpu_node".into(),
            target: "n".into(),
            args_digest: [0; 32],
            offered_override: false,
            seen: None,
            expires: Instant::now() + Duration::from_secs(secs),
        }
    }

    /// One person's flood evicts only their own oldest; the table is bounded in all; entries expire.
    #[test]
    fn the_table_is_bounded_per_person_and_expires() {
        let t = Table::default();
        let alice = Some("alice".to_string());
        t.remember("alice-0".into(), pending(Some("alice"), 600));
        for i in 0..(PENDING_PER_PERSON * 2) {
            t.remember(format!("m{i}"), pending(Some("mallory"), 60 + i as u64));
        }
        assert_eq!(t.0.lock().unwrap().len(), PENDING_PER_PERSON + 1);
        // The newest stay, the oldest were evicted; Alice's one was not touched by Mallory's flood.
        let mallory = Some("mallory".to_string());
        assert!(
            t.take(&format!("m{}", PENDING_PER_PERSON * 2 - 1), &mallory)
                .is_some()
        );
        assert!(t.take("m0", &mallory).is_none());
        assert!(t.take("alice-0", &alice).is_some());
        for i in 0..(PENDING_MAX + 10) {
            t.remember(
                format!("p{i}"),
                pending(Some(&format!("p{i}")), 60 + i as u64),
            );
        }
        assert_eq!(t.0.lock().unwrap().len(), PENDING_MAX);
        t.remember("old".into(), pending(None, 0));
        assert!(t.take("old", &None).is_none(), "expired");
    }

    /// Another person's nonce reads as unknown and stays for its owner.
    #[test]
    fn a_nonce_is_its_persons_alone() {
        let t = Table::default();
        t.remember("n".into(), pending(Some("alice"), 60));
        assert!(t.take("n", &Some("bob".into())).is_none());
        assert!(t.take("n", &None).is_none());
        assert!(t.take("n", &Some("alice".into())).is_some());
        assert!(t.take("n", &Some("alice".into())).is_none(), "single use");
    }
}
