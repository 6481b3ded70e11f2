//! `docker://[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST]`, normalised as Docker does: the default
//! registry is Docker Hub (`registry-1.docker.io`), official images live under `library/`, the
//! default tag is `latest`.
use super::DockerError;

pub const DOCKER_HUB: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    pub registry: String,
    pub repository: String,
    /// A tag, or a `sha256:` digest.
    pub reference: String,
}

impl DockerRef {
    /// Parses what follows `docker://` (or `docker:`).
    pub fn parse(s: &str) -> Result<DockerRef, DockerError> {
        let bad = || DockerError::BadReference(s.to_string());
        let s = s.trim_start_matches('/');
        if s.is_empty() || s.contains("://") || s.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path)
            }
            _ => (DOCKER_HUB.to_string(), rest),
        };
        let (path, tag) = match path.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (path, None),
        };
        let mut repository = path.to_string();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad());
        }
        let reference = match (digest, tag) {
            (Some(d), _) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    return Err(bad());
                }
                d.to_string()
            }
            (None, Some(t)) => {
                if t.is_empty()
                    || t.len() > 128
                    || !t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    return Err(bad());
                }
                t.to_string()
            }
            (None, None) => "latest".to_string(),
        };
        Ok(DockerRef {
            registry,
            repository,
            reference,
        })
    }

    /// `registry/repository:tag` (or `@digest`): the key the store remembers the image by.
    pub fn canonical(&self) -> String {
        let sep = if self.is_digest() { '@' } else { ':' };
        format!(
            "{}/{}{sep}{}",
            self.registry, self.repository, self.reference
        )
    }

    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }

    /// The tag, or `latest` for a digest reference.
    pub fn tag(&self) -> &str {
        if self.is_digest() {
            "latest"
        } else {
            &self.reference
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_as_docker_does() {
        let r = DockerRef::parse("busybox").unwrap();
        assert_eq!(r.canonical(), "registry-1.docker.io/library/busybox:latest");
        let r = DockerRef::parse("quay.io/coreos/etcd:v2.0.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag()),
            ("quay.io", "coreos/etcd", "v2.0.0")
        );
        let r = DockerRef::parse("127.0.0.1:5000/test/img:1.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "test/img");
        let d = format!("localhost:5000/a@sha256:{}", "a".repeat(64));
        let r = DockerRef::parse(&d).unwrap();
        assert!(r.is_digest());
        assert_eq!(r.canonical(), d);
        for bad in ["", "Upper/Case", "a/../b", "x:", "a b", "a@md5:1"] {
            assert!(DockerRef::parse(bad).is_err(), "{bad}");
        }
    }
}
