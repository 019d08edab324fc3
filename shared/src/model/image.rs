//! Container image references: which part is the proxy or control-plane version.

/// Image variants Istio publishes as a tag suffix (`1.27.4-distroless`).
const VARIANTS: [&str; 2] = ["distroless", "debug"];

/// A parsed `<hub>/<name>:<tag>[-variant]` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    /// The tag as written, `None` for a digest-only or untagged reference.
    pub tag: Option<String>,
    /// The tag without its variant suffix.
    pub version: Option<String>,
    pub variant: Option<String>,
}

impl ImageRef {
    pub fn parse(image: &str) -> ImageRef {
        let without_digest = image.split('@').next().unwrap_or(image);
        // A colon after the last slash separates the tag; one before it is a registry port.
        let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match without_digest[last_slash..].rfind(':') {
            Some(i) => (
                without_digest[..last_slash + i].to_string(),
                Some(without_digest[last_slash + i + 1..].to_string()),
            ),
            None => (without_digest.to_string(), None),
        };
        let (version, variant) = match &tag {
            Some(t) => split_variant(t),
            None => (None, None),
        };
        ImageRef {
            repository,
            tag,
            version,
            variant,
        }
    }

    /// The last path element of the repository: `proxyv2`, `pilot`.
    pub fn name(&self) -> &str {
        self.repository.rsplit('/').next().unwrap_or(&self.repository)
    }
}

fn split_variant(tag: &str) -> (Option<String>, Option<String>) {
    for v in VARIANTS {
        if let Some(base) = tag.strip_suffix(v).and_then(|b| b.strip_suffix('-')) {
            return (Some(base.to_string()), Some(v.to_string()));
        }
    }
    (Some(tag.to_string()), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hub_tag_and_variant() {
        let i = ImageRef::parse("docker.io/istio/proxyv2:1.27.4-distroless");
        assert_eq!(i.repository, "docker.io/istio/proxyv2");
        assert_eq!(i.name(), "proxyv2");
        assert_eq!(i.version.as_deref(), Some("1.27.4"));
        assert_eq!(i.variant.as_deref(), Some("distroless"));
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        let i = ImageRef::parse("registry.local:5000/istio/pilot:1.28.3");
        assert_eq!(i.repository, "registry.local:5000/istio/pilot");
        assert_eq!(i.version.as_deref(), Some("1.28.3"));
        let untagged = ImageRef::parse("registry.local:5000/istio/pilot");
        assert_eq!(untagged.tag, None);
    }

    #[test]
    fn digest_and_prerelease() {
        let i = ImageRef::parse("gcr.io/istio-release/proxyv2:1.28.0-beta.1@sha256:abc");
        assert_eq!(i.version.as_deref(), Some("1.28.0-beta.1"));
        assert_eq!(i.variant, None);
        assert_eq!(ImageRef::parse("auto").version, None);
    }
}
