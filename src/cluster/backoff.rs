//! How a failed watch retries, and what `/readyz` says about it.

use std::time::Duration;

use kube::runtime::watcher;

use crate::telemetry::redact;

/// Retry delays of a failed watch, phi-guard's one backoff (the cluster caches, the audit's
/// store, the webhook configuration's watch): 200 ms doubling to 2 s, with jitter. client-go's
/// reflector backs off to 30 s to spare a struggling API server; phi-guard holds about a dozen
/// watches, and every second one stays disconnected after an API server restart is a second its
/// decisions rest on a stale cache.
pub(crate) struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const MIN: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> WatchBackoff {
        WatchBackoff { next: Self::MIN }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // Up to 25 % jitter, so a dozen watches do not retry in lockstep.
        let jitter_ms = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        ) % (u64::try_from(base.as_millis()).unwrap_or(1).max(4) / 4);
        Some(base + Duration::from_millis(jitter_ms))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

/// The API server says the watched resource is not served (404: a CRD uninstalled after its
/// watch started). Not a failure of phi-guard's view: there is nothing to watch, and marking
/// it failing would refuse every PHI creation (the stale-cache guard) until the CRD returns.
pub(crate) fn is_not_served(e: &watcher::Error) -> bool {
    let api = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    };
    api == Some(404)
}

/// Why a watch failed, for `/readyz`: the error's kind and HTTP status, never an object value.
pub(crate) fn watch_error_reason(e: &watcher::Error) -> String {
    let text = e.to_string();
    let text = redact(&text);
    let mut short: String = text.chars().take(160).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff as _;

    #[test]
    fn backoff_doubles_to_two_seconds_and_resets() {
        let mut b = WatchBackoff::new();
        let delays: Vec<Duration> = (0..8).filter_map(|_| b.next()).collect();
        assert!(delays[0] >= Duration::from_millis(200) && delays[0] < Duration::from_millis(250));
        assert!(delays[1] >= Duration::from_millis(400) && delays[1] < Duration::from_millis(500));
        for d in &delays[4..] {
            assert!(
                *d >= Duration::from_secs(2) && *d <= Duration::from_millis(2_500),
                "{d:?}"
            );
        }
        b.reset();
        assert!(b.next().is_some_and(|d| d < Duration::from_millis(250)));
    }

    /// A CRD uninstalled under its watch (404) is not a failing watch; a lost connection or a
    /// 410 is.
    #[test]
    fn a_resource_no_longer_served_is_not_a_failure() {
        use kube::core::Status;
        let status = |code| Status::failure("x", "y").with_code(code).boxed();
        assert!(is_not_served(&watcher::Error::WatchError(status(404))));
        assert!(is_not_served(&watcher::Error::InitialListFailed(
            kube::Error::Api(status(404))
        )));
        assert!(!is_not_served(&watcher::Error::WatchError(status(410))));
        assert!(!is_not_served(&watcher::Error::WatchStartFailed(
            kube::Error::Api(status(503))
        )));
    }
}
