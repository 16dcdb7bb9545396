//! Which kubeconfig the launcher reads and whether an AI host would read the same (`kubeconfig` row), and
//! whether the context's exec credential plugin resolves on a host's short PATH (`credentials` row).

use std::path::{Path, PathBuf};

use super::ReadinessCheck;

/// Which kubeconfig the launcher reads, and which one an AI host would read: hosts start the launcher with
/// their own (minimal) environment, so a `$KUBECONFIG` from the user's shell is not there.
#[derive(Debug, Clone)]
pub struct KubeconfigSource {
    /// The value in use (`--kubeconfig` or `$KUBECONFIG`; may be a `:`-separated list).
    pub path: Option<PathBuf>,
    pub from_env: bool,
    /// `~/.kube/config`, what a host without `$KUBECONFIG` and without `--kubeconfig` reads.
    pub home_default: Option<PathBuf>,
}

impl KubeconfigSource {
    pub fn resolve(flag: Option<&Path>) -> Self {
        let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
        let home_default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"));
        KubeconfigSource {
            path: flag.map(Path::to_path_buf),
            from_env: flag.is_some() && env.as_deref() == flag.map(Path::as_os_str),
            home_default,
        }
    }

    /// The file the launcher reads now (absolute when it exists), for host configuration snippets.
    pub fn effective(&self) -> Option<PathBuf> {
        let p = self.path.clone().or_else(|| self.home_default.clone())?;
        if std::env::split_paths(p.as_os_str()).count() > 1 {
            return Some(p);
        }
        Some(std::fs::canonicalize(&p).unwrap_or(p))
    }

    pub(super) fn describe(&self) -> String {
        match (&self.path, self.from_env) {
            (Some(p), true) => format!("kubeconfig {} (from $KUBECONFIG)", p.display()),
            (Some(p), false) => format!("kubeconfig {} (from --kubeconfig)", p.display()),
            (None, _) => match &self.home_default {
                Some(p) if p.exists() => format!("kubeconfig {}", p.display()),
                _ => "no kubeconfig (in-cluster service account)".into(),
            },
        }
    }

    pub(super) fn check(&self, context: Option<&str>) -> ReadinessCheck {
        let ctx = context.unwrap_or("(in-cluster)");
        let detail = format!("{}, context {ctx}", self.describe());
        let Some(path) = self.path.as_ref().filter(|_| self.from_env) else {
            return ReadinessCheck::ok("kubeconfig", detail);
        };
        // Only $KUBECONFIG is at risk: an AI host started from a desktop does not inherit it.
        let same_as_home = self
            .home_default
            .as_ref()
            .is_some_and(|h| std::fs::canonicalize(h).ok() == std::fs::canonicalize(path).ok());
        if same_as_home {
            return ReadinessCheck::ok("kubeconfig", detail);
        }
        let host_reads = match &self.home_default {
            Some(h) if h.exists() => format!("{} (another file)", h.display()),
            Some(h) => format!("{} (missing)", h.display()),
            None => "no kubeconfig".into(),
        };
        ReadinessCheck::warn(
            "kubeconfig",
            format!("{detail}; an AI host that does not inherit $KUBECONFIG reads {host_reads}"),
            format!(
                "put `--kubeconfig {} --context {ctx}` into the host configuration (k8s-gpu-mcp setup prints it)",
                path.display()
            ),
        )
    }
}

/// An exec credential plugin (`aws`, `gke-gcloud-auth-plugin`, `kubelogin`) named without a path resolves on
/// the PATH of whoever starts the launcher, and AI hosts started from a desktop get a short PATH (macOS:
/// `/usr/bin:/bin:/usr/sbin:/sbin`). None when the context uses no plugin.
pub(super) fn credential_plugin_check(
    source: &KubeconfigSource,
    context: Option<&str>,
) -> Option<ReadinessCheck> {
    let path = source.effective()?;
    let kc = kube::config::Kubeconfig::read_from(&path).ok()?;
    let ctx = context.or(kc.current_context.as_deref())?;
    let user = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let exec = kc
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?
        .exec
        .as_ref()?;
    let cmd = exec.command.as_deref()?;
    let name = "credentials";
    if cmd.contains('/') {
        return Some(ReadinessCheck::ok(
            name,
            format!("exec plugin {cmd} (absolute path)"),
        ));
    }
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    });
    let fix_in = format!("user {user} in {}", path.display());
    Some(match found {
        Some(p)
            if ["/usr/bin", "/bin"]
                .iter()
                .any(|d| p.parent() == Some(Path::new(d))) =>
        {
            ReadinessCheck::ok(name, format!("exec plugin {cmd} at {}", p.display()))
        }
        Some(p) => ReadinessCheck::warn(
            name,
            format!(
                "exec plugin `{cmd}` is {} on your PATH; an AI host started from the desktop may not have that directory on its PATH",
                p.display()
            ),
            format!("set exec.command to {} ({fix_in})", p.display()),
        ),
        None => ReadinessCheck::fail(
            name,
            format!("exec plugin `{cmd}` is not on PATH"),
            format!("install {cmd}, or set exec.command to its absolute path ({fix_in})"),
        ),
    })
}
