//! Image references: parsing and normalising like `distribution/reference`, and the
//! sim's rule that every image is present unless its name matches a configured
//! pull-failure pattern.
//!
//! There are no real images: a container's process comes from its command. What this
//! module decides is only which status and events the kubelet would show for an image.

use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// Docker Hub, the default registry for names without a domain.
const DEFAULT_DOMAIN: &str = "docker.io";

static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let path_component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let host = format!(r"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])");
    let domain = format!("{host}(?::[0-9]+)?");
    let name = format!("(?:{domain}/)?{path_component}(?:/{path_component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    let full = format!("^({name})(?::({tag}))?(?:@({digest}))?$");
    Regex::new(&full).expect("the reference grammar is a valid regex")
});

static HEX64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-f0-9]{64}$").expect("literal regex is valid"));

/// A parsed, normalised image reference (`docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `domain/remote-name` without tag or digest.
    pub repository: String,
    /// The tag, `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `algorithm:hex` when the reference pins a digest.
    pub digest: Option<String>,
}

impl Reference {
    /// The name a container runtime reports in `containerStatuses[].image`.
    pub fn status_image(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.repository),
            (None, Some(d)) => format!("{}@{d}", self.repository),
            (None, None) => self.repository.clone(),
        }
    }

    /// A stable fake `imageID` (`repo@sha256:...`) derived from the name, since there
    /// is no image content to hash.
    pub fn image_id(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.repository),
            None => {
                let sum = Sha256::digest(self.status_image().as_bytes());
                format!("{}@sha256:{}", self.repository, hex::encode(sum))
            }
        }
    }
}

/// Parses `image` like `ParseNormalizedNamed` then applies the default `latest` tag.
///
/// The error text is the one the kubelet puts after `couldn't parse image name "x": `.
pub fn parse(image: &str) -> Result<Reference, String> {
    if HEX64.is_match(image) {
        return Err(format!(
            "invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    let (domain, remainder) = split_domain(image);
    let remote = remainder.split(':').next().unwrap_or(&remainder);
    if remote.to_lowercase() != remote {
        return Err(format!(
            "invalid reference format: repository name ({remote}) must be lowercase"
        ));
    }
    let full = format!("{domain}/{remainder}");
    let Some(caps) = REFERENCE.captures(&full) else {
        if full.is_empty() {
            return Err("repository name must have at least one component".into());
        }
        if REFERENCE.is_match(&full.to_lowercase()) {
            return Err("invalid reference format: repository name must be lowercase".into());
        }
        return Err("invalid reference format".into());
    };
    let repository = caps.get(1).map_or("", |m| m.as_str()).to_string();
    if repository.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    let digest = caps.get(3).map(|m| m.as_str().to_string());
    let tag = caps
        .get(2)
        .map(|m| m.as_str().to_string())
        .or_else(|| digest.is_none().then(|| "latest".to_string()));
    Ok(Reference {
        repository,
        tag,
        digest,
    })
}

/// Splits a familiar name into registry domain and remote name, the way
/// `splitDockerDomain` does (`busybox` -> `docker.io`, `library/busybox`).
fn split_domain(name: &str) -> (String, String) {
    let (domain, remote) = match name.split_once('/') {
        None => (DEFAULT_DOMAIN.to_string(), format!("library/{name}")),
        Some((d, r)) => {
            if d == "localhost" || d.contains(['.', ':']) || d.to_lowercase() != d {
                (d.to_string(), r.to_string())
            } else if d == "index.docker.io" {
                (DEFAULT_DOMAIN.to_string(), r.to_string())
            } else {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            }
        }
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("library/{remote}"));
    }
    (domain, remote)
}

/// One configured pull-failure pattern: a glob (`*`, `?`) or, prefixed `re:`, a regex.
#[derive(Debug, Clone)]
pub struct PullFailure(Regex);

impl PullFailure {
    /// Compiles a pattern from the sim config. Globs match the whole image string.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let re = match pattern.strip_prefix("re:") {
            Some(re) => Regex::new(re)?,
            None => {
                let mut s = String::from("^");
                for c in pattern.chars() {
                    match c {
                        '*' => s.push_str(".*"),
                        '?' => s.push('.'),
                        c => s.push_str(&regex::escape(&c.to_string())),
                    }
                }
                s.push('$');
                Regex::new(&s)?
            }
        };
        Ok(Self(re))
    }

    /// Whether `image` (as written in the pod spec) matches this pattern.
    pub fn matches(&self, image: &str) -> bool {
        self.0.is_match(image)
    }
}

/// The message a registry would give when the pull fails (container status and event).
pub fn pull_error(reference: &Reference) -> String {
    let name = reference.status_image();
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{name}\": \
         failed to resolve reference \"{name}\": {name}: not found"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_familiar_names() {
        let r = parse("busybox").expect("valid");
        assert_eq!(r.status_image(), "docker.io/library/busybox:latest");
        assert_eq!(
            parse("quay.io/org/app:1.2").expect("valid").status_image(),
            "quay.io/org/app:1.2"
        );
        assert_eq!(
            parse("localhost:5000/app").expect("valid").status_image(),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            parse("bitnami/kubectl:1.30").expect("valid").status_image(),
            "docker.io/bitnami/kubectl:1.30"
        );
        let pinned = format!("alpine@sha256:{}", "a".repeat(64));
        let r = parse(&pinned).expect("valid");
        assert_eq!(r.tag, None);
        assert!(r.image_id().ends_with(&"a".repeat(64)));
    }

    #[test]
    fn rejects_invalid_references_with_the_runtime_words() {
        assert_eq!(
            parse("busyBOX").expect_err("uppercase"),
            "invalid reference format: repository name (library/busyBOX) must be lowercase"
        );
        assert_eq!(
            parse("registry.hub.docker.com/library//nginx:latest").expect_err("empty component"),
            "invalid reference format"
        );
        assert_eq!(parse("a b").expect_err("space"), "invalid reference format");
        assert_eq!(
            parse(":sha-1").expect_err("no name"),
            "invalid reference format"
        );
    }

    #[test]
    fn pull_failure_patterns() {
        let glob = PullFailure::new("*does-not-exist*").expect("valid glob");
        assert!(glob.matches("registry.local/does-not-exist:1"));
        assert!(!glob.matches("busybox"));
        let re = PullFailure::new("re:^private\\.").expect("valid regex");
        assert!(re.matches("private.example/app"));
        assert!(!re.matches("x.private.example/app"));
    }
}
