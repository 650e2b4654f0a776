//! Naming a folder on another machine: `[user@]host:/path` (as scp and rsync do) or
//! `ssh://[user@]host[:port]/path`.

use std::fmt;

/// A folder on another machine, reached over ssh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// As given: absolute, or relative to the login's home folder.
    pub path: String,
}

impl RemoteTarget {
    /// `s` as a remote folder, or `None` for a local path. A local path with a colon is
    /// written with a slash before it (`./a:b`), as with scp. On Windows a drive (`C:\x`,
    /// `Z:x`) or a path with a backslash before the colon is local, as with Windows' scp.
    pub fn parse(s: &str) -> Option<RemoteTarget> {
        RemoteTarget::parse_on(s, cfg!(windows))
    }

    fn parse_on(s: &str, windows: bool) -> Option<RemoteTarget> {
        if let Some(rest) = s.strip_prefix("ssh://") {
            let (authority, path) = rest.split_at(rest.find('/')?);
            let (user, hostport) = split_user(authority);
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.parse().ok()?)),
                None => (hostport, None),
            };
            return RemoteTarget::new(user, host, port, path);
        }
        let colon = s.find(':')?;
        let head = &s[..colon];
        let drive = head.len() == 1 && head.as_bytes()[0].is_ascii_alphabetic();
        if head.contains('/') || (windows && (drive || head.contains('\\'))) {
            return None;
        }
        let (user, host) = split_user(&s[..colon]);
        RemoteTarget::new(user, host, None, &s[colon + 1..])
    }

    fn new(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Option<RemoteTarget> {
        if host.is_empty() || path.is_empty() || host.starts_with('-') {
            return None;
        }
        Some(RemoteTarget {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// What ssh is given to connect: `user@host` or `host`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

fn split_user(s: &str) -> (Option<&str>, &str) {
    match s.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, s),
    }
}

/// The pair's name for it (its state and `status` use this).
impl fmt::Display for RemoteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "ssh://{}:{p}{}", self.destination(), self.path),
            None => write!(f, "{}:{}", self.destination(), self.path),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_16_windows_drives_are_local() {
        for local in [r"Z:\tmp\a", "C:x", r"dir\a:b"] {
            assert_eq!(RemoteTarget::parse_on(local, true), None, "{local}");
        }
        assert_eq!(
            RemoteTarget::parse_on("host:/srv", true).unwrap().host,
            "host"
        );
        // Elsewhere `c:/x` names the host `c`, as scp has it.
        assert_eq!(RemoteTarget::parse_on("c:/x", false).unwrap().host, "c");
    }

    #[test]
    fn remote_names_and_local_paths() {
        let t = RemoteTarget::parse("me@host:/srv/work").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.path.as_str()),
            (Some("me"), "host", "/srv/work")
        );
        let t = RemoteTarget::parse("ssh://me@host:2222/srv/work").unwrap();
        assert_eq!((t.port, t.path.as_str()), (Some(2222), "/srv/work"));
        assert_eq!(t.to_string(), "ssh://me@host:2222/srv/work");
        assert_eq!(
            RemoteTarget::parse("host:work").unwrap().to_string(),
            "host:work"
        );
        for local in ["/a/b", "./a:b", "a/b:c", "plain", ":x", "host:"] {
            assert_eq!(RemoteTarget::parse(local), None, "{local}");
        }
    }
}
