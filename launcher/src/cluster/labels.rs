//! What marks the objects the launcher writes to the cluster (probe pods, audit events): the managed-by
//! label, label values made safe, and the launcher's host name.

/// Value of `app.kubernetes.io/managed-by` on everything the launcher creates; the sweep selects on it.
pub const MANAGED_BY: &str = "k8s-gpu-mcp";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// A label value: at most 63 chars of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
pub fn label_value(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The launcher's host name, best effort (annotation only).
pub fn launcher_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}
