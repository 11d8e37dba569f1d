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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::mock_api::{status, step, MockApi};

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/phi-guard-audit";
    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";

    fn lease(holder: &str, renewed: Timestamp, transitions: i32) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "phi-guard-audit", "namespace": "ops", "resourceVersion": "41"},
            "spec": {
                "holderIdentity": holder, "leaseDurationSeconds": 15,
                "acquireTime": "2026-01-01T00:00:00.000000Z",
                "renewTime": MicroTime(renewed), "leaseTransitions": transitions
            }
        })
    }

    fn elector(client: Client) -> Elector {
        Elector::new(client, "ops", "phi-guard-audit", "replica-a")
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_and_held() {
        let (client, api) = MockApi::new(vec![
            step("GET", PATH, 404, status(404, "NotFound")),
            step("POST", LEASES, 201, lease("replica-a", Timestamp::now(), 0)),
        ]);
        assert!(matches!(elector(client).try_hold().await, Ok(true)));
        assert_eq!(
            api.calls(),
            [format!("GET {PATH}"), format!("POST {LEASES}")]
        );
        let body = &api.requests()[1].body;
        assert_eq!(body["metadata"]["name"], "phi-guard-audit");
        assert_eq!(body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(body["spec"]["leaseTransitions"], 0);
    }

    #[tokio::test]
    async fn losing_the_creation_race_is_not_holding() {
        let (client, api) = MockApi::new(vec![
            step("GET", PATH, 404, status(404, "NotFound")),
            step("POST", LEASES, 409, status(409, "AlreadyExists")),
        ]);
        assert!(matches!(elector(client).try_hold().await, Ok(false)));
        assert_eq!(api.unused(), 0);
    }

    #[tokio::test]
    async fn a_lease_another_replica_renews_is_left_alone() {
        let (client, api) = MockApi::new(vec![step(
            "GET",
            PATH,
            200,
            lease("replica-b", Timestamp::now(), 3),
        )]);
        assert!(matches!(elector(client).try_hold().await, Ok(false)));
        assert_eq!(api.calls(), [format!("GET {PATH}")], "no write");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_with_the_resource_version_read() {
        let stale = Timestamp::now() - std::time::Duration::from_secs(60);
        let (client, api) = MockApi::new(vec![
            step("GET", PATH, 200, lease("replica-b", stale, 3)),
            step("PUT", PATH, 200, lease("replica-a", Timestamp::now(), 4)),
        ]);
        assert!(matches!(elector(client).try_hold().await, Ok(true)));
        let body = &api.requests()[1].body;
        assert_eq!(
            body["metadata"]["resourceVersion"], "41",
            "optimistic concurrency"
        );
        assert_eq!(body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(body["spec"]["leaseTransitions"], 4, "a transition counted");
        assert_ne!(
            body["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z",
            "a new holder's acquire time"
        );
    }

    #[tokio::test]
    async fn a_concurrent_takeover_loses_on_409() {
        let stale = Timestamp::now() - std::time::Duration::from_secs(60);
        let (client, _api) = MockApi::new(vec![
            step("GET", PATH, 200, lease("replica-b", stale, 3)),
            step("PUT", PATH, 409, status(409, "Conflict")),
        ]);
        assert!(matches!(elector(client).try_hold().await, Ok(false)));
    }

    #[tokio::test]
    async fn the_holder_renews_keeping_its_acquire_time_and_transitions() {
        let (client, api) = MockApi::new(vec![
            step("GET", PATH, 200, lease("replica-a", Timestamp::now(), 2)),
            step("PUT", PATH, 200, lease("replica-a", Timestamp::now(), 2)),
        ]);
        assert!(matches!(elector(client).try_hold().await, Ok(true)));
        let body = &api.requests()[1].body;
        assert_eq!(body["spec"]["leaseTransitions"], 2);
        assert_eq!(body["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z");
    }

    #[tokio::test]
    async fn a_server_error_is_an_error_not_a_lost_lease() {
        let (client, _api) =
            MockApi::new(vec![step("GET", PATH, 500, status(500, "InternalError"))]);
        assert!(matches!(
            elector(client).try_hold().await,
            Err(kube::Error::Api(s)) if s.code == 500
        ));
    }

    #[tokio::test]
    async fn release_clears_only_its_own_hold() {
        let (client, api) = MockApi::new(vec![
            step("GET", PATH, 200, lease("replica-a", Timestamp::now(), 2)),
            step("PUT", PATH, 200, lease("", Timestamp::now(), 2)),
        ]);
        elector(client).release().await;
        let body = &api.requests()[1].body;
        assert!(
            body["spec"]
                .get("holderIdentity")
                .is_none_or(|h| h.is_null()),
            "{body}"
        );
        assert!(
            body["spec"].get("renewTime").is_none_or(|h| h.is_null()),
            "{body}"
        );

        let (client, api) = MockApi::new(vec![step(
            "GET",
            PATH,
            200,
            lease("replica-b", Timestamp::now(), 2),
        )]);
        elector(client).release().await;
        assert_eq!(
            api.calls(),
            [format!("GET {PATH}")],
            "another's hold untouched"
        );
    }
}
