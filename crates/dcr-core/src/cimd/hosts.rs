//! Host allow-list and deny-list patterns (`claude.ai`, `*.example.com`), checked before any
//! fetch against the URL's host as the `url` crate normalised it (lower case, IDNA).

use wildmatch::WildMatch;

/// The host patterns of the trust rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostRules {
    allowed: Vec<(String, WildMatch)>,
    denied: Vec<(String, WildMatch)>,
}

fn compile(patterns: &[String]) -> Vec<(String, WildMatch)> {
    patterns
        .iter()
        .map(|p| {
            let p = p.trim().to_ascii_lowercase();
            let m = WildMatch::new(&p);
            (p, m)
        })
        .collect()
}

impl HostRules {
    /// Rules from pattern lists (`*` matches any run of characters, dots included).
    pub(crate) fn new(allowed: &[String], denied: &[String]) -> Self {
        Self {
            allowed: compile(allowed),
            denied: compile(denied),
        }
    }

    /// Whether documents may be fetched from `host`: not denied, and allowed when an
    /// allow-list is configured (an empty allow-list allows every host).
    pub(crate) fn check(&self, host: &str) -> Result<(), String> {
        let host = host.to_ascii_lowercase();
        if let Some((p, _)) = self.denied.iter().find(|(_, m)| m.matches(&host)) {
            return Err(format!(
                "host {host} is denied by the denied_hosts pattern {p:?}"
            ));
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|(_, m)| m.matches(&host)) {
            return Err(format!("host {host} is not in allowed_hosts"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allowed: &[&str], denied: &[&str]) -> HostRules {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        HostRules::new(&s(allowed), &s(denied))
    }

    #[test]
    fn deny_is_checked_first_and_allow_lists_restrict() {
        let r = rules(&["claude.ai", "*.example.com"], &["evil.example.com"]);
        assert!(r.check("claude.ai").is_ok());
        assert!(r.check("a.example.com").is_ok());
        assert!(r.check("a.b.example.com").is_ok());
        assert!(r.check("example.com").is_err());
        assert!(r.check("notexample.com").is_err());
        assert!(r.check("claude.ai.evil.net").is_err());
        assert!(r.check("evil.example.com").unwrap_err().contains("denied"));
        assert!(rules(&[], &[]).check("anything.net").is_ok());
        assert!(
            rules(&["*.Example.COM"], &[])
                .check("A.example.com")
                .is_ok()
        );
    }
}
