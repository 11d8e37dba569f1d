//! Generated default deny through the real API server (kube-controller-manager running): a
//! PhiPolicy with `networkSegmentation.generateDefaultDeny` makes phi-guard create
//! `phi-guard-default-deny` in each namespace it makes PHI, owned by the Namespace (gone with
//! it), never over an object of that name, never where the namespace's own policies isolate
//! already, reported in the policy's status, and left in place when the option is turned off.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::policy::SCOPE_LABEL;

const NAME: &str = "phi-guard-default-deny";
const WAIT: Duration = Duration::from_secs(30);

fn policy(name: &str, key: &str, generate: bool) -> String {
    format!(
        r#"apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata:
  name: {name}
spec:
  mode: Warn
  scope:
    namespaceSelector:
      matchLabels:
        {SCOPE_LABEL}: {key}
    workloadSelector:
      matchLabels:
        {SCOPE_LABEL}: {key}
  networkSegmentation:
    generateDefaultDeny: {generate}
"#
    )
}

fn get_json(args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let run = kubectl(&all, None);
    run.ok
        .then(|| serde_json::from_str(&run.stdout).ok())
        .flatten()
}

fn generated_in(ns: &str) -> Option<Value> {
    get_json(&["networkpolicy", NAME, "-n", ns])
}

fn status_of(policy: &str) -> Value {
    get_json(&["phipolicy", policy])
        .map(|p| p["status"]["defaultDeny"].clone())
        .unwrap_or(Value::Null)
}

fn network_policy(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

#[tokio::test]
async fn generated_default_deny_follows_phi_namespaces_and_never_overwrites_a_users() {
    let key = unique("dd");
    let policy_name = unique("e2e-dd");
    // A namespace PHI under the policy from the start.
    let fresh = Ctx::new("dd-fresh", &[(SCOPE_LABEL, &key)]).await;
    // A namespace with a user's object of the generated name that isolates nothing, labelled
    // PHI later.
    let taken = Ctx::new("dd-taken", &[]).await;
    kubectl_ok(
        &["apply"],
        &network_policy(
            &taken.ns,
            NAME,
            "  podSelector:\n    matchLabels:\n      app: reports\n  ingress:\n  - {}\n",
        ),
    );
    let before = generated_in(&taken.ns).expect("the user's policy");
    // A namespace whose own two policies isolate every pod both ways.
    let isolated = Ctx::new("dd-user", &[(SCOPE_LABEL, &key)]).await;
    kubectl_ok(
        &["apply"],
        &network_policy(
            &isolated.ns,
            "deny-in",
            "  podSelector: {}\n  policyTypes: [Ingress]\n",
        ),
    );
    kubectl_ok(
        &["apply"],
        &network_policy(
            &isolated.ns,
            "deny-out",
            "  podSelector: {}\n  policyTypes: [Egress]\n",
        ),
    );
    // A namespace outside the policy's scope.
    let outside = Ctx::new("dd-outside", &[]).await;

    kubectl_ok(&["apply"], &policy(&policy_name, &key, true));
    fresh.cleanup("phipolicy", &policy_name);

    // Created in the PHI namespace: labelled, owned by the Namespace, isolating both ways with
    // DNS egress only.
    let np = eventually("the generated policy in the PHI namespace", WAIT, || {
        generated_in(&fresh.ns).ok_or_else(|| "absent".to_string())
    })
    .await;
    assert_eq!(
        np["metadata"]["labels"]["phiguard.io/generated"],
        "default-deny"
    );
    let ns_uid = get_json(&["namespace", &fresh.ns]).expect("namespace")["metadata"]["uid"].clone();
    let owner = &np["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), &owner["uid"]),
        (Some("Namespace"), &ns_uid)
    );
    assert_eq!(np["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert!(np["spec"]["ingress"].is_null(), "{np:#}");
    let egress = np["spec"]["egress"].as_array().expect("egress");
    assert_eq!(egress.len(), 1);
    assert!(egress[0]["to"].is_null());
    assert!(egress[0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .all(|p| p["port"] == 53));

    // Label the namespace with the user's object PHI: nothing written over it, status says why.
    let label = format!("{SCOPE_LABEL}={key}");
    let run = kubectl(
        &["label", "--overwrite", "namespace", &taken.ns, &label],
        None,
    );
    assert!(run.ok, "label the namespace: {}", run.stderr);
    let st = eventually("status lists every PHI namespace", WAIT, || {
        let st = status_of(&policy_name);
        let got = (
            st["namespaces"].as_i64(),
            st["generated"].as_i64(),
            st["isolatedByUser"].as_i64(),
        );
        if got == (Some(3), Some(1), Some(1)) {
            Ok(st)
        } else {
            Err(format!("{st}"))
        }
    })
    .await;
    let not_isolated = st["notIsolated"].as_array().expect("notIsolated");
    assert_eq!(not_isolated.len(), 1, "{st:#}");
    assert_eq!(not_isolated[0]["namespace"], taken.ns.as_str());
    assert_eq!(not_isolated[0]["reason"], "NameTaken");
    let after = generated_in(&taken.ns).expect("the user's policy is still there");
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "the user's object was changed"
    );
    assert!(after["metadata"]["labels"]["phiguard.io/generated"].is_null());
    // None where the user's own policies isolate, none outside the scope.
    assert!(generated_in(&isolated.ns).is_none());
    assert!(generated_in(&outside.ns).is_none());

    // The option turned off: the status field goes, the generated policy stays.
    kubectl_ok(&["apply"], &policy(&policy_name, &key, false));
    eventually("status.defaultDeny removed", WAIT, || {
        match status_of(&policy_name) {
            Value::Null => Ok(()),
            st => Err(format!("{st}")),
        }
    })
    .await;
    assert!(
        generated_in(&fresh.ns).is_some(),
        "phi-guard never deletes a policy it generated"
    );

    // Deleting the namespace removes it with everything the namespace owns.
    let ns = fresh.ns.clone();
    kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
    eventually(
        "the namespace and its generated policy gone",
        Duration::from_secs(90),
        || {
            if get_json(&["namespace", &ns]).is_none() && generated_in(&ns).is_none() {
                Ok(())
            } else {
                Err("still there".to_string())
            }
        },
    )
    .await;
    drop(outside);
    drop(isolated);
    drop(taken);
    drop(fresh);
}
