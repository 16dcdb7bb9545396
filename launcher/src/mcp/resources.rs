//! MCP resources: NVIDIA's XID catalog, one resource per code (`xid://catalog/{code}`) plus an index.
//!
//! The catalog itself lives in the shared library (`gpu_diag::kernel_log`); [`catalog`] is the one function that
//! knows its API.

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde::Serialize;

pub const INDEX_URI: &str = "xid://catalog";
pub const TEMPLATE: &str = "xid://catalog/{code}";

/// One catalog entry as the resources present it.
#[derive(Debug, Clone, Serialize)]
pub struct XidInfo {
    pub code: u32,
    /// NVIDIA's mnemonic, e.g. `ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS`.
    pub name: String,
    pub description: String,
    /// The full catalog entry as the shared library serializes it.
    pub entry: serde_json::Value,
}

/// The XID catalog from the shared library.
pub fn catalog() -> Vec<XidInfo> {
    gpu_diag::kernel_log::nvidia_catalog::entries()
        .iter()
        .map(|e| {
            let applies = |i: usize| e.applies[i];
            XidInfo {
                code: e.code,
                name: e.mnemonic.clone(),
                description: e.description.clone(),
                entry: serde_json::json!({
                    "code": e.code,
                    "mnemonic": e.mnemonic,
                    "description": e.description,
                    "applies_to": {
                        "a100": applies(0), "h100": applies(1), "b100": applies(2), "gb200": applies(3),
                    },
                    "immediate_action": e.immediate_action,
                    "investigatory_action": e.investigatory_action,
                    "xid154_linkage": e.xid154_linkage,
                    "driver_only": e.is_driver_only(),
                    "unused": e.is_unused(),
                }),
            }
        })
        .collect()
}

pub fn list(reports: &crate::mcp::framework::reports::ReportStore) -> Vec<Resource> {
    let kept = reports.list().into_iter().map(|(uri, node, tool, bytes)| {
        Resource::new(uri, format!("{tool}-{node}"))
            .with_title(format!("Full probe report of {tool} on {node}"))
            .with_description(format!(
                "The whole report node-probe returned ({bytes} bytes of JSON); the tool's answer summarises it."
            ))
            .with_mime_type("application/json")
    });
    let mut out = vec![
        Resource::new(INDEX_URI, "xid-catalog")
            .with_title("NVIDIA XID catalog (index)")
            .with_description(
                "Every XID code NVIDIA documents, with its name and one-line meaning. Read \
                 xid://catalog/{code} for one code's cause and required action.",
            )
            .with_mime_type("text/markdown"),
    ];
    out.extend(kept);
    out
}

pub fn templates() -> Vec<ResourceTemplate> {
    let mut t = ResourceTemplate::new(TEMPLATE, "xid-code");
    t.title = Some("One NVIDIA XID code".into());
    t.description = Some(
        "What an XID code means, its likely cause and the action NVIDIA requires, e.g. \
         xid://catalog/79 for 'GPU has fallen off the bus'."
            .into(),
    );
    t.mime_type = Some("application/json".into());
    vec![t]
}

pub fn read(
    reports: &crate::mcp::framework::reports::ReportStore,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    if uri.starts_with(crate::mcp::framework::reports::SCHEME) {
        return match reports.get(uri) {
            // A chart (`watch_gpus`) is kept as its PNG in base64.
            Some(png) if uri.ends_with(".png") => Ok(ReadResourceResult::new(vec![
                ResourceContents::blob(png, uri).with_mime_type("image/png"),
            ])),
            Some(json) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(json, uri).with_mime_type("application/json"),
            ])),
            None => Err(ErrorData::resource_not_found(
                reports.why_unknown(uri),
                None,
            )),
        };
    }
    let entries = catalog();
    if uri == INDEX_URI || uri == "xid://catalog/" {
        let mut text =
            String::from("# NVIDIA XID catalog\n\n| XID | name | meaning |\n|---|---|---|\n");
        for e in &entries {
            text.push_str(&format!(
                "| {} | {} | {} |\n",
                e.code, e.name, e.description
            ));
        }
        return Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type("text/markdown"),
        ]));
    }
    let Some(code) = uri.strip_prefix("xid://catalog/") else {
        return Err(ErrorData::resource_not_found(
            format!("unknown resource `{uri}`; use xid://catalog or xid://catalog/{{code}}"),
            None,
        ));
    };
    let code: u32 = code.parse().map_err(|_| {
        ErrorData::invalid_params(
            format!("`{code}` is not an XID number; use e.g. xid://catalog/79"),
            None,
        )
    })?;
    let Some(e) = entries.iter().find(|e| e.code == code) else {
        return Err(ErrorData::resource_not_found(
            format!(
                "XID {code} is not in NVIDIA's catalog; read xid://catalog for the known codes"
            ),
            None,
        ));
    };
    let text = serde_json::to_string_pretty(e).unwrap_or_default();
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ]))
}
