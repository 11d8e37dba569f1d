//! Pods created by controllers are judged too, and a Pod denial shows up where the developer looks:
//! the ReplicaSet's FailedCreate event.
//!
//! The realistic way a Deployment passes while its Pods fail: mutating admission runs before
//! validating admission, so the Pods phi-guard sees carry what mutators injected. Here a
//! MutatingAdmissionPolicy (built into the API server, no extra process) plays a "node agent"
//! injector that adds a hostPath volume and a container mounting it to every Pod in the test
//! namespace. The Deployment and its ReplicaSet are compliant; the Pods are not.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};

use crate::fixtures::{self, App, PHI};
use crate::harness::{accepts_eventually, kubectl, kubectl_ok, unique, warnings, Ctx, CACHE};
use phi_guard::verdict::RuleId;

use crate::support::try_wait_for_async;

const INJECT_LABEL: &str = "e2e.phiguard.io/node-agent";

fn node_agent_injector(name: &str, selector_value: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: {name}
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods"]
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >
          [
            has(object.spec.volumes) ?
              JSONPatch{{op: "add", path: "/spec/volumes/-",
                value: Object.spec.volumes{{name: "node-agent",
                  hostPath: Object.spec.volumes.hostPath{{path: "/var/lib/node-agent"}}}}}} :
              JSONPatch{{op: "add", path: "/spec/volumes",
                value: [Object.spec.volumes{{name: "node-agent",
                  hostPath: Object.spec.volumes.hostPath{{path: "/var/lib/node-agent"}}}}]}},
            JSONPatch{{op: "add", path: "/spec/containers/-",
              value: Object.spec.containers{{name: "node-agent",
                image: "registry.example-health.com/platform/node-agent:1.4.0",
                volumeMounts: [Object.spec.containers.volumeMounts{{name: "node-agent",
                  mountPath: "/host"}}]}}}}
          ]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  matchResources:
    namespaceSelector:
      matchLabels:
        {INJECT_LABEL}: {selector_value}
"#
    )
}

#[tokio::test]
async fn replicaset_pod_denial_shows_in_failedcreate_event() {
    let ctx = Ctx::new("rs-pods", &[PHI]).await;
    let key = unique("inj");
    let label = format!("{INJECT_LABEL}={key}");
    let run = kubectl(&["label", "namespace", &ctx.ns, &label], None);
    assert!(run.ok, "label namespace: {}", run.stderr);

    let injector = unique("e2e-node-agent");
    kubectl_ok(&["apply"], &node_agent_injector(&injector, &key));
    ctx.cleanup("mutatingadmissionpolicybinding", &injector);
    ctx.cleanup("mutatingadmissionpolicy", &injector);

    // Wait until the injector is active: a server dry run of a non-PHI pod in a namespace that
    // it targets comes back mutated.
    let probe_ns = unique("e2e-rs-pods-probe");
    kubectl_ok(
        &["apply"],
        &fixtures::namespace(&probe_ns, &[(INJECT_LABEL, &key)]),
    );
    ctx.cleanup("namespace", &probe_ns);
    let probe = App::bare(&probe_ns, "probe").without_phi_label().pod();
    crate::harness::eventually(
        "the MutatingAdmissionPolicy is active",
        Duration::from_secs(30),
        || {
            let run = kubectl(
                &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
                Some(&probe),
            );
            if run.ok && run.stdout.contains("/var/lib/node-agent") {
                Ok(())
            } else {
                Err(format!("{}{}", run.stdout, run.stderr))
            }
        },
    )
    .await;

    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let app = App::compliant(&ctx.ns, "records-api", None);
    let stderr = accepts_eventually(&app.deployment(), CACHE).await;
    assert!(
        warnings(&stderr).iter().all(|w| !w.contains("phi-guard")),
        "the Deployment itself is compliant:\n{stderr}"
    );

    // The ReplicaSet controller's Pod creations are denied; the event says why.
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let lp = ListParams::default().fields("involvedObject.kind=ReplicaSet,reason=FailedCreate");
    let message = try_wait_for_async(
        "a FailedCreate event on the ReplicaSet",
        Duration::from_secs(45),
        Duration::from_millis(500),
        || {
            let (events, lp) = (&events, &lp);
            async move {
                let list = events.list(lp).await.expect("list events");
                let n = list.items.len();
                list.items
                    .into_iter()
                    .find_map(|e| e.message)
                    .ok_or_else(|| format!("{n} events, none with a message"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; phi-guard log:\n{}", ctx.phi_guard_log()));
    assert!(
        message.contains("denied the request") && message.contains("phi-guard"),
        "FailedCreate is not phi-guard's denial: {message}"
    );
    let text = crate::finding_text(&message, RuleId::EncryptionAtRest)
        .unwrap_or_else(|| panic!("FailedCreate names no encryption-at-rest finding: {message}"));
    assert!(
        text.contains(RuleId::EncryptionAtRest.citation()) && text.contains("node-agent"),
        "the finding should cite HIPAA and name the injected volume: {text}"
    );

    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let n = pods
        .list(&ListParams::default().labels("app=records-api"))
        .await
        .expect("list pods")
        .items
        .len();
    assert_eq!(n, 0, "no Pod of the Deployment may have been admitted");
}
