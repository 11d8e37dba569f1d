//! Memory for request bodies: what phi-guard buffers is bounded by configuration.

use std::sync::Arc;

use crate::telemetry::Metrics;

/// The API server's own request body limit; AdmissionReviews are never bigger.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Reviews up to this size are judged on the async worker that received them (a Deployment
/// with its managedFields is 5-40 KiB); larger ones on the blocking pool.
pub(crate) const INLINE_MAX_BYTES: usize = 64 * 1024;

/// Memory for request bodies, reserved before a body is read and released when the work on its
/// review ends (after a 408 too: a judgment that outlives its request keeps its room), so what phi-guard buffers is bounded by configuration, not by traffic: a flood of
/// large or stalled bodies waits (and times out, 408) instead of growing the heap. Bodies up to
/// [`INLINE_MAX_BYTES`] (every ordinary review) draw on a quarter of the budget of their own, so
/// large bodies never starve them. Large bodies are also judged at most `large_review_slots` at a
/// time (configuration, not the node's core count): their decoded form, not only their bytes, is
/// what costs, so the slots bound that memory whatever node the pod lands on.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    /// KiB permits for bodies up to INLINE_MAX_BYTES.
    small: Arc<tokio::sync::Semaphore>,
    /// KiB permits for larger bodies, and bodies of undeclared length.
    large: Arc<tokio::sync::Semaphore>,
    /// Large reviews being decoded and judged.
    pub(super) judging: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
}

/// What a request holds while its body is in memory.
pub(crate) struct Reserved {
    _bytes: tokio::sync::OwnedSemaphorePermit,
}

impl BodyBudget {
    /// A budget of `bytes` in all (at least one full-size body of each class), and `slots` large
    /// reviews judged at once (at least one).
    pub(crate) fn new(bytes: usize, slots: usize, metrics: Arc<Metrics>) -> BodyBudget {
        let kib = bytes / 1024;
        let small = (kib / 4).max(INLINE_MAX_BYTES / 1024);
        let large = (kib - kib / 4).max(MAX_BODY_BYTES / 1024);
        BodyBudget {
            small: Arc::new(tokio::sync::Semaphore::new(small)),
            large: Arc::new(tokio::sync::Semaphore::new(large)),
            judging: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
            metrics,
        }
    }

    /// Reserve room for a body of `declared` bytes (`None`: undeclared, reserve the maximum).
    /// Waits while the budget is spent; the request timeout bounds the wait.
    pub(super) async fn reserve(&self, declared: Option<u64>) -> Option<Reserved> {
        let len = declared.map_or(MAX_BODY_BYTES, |n| {
            usize::try_from(n).unwrap_or(MAX_BODY_BYTES)
        });
        let pool = if declared.is_some() && len <= INLINE_MAX_BYTES {
            &self.small
        } else {
            &self.large
        };
        let kib = u32::try_from(len.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        let permit = match pool.clone().try_acquire_many_owned(kib) {
            Ok(p) => p,
            Err(_) => {
                self.metrics.body_budget_waits.inc();
                pool.clone().acquire_many_owned(kib).await.ok()?
            }
        };
        Some(Reserved { _bytes: permit })
    }
}
