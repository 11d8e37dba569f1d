//! Leader election on a `coordination.k8s.io/v1` Lease, so that with several replicas exactly
//! one writes audit results (Lease `phi-guard-audit`) and exactly one restores and corrects the
//! webhook configuration (Lease `phi-guard-webhook-scope`). kube-runtime has no leader election
//! and the crates that add it are small and thinly maintained, so this is the client-go
//! algorithm in a few lines: take the Lease when it is free or its holder has not renewed within
//! the lease duration, renew it well within that duration, and let every write carry the
//! resourceVersion read (optimistic concurrency: two candidates cannot both win).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;

/// How long a holder's claim lasts without renewal.
pub(crate) const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews and candidates retry.
pub(crate) const RETRY: Duration = Duration::from_secs(3);

/// One candidate.
pub(crate) struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl Elector {
    pub(crate) fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
        }
    }

    /// Try to hold the lease now: `Ok(true)` when this candidate holds it after the call.
    pub(crate) async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let spec = |transitions: i32, acquired: Option<MicroTime>| {
            k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(15)),
                acquire_time: acquired.or(Some(MicroTime(now))),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(transitions),
                ..Default::default()
            }
        };
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let cur = current.spec.clone().unwrap_or_default();
        let mine = cur.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&cur.renew_time, cur.lease_duration_seconds) {
            (Some(MicroTime(t)), Some(d)) => {
                let age = now.duration_since(*t);
                age.as_secs() > i64::from(d)
            }
            _ => true,
        };
        let free = cur.holder_identity.as_deref().is_none_or(str::is_empty);
        if !(mine || expired || free) {
            return Ok(false);
        }
        let transitions = cur.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquired = if mine { cur.acquire_time.clone() } else { None };
        let mut next = current.clone();
        next.spec = Some(spec(transitions, acquired));
        // `replace` sends the resourceVersion read: a concurrent change makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the lease up (on shutdown), so another replica takes over at once.
    pub(crate) async fn release(&self) {
        if let Ok(Some(mut current)) = self.api.get_opt(&self.name).await {
            let held = current
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str());
            if held {
                if let Some(spec) = current.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.renew_time = None;
                }
                let _ = self
                    .api
                    .replace(&self.name, &PostParams::default(), &current)
                    .await;
            }
        }
    }
}
