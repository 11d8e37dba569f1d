//! The unmodified chart (only its image values set) installed in-cluster: two replicas of this
//! commit's image Running and Ready on the node, the API server calling them through the
//! Service with the caBundle phi-guard put in place (self-managed TLS), denials with every finding
//! and citation, `helm test`, and `helm uninstall` with the pre-delete hook as shipped.

use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{self, App};
use crate::harness::{
    diagnostics, eventually, exclusive, helm, install, kubectl, kubectl_json, kubectl_ok,
    uninstall, unique, Env, Namespace, NAMESPACE, RELEASE,
};
use crate::{assert_findings, CORE_RULES};

const READY: Duration = Duration::from_secs(120);
/// phi-guard's watch caches see a new object within moments.
const CACHE: Duration = Duration::from_secs(20);

/// The chart's pods of one component (`webhook`, `audit`) that are not terminating.
fn component_pods(component: &str) -> Vec<Value> {
    let selector = format!("app.kubernetes.io/component={component}");
    let list = kubectl_json(&["get", "pods", "-n", NAMESPACE, "-l", &selector]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

/// The webhook pods not terminating, as (name, phase, ready, node, imageID, image).
pub fn webhook_pods() -> Vec<(String, String, bool, String, String, String)> {
    component_pods("webhook")
        .iter()
        .map(|p| {
            let cs = &p["status"]["containerStatuses"][0];
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["phase"].as_str().unwrap_or("").to_string(),
                cs["ready"].as_bool().unwrap_or(false),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                cs["imageID"].as_str().unwrap_or("").to_string(),
                cs["image"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Wait for exactly `n` webhook pods, all Running and Ready on the node with this commit's image.
pub fn wait_replicas_ready(n: usize) {
    let env = Env::get();
    let want_image = format!("{}:{}", env.image_repository, env.image_tag);
    let pods = eventually(
        &format!("{n} phi-guard pods Running and Ready"),
        READY,
        || {
            let pods = webhook_pods();
            let ready = pods
                .iter()
                .filter(|(_, phase, ready, ..)| phase == "Running" && *ready)
                .count();
            if pods.len() == n && ready == n {
                Ok(pods)
            } else {
                Err(format!("{pods:?}"))
            }
        },
    );
    for (name, _, _, node, image_id, image) in &pods {
        assert_eq!(node, &env.node_name, "{name} runs on {node}");
        assert!(
            image.ends_with(&want_image),
            "{name} runs {image}, not this commit's {want_image}"
        );
        assert!(
            image_id.ends_with(&env.image_id),
            "{name}'s imageID {image_id} is not the image built from this commit ({})",
            env.image_id
        );
    }
    // In the run log: the pods and the image they run.
    eprintln!(
        "phi-guard in-cluster ({want_image}, {}):\n{}",
        env.image_id,
        kubectl_ok(&["get", "pods", "-n", NAMESPACE, "-o", "wide"], None)
    );
}

/// A server-side dry run of a bare PHI pod is denied by phi-guard: the API server reaches it.
pub fn wait_webhook_effective(ns: &str) {
    let pod = fixtures::bare_pod(ns, "probe", &[], false);
    eventually(
        "the API server reaches phi-guard through its Service",
        READY,
        || {
            let r = kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&pod));
            if !r.ok && r.stderr.contains("denied the request") && r.stderr.contains("phi-guard") {
                Ok(())
            } else if r.stderr.contains("failed calling webhook") {
                Err(format!(
                    "the API server cannot call phi-guard through Service {NAMESPACE}/{RELEASE} \
                     (check the Service's ports and endpoints, and the serving certificate's \
                     names and the caBundle): {}",
                    r.stderr.trim()
                ))
            } else {
                Err(format!("ok={} {}{}", r.ok, r.stdout, r.stderr))
            }
        },
    );
}

fn storage_class(encrypted: bool) -> String {
    let name = unique(if encrypted {
        "e2e-node-enc"
    } else {
        "e2e-node-plain"
    });
    let yaml = if encrypted {
        fixtures::encrypted_storage_class(&name)
    } else {
        fixtures::plain_storage_class(&name)
    };
    kubectl_ok(&["apply", "-f", "-"], Some(&yaml));
    name
}

#[test]
fn chart_as_shipped_runs_in_cluster_judges_through_its_service_and_uninstalls_cleanly() {
    let _one = exclusive();
    install(&[]);
    wait_replicas_ready(2);

    // The API server calls the Service (no URL), and phi-guard wrote its own CA into caBundle.
    let wh = kubectl_json(&["get", "validatingwebhookconfiguration", RELEASE]);
    let cc: &Value = &wh["webhooks"][0]["clientConfig"];
    assert!(
        cc["url"].is_null(),
        "the webhook should call the Service: {cc}"
    );
    assert_eq!(cc["service"]["name"], RELEASE, "{cc}");
    assert_eq!(cc["service"]["namespace"], NAMESPACE, "{cc}");
    assert!(
        cc["caBundle"].as_str().is_some_and(|b| !b.is_empty()),
        "self-managed TLS did not put a caBundle in the webhook configuration: {cc}"
    );

    // A non-compliant PHI Deployment is denied with every finding and its citation.
    let ns = Namespace::new("e2e-node", false);
    wait_webhook_effective(&ns.0);
    let plain = storage_class(false);
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&fixtures::pvc(&ns.0, "uploads", &plain, false)),
    );
    let app = App::violating(&ns.0, "records-api", "uploads");
    let err = eventually(
        "a violating PHI Deployment denied with every finding",
        CACHE,
        || {
            let r = kubectl(&["apply", "-f", "-"], Some(&app.deployment()));
            let named = crate::rules_named(&r.stderr);
            if !r.ok && named.len() == CORE_RULES.len() {
                Ok(r.stderr)
            } else {
                Err(format!("ok={} {}{}", r.ok, r.stdout, r.stderr))
            }
        },
    );
    assert_findings(&err, &CORE_RULES);
    assert!(err.contains("records-api"), "{err}");

    // The compliant one is admitted (created for real; 0 replicas: its image is not on the node),
    // and so is its pod (server-side dry run).
    let enc = storage_class(true);
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&fixtures::default_deny(&ns.0, "default-deny")),
    );
    let claim = fixtures::pvc(&ns.0, "records", &enc, true);
    eventually("the encrypted PHI claim admitted", CACHE, || {
        let r = kubectl(&["apply", "-f", "-"], Some(&claim));
        if r.ok {
            Ok(())
        } else {
            Err(r.stderr)
        }
    });
    let good = App::compliant(&ns.0, "records-api", Some("records")).with_replicas(0);
    let stderr = eventually("the compliant PHI Deployment admitted", CACHE, || {
        let r = kubectl(&["apply", "-f", "-"], Some(&good.deployment()));
        if r.ok {
            Ok(r.stderr)
        } else {
            Err(r.stderr)
        }
    });
    assert!(
        !stderr.contains("phi-guard"),
        "a compliant Deployment should get no phi-guard warnings:\n{stderr}"
    );
    let r = kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(&good.pod()));
    assert!(r.ok, "the compliant pod was not admitted:\n{}", r.stderr);

    // `helm test`: the test pod reaches /readyz through the Service (cluster DNS, kube-proxy).
    let r = helm(&["test", RELEASE, "-n", NAMESPACE, "--timeout", "120s"]);
    assert!(
        r.ok && r.stdout.contains("Succeeded"),
        "helm test failed:\n{}{}\n{}",
        r.stdout,
        r.stderr,
        diagnostics()
    );

    // `helm uninstall` as shipped: the pre-delete hook Job deletes the webhook configuration
    // first; nothing of phi-guard is left running and nothing blocks writes afterwards.
    uninstall();
    let events = kubectl_ok(
        &[
            "get",
            "events",
            "-n",
            NAMESPACE,
            "--field-selector",
            "involvedObject.kind=Job",
            "-o",
            "custom-columns=NAME:.involvedObject.name,REASON:.reason",
            "--no-headers",
        ],
        None,
    );
    assert!(
        events
            .lines()
            .any(|l| l.contains(&format!("{RELEASE}-uninstall")) && l.contains("Completed")),
        "the pre-delete hook Job did not run to completion; Job events:\n{events}"
    );
    let configs = kubectl_ok(
        &["get", "validatingwebhookconfigurations", "-o", "name"],
        None,
    );
    assert!(
        !configs.contains(RELEASE),
        "a phi-guard webhook configuration survived the uninstall:\n{configs}"
    );
    eventually("no pods left in the release namespace", READY, || {
        let pods = kubectl_ok(&["get", "pods", "-n", NAMESPACE, "-o", "name"], None);
        if pods.trim().is_empty() {
            Ok(())
        } else {
            Err(pods)
        }
    });
    let r = kubectl(
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&App::bare(&ns.0, "after-uninstall").pod()),
    );
    assert!(
        r.ok,
        "after the uninstall a PHI pod is still judged:\n{}",
        r.stderr
    );
    for class in [plain, enc] {
        let _ = kubectl(&["delete", "storageclass", &class, "--wait=false"], None);
    }
}

/// `audit.separateDeployment=true` on the node: the audit runs in a pod of its own, which leads
/// the audit Lease and reports a workload that fell out of compliance (its namespace labelled PHI
/// around it), while the webhook's pods run without `--audit`.
#[test]
fn the_audit_in_its_own_deployment_leads_and_reports_from_the_node() {
    let _one = exclusive();
    install(&["audit.separateDeployment=true"]);
    wait_replicas_ready(2);
    for (name, ..) in webhook_pods() {
        let pod = kubectl_json(&["get", "pod", &name, "-n", NAMESPACE]);
        let args = pod["spec"]["containers"][0]["args"].to_string();
        assert!(
            !args.contains("--audit"),
            "webhook pod {name} runs the audit too: {args}"
        );
    }
    let audit_pod = eventually("the audit's own pod Running and Ready", READY, || {
        let pods: Vec<(String, bool)> = component_pods("audit")
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["status"]["containerStatuses"][0]["ready"]
                        .as_bool()
                        .unwrap_or(false),
                )
            })
            .collect();
        match pods.as_slice() {
            [(name, true)] => Ok(name.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    eventually("the audit's pod holds the audit Lease", READY, || {
        let lease = kubectl_json(&["get", "lease", "phi-guard-audit", "-n", NAMESPACE]);
        let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or("");
        if holder == audit_pod {
            Ok(())
        } else {
            Err(format!("holder {holder:?}, audit pod {audit_pod}"))
        }
    });

    // A workload admitted outside PHI scope, then its namespace labelled PHI around it (allowed
    // with a warning under the default `namespaceLabeling: Warn`): the audit reports it.
    let ns = Namespace::new("e2e-node-audit", false);
    let app = App::bare(&ns.0, "ledger")
        .without_phi_label()
        .with_replicas(0);
    kubectl_ok(&["apply", "-f", "-"], Some(&app.deployment()));
    let (k, v) = fixtures::PHI;
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.0,
            &format!("{k}={v}"),
            "--overwrite",
        ],
        None,
    );
    eventually("the audit pod reports the workload", READY, || {
        let list = kubectl_json(&["get", "policyreports", "-n", &ns.0]);
        let found = list["items"].as_array().into_iter().flatten().any(|r| {
            r["results"].as_array().into_iter().flatten().any(|x| {
                x["resources"][0]["name"] == "ledger"
                    && x["rule"] == "audit-sidecar"
                    && x["result"] == "fail"
            })
        });
        if found {
            Ok(())
        } else {
            Err(format!("{list}"))
        }
    });

    uninstall();
}
