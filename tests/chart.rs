// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! Helm chart tests: `helm lint` and `helm template` over several value sets, structural checks
//! of what is rendered (fail-closed webhook, namespace exclusions, least-privilege RBAC,
//! restricted pods), schema rejections, the CRD copy, and documentation coverage of every value.
//!
//! Needs helm: `PHI_GUARD_TOOLS_BIN` names the directory holding `helm` (and `kubectl`). Without
//! it these tests fail; they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

const RELEASE_NS: &str = "guard-system";

fn tools_bin() -> PathBuf {
    match std::env::var_os("PHI_GUARD_TOOLS_BIN") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!(
            "PHI_GUARD_TOOLS_BIN is not set: it must name the directory holding helm and kubectl \
             (the last line printed by hack/build-tools.sh), e.g. \
             PHI_GUARD_TOOLS_BIN=$(hack/build-tools.sh | tail -1) cargo test --test chart"
        ),
    }
}

fn helm_bin() -> PathBuf {
    let helm = tools_bin().join("helm");
    assert!(
        helm.is_file(),
        "no helm at {} (PHI_GUARD_TOOLS_BIN)",
        helm.display()
    );
    helm
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts/phi-guard")
}

/// Run helm; (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(helm_bin());
    cmd.args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("phi-guard-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("phi-guard-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("phi-guard-helm-data"),
        );
    let run = support::run_cmd(&mut cmd, None);
    (run.ok, run.stdout, run.stderr)
}

fn set_args(sets: &[&str]) -> Vec<String> {
    sets.iter()
        .flat_map(|s| ["--set".to_string(), s.to_string()])
        .collect()
}

fn lint(sets: &[&str]) -> (bool, String) {
    let chart = chart_dir();
    let mut args = vec![
        "lint".to_string(),
        "--strict".into(),
        chart.display().to_string(),
    ];
    args.extend(set_args(sets));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = helm(&refs);
    (ok, format!("{out}{err}"))
}

/// `helm template` output as YAML documents, or the error text.
fn try_template(sets: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir();
    let mut args = vec![
        "template".to_string(),
        "pg".into(),
        chart.display().to_string(),
        "--namespace".into(),
        RELEASE_NS.into(),
    ];
    args.extend(set_args(sets));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = helm(&refs);
    if !ok {
        return Err(err);
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out)
        .map_err(|e| format!("rendered YAML does not parse: {e}"))?;
    Ok(docs.into_iter().filter(|v| !v.is_null()).collect())
}

fn template(sets: &[&str]) -> Vec<Value> {
    try_template(sets).unwrap_or_else(|e| panic!("helm template {sets:?} failed:\n{e}"))
}

fn kind_of(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn all_of<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind_of(d) == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = all_of(docs, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, found {}",
        found.len()
    );
    found[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The excluded namespaces of the (single) webhook's namespaceSelector.
fn excluded_namespaces(docs: &[Value]) -> Vec<String> {
    let vwc = one(docs, "ValidatingWebhookConfiguration");
    let exprs = &vwc["webhooks"][0]["namespaceSelector"]["matchExpressions"];
    let expr = exprs
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|e| e["key"].as_str() == Some("kubernetes.io/metadata.name"))
        })
        .unwrap_or_else(|| panic!("no kubernetes.io/metadata.name expression: {exprs:?}"));
    assert_eq!(expr["operator"].as_str(), Some("NotIn"));
    strings(&expr["values"])
}

const VALUE_SETS: &[&[&str]] = &[
    &[],
    &["tls.mode=certManager"],
    &[
        "tls.mode=certManager",
        "tls.certManager.issuerRef.name=corp-ca",
        "tls.certManager.issuerRef.kind=ClusterIssuer",
    ],
    &[
        "tls.mode=secret",
        "tls.secret.name=my-tls",
        "webhook.caBundle=QUJDRA==",
    ],
    &[
        "webhook.url=https://127.0.0.1:8443/validate",
        "webhook.caBundle=QUJDRA==",
    ],
    &["webhook.excludedNamespaces={team-a,team-b}"],
    &["policy.baseline.enabled=false"],
    &[
        "metrics.serviceMonitor.enabled=true",
        "priorityClassName=system-cluster-critical",
        "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
        "networkPolicy.webhook.fromCIDRs={10.0.0.0/8}",
    ],
    &[
        "networkPolicy.enabled=false",
        "podDisruptionBudget.enabled=false",
        "helmTest.enabled=false",
        "uninstall.removeWebhookFirst.enabled=false",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
];

#[test]
fn helm_lint_passes_for_every_value_set() {
    for sets in VALUE_SETS {
        let (ok, out) = lint(sets);
        assert!(ok, "helm lint --strict {sets:?} failed:\n{out}");
        try_template(sets).unwrap_or_else(|e| panic!("helm template {sets:?}: {e}"));
    }
}

#[test]
fn webhook_fails_closed_and_never_judges_kube_system_or_its_own_namespace() {
    let docs = template(&[]);
    let vwc = one(&docs, "ValidatingWebhookConfiguration");
    let hooks = vwc["webhooks"].as_array().expect("webhooks");
    let names: Vec<&str> = hooks.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "phi-namespaces.phiguard.io",
            "phi-objects.phiguard.io",
            "namespace-labels.phiguard.io",
            "network.phiguard.io",
            "exceptions.phiguard.io"
        ]
    );
    let excluded = excluded_namespaces(&docs);
    assert!(
        excluded.contains(&"kube-system".to_string()),
        "{excluded:?}"
    );
    assert!(excluded.contains(&RELEASE_NS.to_string()), "{excluded:?}");
    for w in hooks {
        let name = w["name"].as_str().unwrap_or_default();
        // Fail closed in PHI scope; the network kinds outside it never wait on phi-guard.
        let policy = if name == "network.phiguard.io" {
            "Ignore"
        } else {
            "Fail"
        };
        assert_eq!(w["failurePolicy"].as_str(), Some(policy), "{name}");
        assert_eq!(w["sideEffects"].as_str(), Some("None"));
        assert_eq!(w["matchPolicy"].as_str(), Some("Equivalent"));
        assert_eq!(strings(&w["admissionReviewVersions"]), ["v1"]);
        assert_eq!(w["timeoutSeconds"].as_u64(), Some(10));
        assert_eq!(
            w["clientConfig"]["service"]["path"].as_str(),
            Some("/validate")
        );
        assert_eq!(
            w["clientConfig"]["service"]["namespace"].as_str(),
            Some(RELEASE_NS)
        );
        assert!(w["clientConfig"]["url"].is_null());
        // Namespaced webhooks never reach kube-system or the release namespace.
        if !["namespace-labels.phiguard.io", "exceptions.phiguard.io"].contains(&name) {
            let text = w["namespaceSelector"].to_string();
            assert!(
                text.contains("kube-system") && text.contains(RELEASE_NS),
                "{name}: {text}"
            );
        }
    }

    // Every kind the engine judges, with the operations it needs, in PHI namespaces.
    let mut seen = BTreeSet::new();
    for w in hooks {
        for rule in w["rules"].as_array().expect("rules") {
            for group in strings(&rule["apiGroups"]) {
                for res in strings(&rule["resources"]) {
                    for op in strings(&rule["operations"]) {
                        seen.insert(format!("{group}/{res}:{op}"));
                    }
                }
            }
        }
    }
    for want in [
        "/pods:CREATE",
        "/pods:UPDATE",
        "/persistentvolumeclaims:CREATE",
        "/services:UPDATE",
        "/replicationcontrollers:CREATE",
        "apps/deployments:CREATE",
        "apps/statefulsets:UPDATE",
        "apps/daemonsets:CREATE",
        "apps/replicasets:CREATE",
        "batch/jobs:CREATE",
        "batch/cronjobs:UPDATE",
        "networking.k8s.io/ingresses:CREATE",
        "networking.k8s.io/networkpolicies:DELETE",
        "networking.k8s.io/networkpolicies:UPDATE",
        "/namespaces:UPDATE",
        "phiguard.io/phiexceptions:CREATE",
        "phiguard.io/phiexceptions:UPDATE",
    ] {
        assert!(seen.contains(want), "webhook rules lack {want}: {seen:?}");
    }
    assert!(
        !seen.iter().any(|s| s.contains('*')),
        "no wildcard rules: {seen:?}"
    );
}

/// The chart renders the webhooks phi-guard itself would write for the baseline it installs:
/// selectors, CEL, rules and failure policies agree, so phi-guard's first sync changes nothing
/// and a phi-guard that never started still has the right scope.
#[test]
fn chart_webhooks_are_what_phi_guard_derives_from_the_baseline() {
    for sets in [
        &[][..],
        &[
            "policy.baseline.phiLabel.key=example.org/phi",
            "policy.baseline.phiLabel.value=yes",
        ][..],
    ] {
        let docs = template(sets);
        let vwc = one(&docs, "ValidatingWebhookConfiguration");
        let hooks = vwc["webhooks"].as_array().expect("webhooks").clone();
        let policy: phi_guard::policy::PhiPolicy =
            serde_json::from_value(one(&docs, "PhiPolicy").clone()).expect("baseline PhiPolicy");
        let policy = phi_guard::policy::Policy::try_from(&policy).expect("valid");
        let excluded = phi_guard::policy::webhooks::excluded_namespaces(&hooks[0]);
        let derived = phi_guard::policy::webhooks::scope_webhooks(
            &[std::sync::Arc::new(policy)],
            &hooks[0],
            &excluded,
        );
        assert_eq!(derived.len(), hooks.len(), "{sets:?}");
        for (d, h) in derived.iter().zip(&hooks) {
            for k in [
                "name",
                "failurePolicy",
                "namespaceSelector",
                "objectSelector",
                "matchConditions",
                "rules",
                "clientConfig",
                "timeoutSeconds",
            ] {
                assert_eq!(d[k], h[k], "{sets:?}: webhook {} field {k}", h["name"]);
            }
        }
    }
}

#[test]
fn extra_excluded_namespaces_add_to_the_fixed_ones() {
    let docs = template(&["webhook.excludedNamespaces={team-a,kube-system}"]);
    let excluded = excluded_namespaces(&docs);
    assert_eq!(excluded, ["kube-system", RELEASE_NS, "team-a"]);
}

#[test]
fn rbac_is_least_privilege() {
    for sets in VALUE_SETS {
        let docs = template(sets);
        for kind in ["ClusterRole", "Role"] {
            for role in all_of(&docs, kind) {
                let text = serde_saphyr::to_string(&role["rules"]).unwrap_or_default();
                assert!(
                    !text.contains('*'),
                    "{kind} {:?} has a wildcard:\n{text}",
                    role["metadata"]["name"]
                );
            }
        }
        let main = all_of(&docs, "ClusterRole")
            .into_iter()
            .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard"))
            .expect("main ClusterRole");
        let mut reads = BTreeSet::new();
        for rule in main["rules"].as_array().expect("rules") {
            let resources = strings(&rule["resources"]);
            assert!(
                !resources.iter().any(|r| r == "secrets"),
                "ClusterRole grants secrets: {rule:?}"
            );
            let verbs = strings(&rule["verbs"]);
            for group in strings(&rule["apiGroups"]) {
                for res in &resources {
                    // `get` alone: the pod controllers with the audit off (the webhook reads the
                    // owner a child names).
                    if verbs == ["get", "list", "watch"] || verbs == ["get"] {
                        reads.insert(format!("{res}.{group}"));
                    } else if res == "phipolicies/status" {
                        assert_eq!(verbs, ["patch", "update"]);
                    } else if res == "networkpolicies" {
                        // The default deny PhiPolicies ask for: created, never changed or
                        // deleted by phi-guard.
                        assert_eq!(verbs, ["create"], "{rule:?}");
                        assert!(rule["resourceNames"].is_null(), "{rule:?}");
                        assert!(!sets.contains(&"defaultDenyGeneration.enabled=false"));
                    } else if res == "policyreports" {
                        // The audit's own output; no other write outside its namespace.
                        assert_eq!(group, "wgpolicyk8s.io");
                        assert_eq!(
                            verbs,
                            ["get", "list", "watch", "create", "patch", "update", "delete"]
                        );
                    } else {
                        assert_eq!(
                            res, "validatingwebhookconfigurations",
                            "unexpected rule {rule:?}"
                        );
                        if verbs == ["create"] {
                            // Restoring the deleted configuration: create cannot be limited
                            // by name.
                            assert!(rule["resourceNames"].is_null(), "{rule:?}");
                        } else {
                            assert!(
                                verbs == ["get", "patch"]
                                    || verbs == ["get", "list", "watch", "patch"],
                                "{rule:?}"
                            );
                            assert_eq!(strings(&rule["resourceNames"]), ["pg-phi-guard"]);
                        }
                    }
                }
            }
        }
        let expected: BTreeSet<String> = [
            "namespaces.",
            "pods.",
            "services.",
            "persistentvolumeclaims.",
            "persistentvolumes.",
            "storageclasses.storage.k8s.io",
            "networkpolicies.networking.k8s.io",
            "phipolicies.phiguard.io",
            "phiexceptions.phiguard.io",
            "peerauthentications.security.istio.io",
            "certificates.cert-manager.io",
            // Operators' databases, brokers and search clusters, judged as their operators read them.
            "clusters.postgresql.cnpg.io",
            "kafkas.kafka.strimzi.io",
            "kafkanodepools.kafka.strimzi.io",
            "elasticsearches.elasticsearch.k8s.elastic.co",
            "mariadbs.k8s.mariadb.com",
            // The optional safeguards (least privilege, integrity, entity authentication, contingency).
            "poddisruptionbudgets.policy",
            "authorizationpolicies.security.istio.io",
            "authorizationpolicies.policy.linkerd.io",
            "servers.policy.linkerd.io",
            "schedules.velero.io",
            "customresourcedefinitions.apiextensions.k8s.io",
            // The background audit (audit.enabled, on by default).
            "deployments.apps",
            "statefulsets.apps",
            "daemonsets.apps",
            "replicasets.apps",
            "jobs.batch",
            "cronjobs.batch",
            "replicationcontrollers.",
            "ingresses.networking.k8s.io",
        ]
        .map(String::from)
        .into();
        assert_eq!(reads, expected, "reads for {sets:?}");
    }
}

#[test]
fn default_deny_generation_is_create_only_and_can_be_turned_off() {
    let creates = |docs: &[Value]| -> usize {
        all_of(docs, "ClusterRole")
            .into_iter()
            .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .filter(|rule| {
                strings(&rule["resources"])
                    .iter()
                    .any(|r| r == "networkpolicies")
                    && strings(&rule["verbs"])
                        .iter()
                        .any(|v| v != "get" && v != "list" && v != "watch")
            })
            .count()
    };
    let args = |docs: &[Value]| -> Vec<String> {
        let d = all_of(docs, "Deployment")
            .into_iter()
            .next()
            .expect("the Deployment");
        strings(&d["spec"]["template"]["spec"]["containers"][0]["args"])
    };
    let on = template(&[]);
    assert_eq!(creates(&on), 1);
    assert!(args(&on).iter().any(|a| a == "--generate-default-deny"));
    let lease = all_of(&on, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-default-deny"))
        .expect("the default-deny Role");
    for rule in lease["rules"].as_array().expect("rules") {
        assert_eq!(strings(&rule["resources"]), ["leases"]);
        match strings(&rule["verbs"]).as_slice() {
            [c] if c == "create" => assert!(rule["resourceNames"].is_null()),
            _ => assert_eq!(strings(&rule["resourceNames"]), ["phi-guard-default-deny"]),
        }
    }
    let off = template(&["defaultDenyGeneration.enabled=false"]);
    assert_eq!(creates(&off), 0);
    assert!(!args(&off).iter().any(|a| a == "--generate-default-deny"));
    assert!(!all_of(&off, "Role")
        .iter()
        .any(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-default-deny")));
}

#[test]
fn self_managed_tls_gets_only_its_own_secret_and_webhook() {
    let docs = template(&[]);
    let roles = all_of(&docs, "Role");
    let role = roles
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-tls"))
        .expect("the TLS Role");
    // The audit's Role: its one Lease (create cannot be limited by name).
    let audit = roles
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-audit"))
        .expect("the audit Role");
    for rule in audit["rules"].as_array().expect("rules") {
        assert_eq!(strings(&rule["resources"]), ["leases"]);
        match strings(&rule["verbs"]).as_slice() {
            [c] if c == "create" => assert!(rule["resourceNames"].is_null()),
            _ => assert_eq!(strings(&rule["resourceNames"]), ["phi-guard-audit"]),
        }
    }
    // The webhook configuration's keeper: its one Lease, and a list of the release's
    // Deployments, Jobs and Helm records (Secrets, or ConfigMaps with HELM_DRIVER=configmap;
    // their metadata is all it asks for), to tell an uninstall from a deletion to undo; nothing
    // else.
    let keeper = roles
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-webhook-scope"))
        .expect("the webhook-scope Role");
    assert_eq!(keeper["metadata"]["namespace"].as_str(), Some(RELEASE_NS));
    for rule in keeper["rules"].as_array().expect("rules") {
        match (
            strings(&rule["resources"]).as_slice(),
            strings(&rule["verbs"]).as_slice(),
        ) {
            ([l], [c]) if l == "leases" && c == "create" => {
                assert!(rule["resourceNames"].is_null())
            }
            ([l], _) if l == "leases" => {
                assert_eq!(strings(&rule["verbs"]), ["get", "update"]);
                assert_eq!(strings(&rule["resourceNames"]), ["phi-guard-webhook-scope"]);
            }
            ([d], [v])
                if ["deployments", "jobs", "secrets", "configmaps"].contains(&d.as_str())
                    && v == "list" =>
            {
                assert!(rule["resourceNames"].is_null())
            }
            other => panic!("unexpected rule in the webhook-scope Role: {other:?}"),
        }
    }
    // Events about the cluster-scoped configuration live in `default`: create and patch there,
    // nothing else.
    let events = roles
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-events"))
        .expect("the events Role");
    assert_eq!(events["metadata"]["namespace"].as_str(), Some("default"));
    assert_eq!(
        events["rules"],
        serde_json::json!([{"apiGroups": ["events.k8s.io"], "resources": ["events"],
                            "verbs": ["create", "patch"]}])
    );
    // In its own namespace: the TLS, audit, default-deny and webhook-scope Roles only (each one
    // Lease; the platform Role,
    // which names CNI ConfigMaps in kube-system, is checked in
    // platform_evidence_rbac_names_each_object).
    let own: Vec<_> = roles
        .iter()
        .filter(|r| r["metadata"]["namespace"].as_str() == Some(RELEASE_NS))
        .filter(|r| r["metadata"]["name"].as_str() != Some("pg-phi-guard-platform"))
        .collect();
    assert_eq!(own.len(), 4);
    assert_eq!(role["metadata"]["namespace"].as_str(), Some(RELEASE_NS));
    for rule in role["rules"].as_array().expect("rules") {
        assert_eq!(strings(&rule["resources"]), ["secrets"]);
        let verbs = strings(&rule["verbs"]);
        if verbs == ["create"] {
            // create cannot be limited by name
            assert!(rule["resourceNames"].is_null());
        } else {
            assert_eq!(verbs, ["get", "update", "patch"]);
            assert_eq!(strings(&rule["resourceNames"]), ["pg-phi-guard-tls"]);
        }
    }
    let deploy = one(&docs, "Deployment");
    let args = strings(&deploy["spec"]["template"]["spec"]["containers"][0]["args"]);
    for want in [
        "serve",
        "--self-managed-tls",
        "--tls-secret-name=pg-phi-guard-tls",
        "--webhook-config-name=pg-phi-guard",
        "--service-name=pg-phi-guard",
        "--cert-dir=/tls",
        "--tls-cert-file=/tls/tls.crt",
        "--tls-key-file=/tls/tls.key",
        // Durations in the CLI's one humane form.
        "--tls-ca-validity=1825d",
        "--tls-serving-validity=90d",
        "--tls-serving-renew-before=30d",
        "--tls-check-interval=60s",
    ] {
        assert!(args.iter().any(|a| a == want), "missing {want} in {args:?}");
    }
    // No caBundle rendered: phi-guard patches it, and helm upgrades leave it alone.
    let vwc = one(&docs, "ValidatingWebhookConfiguration");
    assert!(vwc["webhooks"][0]["clientConfig"]["caBundle"].is_null());

    // Other modes: no access to Secrets' content but the webhook configuration keeper's list
    // of Helm's release records in its own namespace (it asks for their metadata only).
    for sets in [
        &["tls.mode=certManager"][..],
        &[
            "tls.mode=secret",
            "tls.secret.name=s",
            "webhook.caBundle=QUJD",
        ],
    ] {
        let docs = template(sets);
        let secret_rules: Vec<_> = all_of(&docs, "Role")
            .into_iter()
            .flat_map(|r| {
                let role = r["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let rules = r["rules"].as_array().cloned().unwrap_or_default();
                rules.into_iter().map(move |rule| (role.clone(), rule))
            })
            .filter(|(_, rule)| rule["resources"].to_string().contains("secrets"))
            .collect();
        assert_eq!(secret_rules.len(), 1, "{sets:?}: {secret_rules:?}");
        let (role, rule) = &secret_rules[0];
        assert_eq!(role, "pg-phi-guard-webhook-scope", "{sets:?}");
        assert_eq!(strings(&rule["verbs"]), ["list"], "{sets:?}");
        assert_eq!(strings(&rule["resources"]), ["secrets"], "{sets:?}");
        let deploy = one(&docs, "Deployment");
        let args = strings(&deploy["spec"]["template"]["spec"]["containers"][0]["args"]);
        assert!(!args.iter().any(|a| a == "--self-managed-tls"), "{sets:?}");
    }
}

/// With syncScope phi-guard keeps the configuration: the owners whose writes it takes are
/// passed on, and the grants it needs for that go away with the value.
#[test]
fn the_webhook_configuration_keeper_follows_sync_scope() {
    let args = |docs: &[Value]| {
        strings(&one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])
    };
    let default = template(&[]);
    let a = args(&default);
    assert!(
        a.contains(&"--webhook-scope-config=pg-phi-guard".to_string()),
        "{a:?}"
    );
    assert!(
        a.contains(&"--webhook-config-owners=helm".to_string()),
        "{a:?}"
    );
    let argo = template(&["webhook.configOwners={argocd-controller,helm}"]);
    assert!(args(&argo).contains(&"--webhook-config-owners=argocd-controller,helm".to_string()));

    let off = template(&["webhook.syncScope=false", "tls.mode=certManager"]);
    let a = args(&off);
    assert!(!a.iter().any(|x| x.starts_with("--webhook-")), "{a:?}");
    let names: Vec<&str> = all_of(&off, "Role")
        .into_iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"pg-phi-guard-webhook-scope") && !names.contains(&"pg-phi-guard-events"),
        "{names:?}"
    );
    let main = all_of(&off, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard"))
        .expect("main ClusterRole");
    assert!(
        !main["rules"]
            .to_string()
            .contains("validatingwebhookconfigurations"),
        "{}",
        main["rules"]
    );
}

#[test]
fn cert_manager_mode_injects_the_ca() {
    let docs = template(&["tls.mode=certManager"]);
    let vwc = one(&docs, "ValidatingWebhookConfiguration");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str(),
        Some(format!("{RELEASE_NS}/pg-phi-guard-tls").as_str())
    );
    let certs = all_of(&docs, "Certificate");
    assert_eq!(certs.len(), 2, "CA and serving certificates");
    assert_eq!(
        all_of(&docs, "Issuer").len(),
        2,
        "self-signed and CA issuers"
    );
    let serving = certs
        .iter()
        .find(|c| c["spec"]["isCA"].as_bool() != Some(true))
        .expect("serving Certificate");
    assert!(
        strings(&serving["spec"]["dnsNames"]).contains(&format!("pg-phi-guard.{RELEASE_NS}.svc"))
    );
    let deploy = one(&docs, "Deployment");
    let vols = &deploy["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        vols[0]["secret"]["secretName"].as_str(),
        Some("pg-phi-guard-tls")
    );

    // An external issuer: no chart-made CA.
    let docs = template(&[
        "tls.mode=certManager",
        "tls.certManager.issuerRef.name=corp",
        "tls.certManager.issuerRef.kind=ClusterIssuer",
    ]);
    assert_eq!(all_of(&docs, "Certificate").len(), 1);
    assert!(all_of(&docs, "Issuer").is_empty());
}

#[test]
fn secret_mode_and_url_override_use_the_given_ca_bundle() {
    let docs = template(&[
        "tls.mode=secret",
        "tls.secret.name=my-tls",
        "webhook.caBundle=QUJDRA==",
    ]);
    let vwc = one(&docs, "ValidatingWebhookConfiguration");
    assert_eq!(
        vwc["webhooks"][0]["clientConfig"]["caBundle"].as_str(),
        Some("QUJDRA==")
    );
    let deploy = one(&docs, "Deployment");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"].as_str(),
        Some("my-tls")
    );

    let docs = template(&[
        "webhook.url=https://127.0.0.1:9443/validate",
        "webhook.caBundle=QUJDRA==",
    ]);
    let cc = &one(&docs, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"];
    assert_eq!(cc["url"].as_str(), Some("https://127.0.0.1:9443/validate"));
    assert!(cc["service"].is_null());
    assert_eq!(cc["caBundle"].as_str(), Some("QUJDRA=="));

    // secret mode without its inputs is refused, not rendered half-configured.
    assert!(try_template(&["tls.mode=secret"]).is_err());
    assert!(!lint(&["tls.mode=secret"]).0);
}

#[test]
fn pods_are_restricted() {
    let docs = template(&[]);
    let deploy = one(&docs, "Deployment");
    let spec = &deploy["spec"]["template"]["spec"];
    assert_eq!(deploy["spec"]["replicas"].as_u64(), Some(2));
    assert_eq!(spec["automountServiceAccountToken"].as_bool(), Some(true));
    assert!(spec["topologySpreadConstraints"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    assert!(!spec["affinity"]["podAntiAffinity"].is_null());
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let sa = all_of(&docs, "ServiceAccount")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str() == Some("pg-phi-guard"))
        .expect("ServiceAccount");
    assert_eq!(sa["automountServiceAccountToken"].as_bool(), Some(false));

    // Every container the chart can run, hooks and tests included.
    let mut containers = Vec::new();
    for d in &docs {
        let pod_spec = match kind_of(d) {
            "Deployment" | "Job" => &d["spec"]["template"]["spec"],
            "Pod" => &d["spec"],
            _ => continue,
        };
        assert_eq!(
            pod_spec["securityContext"]["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );
        for c in pod_spec["containers"].as_array().expect("containers") {
            containers.push(c.clone());
        }
        for c in pod_spec["initContainers"].as_array().into_iter().flatten() {
            containers.push(c.clone());
        }
    }
    assert!(containers.len() >= 3, "webhook, uninstall hook, helm test");
    for c in &containers {
        let sc = &c["securityContext"];
        let name = c["name"].as_str().unwrap_or("?");
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{name}");
        assert_eq!(sc["runAsUser"].as_u64(), Some(65532), "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
        assert_eq!(
            sc["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{name}"
        );
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
        assert_eq!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        assert!(
            !c["resources"]["limits"]["memory"].is_null(),
            "{name} has a memory limit"
        );
    }
    let probes = &spec["containers"][0];
    assert_eq!(
        probes["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        probes["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        probes["readinessProbe"]["httpGet"]["port"].as_str(),
        Some("admin")
    );

    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));
    let svc = one(&docs, "Service");
    let ports: Vec<(u64, String)> = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap_or(0),
                p["targetPort"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [(443, "webhook".to_string()), (8080, "admin".to_string())]
    );
}

#[test]
fn network_policy_isolates_phi_guard() {
    let docs = template(&["networkPolicy.apiServer.cidrs={10.1.2.3/32}"]);
    let np = one(&docs, "NetworkPolicy");
    assert_eq!(strings(&np["spec"]["policyTypes"]), ["Ingress", "Egress"]);
    let ingress_ports: Vec<u64> = np["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .filter_map(|r| r["ports"][0]["port"].as_u64())
        .collect();
    assert_eq!(ingress_ports, [8443, 8080]);
    let egress = np["spec"]["egress"].as_array().expect("egress");
    assert_eq!(
        egress[0]["to"][0]["ipBlock"]["cidr"].as_str(),
        Some("10.1.2.3/32")
    );
    assert_eq!(egress[1]["ports"][0]["port"].as_u64(), Some(53));
    assert!(all_of(&template(&["networkPolicy.enabled=false"]), "NetworkPolicy").is_empty());
}

#[test]
fn baseline_policy_is_a_valid_phipolicy() {
    let docs = template(&[
        "policy.baseline.mode=Warn",
        "policy.baseline.phiLabel.key=example.com/phi",
        "policy.baseline.phiLabel.value=yes",
        "policy.baseline.attestations.providerDefaultEncryption=true",
        "policy.baseline.attestations.nodeDiskEncryption=true",
        "policy.baseline.auditSidecar.approvedImages={corp/logshipper}",
        "policy.baseline.encryptedStorageClasses={vsphere-encrypted}",
    ]);
    let doc = one(&docs, "PhiPolicy");
    let policy: phi_guard::policy::PhiPolicy =
        serde_json::from_value(doc.clone()).expect("renders a PhiPolicy the CRD types accept");
    assert_eq!(
        policy.metadata.name.as_deref(),
        Some(phi_guard::policy::BASELINE_NAME)
    );
    let spec = &policy.spec;
    assert_eq!(spec.mode, phi_guard::policy::Mode::Warn);
    assert!(spec.encryption_at_rest.attest_provider_default_encryption);
    assert!(spec.encryption_at_rest.attest_node_disk_encryption);
    assert_eq!(
        spec.encryption_at_rest.encrypted_storage_classes,
        ["vsphere-encrypted"]
    );
    assert_eq!(spec.audit_sidecar.approved_images, ["corp/logshipper"]);
    let labels = spec
        .scope
        .namespace_selector
        .match_labels
        .clone()
        .unwrap_or_default();
    assert_eq!(
        labels.get("example.com/phi").map(String::as_str),
        Some("yes")
    );
    phi_guard::policy::Policy::try_from(&policy).expect("the validating parser accepts it");

    // Defaults equal the built-in baseline's spec.
    let docs = template(&[]);
    let policy: phi_guard::policy::PhiPolicy =
        serde_json::from_value(one(&docs, "PhiPolicy").clone()).expect("PhiPolicy");
    assert_eq!(policy.spec, phi_guard::policy::hipaa_baseline().spec);

    assert!(all_of(&template(&["policy.baseline.enabled=false"]), "PhiPolicy").is_empty());
}

#[test]
fn schema_rejects_bad_values() {
    for bad in [
        "replicaCount=two",
        "replicaCount=0",
        "tls.mode=helmGenerated",
        "webhook.failurePolicy=Maybe",
        "webhook.timeoutSeconds=60",
        "webhook.url=http://plaintext/validate",
        "policy.baseline.mode=Deny",
        "unknownValue=1",
        "image.digest=latest",
    ] {
        let (ok, out) = lint(&[bad]);
        assert!(!ok, "helm lint accepted {bad}:\n{out}");
        assert!(
            try_template(&[bad]).is_err(),
            "helm template accepted {bad}"
        );
    }
}

#[test]
fn optional_resources_follow_their_toggles() {
    let docs = template(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=prom",
    ]);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"].as_str(),
        Some("http-metrics")
    );
    assert_eq!(sm["metadata"]["labels"]["release"].as_str(), Some("prom"));
    let default = template(&[]);
    assert!(all_of(&default, "ServiceMonitor").is_empty());
    // The uninstall hook and helm test pod exist by default and carry their hook annotations.
    let job = one(&default, "Job");
    assert_eq!(
        job["metadata"]["annotations"]["helm.sh/hook"].as_str(),
        Some("pre-delete")
    );
    let test_pod = one(&default, "Pod");
    assert_eq!(
        test_pod["metadata"]["annotations"]["helm.sh/hook"].as_str(),
        Some("test")
    );
    let off = template(&[
        "uninstall.removeWebhookFirst.enabled=false",
        "helmTest.enabled=false",
    ]);
    assert!(all_of(&off, "Job").is_empty() && all_of(&off, "Pod").is_empty());
    let priority = template(&["priorityClassName=high"]);
    assert_eq!(
        one(&priority, "Deployment")["spec"]["template"]["spec"]["priorityClassName"].as_str(),
        Some("high")
    );
}

#[test]
fn the_audit_can_run_as_its_own_deployment() {
    let args_of = |d: &Value| strings(&d["spec"]["template"]["spec"]["containers"][0]["args"]);
    let named = |docs: &[Value], kind: &str, name: &str| -> Option<Value> {
        all_of(docs, kind)
            .into_iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
            .cloned()
    };
    // By default the webhook's pods run the audit, and there is no audit Deployment.
    let default = template(&[]);
    assert!(args_of(one(&default, "Deployment")).contains(&"--audit".to_string()));

    let docs = template(&[
        "audit.separateDeployment=true",
        "networkPolicy.enabled=true",
        "metrics.serviceMonitor.enabled=true",
    ]);
    let webhook = named(&docs, "Deployment", "pg-phi-guard").expect("webhook Deployment");
    let audit = named(&docs, "Deployment", "pg-phi-guard-audit").expect("audit Deployment");
    assert_eq!(all_of(&docs, "Deployment").len(), 2);
    let webhook_args = args_of(&webhook);
    assert!(
        !webhook_args.iter().any(|a| a.starts_with("--audit")),
        "the webhook's pods run without the audit: {webhook_args:?}"
    );
    let args = args_of(&audit);
    for want in [
        "serve",
        "--audit",
        "--audit-sweep=5m",
        "--listen=127.0.0.1:8443",
        "--tls-cert-file=/tls/tls.crt",
    ] {
        assert!(args.contains(&want.to_string()), "{want} in {args:?}");
    }
    // One writer of the webhook's TLS and configuration: only the webhook's pods.
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--self-managed-tls") || a.starts_with("--webhook-scope-config")),
        "{args:?}"
    );
    assert!(webhook_args.contains(&"--self-managed-tls".to_string()));
    assert_eq!(audit["spec"]["replicas"].as_u64(), Some(1));
    assert_eq!(audit["spec"]["strategy"]["type"].as_str(), Some("Recreate"));
    let pod = &audit["spec"]["template"]["spec"];
    assert_eq!(
        pod["serviceAccountName"],
        webhook["spec"]["template"]["spec"]["serviceAccountName"]
    );
    let c = &pod["containers"][0];
    assert_eq!(c["resources"]["limits"]["memory"].as_str(), Some("384Mi"));
    assert_eq!(c["resources"]["requests"]["memory"].as_str(), Some("128Mi"));
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(c["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    let tls = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"].as_str() == Some("tls")))
        .expect("tls volume");
    assert_eq!(
        tls["secret"]["secretName"].as_str(),
        Some("pg-phi-guard-tls")
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["readOnly"].as_bool(),
        Some(true)
    );
    // No webhook Service routes to it; its metrics have a Service of their own, which the
    // ServiceMonitor selects, and the NetworkPolicy covers its pod.
    let webhook_svc = named(&docs, "Service", "pg-phi-guard").expect("webhook Service");
    assert_eq!(
        webhook_svc["spec"]["selector"]["app.kubernetes.io/component"].as_str(),
        Some("webhook")
    );
    let audit_svc = named(&docs, "Service", "pg-phi-guard-audit").expect("audit Service");
    assert_eq!(
        audit_svc["spec"]["selector"]["app.kubernetes.io/component"].as_str(),
        Some("audit")
    );
    assert_eq!(
        audit_svc["spec"]["ports"][0]["name"].as_str(),
        Some("http-metrics")
    );
    for kind in ["ServiceMonitor", "NetworkPolicy"] {
        let d = one(&docs, kind);
        let selector = if kind == "ServiceMonitor" {
            &d["spec"]["selector"]
        } else {
            &d["spec"]["podSelector"]
        };
        assert!(
            selector["matchLabels"]["app.kubernetes.io/component"].is_null(),
            "{kind}"
        );
        assert_eq!(
            strings(&selector["matchExpressions"][0]["values"]),
            ["webhook", "audit"],
            "{kind}"
        );
    }
    // The audit's RBAC (PolicyReports, its Lease) stays.
    let role = named(&docs, "ClusterRole", "pg-phi-guard").expect("ClusterRole");
    assert!(role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .any(|r| strings(&r["resources"]).contains(&"policyreports".to_string())));
    assert!(named(&docs, "Role", "pg-phi-guard-audit").is_some());
    // Sized by values.
    let sized = template(&[
        "audit.separateDeployment=true",
        "audit.resources.limits.memory=1Gi",
    ]);
    let audit = named(&sized, "Deployment", "pg-phi-guard-audit").expect("audit Deployment");
    assert_eq!(
        audit["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
            .as_str(),
        Some("1Gi")
    );
    // No audit, no audit Deployment.
    let off = template(&["audit.enabled=false", "audit.separateDeployment=true"]);
    assert_eq!(all_of(&off, "Deployment").len(), 1);
    assert!(named(&off, "Service", "pg-phi-guard-audit").is_none());
}

#[test]
fn report_crds_consumers_wait_for_are_installed_when_absent() {
    // Policy Reporter's informers list PolicyReports and ClusterPolicyReports and stay unready
    // until both CRDs exist: the chart installs both (`helm template` sees an empty cluster).
    let docs = template(&[]);
    let crds: Vec<&Value> = all_of(&docs, "CustomResourceDefinition")
        .into_iter()
        .filter(|c| c["spec"]["group"] == "wgpolicyk8s.io")
        .collect();
    let names: Vec<&str> = crds
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "policyreports.wgpolicyk8s.io",
            "clusterpolicyreports.wgpolicyk8s.io"
        ]
    );
    for c in &crds {
        assert_eq!(
            c["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "other tools' reports live in it"
        );
        let versions: Vec<&str> = c["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(versions.contains(&"v1alpha2"), "{versions:?}");
    }
    assert_eq!(crds[1]["spec"]["scope"], "Cluster");
    assert_eq!(crds[1]["spec"]["names"]["kind"], "ClusterPolicyReport");
    // The upstream file, with where it comes from.
    let file =
        |n: &str| std::fs::read_to_string(chart_dir().join("files").join(n)).expect("CRD file");
    let cluster = file("wgpolicyk8s.io_clusterpolicyreports.yaml");
    assert!(cluster.contains(
        "https://github.com/kubernetes-sigs/wg-policy-prototypes/blob/25056e1f3eb5cab1e693b8c880eb693a84e099af/policy-report/crd/v1alpha2/wgpolicyk8s.io_clusterpolicyreports.yaml"
    ));
    let off = template(&["audit.installPolicyReportCRD=false"]);
    assert!(all_of(&off, "CustomResourceDefinition")
        .iter()
        .all(|c| c["spec"]["group"] != "wgpolicyk8s.io"));
}

#[test]
fn chart_crd_is_identical_to_crds_dir() {
    let name = "phipolicies.phiguard.io.yaml";
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        read(&chart_dir().join("crds").join(name)),
        read(&repo().join("crds").join(name)),
        "charts/phi-guard/crds/{name} differs from crds/{name}: cp crds/{name} charts/phi-guard/crds/"
    );
}

/// Every leaf of values.yaml (maps descended, lists and empty maps as leaves), as dotted paths.
fn value_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v.as_object() {
        Some(m)
            if !m.is_empty() && !prefix.ends_with("Selector") && !prefix.ends_with("resources") =>
        {
            for (k, child) in m {
                let k = k.as_str();
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                value_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

fn values_yaml() -> Value {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    serde_saphyr::from_str(&text).expect("values.yaml parses")
}

#[test]
fn every_value_is_in_the_schema_and_the_readme() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).expect("schema"),
    )
    .expect("schema parses");
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).expect("chart README.md");
    let mut paths = Vec::new();
    value_paths(&values_yaml(), "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    let mut missing = Vec::new();
    for path in &paths {
        let mut node = &schema;
        for part in path.split('.') {
            node = &node["properties"][part];
        }
        if node.is_null() || node["description"].is_null() {
            missing.push(format!("schema: {path}"));
        }
        if !readme.contains(&format!("`{path}`")) {
            missing.push(format!("README: {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented values:\n{}",
        missing.join("\n")
    );
}

/// A throwaway API server (hack/controlplane.sh, without controller-manager), stopped on drop.
struct ControlPlane {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let dir = tempfile::Builder::new()
            .prefix("phi-guard-chart-kcp")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("bash")
            .arg(repo().join("hack/controlplane.sh"))
            .args(["start"])
            .arg(dir.path())
            .env("KUBE_BIN", tools_bin())
            .env("WITH_KCM", "0")
            .env_remove("APISERVER_PORT")
            .env_remove("ETCD_CLIENT_PORT")
            .env_remove("ETCD_PEER_PORT")
            .output()
            .expect("run hack/controlplane.sh");
        let cp = ControlPlane {
            kubeconfig: dir.path().join("admin.kubeconfig"),
            dir,
        };
        assert!(
            out.status.success(),
            "control plane did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cp
    }

    /// kubectl against this control plane; (success, stdout and stderr).
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let mut cmd = Command::new(tools_bin().join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        let run = support::run_cmd(&mut cmd, stdin);
        (run.ok, run.output())
    }

    fn helm(&self, args: &[&str]) -> (bool, String) {
        let kc = self.kubeconfig.display().to_string();
        let mut all = vec!["--kubeconfig", kc.as_str()];
        all.extend_from_slice(args);
        let (ok, out, err) = helm(&all);
        (ok, format!("{out}{err}"))
    }

    async fn client(&self) -> kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("client config");
        kube::Client::try_from(cfg).expect("client")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("hack/controlplane.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .env("KUBE_BIN", tools_bin())
            .output();
    }
}

/// Against a real API server: every value set passes `kubectl apply --dry-run=server`; the chart
/// installs; self-managed TLS creates its Secret, fills the caBundle and writes the files, and a
/// CA rotation then a serving renewal change the caBundle and the served certificate together;
/// uninstall leaves no webhook behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_on_a_real_api_server_with_self_managed_tls() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::jiff::{Timestamp, ToSpan};
    use phi_guard::certs::{self, Config};

    let cp = ControlPlane::start();
    let crd = repo().join("crds/phipolicies.phiguard.io.yaml");
    let (ok, out) = cp.kubectl(&["apply", "-f", &crd.display().to_string()], None);
    assert!(ok, "{out}");
    let (ok, out) = cp.kubectl(&["create", "namespace", RELEASE_NS], None);
    assert!(ok, "{out}");
    let (ok, out) = cp.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/phipolicies.phiguard.io",
            "--timeout=60s",
        ],
        None,
    );
    assert!(ok, "{out}");

    // Kinds whose CRDs this bare API server lacks are checked by the structural tests instead.
    let optional = ["Certificate", "Issuer", "ServiceMonitor"];
    for sets in VALUE_SETS {
        let docs: Vec<Value> = template(sets)
            .into_iter()
            .filter(|d| !optional.contains(&kind_of(d)))
            .collect();
        // Objects the chart places in other namespaces (the platform Role and RoleBinding in
        // kube-system) are applied in theirs.
        let mut by_ns: BTreeMap<String, String> = BTreeMap::new();
        for d in &docs {
            let ns = d["metadata"]["namespace"]
                .as_str()
                .unwrap_or(RELEASE_NS)
                .to_string();
            let yaml = by_ns.entry(ns).or_default();
            yaml.push_str("---\n");
            yaml.push_str(&serde_saphyr::to_string(d).expect("yaml"));
        }
        for (ns, yaml) in &by_ns {
            let (ok, out) = cp.kubectl(
                &["apply", "--dry-run=server", "-n", ns, "-f", "-"],
                Some(yaml),
            );
            assert!(
                ok,
                "kubectl apply --dry-run=server rejected {sets:?}:\n{out}"
            );
        }
    }

    let chart = chart_dir().display().to_string();
    let (ok, out) = cp.helm(&["install", "pg", &chart, "-n", RELEASE_NS]);
    assert!(ok, "helm install: {out}");

    let client = cp.client().await;
    let certs_dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::new(RELEASE_NS, "pg-phi-guard");
    cfg.secret_name = "pg-phi-guard-tls".into();
    cfg.webhook_config_name = "pg-phi-guard".into();
    cfg.cert_dir = certs_dir.path().join("tls");

    let vwcs: kube::Api<ValidatingWebhookConfiguration> = kube::Api::all(client.clone());
    let ca_bundle = |v: &ValidatingWebhookConfiguration| {
        v.webhooks
            .as_ref()
            .and_then(|w| w[0].client_config.ca_bundle.clone())
            .map(|b| b.0)
    };
    assert_eq!(
        ca_bundle(&vwcs.get("pg-phi-guard").await.expect("vwc")),
        None
    );

    let now = Timestamp::now();
    let first = certs::reconcile_once(&client, &cfg, now)
        .await
        .expect("first pass");
    assert!(
        first.secret_written && first.webhook_patched && first.files_written,
        "{first:?}"
    );
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), RELEASE_NS);
    let secret = secrets.get("pg-phi-guard-tls").await.expect("secret");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let material = certs::TlsMaterial::from_secret(&secret).expect("material");
    let bundle1 = ca_bundle(&vwcs.get("pg-phi-guard").await.expect("vwc")).expect("caBundle set");
    assert_eq!(bundle1, material.bundle(now).into_bytes());
    let served1 = std::fs::read_to_string(cfg.cert_dir.join("tls.crt")).expect("tls.crt");
    assert_eq!(served1, material.serving_cert_pem);

    // A second replica's pass (or the next tick) changes nothing.
    let again = certs::reconcile_once(&client, &cfg, now)
        .await
        .expect("second pass");
    assert!(
        !again.secret_written && !again.webhook_patched && !again.files_written,
        "{again:?}"
    );

    // A helm upgrade keeps the caBundle phi-guard set.
    let (ok, out) = cp.helm(&[
        "upgrade",
        "pg",
        &chart,
        "-n",
        RELEASE_NS,
        "--set",
        "replicaCount=3",
    ]);
    assert!(ok, "helm upgrade: {out}");
    assert_eq!(
        ca_bundle(&vwcs.get("pg-phi-guard").await.expect("vwc")),
        Some(bundle1.clone())
    );

    // Four years on, the CA rotates: the bundle gains the new CA and keeps the old one.
    let later = now.checked_add((4 * 365 * 24).hours()).expect("time");
    let rotated = certs::reconcile_once(&client, &cfg, later)
        .await
        .expect("rotation");
    assert!(
        rotated.secret_written && rotated.webhook_patched,
        "{rotated:?}"
    );
    let bundle2 = ca_bundle(&vwcs.get("pg-phi-guard").await.expect("vwc")).expect("caBundle");
    let bundle2_text = String::from_utf8(bundle2.clone()).expect("pem");
    assert_eq!(bundle2_text.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(bundle2_text.contains(material.ca_cert_pem.trim()));

    // The certificate served four years on had expired, so it was renewed in the same pass,
    // by the new CA that the bundle already carries: caBundle and served certificate changed
    // together, and nothing was served that the API server could not verify.
    assert!(rotated.files_written, "{rotated:?}");
    let served2 = std::fs::read_to_string(cfg.cert_dir.join("tls.crt")).expect("tls.crt");
    assert_ne!(served1, served2);
    let now_material =
        certs::TlsMaterial::from_secret(&secrets.get("pg-phi-guard-tls").await.expect("secret"))
            .expect("material");
    assert_eq!(now_material.ca_generation, 2);
    assert_eq!(now_material.serving_ca_generation, 2);
    assert_eq!(now_material.serving_cert_pem, served2);
    assert!(bundle2_text.contains(now_material.ca_cert_pem.trim()));
    let bundle_file = std::fs::read_to_string(cfg.cert_dir.join("ca.crt")).expect("ca.crt");
    assert_eq!(bundle_file, bundle2_text);

    // Settled: the next pass changes nothing.
    let after = later.checked_add(10.minutes()).expect("time");
    let settled = certs::reconcile_once(&client, &cfg, after)
        .await
        .expect("next pass");
    assert!(
        !settled.secret_written && !settled.webhook_patched && !settled.files_written,
        "{settled:?}"
    );

    // Uninstall (hooks need a node) leaves no webhook configuration behind.
    let (ok, out) = cp.helm(&["uninstall", "pg", "-n", RELEASE_NS, "--no-hooks", "--wait"]);
    assert!(ok, "helm uninstall: {out}");
    assert!(vwcs.get_opt("pg-phi-guard").await.expect("get").is_none());
    let (ok, out) = cp.kubectl(
        &["-n", "default", "create", "configmap", "still-writable"],
        None,
    );
    assert!(ok, "API usable after uninstall: {out}");
}

/// The Grafana dashboard: opt-in, a ConfigMap the sidecar finds, valid JSON, and every query
/// names only metrics phi-guard exports (a renamed metric would leave a panel silently empty).
#[test]
fn grafana_dashboard_queries_only_exported_metrics() {
    let off = template(&[]);
    assert!(
        all_of(&off, "ConfigMap")
            .iter()
            .all(|c| c["data"]["phi-guard.json"].is_null()),
        "the dashboard is opt-in"
    );
    let docs = template(&["metrics.grafanaDashboard.enabled=true"]);
    let cm = all_of(&docs, "ConfigMap")
        .into_iter()
        .find(|c| !c["data"]["phi-guard.json"].is_null())
        .expect("dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let text = cm["data"]["phi-guard.json"].as_str().expect("json text");
    let dash: Value = serde_json::from_str(text).expect("the dashboard is valid JSON");

    // What phi-guard exports: the `# TYPE` lines of its registry (every metric family, also
    // those without samples yet).
    let m = phi_guard::telemetry::Metrics::new();
    // Families print only once they have a series: give each labelled one a sample.
    m.review("allowed", "Pod", "CREATE");
    m.finding(
        "p",
        ("audit-sidecar", "no-audit-sidecar"),
        "Enforce",
        "Pod",
        "CREATE",
    );
    m.confirm("ok", 0.01);
    m.report_write("apply");
    m.count_webhook_drift("deleted");
    m.audit_violations
        .get_or_create(&[
            ("namespace", "ns".to_string()),
            ("rule", "audit-sidecar".to_string()),
            ("mode", "Enforce".to_string()),
        ])
        .set(1);
    let exported: BTreeSet<String> = m
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(exported.contains("phi_guard_reviews"), "{exported:?}");
    let mut queries = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            queries += 1;
            let mut rest = expr;
            let mut named = 0;
            while let Some(i) = rest.find("phi_guard_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                let base = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                assert!(
                    exported.contains(base) || exported.contains(name),
                    "panel {:?} queries {name}, which phi-guard does not export",
                    panel["title"]
                );
                named += 1;
                rest = &tail[end..];
            }
            assert!(named > 0, "query names no phi-guard metric: {expr}");
        }
    }
    assert!(queries >= 8, "{queries} queries");
}

/// Platform (CNI) evidence reads exactly the named objects: ConfigMaps only by resourceNames
/// (never all ConfigMaps, never Secrets), FelixConfiguration `default` only; Flannel's
/// namespace is used only on request.
#[test]
fn platform_evidence_rbac_names_each_object() {
    let docs = template(&[]);
    let roles: Vec<_> = all_of(&docs, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-platform"))
        .collect();
    assert_eq!(roles.len(), 1, "only kube-system by default: {roles:?}");
    assert_eq!(roles[0]["metadata"]["namespace"], "kube-system");
    let rules = roles[0]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(strings(&rules[0]["resources"]), ["configmaps"]);
    assert_eq!(
        strings(&rules[0]["resourceNames"]),
        ["cilium-config", "antrea-config"]
    );
    assert_eq!(strings(&rules[0]["verbs"]), ["get", "list", "watch"]);
    let calico = all_of(&docs, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-platform"))
        .expect("calico ClusterRole");
    let rules = calico["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 3);
    assert_eq!(strings(&rules[0]["resources"]), ["felixconfigurations"]);
    assert_eq!(strings(&rules[0]["resourceNames"]), ["default"]);
    assert_eq!(strings(&rules[1]["resources"]), ["meshes", "meshtlses"]);
    assert_eq!(strings(&rules[1]["apiGroups"]), ["kuma.io"]);
    // ingress-nginx's controller ConfigMap, by name only (never all ConfigMaps).
    assert_eq!(strings(&rules[2]["resources"]), ["configmaps"]);
    assert_eq!(
        strings(&rules[2]["resourceNames"]),
        ["ingress-nginx-controller"]
    );
    assert_eq!(strings(&rules[2]["verbs"]), ["get", "list", "watch"]);
    let bindings = all_of(&docs, "RoleBinding")
        .into_iter()
        .filter(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-platform"))
        .count();
    assert_eq!(bindings, 1);

    let with_flannel = template(&[
        "platformEvidence.flannel=true",
        "platformEvidence.calico=false",
        "platformEvidence.kuma=false",
        "platformEvidence.ingressNginx=false",
    ]);
    let namespaces: Vec<&str> = all_of(&with_flannel, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-platform"))
        .filter_map(|r| r["metadata"]["namespace"].as_str())
        .collect();
    assert_eq!(namespaces, ["kube-system", "kube-flannel"]);
    assert!(!all_of(&with_flannel, "ClusterRole")
        .iter()
        .any(|r| r["metadata"]["name"].as_str() == Some("pg-phi-guard-platform")));

    let none = template(&[
        "platformEvidence.cilium=false",
        "platformEvidence.antrea=false",
        "platformEvidence.calico=false",
        "platformEvidence.kuma=false",
        "platformEvidence.ingressNginx=false",
    ]);
    assert!(!none
        .iter()
        .any(|d| d["metadata"]["name"].as_str() == Some("pg-phi-guard-platform")));
}
