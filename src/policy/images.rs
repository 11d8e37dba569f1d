//! Image references as container runtimes read them, and the approved audit sidecar images.
//!
//! An image is approved by its registry AND repository path, never by a path alone: a
//! look-alike `evil.example.com/fluent/fluent-bit` is not Fluent Bit. References and patterns are
//! both normalized the way Docker and containerd normalize a reference before pulling
//! (distribution's `ParseNormalizedNamed`): a first path segment without `.` or `:` that is not
//! `localhost` is a Docker Hub repository (`fluent/fluent-bit` = `docker.io/fluent/fluent-bit`,
//! `nginx` = `docker.io/library/nginx`), `index.docker.io` is `docker.io`, and the tag and digest
//! are dropped.

/// The registry Docker Hub short names resolve to.
const DOCKER_HUB: &str = "docker.io";

/// The repository part of an image reference: without `@digest` and `:tag`.
pub fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    }
}

/// Does this first path segment name a registry (a host name with a dot, a port, `localhost`)?
fn is_registry(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

/// The fully qualified repository a runtime pulls for this reference: `registry/path`, without
/// tag or digest, Docker Hub short names expanded, the registry lower-cased.
pub fn normalize_image(image: &str) -> String {
    // Built with one allocation (this runs for every container of every review).
    const LIBRARY: &str = "docker.io/library/";
    let repo = image_repository(image.trim());
    let joined = |prefix: &str, rest: &str| {
        let mut out = String::with_capacity(prefix.len() + rest.len());
        out.push_str(prefix);
        out.push_str(rest);
        out
    };
    match repo.split_once('/') {
        Some((first, rest)) if is_registry(first) => {
            let hub = first.eq_ignore_ascii_case(DOCKER_HUB)
                || first.eq_ignore_ascii_case("index.docker.io");
            if hub && !rest.contains('/') {
                joined(LIBRARY, rest)
            } else if hub {
                joined("docker.io/", rest)
            } else {
                let mut out = String::with_capacity(repo.len());
                out.push_str(first);
                out.make_ascii_lowercase();
                out.push('/');
                out.push_str(rest);
                out
            }
        }
        Some(_) => joined("docker.io/", repo),
        None => joined(LIBRARY, repo),
    }
}

/// An approved-image pattern as matched: a pattern is read like an image reference, so one
/// without a registry is a Docker Hub repository. A first segment holding a glob character names
/// a registry pattern (`**/fluent/fluent-bit` matches it on any registry: an explicit choice).
pub fn normalize_pattern(pattern: &str) -> String {
    let p = pattern.trim();
    let first = p.split('/').next().unwrap_or(p);
    if p.contains('/') && first.contains(['*', '?', '[', '{']) {
        return p.to_string();
    }
    normalize_image(p)
}

/// Is the image pinned by a sha256 digest?
pub fn image_has_digest(image: &str) -> bool {
    image
        .split_once("@sha256:")
        .is_some_and(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The default approved audit sidecar images: the upstream projects' own registries (and their
/// official Docker Hub, ECR Public and Elastic copies), fully qualified.
pub fn default_sidecar_images() -> Vec<String> {
    [
        // Fluent Bit: Docker Hub, the project's registry and its GitHub packages.
        "docker.io/fluent/fluent-bit",
        "cr.fluentbit.io/fluent/fluent-bit",
        "ghcr.io/fluent/fluent-bit",
        // AWS for Fluent Bit (ECR Public and its Docker Hub copy).
        "public.ecr.aws/aws-observability/aws-for-fluent-bit",
        "docker.io/amazon/aws-for-fluent-bit",
        "docker.io/bitnami/fluent-bit",
        // Fluentd.
        "docker.io/fluent/fluentd",
        "docker.io/bitnami/fluentd",
        // Vector.
        "docker.io/timberio/vector",
        // OpenTelemetry Collector distributions (Docker Hub and GitHub packages) and ADOT.
        "docker.io/otel/opentelemetry-collector",
        "docker.io/otel/opentelemetry-collector-contrib",
        "docker.io/otel/opentelemetry-collector-k8s",
        "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector",
        "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib",
        "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-k8s",
        "public.ecr.aws/aws-observability/aws-otel-collector",
        // Grafana Promtail and Alloy.
        "docker.io/grafana/promtail",
        "docker.io/grafana/alloy",
        // Elastic Filebeat.
        "docker.elastic.co/beats/filebeat",
        "docker.io/elastic/filebeat",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalize_as_container_runtimes_do() {
        for (image, want) in [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.27", "docker.io/library/nginx"),
            ("fluent/fluent-bit:3.1", "docker.io/fluent/fluent-bit"),
            ("docker.io/fluent/fluent-bit", "docker.io/fluent/fluent-bit"),
            ("index.docker.io/fluent/fluent-bit@sha256:00", "docker.io/fluent/fluent-bit"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("Docker.IO/fluent/fluent-bit", "docker.io/fluent/fluent-bit"),
            ("Index.Docker.IO/nginx:1", "docker.io/library/nginx"),
            ("Registry.Example.COM/Team/App", "registry.example.com/Team/App"),
            ("  nginx  ", "docker.io/library/nginx"),
            ("localhost/app", "localhost/app"),
            ("localhost:5000/app:1", "localhost:5000/app"),
            ("registry.example.com:5000/a/b:2@sha256:1", "registry.example.com:5000/a/b"),
            (
                "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib:0.110.0",
                "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib",
            ),
        ] {
            assert_eq!(normalize_image(image), want, "{image}");
        }
        assert_eq!(
            normalize_pattern("fluent/fluent-bit"),
            "docker.io/fluent/fluent-bit"
        );
        assert_eq!(
            normalize_pattern("**/fluent/fluent-bit"),
            "**/fluent/fluent-bit"
        );
        assert_eq!(
            normalize_pattern("mirror.example.com/**"),
            "mirror.example.com/**"
        );
        assert_eq!(
            image_repository("localhost:5000/app:1"),
            "localhost:5000/app"
        );
        assert_eq!(image_repository("localhost:5000/app"), "localhost:5000/app");
        assert!(!image_has_digest("fluent/fluent-bit:3"));
    }
}
