//! Databases run by operators, judged on their custom resources through the real API server:
//! CloudNativePG's `Cluster` CRD (reduced, tests/fixtures/real-world/operators/crds) applied here,
//! as an operator's install would, and a PHI `Cluster` refused for an unencrypted storage class
//! and admitted on an encrypting one.

use std::time::Duration;

use phi_guard::verdict::{Reason, RuleId};

use crate::fixtures::{self, PHI};
use crate::harness::{
    accepts_eventually, kubectl, kubectl_ok, rejects_eventually, unique, Ctx, CACHE,
};
use crate::shows;
use crate::support::{shown_rules, wait_for};

const CNPG_CRD: &str = include_str!("../fixtures/real-world/operators/crds/cnpg-clusters.yaml");

fn cluster(ns: &str, name: &str, class: &str, pg_hba: &[&str]) -> String {
    let hba: Vec<String> = pg_hba.iter().map(|l| format!("\"{l}\"")).collect();
    format!(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: {name}\n  \
         namespace: {ns}\nspec:\n  instances: 3\n  postgresql:\n    pg_hba: [{}]\n  \
         storage:\n    size: 1Gi\n    storageClass: {class}\n",
        hba.join(", ")
    )
}

#[tokio::test]
async fn a_phi_cnpg_cluster_is_judged_on_its_storage_class_and_pg_hba() {
    let ctx = Ctx::new("cnpg", &[PHI]).await;
    kubectl_ok(&["apply"], CNPG_CRD);
    ctx.cleanup("crd", "clusters.postgresql.cnpg.io");
    let established = kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/clusters.postgresql.cnpg.io",
            "--timeout=30s",
        ],
        None,
    );
    assert!(established.ok, "{}", established.stderr);
    let plain = unique("e2e-plain");
    kubectl_ok(&["apply"], &fixtures::plain_storage_class(&plain));
    ctx.cleanup("storageclass", &plain);
    let encrypted = unique("e2e-enc");
    kubectl_ok(&["apply"], &fixtures::encrypted_storage_class(&encrypted));
    ctx.cleanup("storageclass", &encrypted);
    kubectl_ok(&["apply"], &fixtures::default_deny(&ctx.ns, "default-deny"));
    let reject_plaintext = ["hostnossl all all all reject"];

    // Unencrypted class: refused, naming the field and the class.
    let err = rejects_eventually(
        &[],
        &cluster(&ctx.ns, "records-db", &plain, &reject_plaintext),
        CACHE,
    )
    .await;
    assert!(err.contains("spec.storage.storageClass"), "{err}");
    assert!(err.contains(&plain), "{err}");
    assert!(!err.contains("pg_hba"), "{err}");

    // Encrypting class but PostgreSQL still accepting plaintext: refused for that alone.
    let err =
        rejects_eventually(&[], &cluster(&ctx.ns, "records-db", &encrypted, &[]), CACHE).await;
    assert!(err.contains("spec.postgresql.pg_hba"), "{err}");
    assert!(!err.contains("spec.storage.storageClass"), "{err}");

    // Both fixed: admitted, with the warning that the audit sidecar is judged on the pods.
    let stderr = accepts_eventually(
        &cluster(&ctx.ns, "records-db", &encrypted, &reject_plaintext),
        CACHE,
    )
    .await;
    assert!(shows(&stderr, Reason::OperatorNoSidecarField), "{stderr}");

    // An UPDATE that moves the WAL to an unencrypted class is refused.
    let wal = format!(
        "{}  walStorage:\n    size: 1Gi\n    storageClass: {plain}\n",
        cluster(&ctx.ns, "records-db", &encrypted, &reject_plaintext)
    );
    let err = rejects_eventually(&[], &wal, CACHE).await;
    assert!(err.contains("spec.walStorage.storageClass"), "{err}");

    // The audit, whose watch of the CRD started before the CRD existed, reports the Cluster:
    // its audit-sidecar warning, nothing for the rules it passes.
    let rules = wait_for(
        "the audit reports the Cluster",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || {
            let rules = audited_rules(&ctx.ns, "Cluster", "records-db");
            if rules.is_empty() {
                Err("no results".to_string())
            } else {
                Ok(rules)
            }
        },
    );
    assert_eq!(rules, ["audit-sidecar"], "audit results of the Cluster");

    // An instance Pod of this Cluster (its uid, the operator's labels) is credited with the
    // Cluster's TLS: still refused (no audit sidecar), but not for encryption in transit. The
    // same Pod with a forged uid gets no credit.
    let uid = kubectl(
        &[
            "get",
            "cluster.postgresql.cnpg.io",
            "records-db",
            "-n",
            &ctx.ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    assert!(uid.ok && !uid.stdout.is_empty(), "{}", uid.stderr);
    let err = rejects_eventually(
        &["--dry-run=server"],
        &instance_pod(&ctx.ns, uid.stdout.trim()),
        CACHE,
    )
    .await;
    assert!(
        shown_rules(&err).contains(&RuleId::AuditSidecar.as_str().to_string()),
        "{err}"
    );
    assert!(!shows(&err, Reason::NoTransitEvidence), "{err}");
    let err = rejects_eventually(
        &["--dry-run=server"],
        &instance_pod(&ctx.ns, "00000000-0000-0000-0000-000000000000"),
        CACHE,
    )
    .await;
    assert!(shows(&err, Reason::NoTransitEvidence), "{err}");
}

/// A Pod as CloudNativePG makes an instance of Cluster `records-db`.
fn instance_pod(ns: &str, uid: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: records-db-1
  namespace: {ns}
  labels:
    cnpg.io/cluster: records-db
    cnpg.io/instanceName: records-db-1
    cnpg.io/podRole: instance
  ownerReferences:
    - apiVersion: postgresql.cnpg.io/v1
      kind: Cluster
      name: records-db
      uid: {uid}
      controller: true
spec:
  containers:
    - name: postgres
      image: ghcr.io/cloudnative-pg/postgresql:17.2
      ports:
        - containerPort: 5432
          name: postgresql
"#
    )
}

/// The rules with results for one object in the namespace's PolicyReports.
fn audited_rules(ns: &str, kind: &str, name: &str) -> Vec<String> {
    let run = kubectl(&["get", "policyreports", "-n", ns, "-o", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    let mut out: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .filter(|x| x["resources"][0]["kind"] == kind && x["resources"][0]["name"] == name)
        .filter_map(|x| x["rule"].as_str().map(String::from))
        .collect();
    out.sort();
    out.dedup();
    out
}
