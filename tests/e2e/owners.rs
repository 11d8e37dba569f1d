//! Relationships as Kubernetes derives them, through the real API server with
//! kube-controller-manager making the children: a waiver on a Deployment gets it ReplicaSets and
//! Pods, a policy tightened to Enforce (or an expired waiver) never takes self-healing away from
//! a workload that already runs, a forged ownerReference earns nothing, and a new NetworkPolicy
//! that opens running PHI pods is refused.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::exceptions::rfc3339_in;
use crate::fixtures::{self, App, PHI};
use crate::harness::*;
use crate::policy::{apply_scoped_policy, SCOPE_LABEL};
use crate::support::{check, try_wait_for_async};
use crate::{shows, shows_rule};
use phi_guard::verdict::notes::{excepted_until, made_by};
use phi_guard::verdict::{Reason, RuleId};

/// Pods of app `app` that exist and are not being deleted.
async fn live_pods(ctx: &Ctx, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn wait_for_pods(ctx: &Ctx, app: &str, n: usize, timeout: Duration) -> Vec<Pod> {
    try_wait_for_async(
        &format!("{app}: {n} pods"),
        timeout,
        Duration::from_millis(250),
        || async move {
            let pods = live_pods(ctx, app).await;
            if pods.len() == n {
                Ok(pods)
            } else {
                Err(format!("{} pods", pods.len()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; phi-guard's events:\n{}", failed_creates(ctx)))
}

/// The note a Pod's findings would carry if they were credited to its controller (the owner
/// its ownerReference names).
fn inherited_note(pod: &Pod) -> String {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("the pod has an owner");
    made_by(&owner.kind, &owner.name)
}

fn failed_creates(ctx: &Ctx) -> String {
    kubectl(
        &[
            "get",
            "events",
            "-n",
            &ctx.ns,
            "--field-selector",
            "reason=FailedCreate",
            "-o",
            "custom-columns=OBJ:.involvedObject.name,MSG:.message",
        ],
        None,
    )
    .stdout
}

/// A PhiException written the README's way: one Deployment by kind and name.
fn deployment_waiver(name: &str, ns: &str, deployment: &str, expires: &str) -> String {
    format!(
        r#"apiVersion: phiguard.io/v1alpha1
kind: PhiException
metadata:
  name: {name}
spec:
  match:
    namespaces: [{ns}]
    kinds: [Deployment]
    names: [{deployment}]
  rules:
    - rule: audit-sidecar
  expiresAt: "{expires}"
  ticket: "SEC-5150"
  justification: "sidecar image being mirrored; compensating control: node-level log shipping"
  approvedBy: security-team
"#
    )
}

fn scale(ctx: &Ctx, deployment: &str, n: u32) {
    let run = kubectl(
        &[
            "scale",
            "-n",
            &ctx.ns,
            &format!("deployment/{deployment}"),
            &format!("--replicas={n}"),
        ],
        None,
    );
    assert!(run.ok, "scale {deployment}: {}", run.stderr);
}

fn delete_pod(ctx: &Ctx, pod: &str) {
    let run = kubectl(&["delete", "pod", "-n", &ctx.ns, pod, "--wait=false"], None);
    assert!(run.ok, "delete pod {pod}: {}", run.stderr);
}

/// Scale to 3 and replace a deleted pod: self-healing works.
async fn heals(ctx: &Ctx, app: &str) {
    scale(ctx, app, 3);
    let pods = wait_for_pods(ctx, app, 3, Duration::from_secs(30)).await;
    let victim = pods[0].metadata.name.clone().unwrap_or_default();
    delete_pod(ctx, &victim);
    let victim = victim.as_str();
    try_wait_for_async(
        &format!("the deleted pod {victim} is replaced"),
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async move {
            let pods = live_pods(ctx, app).await;
            let names: Vec<String> = pods
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            check(
                names.len() == 3 && !names.iter().any(|n| n == victim),
                || format!("{names:?}"),
            )
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", failed_creates(ctx)));
}

/// A Pod written by hand with a running pod's ownerReferences copied, and another image.
fn forged_pod(ctx: &Ctx, from: &Pod, name: &str) -> String {
    let mut v: Value = serde_json::to_value(from).expect("pod json");
    let owner_refs = v["metadata"]["ownerReferences"].clone();
    let labels = v["metadata"]["labels"].clone();
    let mut spec = v["spec"].take();
    spec["containers"][0]["image"] = "registry.example-health.com/tools/miner:1.0".into();
    if let Some(o) = spec.as_object_mut() {
        o.remove("nodeName");
    }
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ctx.ns, "labels": labels, "ownerReferences": owner_refs},
        "spec": spec,
    });
    serde_json::to_string(&pod).expect("json")
}

#[tokio::test]
async fn a_waiver_on_a_deployment_gets_it_pods_and_expiry_keeps_them_healing() {
    let ctx = Ctx::new("owner-waiver", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let name = unique("e2e-owner-waiver");
    ctx.cleanup("phiexception", &name);
    let mut ledger = App::compliant(&ctx.ns, "ledger", None).with_replicas(2);
    ledger.audit_sidecar = false;

    let expires_in = 45;
    let expires = rfc3339_in(expires_in);
    let started = Instant::now();
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&deployment_waiver(&name, &ctx.ns, "ledger", &expires)),
    );
    assert!(run.ok, "a valid exception was refused: {}", run.stderr);
    let stderr = accepts_eventually(&ledger.deployment(), CACHE).await;
    let note = excepted_until(&expires, "SEC-5150", &name);
    assert!(
        warnings(&stderr).iter().any(|w| w.contains(&note)),
        "the Deployment's warning names the exception ({note}):\n{stderr}"
    );
    // The ReplicaSet and its Pods are created: the waiver covers what the Deployment's
    // template gives them.
    let pods = wait_for_pods(&ctx, "ledger", 2, Duration::from_secs(30)).await;
    let rs: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    let sets = rs
        .list(&ListParams::default().labels("app=ledger"))
        .await
        .expect("list replicasets");
    assert_eq!(sets.items.len(), 1);

    // A hand-made Pod with a copied ownerReference and another image is judged on its own.
    let forged = forged_pod(&ctx, &pods[0], "ledger-forged");
    let denied = rejects(&forged);
    assert!(
        shows_rule(&denied, RuleId::AuditSidecar) && !denied.contains(&inherited_note(&pods[0])),
        "a forged child is judged on its own:\n{denied}"
    );

    // After expiry, without a restart: a new Deployment with the same spec is denied, the audit
    // fails the running one, and the running one keeps healing.
    let wait = Duration::from_secs(expires_in as u64 + 3).saturating_sub(started.elapsed());
    // Waits out the exception's expiry, the timeout under test.
    tokio::time::sleep(wait).await;
    let mut again = App::compliant(&ctx.ns, "ledger-2", None);
    again.audit_sidecar = false;
    let denied = rejects(&again.deployment());
    assert!(
        shows_rule(&denied, RuleId::AuditSidecar) && !denied.contains(&note),
        "after expiry the template is enforced again:\n{denied}"
    );
    heals(&ctx, "ledger").await;
}

#[tokio::test]
async fn a_policy_tightened_to_enforce_keeps_self_healing_and_gates_templates() {
    let key = unique("heal");
    let ctx = Ctx::new("owner-heal", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-heal");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");

    // Non-compliant, admitted under Warn.
    let app = App::bare(&ctx.ns, "intake").without_phi_label();
    let stderr = accepts_eventually(&app.deployment(), CACHE).await;
    assert!(stderr.contains("phi-guard"), "warned under Warn:\n{stderr}");
    wait_for_pods(&ctx, "intake", 1, Duration::from_secs(30)).await;

    let run = kubectl(
        &[
            "patch",
            "phipolicy",
            &policy,
            "--type=merge",
            "-p",
            r#"{"spec":{"mode":"Enforce"}}"#,
        ],
        None,
    );
    assert!(run.ok, "patch policy: {}", run.stderr);
    let twin = App::bare(&ctx.ns, "intake-twin").without_phi_label();
    rejects_eventually(&["--dry-run=server"], &twin.deployment(), CACHE).await;

    // Scaling and a replaced pod: the ReplicaSet controller's pods are admitted (inherited).
    heals(&ctx, "intake").await;
    let pods = live_pods(&ctx, "intake").await;
    // A template change that adds a violation is denied.
    let worse = app.clone().with_host_path();
    let denied = rejects(&worse.deployment());
    assert!(denied.contains("hostPath"), "{denied}");
    // A hand-made Pod with a copied ownerReference and another image is denied.
    let denied = rejects(&forged_pod(&ctx, &pods[0], "intake-forged"));
    assert!(!denied.contains(&inherited_note(&pods[0])), "{denied}");
}

#[tokio::test]
async fn a_new_allow_all_network_policy_over_running_phi_pods_is_refused() {
    let ctx = Ctx::new("np-create", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    kubectl_ok(
        &["apply"],
        &fixtures::bare_pod(&ctx.ns, "records-0", &[("app", "records")], true),
    );
    let allow_all = |ns: &str, name: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  \
             namespace: {ns}\nspec:\n  podSelector: {{}}\n  ingress:\n  - {{}}\n"
        )
    };
    // The pod must be in phi-guard's cache before the refusal can name it.
    let denied = rejects_eventually(&[], &allow_all(&ctx.ns, "open-all"), CACHE).await;
    // A creation that opens isolated PHI pods, naming the pod.
    assert!(
        shows(&denied, Reason::IsolationOpened) && denied.contains("records-0"),
        "{denied}"
    );
    // The same policy over pods that are not PHI is admitted.
    let plain = Ctx::new("np-create-plain", &[]).await;
    kubectl_ok(
        &["apply"],
        &fixtures::default_deny(&plain.ns, "default-deny"),
    );
    kubectl_ok(
        &["apply"],
        &App::bare(&plain.ns, "site").without_phi_label().pod(),
    );
    accepts(&allow_all(&plain.ns, "open-all"));
}

#[tokio::test]
async fn a_service_selecting_a_statefulset_pod_by_name_is_traced_before_the_pods_exist() {
    let key = unique("sts-svc");
    let ctx = Ctx::new("sts-svc", &[(SCOPE_LABEL, &key)]).await;
    let policy = unique("e2e-sts-svc");
    apply_scoped_policy(&ctx, &policy, &key, "Warn");
    // No replicas: its pods never exist, so only the template can answer.
    let mut sts: Value = serde_json::from_str(
        &App::bare(&ctx.ns, "ledger-db")
            .without_phi_label()
            .with_replicas(0)
            .deployment(),
    )
    .expect("manifest");
    sts["kind"] = "StatefulSet".into();
    sts["spec"]["serviceName"] = "ledger-db".into();
    let sts = serde_json::to_string(&sts).expect("json");
    let stderr = crate::harness::eventually("the Warn policy in effect", CACHE, || {
        let run = kubectl(&["apply", "-f", "-"], Some(&sts));
        if run.ok && run.stderr.contains("phi-guard") {
            Ok(run.stderr)
        } else {
            Err(format!("{}{}", run.stdout, run.stderr))
        }
    })
    .await;
    assert!(shows_rule(&stderr, RuleId::EncryptionInTransit), "{stderr}");
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ledger-db-0-external\n  namespace: {}\n\
         spec:\n  type: ClusterIP\n  selector:\n    statefulset.kubernetes.io/pod-name: ledger-db-0\n  \
         ports:\n  - name: mysql\n    port: 3306\n",
        ctx.ns
    );
    let stderr = accepts(&service);
    let traced: Vec<&str> = warnings(&stderr)
        .into_iter()
        // No pod of the StatefulSet exists: only its template can make this finding.
        .filter(|w| shows(w, Reason::PlaintextServicePort) && w.contains("ledger-db-0-external"))
        .collect();
    assert!(
        !traced.is_empty(),
        "the Service's plaintext port in front of the StatefulSet's future pods:\n{stderr}"
    );
}
