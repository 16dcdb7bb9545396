//! Where the Prometheus is: `--prometheus` (or `K8S_GPU_MCP_PROMETHEUS`) names a URL or a Service, `off`
//! reads none, and without it the cluster's own is looked for ([`super::discover`]). Only the launcher's
//! user names it: no tool argument does (tool arguments may come from injected text, and a URL there would
//! let it make the launcher fetch any address it reaches).

use std::fmt;

/// What `--prometheus` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrometheusSetting {
    /// Not given: look for the cluster's own through the API server.
    #[default]
    Discover,
    /// `off`: read no history.
    Off,
    /// `http(s)://HOST[:PORT][/PREFIX]`, fetched directly from this machine.
    Url(PromUrl),
    /// `NAMESPACE/[https:]NAME[:PORT]`: a Service, read through the API server's service proxy as the person.
    Service(ServiceRef),
}

/// A Prometheus URL as given: scheme, authority and path prefix, no credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromUrl {
    pub https: bool,
    pub authority: String,
    /// `""` or `/prefix` without a trailing slash (a Prometheus behind a path, `--web.route-prefix`).
    pub prefix: String,
}

impl fmt::Display for PromUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.prefix)
    }
}

/// A Service the API server proxies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub https: bool,
    /// A port's name or number; empty for the Service's only port.
    pub port: String,
}

impl ServiceRef {
    /// The API server's proxy path to the Service's root, without a trailing slash.
    pub fn proxy_path(&self) -> String {
        let scheme = if self.https { "https:" } else { "" };
        let port = if self.port.is_empty() {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!(
            "/api/v1/namespaces/{}/services/{scheme}{}{port}/proxy",
            self.namespace, self.name
        )
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https:" } else { "" };
        let port = if self.port.is_empty() {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        write!(f, "{}/{scheme}{}{port}", self.namespace, self.name)
    }
}

impl fmt::Display for PrometheusSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrometheusSetting::Discover => f.write_str("auto"),
            PrometheusSetting::Off => f.write_str("off"),
            PrometheusSetting::Url(u) => u.fmt(f),
            PrometheusSetting::Service(s) => s.fmt(f),
        }
    }
}

/// An RFC 1123 label (a namespace, a Service's name, a port's name).
fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_host(s: &str) -> bool {
    let host = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                return addr.parse::<std::net::Ipv6Addr>().is_ok()
                    && (rest.is_empty() || is_port(rest.strip_prefix(':').unwrap_or("x")));
            }
            None => return false,
        },
        None => s,
    };
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && port.is_none_or(is_port)
}

fn is_port(p: &str) -> bool {
    p.parse::<u16>().is_ok_and(|n| n > 0)
}

impl std::str::FromStr for PrometheusSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "auto" {
            return Ok(PrometheusSetting::Discover);
        }
        if s == "off" {
            return Ok(PrometheusSetting::Off);
        }
        if s.len() > 1024 || s.chars().any(char::is_control) {
            return Err("is longer than 1024 characters or holds a control character".into());
        }
        let url_form = |https: bool, rest: &str| -> Result<PrometheusSetting, String> {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if authority.contains('@') {
                return Err(
                    "must not carry credentials (user:password@): they would be shown in answers"
                        .into(),
                );
            }
            if !is_host(authority) {
                return Err(format!("`{authority}` is not a host[:port]"));
            }
            if path.contains(['?', '#']) {
                return Err("must not carry a query or a fragment".into());
            }
            let prefix = path.trim_end_matches('/');
            if !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            {
                return Err(format!(
                    "path `{prefix}` holds characters a path prefix does not need"
                ));
            }
            Ok(PrometheusSetting::Url(PromUrl {
                https,
                authority: authority.to_string(),
                prefix: prefix.to_string(),
            }))
        };
        if let Some(rest) = s.strip_prefix("http://") {
            return url_form(false, rest);
        }
        if let Some(rest) = s.strip_prefix("https://") {
            return url_form(true, rest);
        }
        let Some((namespace, svc)) = s.split_once('/') else {
            return Err(
                "is neither a URL (http(s)://HOST:PORT) nor a Service (NAMESPACE/NAME[:PORT]), nor `auto` or `off`"
                    .into(),
            );
        };
        let (https, svc) = match svc.strip_prefix("https:") {
            Some(rest) => (true, rest),
            None => (false, svc),
        };
        let (name, port) = svc.split_once(':').unwrap_or((svc, ""));
        if !is_label(namespace)
            || !is_label(name)
            || !(port.is_empty() || is_label(port) || is_port(port))
        {
            return Err(format!(
                "`{s}`: a Service is NAMESPACE/NAME[:PORT] (names in lower case, the port by name or number)"
            ));
        }
        Ok(PrometheusSetting::Service(ServiceRef {
            namespace: namespace.into(),
            name: name.into(),
            https,
            port: port.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_a_service_auto_and_off_and_nothing_else() {
        let url = |s: &str| s.parse::<PrometheusSetting>().map(|p| p.to_string());
        assert_eq!(
            url("http://prometheus.example:9090/").unwrap(),
            "http://prometheus.example:9090"
        );
        assert_eq!(
            url("https://10.0.0.5/prom").unwrap(),
            "https://10.0.0.5/prom"
        );
        assert_eq!(url("http://[::1]:9090").unwrap(), "http://[::1]:9090");
        assert_eq!(
            url("monitoring/prometheus-k8s:web").unwrap(),
            "monitoring/prometheus-k8s:web"
        );
        assert_eq!(
            url("monitoring/https:thanos:10902").unwrap(),
            "monitoring/https:thanos:10902"
        );
        assert_eq!(url("").unwrap(), "auto");
        assert_eq!(url("off").unwrap(), "off");
        for bad in [
            "http://user:pw@prom:9090",
            "http://prom:9090/api?x=1",
            "http://prom:99999",
            "ftp://prom",
            "prom:9090",
            "Monitoring/Prom",
            "monitoring/prom/x",
            "monitoring/../../api",
            "http://prom\n:9090",
            "http://prom:9090/a b",
        ] {
            assert!(bad.parse::<PrometheusSetting>().is_err(), "{bad:?}");
        }
        let PrometheusSetting::Service(s) = "monitoring/https:prom:9091".parse().unwrap() else {
            panic!()
        };
        assert_eq!(
            s.proxy_path(),
            "/api/v1/namespaces/monitoring/services/https:prom:9091/proxy"
        );
    }
}
