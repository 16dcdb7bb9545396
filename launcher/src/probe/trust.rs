//! Which images may run as root on a node.
//!
//! A probe pod is privileged and in the host's PID namespace: whatever runs in it is root on the node. In the
//! default delivery the launcher picks the pod's image from the node's own `status.images`, and anyone who
//! may run a pod can put an image there. So an image is used only when
//! - its repository is from a source the cluster's owner trusts: [`BUILT_IN`] below (read it in one place),
//!   plus `--trust-image PREFIX` / `--trust-images-file FILE`; nothing found on a node widens it;
//! - the node lists it by digest (`repo@sha256:…`, which the kubelet records when it pulls), and the pod runs
//!   it by that digest, never by a tag (a tag can be re-pointed on the node; a digest names the content).
//!
//! The base image is then part of the trusted computing base: its `sh`, coreutils (`head`, `tee`,
//! `sha256sum`, …) and glibc loader run as root with node-probe. The SHA-256 check of node-probe inside it guards the transfer (a cut or
//! altered stream), not against the image: a hostile image could lie about it. See SECURITY.md.

use std::fmt;
use std::path::Path;

/// The built-in trusted sources: a repository prefix (whole path elements) and who publishes there.
/// Only publishers whose namespace no one else can push to, and who build the images node-probe can run in
/// (glibc bases, NVIDIA's CUDA/driver/framework images, AMD's ROCm and Intel's Gaudi bases).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "docker.io/library/",
        "Docker Official Images (Debian, Ubuntu, ...): only Docker's official-images program publishes here",
    ),
    (
        "public.ecr.aws/docker/library/",
        "AWS's ECR Public copy of the Docker Official Images",
    ),
    (
        "mirror.gcr.io/library/",
        "Google's mirror of the Docker Official Images",
    ),
    (
        "nvcr.io/nvidia/",
        "NVIDIA's own NGC namespace (CUDA, the GPU Operator's driver, NGC frameworks)",
    ),
    (
        "docker.io/nvidia/",
        "NVIDIA's own Docker Hub namespace (CUDA)",
    ),
    (
        "docker.io/rocm/test-runner",
        "AMD's own Docker Hub namespace, this one repository: the GPU Operator's test runner (ROCm Validation \
         Suite), the base of run_gpu_diagnostic on AMD nodes only (not a base of other probes)",
    ),
    (
        "docker.io/rocm/dev-ubuntu-20.04",
        "AMD's own Docker Hub namespace, this one repository: ROCm on Ubuntu 20.04 (ROCm/ROCm-docker \
         dev/Dockerfile-ubuntu-20.04), a base on AMD nodes",
    ),
    (
        "docker.io/rocm/dev-ubuntu-22.04",
        "AMD's own Docker Hub namespace, this one repository: ROCm on Ubuntu 22.04 (ROCm/ROCm-docker \
         dev/Dockerfile-ubuntu-22.04), a base on AMD nodes",
    ),
    (
        "docker.io/rocm/dev-ubuntu-24.04",
        "AMD's own Docker Hub namespace, this one repository: ROCm on Ubuntu 24.04 (ROCm/ROCm-docker \
         dev/Dockerfile-ubuntu-24.04), a base on AMD nodes",
    ),
    (
        "vault.habana.ai/gaudi-docker/",
        "Intel's own Habana registry, its Gaudi software images (HabanaAI/Setup_and_Install dockerfiles): \
         only Intel publishes here",
    ),
    (
        "registry.access.redhat.com/",
        "Red Hat's registry (UBI): only Red Hat publishes here",
    ),
    (
        "registry.redhat.io/",
        "Red Hat's authenticated registry: only Red Hat publishes here",
    ),
];

/// Registries where anyone can push: only a namespace in them can be trusted, never the whole registry.
const PUBLIC_REGISTRIES: &[&str] = &[
    "docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "nvcr.io",
    "public.ecr.aws",
    "registry.gitlab.com",
    "mcr.microsoft.com",
    "mirror.gcr.io",
];

/// A parsed image reference, normalised as the kubelet and container runtimes do
/// (`debian` = `docker.io/library/debian`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/path/name`, lowercase, with the default registry filled in.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` (or another algorithm).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Whether `a` and `b` name the same image as the kubelet resolves them: after the registry defaults
    /// (`busybox` = `docker.io/library/busybox`), with no tag meaning `latest`, and a digest naming the image
    /// whatever the tag. An unparsable reference names nothing.
    pub fn same_image(a: &str, b: &str) -> bool {
        let resolved = |s: &str| {
            ImageRef::parse(s).ok().map(|mut r| {
                if r.digest.is_some() {
                    r.tag = None;
                } else if r.tag.is_none() {
                    r.tag = Some("latest".into());
                }
                r
            })
        };
        matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
    }

    /// Parse and check a reference. Anything outside the reference grammar is refused, so a name from a
    /// hostile node can neither match a prefix by accident nor carry odd bytes into a pod spec or a message.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.is_empty() || s.len() > 512 {
            return Err(format!(
                "image reference of {} bytes (1 to 512 expected)",
                s.len()
            ));
        }
        let bad = |why: &str| Err(format!("image reference {s:?}: {why}"));
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            let Some((alg, hex)) = d.split_once(':') else {
                return bad("digest without algorithm");
            };
            let len = match alg {
                "sha256" => 64,
                "sha512" => 128,
                _ => return bad("digest algorithm other than sha256/sha512"),
            };
            if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return bad("malformed digest");
            }
        }
        // A tag follows the last ':' after the last '/' (a registry's port has a '/' after it).
        let (repo, tag) = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
            _ => (name, None),
        };
        if let Some(t) = tag
            && (t.is_empty()
                || t.len() > 128
                || t.starts_with(['.', '-'])
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
        {
            return bad("malformed tag");
        }
        let mut parts: Vec<&str> = repo.split('/').collect();
        let first = parts[0];
        let has_registry =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        let registry = if has_registry {
            let r = parts.remove(0);
            if !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            {
                return bad("malformed registry");
            }
            let r = r.to_ascii_lowercase();
            if r == "index.docker.io" || r == "registry-1.docker.io" {
                "docker.io".to_string()
            } else {
                r
            }
        } else {
            "docker.io".to_string()
        };
        if registry == "docker.io" && parts.len() == 1 {
            parts.insert(0, "library");
        }
        for p in &parts {
            let ok = !p.is_empty()
                && p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && p.as_bytes()[0].is_ascii_alphanumeric()
                && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric();
            if !ok {
                return bad("malformed repository path (lowercase letters, digits, . _ - only)");
            }
        }
        Ok(ImageRef {
            repository: format!("{registry}/{}", parts.join("/")),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// One trusted source: a repository prefix, or one exact image by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Normalised repository prefix; ends with '/' for a namespace, else a whole repository.
    prefix: String,
    /// Set for `repo@sha256:…`: only that content.
    digest: Option<String>,
    pub why: String,
}

impl Source {
    /// Parse an owner's `--trust-image` value: `registry/namespace/` (everything below it), `registry/` (a
    /// whole private registry), `registry/namespace/repo` (that repository) or `registry/…/repo@sha256:…`
    /// (that image only). The registry must be explicit: a bare `debian` or `*` would trust whatever the node
    /// resolved it to; and a whole public registry, where anyone can push, is refused.
    pub fn parse(s: &str, why: &str) -> Result<Source, String> {
        let s = s.trim();
        let refuse = |why: &str| {
            Err(format!(
                "--trust-image {s:?}: {why} (expected REGISTRY/NAMESPACE/, REGISTRY/NAMESPACE/REPO or \
                 REGISTRY/.../REPO@sha256:DIGEST)"
            ))
        };
        let namespace = s.ends_with('/');
        let body = s.trim_end_matches('/');
        let (name, digest) = match body.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let mut parts: Vec<String> = name.split('/').map(str::to_string).collect();
        let first = parts[0].to_ascii_lowercase();
        if !(first.contains('.') || first.contains(':') || first == "localhost") {
            return refuse("name the registry explicitly");
        }
        parts[0] = match first.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
            _ => first,
        };
        if parts.len() == 1 {
            if !namespace || digest.is_some() {
                return refuse("a registry alone is trusted as REGISTRY/ only");
            }
            if PUBLIC_REGISTRIES.contains(&parts[0].as_str()) {
                return refuse("anyone can push to this public registry: name a namespace in it");
            }
        }
        if namespace && digest.is_some() {
            return refuse("a digest names one image, not a namespace");
        }
        if parts.last().is_some_and(|p| p.contains(':')) && parts.len() > 1 {
            return refuse("a tag can be re-pointed; trust a repository or a digest");
        }
        // The path and the digest must be what a reference may hold.
        let probe = format!(
            "{}/x{}",
            parts.join("/"),
            digest.map(|d| format!("@{d}")).unwrap_or_default()
        );
        if let Err(e) = ImageRef::parse(&probe) {
            return refuse(&e);
        }
        let prefix = parts.join("/");
        Ok(Source {
            prefix: if namespace {
                format!("{prefix}/")
            } else {
                prefix
            },
            digest: digest.map(str::to_string),
            why: why.to_string(),
        })
    }

    fn matches(&self, r: &ImageRef) -> bool {
        let repo_ok = if self.prefix.ends_with('/') {
            r.repository.starts_with(&self.prefix)
        } else {
            r.repository == self.prefix
        };
        repo_ok
            && self
                .digest
                .as_ref()
                .is_none_or(|d| r.digest.as_ref() == Some(d))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The sources this launcher trusts: the built-in list and the owner's additions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    sources: Vec<Source>,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            sources: BUILT_IN
                .iter()
                .map(|(p, why)| Source::parse(p, why).expect("built-in trusted source"))
                .collect(),
        }
    }
}

impl TrustPolicy {
    /// The built-in list plus `extra` (`--trust-image`) and the prefixes in `file` (`--trust-images-file`:
    /// one per line, `#` comments).
    pub fn with(extra: &[String], file: Option<&Path>) -> Result<TrustPolicy, String> {
        let mut p = TrustPolicy::default();
        for e in extra.iter().filter(|e| !e.trim().is_empty()) {
            p.sources.push(Source::parse(e, "--trust-image")?);
        }
        if let Some(f) = file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("--trust-images-file {}: {e}", f.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let why = format!("{}:{}", f.display(), i + 1);
                p.sources
                    .push(Source::parse(line, &why).map_err(|e| format!("{why}: {e}"))?);
            }
        }
        Ok(p)
    }

    /// Each source as a prefix of the `repo@sha256:…` references it vouches for (what the admission policies
    /// of deploy/policies.yaml compare a pod's image with): `registry/namespace/`, `registry/…/repo@` or the
    /// whole `registry/…/repo@sha256:…`.
    pub fn reference_prefixes(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|s| match &s.digest {
                Some(d) => format!("{}@{d}", s.prefix),
                None if s.prefix.ends_with('/') => s.prefix.clone(),
                None => format!("{}@", s.prefix),
            })
            .collect()
    }

    /// The source that vouches for `r`, if any.
    pub fn source_of(&self, r: &ImageRef) -> Option<&Source> {
        self.sources.iter().find(|s| s.matches(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn image_references_match_after_registry_defaults() {
        assert!(ImageRef::same_image(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(ImageRef::same_image(
            "nvidia/cuda:12.4",
            "docker.io/nvidia/cuda:12.4"
        ));
        assert!(ImageRef::same_image(
            "localhost:5000/x:1",
            "localhost:5000/x:1"
        ));
        assert!(!ImageRef::same_image("ghcr.io/a/b:v1", "ghcr.io/a/b:v2"));
        assert!(!ImageRef::same_image("busybox:1.36", "busybox"));
    }

    #[test]
    fn references_are_normalised_as_the_kubelet_does() {
        assert_eq!(r("debian").repository, "docker.io/library/debian");
        assert_eq!(r("debian:12").to_string(), "docker.io/library/debian:12");
        assert_eq!(
            r("index.docker.io/nvidia/cuda:12.4.1-base-ubuntu22.04").repository,
            "docker.io/nvidia/cuda"
        );
        assert_eq!(
            r("localhost:5000/x/y:1.0").to_string(),
            "localhost:5000/x/y:1.0"
        );
        let d = format!("nvcr.io/nvidia/driver@sha256:{}", "a".repeat(64));
        assert_eq!(
            r(&d).digest.as_deref(),
            Some(&*format!("sha256:{}", "a".repeat(64)))
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            "Docker.io/Library/Debian",
            "docker.io/library/debian:bookworm;rm -rf /",
            "docker.io/library/debian@sha256:abcd",
            "docker.io/library/debian@md5:00",
            "docker.io/library/../debian",
            "docker.io//debian",
            "docker.io/library/debian\n:x",
            "evil.example/$(id)/debian",
            &"a/".repeat(300),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_built_in_list_trusts_publishers_not_names() {
        let p = TrustPolicy::default();
        let digest = format!("@sha256:{}", "0".repeat(64));
        for ok in [
            "docker.io/library/debian:bookworm",
            "debian:bookworm",
            "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
            "nvcr.io/nvidia/driver:550.54.15-ubuntu22.04",
            "registry.access.redhat.com/ubi9/ubi:9.4",
            "public.ecr.aws/docker/library/ubuntu:24.04",
        ] {
            assert!(p.source_of(&r(ok)).is_some(), "{ok} not trusted");
            assert!(
                p.source_of(&r(&format!("{}{digest}", r(ok).repository)))
                    .is_some(),
                "{ok} by digest not trusted"
            );
        }
        for no in [
            // Named like a trusted base, from anywhere else.
            "registry.example.com/library/debian:bookworm",
            "registry.example.com/team/debian:bookworm",
            "docker.io/team/debian:bookworm",
            "nvcr.io/someorg/nvidia/cuda:12",
            "ghcr.io/nvidia/cuda:12",
            "docker.io/libraryx/debian:12",
            "nvcr.io.evil.example/nvidia/cuda:12",
            "public.ecr.aws/docker/libraryx/debian:12",
        ] {
            assert!(p.source_of(&r(no)).is_none(), "{no} trusted");
        }
    }

    #[test]
    fn owners_add_namespaces_repositories_or_single_images() {
        let d = "0".repeat(64);
        let p = TrustPolicy::with(
            &[
                "registry.corp.example/base/".into(),
                "registry.corp.example/tools/debian".into(),
                format!("quay.io/acme/ubuntu@sha256:{d}"),
            ],
            None,
        )
        .unwrap();
        assert!(
            p.source_of(&r("registry.corp.example/base/debian:12"))
                .is_some()
        );
        assert!(
            p.source_of(&r("registry.corp.example/base/x/y:1"))
                .is_some()
        );
        assert!(
            p.source_of(&r("registry.corp.example/tools/debian:12"))
                .is_some()
        );
        assert!(
            p.source_of(&r("registry.corp.example/tools/debian-extra:12"))
                .is_none()
        );
        assert!(
            p.source_of(&r("registry.corp.example/basement/x:1"))
                .is_none()
        );
        assert!(
            p.source_of(&r(&format!("quay.io/acme/ubuntu@sha256:{d}")))
                .is_some()
        );
        assert!(
            p.source_of(&r(&format!(
                "quay.io/acme/ubuntu@sha256:{}",
                "1".repeat(64)
            )))
            .is_none()
        );
        assert_eq!(p.sources.len() - BUILT_IN.len(), 3, "the owner's additions");
    }

    #[test]
    fn owners_cannot_trust_everything_by_accident() {
        for bad in [
            "*",
            "",
            "debian",
            "library/debian",
            "docker.io",
            "docker.io/",
            "ghcr.io/",
            "index.docker.io/",
            "docker.io/library/debian:bookworm",
            "registry.example.com/x/@sha256:00",
        ] {
            if bad.is_empty() {
                continue;
            }
            assert!(Source::parse(bad, "t").is_err(), "{bad:?} accepted");
        }
        // A private registry as a whole is the owner's to trust.
        let p = TrustPolicy::with(&["registry.corp.example/".into()], None).unwrap();
        assert!(
            p.source_of(&r("registry.corp.example/any/debian:1"))
                .is_some()
        );
    }

    #[test]
    fn a_trust_file_has_one_prefix_a_line_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("trusted");
        std::fs::write(&f, "# our mirror\nregistry.corp.example/base/  # bases\n\n").unwrap();
        let p = TrustPolicy::with(&[], Some(&f)).unwrap();
        assert!(
            p.source_of(&r("registry.corp.example/base/debian:12"))
                .is_some()
        );
        std::fs::write(&f, "registry.corp.example/base/\ndebian\n").unwrap();
        let e = TrustPolicy::with(&[], Some(&f)).unwrap_err();
        assert!(e.contains(":2:"), "{e}");
    }
}
