//! IMEX: the daemon that lets the GPUs of several nodes of one NVLink domain import each other's memory
//! (GB200/GB300 NVL72). What its command service answered through the driver's `nvidia-imex-ctl`: `-q` (this
//! daemon's state) and `-N -j` (the domain's state and each member's, JSON). Formats from NVIDIA's IMEX
//! guide ("The nvidia-imex-ctl Tool": `-q`, `-N`, `-j`, `-i <IP> <PORT>`) and DCGM's `dcgm_fields.h`
//! (`DCGM_FI_IMEX_DOMAIN_STATUS`: UP, DOWN, DEGRADED from `-N -j`; `DCGM_FI_IMEX_DAEMON_STATUS`: READY,
//! WAITING_FOR_PEERS, ... from `-q`).

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// The node's IMEX daemon, present only when one runs on the node (a ComputeDomain's daemon pod of
/// NVIDIA's DRA driver, or the host's `nvidia-imex` service).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImexFacts {
    /// Where its command service was asked: `10.0.3.7:50005` (the address in the daemon's own config).
    pub command_service: String,
    /// The daemon's config file as its command line names it (`/imexd/imexd.cfg` in a DRA daemon pod,
    /// `/etc/nvidia-imex/config.cfg` for the host service).
    pub config: String,
    /// `nvidia-imex-ctl -q`: `READY`, `WAITING_FOR_PEERS`, `WAITING_FOR_RECOVERY`, `INIT_GPU`, ...
    pub daemon: Reading<String>,
    /// `nvidia-imex-ctl -N -j`.
    pub domain: Reading<ImexDomainFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImexDomainFacts {
    /// `UP`, `DOWN` or `DEGRADED`.
    pub status: String,
    /// The domain's members as configured (every one, not only this node).
    pub nodes: Vec<ImexPeerFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImexPeerFacts {
    /// The member's index in the daemon's node list (the JSON's key).
    pub index: String,
    pub host: String,
    /// With `-H` only; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_name: String,
    /// Its daemon's state (`READY`, ...); empty when it was not reported.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Hosts this member reports a connection to that is not `CONNECTED`, with the state
    /// (`10.0.3.9 DISCONNECTED`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_connected: Vec<String>,
}

/// A domain lists at most a few racks' trays; a peer's connections are its domain's members.
const MAX_MEMBERS: usize = 1024;
/// The daemon's words and addresses are short; anything longer is cut.
const MAX_TEXT: usize = 128;

/// Text the command service returned, printable and bounded: the daemon may be a hostile tenant's
/// process that names itself `nvidia-imex`, so nothing of it reaches a report unfiltered.
fn text(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

impl ImexDomainFacts {
    /// `nvidia-imex-ctl -N -j`: `{"status": "UP", "nodes": {"0": {"status": "READY", "host": ...,
    /// "hostName": ..., "version": ..., "connections": {"1": {"host": ..., "status": "CONNECTED"}}}}}`.
    pub fn from_ctl_json(out: &str) -> Result<ImexDomainFacts, String> {
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).map_err(|e| format!("not JSON: {e}"))?;
        let status = text(&v["status"]);
        if status.is_empty() {
            return Err("no domain status in the answer".into());
        }
        let mut nodes: Vec<ImexPeerFacts> = v["nodes"]
            .as_object()
            .into_iter()
            .flatten()
            .take(MAX_MEMBERS)
            .map(|(index, n)| {
                let mut not_connected: Vec<String> = n["connections"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .take(MAX_MEMBERS)
                    .filter_map(|(_, c)| {
                        let state = text(&c["status"]);
                        (state != "CONNECTED").then(|| {
                            format!(
                                "{} {}",
                                text(&c["host"]),
                                if state.is_empty() { "UNKNOWN" } else { &state }
                            )
                        })
                    })
                    .collect();
                not_connected.sort();
                ImexPeerFacts {
                    index: index.chars().filter(|c| !c.is_control()).take(16).collect(),
                    host: text(&n["host"]),
                    host_name: text(&n["hostName"]),
                    status: text(&n["status"]),
                    version: text(&n["version"]),
                    not_connected,
                }
            })
            .collect();
        // The JSON's keys are indices as text: "10" after "9".
        nodes.sort_by_key(|n| (n.index.parse::<u32>().unwrap_or(u32::MAX), n.index.clone()));
        Ok(ImexDomainFacts { status, nodes })
    }
}

/// `nvidia-imex-ctl -q`: one word (`READY`), as NVIDIA's DRA driver reads it.
pub fn daemon_state_from_ctl(out: &str) -> Result<String, String> {
    let word = out.trim();
    if word.is_empty() || word.len() > MAX_TEXT || word.contains(char::is_whitespace) {
        return Err(format!(
            "unexpected answer: {:?}",
            word.chars().take(80).collect::<String>()
        ));
    }
    if !word
        .chars()
        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
    {
        return Err(format!("unexpected answer: {word:?}"));
    }
    Ok(word.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two trays of one domain, the second's daemon not ready and its link to the first down; the shape of
    /// `nvidia-imex-ctl -N -j -H` (per member: status, host, hostName, version, connections keyed by index).
    const DEGRADED: &str = r#"{
      "nodes": {
        "0": {"status": "READY", "host": "10.0.3.7", "hostName": "tray01", "version": "580.82.07",
              "changed": false,
              "connections": {"0": {"host": "10.0.3.7", "status": "CONNECTED", "changed": false},
                              "1": {"host": "10.0.3.8", "status": "DISCONNECTED", "changed": true}}},
        "1": {"status": "WAITING_FOR_PEERS", "host": "10.0.3.8", "hostName": "tray02\u001b[31m",
              "version": "580.82.07", "changed": true,
              "connections": {"0": {"host": "10.0.3.7", "status": "DISCONNECTED", "changed": true}}}
      },
      "status": "DEGRADED", "timestamp": "11/24/2026 15:02:11.000"
    }"#;

    #[test]
    fn the_domain_answer_names_every_member_and_its_broken_links() {
        let d = ImexDomainFacts::from_ctl_json(DEGRADED).unwrap();
        assert_eq!(d.status, "DEGRADED");
        assert_eq!(d.nodes.len(), 2);
        assert_eq!(d.nodes[0].status, "READY");
        assert_eq!(d.nodes[0].not_connected, ["10.0.3.8 DISCONNECTED"]);
        assert_eq!(d.nodes[1].host_name, "tray02[31m");
        assert_eq!(d.nodes[1].status, "WAITING_FOR_PEERS");
    }

    #[test]
    fn what_is_not_the_ctl_answer_is_an_error() {
        assert!(ImexDomainFacts::from_ctl_json("connection refused").is_err());
        assert!(ImexDomainFacts::from_ctl_json(r#"{"nodes": {}}"#).is_err());
        assert_eq!(daemon_state_from_ctl("READY\n").unwrap(), "READY");
        assert!(daemon_state_from_ctl("").is_err());
        assert!(daemon_state_from_ctl("Connection to 10.0.3.7:50005 failed").is_err());
        assert!(daemon_state_from_ctl("ready\u{1b}[0m").is_err());
    }
}
