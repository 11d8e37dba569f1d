//! With phi-guard down, the webhook fails closed (failurePolicy Fail): PHI workloads are
//! rejected, while kube-system and phi-guard's own namespace still accept writes (the
//! namespaceSelector excludes them), so an outage cannot deadlock the cluster.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use crate::fixtures::{self, App, PHI};
use crate::harness::{accepts_eventually, kubectl, kubectl_ok, unique, Ctx, CACHE};

/// phi-guard's own namespace (the chart's default, and hack/local-install.sh's).
const PHI_GUARD_NS: &str = "phi-guard";

#[tokio::test]
async fn with_phi_guard_down_phi_workloads_are_rejected_but_system_namespaces_accept_writes() {
    // Exclusive: no other test runs while phi-guard is down.
    let ctx = Ctx::exclusive("fail-closed", &[PHI]).await;
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    // Sanity: this compliant workload is admitted while phi-guard runs...
    accepts_eventually(&App::compliant(&ctx.ns, "before", None).pod(), CACHE).await;

    let outage = ctx.stop_phi_guard();
    assert!(!ctx.phi_guard_alive(), "phi-guard still answers after stop");

    // ...and the same workload is rejected while it is down: nobody vouched for it.
    let app = App::compliant(&ctx.ns, "records-api", None);
    let run = kubectl(&["apply", "-f", "-"], Some(&app.deployment()));
    assert!(
        !run.ok,
        "a PHI Deployment was admitted while phi-guard was down"
    );
    assert!(
        run.stderr.contains("failed calling webhook"),
        "expected the API server's fail-closed error, got:\n{}",
        run.stderr
    );
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ctx.ns);
    assert!(deployments
        .get_opt("records-api")
        .await
        .expect("get")
        .is_none());

    // Excluded namespaces still take writes of judged kinds, even non-compliant PHI ones.
    for ns in ["kube-system", PHI_GUARD_NS] {
        let name = unique("e2e-outage");
        let sys = App::bare(ns, &name).with_host_path().with_replicas(0);
        let run = kubectl(&["apply", "-f", "-"], Some(&sys.deployment()));
        assert!(
            run.ok,
            "writes to {ns} must not depend on phi-guard, got:\n{}",
            run.stderr
        );
        let _ = kubectl(
            &["delete", "deployment", &name, "-n", ns, "--wait=false"],
            None,
        );
    }
    // Kinds phi-guard does not judge are unaffected everywhere.
    let run = kubectl(
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            &ctx.ns,
            "--from-literal=a=b",
        ],
        None,
    );
    assert!(
        run.ok,
        "a ConfigMap write failed during the outage: {}",
        run.stderr
    );

    outage.end();
    assert!(ctx.phi_guard_alive());
    tokio::time::timeout(
        Duration::from_secs(60),
        accepts_eventually(&app.deployment(), CACHE),
    )
    .await
    .expect("admitted again after restart");
}

/// A PhiPolicy whose workload selector is a label the chart's static webhooks do not know.
fn part_of_policy(name: &str, part_of: &str) -> String {
    format!(
        r#"apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata:
  name: {name}
spec:
  mode: Enforce
  scope:
    namespaceSelector:
      matchLabels:
        e2e.phiguard.io/unused: "{part_of}"
    workloadSelector:
      matchLabels:
        app.kubernetes.io/part-of: {part_of}
"#
    )
}

fn pvc_and_service(ns: &str, name: &str, labels: &[(&str, &str)]) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    format!(
        "{}\n---\n{}",
        serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }),
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
        })
    )
}

fn refused_by_outage(what: &str, run: &crate::harness::Run) {
    assert!(
        !run.ok && run.stderr.contains("failed calling webhook"),
        "{what} must be refused while phi-guard is down (fail closed), got ok={}:\n{}",
        run.ok,
        run.stderr
    );
}

#[tokio::test]
async fn an_outage_touches_only_phi_work() {
    let ctx = Ctx::exclusive("outage", &[]).await;
    let phi_ns = unique("e2e-outage-phi");
    kubectl_ok(&["apply"], &fixtures::namespace(&phi_ns, &[PHI]));
    ctx.cleanup("namespace", &phi_ns);
    // A policy scoped by a label the chart's webhooks do not select: phi-guard adds a webhook
    // for it and says so in the policy's status.
    let part_of = unique("records");
    let policy = unique("e2e-part-of");
    kubectl_ok(&["apply"], &part_of_policy(&policy, &part_of));
    ctx.cleanup("phipolicy", &policy);
    let wait = kubectl(
        &[
            "wait",
            "--for=condition=WebhookScope",
            &format!("phipolicy/{policy}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(
        wait.ok,
        "the policy's WebhookScope condition did not turn True: {}\nphi-guard log:\n{}",
        wait.stderr,
        ctx.phi_guard_log()
    );
    let vwc = kubectl(
        &[
            "get",
            "validatingwebhookconfiguration",
            "phi-guard",
            "-o",
            "json",
        ],
        None,
    );
    assert!(
        vwc.ok && vwc.stdout.contains(&part_of),
        "the webhook configuration should select app.kubernetes.io/part-of={part_of}:\n{}",
        vwc.stdout
    );

    let outage = ctx.stop_phi_guard();
    assert!(!ctx.phi_guard_alive(), "phi-guard still answers after stop");

    // Outside PHI scope, nothing waits on phi-guard.
    let run = kubectl(
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-n",
            &ctx.ns,
        ],
        None,
    );
    assert!(
        run.ok,
        "a plain Deployment was refused during the outage: {}",
        run.stderr
    );
    let run = kubectl(
        &["apply", "-f", "-"],
        Some(&pvc_and_service(&ctx.ns, "cache", &[])),
    );
    assert!(
        run.ok,
        "a plain PVC/Service was refused during the outage: {}",
        run.stderr
    );
    // A label that is not PHI is not a reason to refuse either.
    let run = kubectl(
        &["label", "deployment", "web", "-n", &ctx.ns, "team=web"],
        None,
    );
    assert!(
        run.ok,
        "labelling a plain Deployment was refused: {}",
        run.stderr
    );

    // In PHI scope, everything judged is refused: fail closed.
    let labeled = App::compliant(&ctx.ns, "records-api", None);
    refused_by_outage(
        "a PHI-labeled Deployment in a plain namespace",
        &kubectl(&["apply", "-f", "-"], Some(&labeled.deployment())),
    );
    let mut only_template: serde_json::Value = serde_json::from_str(
        &App::compliant(&ctx.ns, "template-only", None)
            .without_phi_label()
            .deployment(),
    )
    .expect("deployment json");
    only_template["spec"]["template"]["metadata"]["labels"][PHI.0] = PHI.1.into();
    let only_template = only_template.to_string();
    refused_by_outage(
        "a Deployment whose pod template alone is PHI-labeled",
        &kubectl(&["apply", "-f", "-"], Some(&only_template)),
    );
    refused_by_outage(
        "a PHI-labeled PVC and Service in a plain namespace",
        &kubectl(
            &["apply", "-f", "-"],
            Some(&pvc_and_service(&ctx.ns, "records-db", &[PHI])),
        ),
    );
    refused_by_outage(
        "a Deployment in a PHI namespace",
        &kubectl(
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx",
                "-n",
                &phi_ns,
            ],
            None,
        ),
    );
    refused_by_outage(
        "a PVC and Service in a PHI namespace",
        &kubectl(
            &["apply", "-f", "-"],
            Some(&pvc_and_service(&phi_ns, "cache", &[])),
        ),
    );
    let custom = App::compliant(&ctx.ns, "ledger", None)
        .without_phi_label()
        .with_label("app.kubernetes.io/part-of", &part_of);
    refused_by_outage(
        "a Deployment the custom policy's workloadSelector covers",
        &kubectl(&["apply", "-f", "-"], Some(&custom.deployment())),
    );
    // Dropping the PHI label from a PHI namespace is judged (the old object matches).
    refused_by_outage(
        "removing a PHI namespace's label",
        &kubectl(
            &["label", "namespace", &phi_ns, &format!("{}-", PHI.0)],
            None,
        ),
    );

    outage.end();
    assert!(ctx.phi_guard_alive());
}
