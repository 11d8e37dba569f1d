// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! `phi-guard check` end to end: the binary over `examples/`, asserting exit codes, JSON findings
//! (rule ids, citations, field paths) and the text a developer reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;

const AT_REST: &str = "45 CFR 164.312(a)(2)(iv)";
const IN_TRANSIT: &str = "45 CFR 164.312(e)(1), (e)(2)(ii)";
const SEGMENTATION: &str = "45 CFR 164.312(a)(1), (e)(1)";
const AUDIT: &str = "45 CFR 164.312(b)";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `phi-guard check` with these arguments from the crate root.
fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(root())
        .arg("check")
        .args(args)
        .output()
        .expect("run phi-guard")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

fn results(v: &Value) -> &Vec<Value> {
    v["results"].as_array().expect("results array")
}

fn result<'a>(v: &'a Value, kind: &str, namespace: &str, name: &str) -> &'a Value {
    results(v)
        .iter()
        .find(|r| r["kind"] == kind && r["namespace"] == namespace && r["name"] == name)
        .unwrap_or_else(|| panic!("no result for {kind} {namespace}/{name} in {v:#}"))
}

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().expect("findings array")
}

fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("create temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    p
}

#[test]
fn compliant_application_is_admitted_without_findings() {
    let out = check(&[
        "-f",
        "examples/compliant",
        "--cluster-state",
        "examples/cluster",
        "-o",
        "json",
    ]);
    assert_eq!(
        code(&out),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let v = json(&out);
    let expected = [
        ("PersistentVolumeClaim", "claims-exports"),
        ("CronJob", "claims-export"),
        ("Deployment", "records-api"),
        ("Service", "records-api"),
        ("Ingress", "records-api"),
        ("StatefulSet", "records-db"),
        ("Service", "records-db"),
    ];
    assert_eq!(results(&v).len(), expected.len(), "{v:#}");
    for (kind, name) in expected {
        let r = result(&v, kind, "payments", name);
        assert_eq!(r["phi"], true, "{kind} {name} should be PHI: {r:#}");
        assert_eq!(
            r["allowed"], true,
            "{kind} {name} should be admitted: {r:#}"
        );
        assert!(
            findings(r).is_empty(),
            "{kind} {name} should have no findings: {r:#}"
        );
    }
}

/// (kind, namespace, name, rule, citation, path) of Enforce findings the broken examples must
/// produce. Each broken object is denied.
const BROKEN: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "PersistentVolumeClaim",
        "payments",
        "scan-uploads",
        "encryption-at-rest",
        AT_REST,
        "spec.storageClassName",
    ),
    (
        "Deployment",
        "payments",
        "report-renderer",
        "encryption-at-rest",
        AT_REST,
        "spec.template.spec.volumes[0]",
    ),
    (
        "StatefulSet",
        "payments",
        "imaging-cache",
        "encryption-at-rest",
        AT_REST,
        "spec.volumeClaimTemplates[0]",
    ),
    (
        "Deployment",
        "payments",
        "eligibility-checker",
        "audit-sidecar",
        AUDIT,
        "spec.template.spec.containers",
    ),
    (
        "Job",
        "payments",
        "claims-backfill",
        "audit-sidecar",
        AUDIT,
        "spec.template.spec.containers[1]",
    ),
    (
        "Ingress",
        "payments",
        "patient-portal",
        "encryption-in-transit",
        IN_TRANSIT,
        "spec.tls",
    ),
    (
        "Deployment",
        "payments",
        "billing-sync",
        "encryption-in-transit",
        IN_TRANSIT,
        "spec.template.metadata.annotations[\"traffic.sidecar.istio.io/excludeOutboundPorts\"]",
    ),
    (
        "Deployment",
        "claims",
        "claims-intake",
        "encryption-in-transit",
        IN_TRANSIT,
        "spec.template.metadata",
    ),
    (
        "Deployment",
        "claims",
        "claims-intake",
        "network-segmentation",
        SEGMENTATION,
        "spec.template.metadata.labels",
    ),
    (
        "Service",
        "claims",
        "claims-intake",
        "encryption-in-transit",
        IN_TRANSIT,
        "spec.ports[0]",
    ),
];

fn broken_json() -> (Output, Value) {
    // The compliant app is cluster state here: the broken Ingress routes to its Service.
    let out = check(&[
        "-f",
        "examples/broken",
        "--cluster-state",
        "examples/cluster",
        "--cluster-state",
        "examples/compliant",
        "-o",
        "json",
    ]);
    let v = json(&out);
    (out, v)
}

#[test]
fn broken_variants_are_denied_with_exact_findings() {
    let (out, v) = broken_json();
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    let mut missing = Vec::new();
    for &(kind, ns, name, rule, citation, path) in BROKEN {
        let r = result(&v, kind, ns, name);
        assert_eq!(r["phi"], true, "{kind} {ns}/{name}: {r:#}");
        assert_eq!(r["allowed"], false, "{kind} {ns}/{name}: {r:#}");
        let found = findings(r).iter().any(|f| {
            f["rule"] == rule
                && f["citation"] == citation
                && f["path"] == path
                && f["mode"] == "Enforce"
        });
        if !found {
            missing.push(format!(
                "{kind} {ns}/{name}: no Enforce {rule} finding at {path}; got {:#}",
                r["findings"]
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n\n"));
}

#[test]
fn broken_variants_report_only_what_they_break() {
    // Each variant breaks named requirements; the rest of the object is compliant, so no other
    // rule may deny it (a false positive would teach developers to ignore phi-guard).
    let (_, v) = broken_json();
    for r in results(&v) {
        let (kind, ns, name) = (
            r["kind"].as_str().unwrap_or_default(),
            r["namespace"].as_str().unwrap_or_default(),
            r["name"].as_str().unwrap_or_default(),
        );
        let allowed_rules: Vec<&str> = BROKEN
            .iter()
            .filter(|b| b.0 == kind && b.1 == ns && b.2 == name)
            .map(|b| b.3)
            .collect();
        for f in findings(r).iter().filter(|f| f["mode"] == "Enforce") {
            let rule = f["rule"].as_str().unwrap_or_default();
            assert!(
                allowed_rules.contains(&rule),
                "unexpected Enforce finding on {kind} {ns}/{name}: {f:#}"
            );
        }
    }
}

#[test]
fn unpinned_sidecar_image_is_a_warning() {
    let (_, v) = broken_json();
    let r = result(&v, "Job", "payments", "claims-backfill");
    assert!(
        findings(r)
            .iter()
            .any(|f| f["rule"] == "audit-sidecar" && f["mode"] == "Warn"),
        "expected a Warn finding for the undigested Fluent Bit image: {r:#}"
    );
}

#[test]
fn findings_explain_and_remediate() {
    let (_, v) = broken_json();
    let mut n = 0;
    for r in results(&v) {
        for f in findings(r) {
            n += 1;
            for key in ["message", "remediation", "path"] {
                assert!(
                    f[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                    "empty {key}: {f:#}"
                );
            }
        }
    }
    assert!(n >= BROKEN.len(), "only {n} findings: {v:#}");
}

#[test]
fn json_output_has_the_documented_schema() {
    let (_, v) = broken_json();
    let top: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(top, ["results", "skipped"]);
    for s in v["skipped"].as_array().expect("skipped array") {
        let mut keys: Vec<&str> = s
            .as_object()
            .expect("skipped object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "message",
                "name",
                "namespace",
                "reason",
                "source"
            ]
        );
    }
    for r in results(&v) {
        let mut keys: Vec<&str> = r
            .as_object()
            .expect("result object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["allowed", "findings", "kind", "name", "namespace", "phi"]
        );
        assert!(r["phi"].is_boolean() && r["allowed"].is_boolean());
        for f in findings(r) {
            let mut keys: Vec<&str> = f
                .as_object()
                .expect("finding object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "citation",
                    "message",
                    "mode",
                    "path",
                    "reason",
                    "remediation",
                    "rule"
                ]
            );
            // The reason code is one of the documented codes of the finding's rule.
            let code = f["reason"].as_str().unwrap_or_default();
            let reason = phi_guard::verdict::Reason::ALL
                .iter()
                .find(|r| r.as_str() == code)
                .unwrap_or_else(|| panic!("unknown reason {code}: {f:#}"));
            assert_eq!(reason.rule().as_str(), f["rule"], "{f:#}");
            assert!(
                ["Enforce", "Warn", "Audit"].contains(&f["mode"].as_str().unwrap_or_default()),
                "{f:#}"
            );
        }
    }
}

#[test]
fn text_output_reads_well() {
    let out = check(&[
        "-f",
        "examples/broken",
        "--cluster-state",
        "examples/cluster",
        "--cluster-state",
        "examples/compliant",
    ]);
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("DENIED   PersistentVolumeClaim payments/scan-uploads  (")),
        "{text}"
    );
    for needle in [AT_REST, IN_TRANSIT, SEGMENTATION, AUDIT, "fix: ", "Enforce"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Every finding line is followed by its fix.
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("  Enforce") || l.starts_with("  Warn") || l.starts_with("  Audit") {
            assert!(
                lines
                    .get(i + 1)
                    .is_some_and(|n| n.trim_start().starts_with("fix: ")),
                "finding without fix at line {}:\n{text}",
                i + 1
            );
        }
    }
    // The summary's wording: the golden table.
    assert!(lines.last().is_some_and(|l| !l.starts_with(' ')), "{text}");
    pinned("summary-denied");
}

#[test]
fn whole_examples_directory_lists_admitted_and_denied() {
    let out = check(&["-f", "examples/"]);
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ADMITTED Deployment payments/records-api"),
        "{text}"
    );
    assert!(
        text.contains("DENIED   Deployment claims/claims-intake"),
        "{text}"
    );
}

#[test]
fn compliant_application_text_output() {
    let out = check(&["-f", "examples/cluster", "-f", "examples/compliant"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ADMITTED StatefulSet payments/records-db"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("7 objects: 7 admitted, 0 denied, 0 not PHI; 0 findings"),
        "{text}"
    );
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = check(&["-f", "examples/does-not-exist.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("examples/does-not-exist.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let out = check(&["-f", "tests/fixtures/syntax-error.yaml"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/syntax-error.yaml:6:6:"),
        "expected file:line:col in {err}"
    );
    pinned("yaml-syntax-error");
}

#[test]
fn invalid_policy_names_the_field() {
    let out = check(&[
        "-f",
        "examples/compliant",
        "--policy",
        "tests/fixtures/invalid-policy.yaml",
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    // Identifiers: the file, the policy and the field.
    for id in [
        "tests/fixtures/invalid-policy.yaml",
        "PhiPolicy \"strict-volumes\"",
        "spec.encryptionAtRest.allowedInlineVolumeTypes[8]",
    ] {
        assert!(err.contains(id), "{id} in {err}");
    }
    pinned("invalid-policy");
}

#[test]
fn policy_with_a_wrong_value_shape_names_the_field() {
    let out = check(&[
        "-f",
        "examples/compliant",
        "--policy",
        "tests/fixtures/bad-mode-policy.yaml",
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("PhiPolicy \"bad-mode\": spec.auditSidecar.requireDigest"),
        "the policy and its field: {err}"
    );
    pinned("policy-wrong-value-shape");
}

#[test]
fn invalid_policy_among_inputs_is_an_error_too() {
    let out = check(&[
        "-f",
        "examples/compliant",
        "-f",
        "tests/fixtures/invalid-policy.yaml",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("allowedInlineVolumeTypes[8]"),
        "{}",
        stderr(&out)
    );
    pinned("invalid-policy-among-inputs");
}

#[test]
fn policy_flag_only_takes_policies() {
    let out = check(&[
        "-f",
        "examples/compliant",
        "--policy",
        "examples/cluster/10-storageclasses.yaml",
    ]);
    assert_eq!(code(&out), 2);
    // The file given: an identifier. Why it is refused: the golden table.
    assert!(
        stderr(&out).contains("examples/cluster/10-storageclasses.yaml"),
        "{}",
        stderr(&out)
    );
    pinned("policy-flag-given-no-policy");
}

#[test]
fn no_kubernetes_object_at_all_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write_temp(dir.path(), "empty.yaml", "# nothing rendered\n---\n");
    let out = check(&["-f", f.to_str().expect("utf-8 path")]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(!stderr(&out).is_empty());
    pinned("no-kubernetes-objects");
}

#[test]
fn baseline_example_equals_the_built_in_policy() {
    let text = std::fs::read_to_string(root().join("examples/policies/hipaa-baseline.yaml"))
        .expect("read examples/policies/hipaa-baseline.yaml");
    let from_file: phi_guard::policy::PhiPolicy =
        serde_saphyr::from_str(&text).expect("hipaa-baseline.yaml parses as a PhiPolicy");
    let built_in = phi_guard::policy::hipaa_baseline();
    assert_eq!(from_file.metadata.name, built_in.metadata.name);
    assert_eq!(
        from_file.spec, built_in.spec,
        "examples/policies/hipaa-baseline.yaml drifted from policy::hipaa_baseline()"
    );
}

#[test]
fn explicit_baseline_policy_judges_like_the_built_in_one() {
    let args = [
        "-f",
        "examples/broken",
        "--cluster-state",
        "examples/cluster",
        "--cluster-state",
        "examples/compliant",
        "-o",
        "json",
    ];
    let implicit = check(&args);
    let mut with_policy = args.to_vec();
    with_policy.extend(["--policy", "examples/policies/hipaa-baseline.yaml"]);
    let explicit = check(&with_policy);
    assert_eq!(code(&implicit), code(&explicit));
    assert_eq!(json(&implicit), json(&explicit));
}

#[test]
fn policies_among_inputs_replace_the_baseline() {
    // A Warn-mode policy given with -f: findings are reported, nothing is denied.
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write_temp(
        dir.path(),
        "warn.yaml",
        "apiVersion: phiguard.io/v1alpha1\nkind: PhiPolicy\nmetadata:\n  name: warn-only\nspec:\n  mode: Warn\n",
    );
    let policy = policy.to_str().expect("utf-8 path");
    let out = check(&[
        "-f",
        policy,
        "-f",
        "examples/broken/unencrypted-pvc.yaml",
        "--cluster-state",
        "examples/cluster",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    let r = result(&v, "PersistentVolumeClaim", "payments", "scan-uploads");
    assert_eq!(r["allowed"], true);
    assert!(
        findings(r)
            .iter()
            .any(|f| f["rule"] == "encryption-at-rest" && f["mode"] == "Warn"),
        "{r:#}"
    );
}

#[test]
fn objects_outside_phi_scope_are_not_phi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write_temp(
        dir.path(),
        "web.yaml",
        "apiVersion: v1\nkind: List\nitems:\n\
         - apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: marketing-site\n  spec:\n    template:\n      spec:\n        containers:\n        - name: web\n          image: nginx:1.27\n\
         - apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: ignored\n",
    );
    let out = check(&["-f", f.to_str().expect("utf-8 path"), "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(results(&v).len(), 1, "{v:#}");
    // No namespace in the manifest: judged as `kubectl apply` would place it.
    let r = result(&v, "Deployment", "default", "marketing-site");
    assert_eq!(r["phi"], false);
    assert_eq!(r["allowed"], true);
    assert!(findings(r).is_empty());

    let out = check(&["-f", f.to_str().expect("utf-8 path")]);
    assert!(
        stdout(&out).starts_with("NOT PHI  Deployment default/marketing-site"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn manifests_can_come_from_stdin() {
    use std::process::Stdio;
    let manifest =
        std::fs::read(root().join("examples/compliant/records-api.yaml")).expect("read example");
    let mut child = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(root())
        .args([
            "check",
            "-f",
            "-",
            "--cluster-state",
            "examples/cluster",
            "-o",
            "json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn phi-guard");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&manifest)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(results(&v).len(), 3, "{v:#}");
    assert_eq!(
        result(&v, "Deployment", "payments", "records-api")["phi"],
        true
    );
}

// ---- Robustness against real repositories (fixtures under tests/fixtures/check/) ----

const FIX: &str = "tests/fixtures/check";

fn skipped(v: &Value) -> &Vec<Value> {
    v["skipped"].as_array().expect("skipped array")
}

/// Run `check` with standard input and a deadline (a hang is a failure, not a stuck suite).
fn check_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(root())
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn phi-guard");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn namespace_flag_places_objects_that_name_none() {
    let rendered = std::fs::read(root().join(FIX).join("namespace/rendered.yaml")).expect("read");
    let ns_state = format!("{FIX}/namespace/fhir-namespace.yaml");
    let out = check_with_stdin(
        &[
            "-f",
            "-",
            "-n",
            "fhir",
            "--cluster-state",
            &ns_state,
            "-o",
            "json",
        ],
        &rendered,
    );
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    assert_eq!(results(&v).len(), 2, "{v:#}");
    // Judged in fhir, whose Namespace label makes them PHI.
    let d = result(&v, "Deployment", "fhir", "records");
    assert_eq!(d["phi"], true, "{d:#}");
    assert_eq!(result(&v, "Service", "fhir", "records")["phi"], true);

    // Without -n: `default`, as kubectl apply without a namespace.
    let out = check(&[
        "-f",
        &format!("{FIX}/namespace/rendered.yaml"),
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        result(&json(&out), "Deployment", "default", "records")["phi"],
        false
    );
}

#[test]
fn namespace_flag_conflicting_with_the_object_is_an_error() {
    let f = format!("{FIX}/namespace/conflict.yaml");
    let out = check(&["-f", &f, "--namespace", "fhir"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    // The object and both namespaces: identifiers.
    for id in [
        "PersistentVolumeClaim \"scratch\"",
        "\"billing\"",
        "\"fhir\"",
    ] {
        assert!(err.contains(id), "{id} in {err}");
    }
    pinned("namespace-conflict");
    // The same namespace, or no flag, is fine.
    assert_eq!(code(&check(&["-f", &f, "-n", "billing"])), 0);
    assert_eq!(code(&check(&["-f", &f])), 0);
}

#[test]
fn duplicate_mapping_keys_are_refused_with_file_and_line() {
    let out = check(&["-f", &format!("{FIX}/duplicate-labels.yaml")]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/check/duplicate-labels.yaml:10:"),
        "{err}"
    );
    assert!(err.contains("labels"), "names the key: {err}");
    pinned("duplicate-yaml-key");

    let out = check(&["-f", &format!("{FIX}/duplicate-keys.json")]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/check/duplicate-keys.json:6:") && err.contains("\"spec\""),
        "the position and the key: {err}"
    );
    pinned("duplicate-json-key");
}

#[test]
fn merge_keys_bom_and_json_streams_are_read() {
    let out = check(&[
        "-f",
        &format!("{FIX}/merge-keys.yaml"),
        "-f",
        &format!("{FIX}/bom.yaml"),
        "-f",
        &format!("{FIX}/concatenated.json"),
        "--cluster-state",
        "examples/cluster",
        "-o",
        "json",
    ]);
    assert!(code(&out) < 2, "{}", stderr(&out));
    let v = json(&out);
    // Merged labels reach the pod template: PHI by its own label, two containers.
    let d = result(&v, "Deployment", "payments", "records-worker");
    assert_eq!(d["phi"], true, "{d:#}");
    let paths: Vec<&str> = findings(d)
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        !paths.iter().any(|p| p.contains("containers[2]")),
        "{paths:?}"
    );
    result(&v, "Service", "payments", "bom-service");
    result(&v, "Service", "payments", "first");
    result(&v, "Service", "payments", "second");
    let sources: Vec<&str> = results(&v)
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        sources,
        ["records-worker", "bom-service", "first", "second"],
        "{v:#}"
    );
}

#[test]
fn errors_about_objects_without_kind_or_name_read_cleanly() {
    let out = check(&["-f", &format!("{FIX}/no-kind.yaml")]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/check/no-kind.yaml#1: "),
        "{err}"
    );
    pinned("no-kind");
    assert!(!err.contains(":  \"\":") && !err.contains("\"\""), "{err}");
}

#[test]
fn decode_errors_name_the_field_and_never_the_value() {
    let out = check(&["-f", &format!("{FIX}/annotation-number.yaml")]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("metadata.annotations[\"x\"]: "), "{err}");
    pinned("decode-error");
    assert!(!err.contains("424242424242"), "value echoed: {err}");
    assert!(
        err.contains("annotation-number.yaml#1: Deployment \"records\""),
        "{err}"
    );
}

#[test]
fn pod_bearing_custom_resources_are_judged_or_listed() {
    let out = check(&[
        "-f",
        &format!("{FIX}/pod-custom-resources.yaml"),
        "--cluster-state",
        "examples/cluster",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    // The Rollout's own template is judged like a Deployment's, and named as a Rollout.
    let r = result(&v, "Rollout", "payments", "records-canary");
    assert_eq!(
        (r["phi"].clone(), r["allowed"].clone()),
        (true.into(), false.into())
    );
    let audit = findings(r)
        .iter()
        .find(|f| f["rule"] == "audit-sidecar")
        .expect("audit-sidecar finding");
    assert_eq!(audit["path"], "spec.template.spec.containers");
    let msg = audit["message"].as_str().unwrap_or_default();
    assert!(msg.contains("Rollout payments/records-canary"), "{msg}");
    assert!(!msg.contains("Deployment payments/records-canary"), "{msg}");

    let skipped = skipped(&v);
    let find = |name: &str| {
        skipped
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed as skipped: {v:#}"))
    };
    let by_ref = find("records-by-ref");
    assert_eq!(by_ref["reason"], "kind-not-judged");
    let m = by_ref["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("spec.workloadRef") && m.contains("Deployment \"records-api\""),
        "{by_ref:#}"
    );
    pinned("skipped-custom-resources-json");
    for (name, path) in [
        ("nightly-export", "spec.templates[0].container"),
        ("records-fn", "spec.template.spec.containers"),
    ] {
        let s = find(name);
        let m = s["message"].as_str().unwrap_or_default();
        assert!(m.contains(path), "{s:#}");
    }

    // Text: every skipped object on a line of its own, with why.
    let out = check(&[
        "-f",
        &format!("{FIX}/pod-custom-resources.yaml"),
        "--cluster-state",
        "examples/cluster",
    ]);
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l.starts_with(
            "SKIPPED  Workflow payments/nightly-export  [tests/fixtures/check/pod-custom-resources.yaml#3]  "
        ) && l.contains("(spec.templates[0].container)")),
        "{text}"
    );
    pinned("skipped-custom-resources-text");
    assert!(
        text.contains("DENIED   Rollout payments/records-canary"),
        "{text}"
    );
}

#[test]
fn files_with_only_unjudged_objects_are_listed_not_refused() {
    let out = check(&["-f", &format!("{FIX}/only-unjudged"), "-o", "json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    assert!(results(&v).is_empty());
    let reasons: Vec<(String, String)> = skipped(&v)
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or_default().to_string(),
                s["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (kind, reason) in [
        ("HorizontalPodAutoscaler", "kind-not-judged"),
        ("CustomResourceDefinition", "kind-not-judged"),
        ("Widget", "kind-not-judged"),
        ("StorageClass", "cluster-state"),
        ("PersistentVolume", "cluster-state"),
    ] {
        assert!(
            reasons.contains(&(kind.to_string(), reason.to_string())),
            "{kind} {reason} in {reasons:?}"
        );
    }

    // The cluster examples alone: cluster state, nothing to judge, nothing wrong.
    let out = check(&["-f", "examples/cluster"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Its output (cluster state read, 0 objects judged) is the golden case's, line for line.
    pinned("cluster-state-only");
}

#[test]
fn directory_walks_skip_files_that_are_not_manifests() {
    let out = check(&["-f", &format!("{FIX}/repo"), "-o", "json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    result(&v, "Service", "payments", "records");
    let files: Vec<(&str, &str)> = skipped(&v)
        .iter()
        .filter(|s| s["reason"] == "file-skipped")
        .map(|s| {
            (
                s["source"].as_str().unwrap_or_default(),
                s["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let note = |name: &str| {
        files
            .iter()
            .find(|(s, _)| s.ends_with(name))
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("{name} not noted in {files:?}"))
    };
    // Each file noted (why: the golden table).
    for name in [
        "repo/Chart.yaml",
        "repo/values.yaml",
        "templates/deployment.yaml",
    ] {
        assert!(!note(name).is_empty(), "{name}");
    }
    pinned("skipped-repository-files");
    assert!(skipped(&v)
        .iter()
        .any(|s| s["kind"] == "Kustomization" && s["reason"] == "kind-not-judged"));

    // Named explicitly, a file that is not a manifest is an error: it cannot be judged.
    let out = check(&["-f", &format!("{FIX}/repo/values.yaml")]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("repo/values.yaml#1: "),
        "{}",
        stderr(&out)
    );
    pinned("not-a-manifest-named");
}

#[cfg(unix)]
#[test]
fn symbolic_link_cycles_are_followed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("manifests");
    std::fs::create_dir_all(base.join("nested")).expect("mkdir");
    std::fs::copy(
        root().join(FIX).join("repo/manifests/app.yaml"),
        base.join("app.yaml"),
    )
    .expect("copy");
    // A cycle back to the top, a link to a file read already, a dangling link.
    std::os::unix::fs::symlink(&base, base.join("nested/loop")).expect("symlink");
    std::os::unix::fs::symlink(base.join("app.yaml"), base.join("nested/again.yaml"))
        .expect("symlink");
    std::os::unix::fs::symlink(base.join("gone.yaml"), base.join("dangling.yaml"))
        .expect("symlink");

    let start = std::time::Instant::now();
    let out = check_with_stdin(
        &["-f", base.to_str().expect("utf-8 path"), "-o", "json"],
        b"",
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    assert_eq!(results(&v).len(), 1, "read once: {v:#}");
    let notes: Vec<&str> = skipped(&v)
        .iter()
        .filter_map(|s| s["message"].as_str())
        .collect();
    // The loop, the second link to app.yaml and the dangling link (why: the golden table).
    assert!(notes.len() >= 3, "{notes:?}");
    pinned("skipped-symbolic-links");
}

/// A repository of many objects in one namespace: every object judged once, state indexed.
#[test]
fn a_large_repository_is_judged_in_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = scale_manifests(500);
    let f = write_temp(dir.path(), "repo.yaml", &text);
    let out = check(&[
        "-f",
        f.to_str().expect("utf-8 path"),
        "--cluster-state",
        "examples/cluster",
        "-o",
        "json",
    ]);
    assert!(code(&out) < 2, "{}", stderr(&out));
    let v = json(&out);
    // Deployments, PVCs and Services judged; NetworkPolicies read as state.
    assert_eq!(results(&v).len(), 1500);
    assert_eq!(skipped(&v).len(), 500);
}

/// `n` each of Deployment, NetworkPolicy, PVC and Service in `payments` (the same shape as
/// tests/fixtures/check/generate-scale.py, which writes the 20,000-object benchmark input).
fn scale_manifests(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: payments\n  labels: {{app: app-{i}, phiguard.io/data-classification: phi}}\nspec:\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}, phiguard.io/data-classification: phi}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app@sha256:99a6d3ef64658dbfe9d50401cbb711450ebffcecac9c3fd780720e7db645e30f\n          volumeMounts: [{{name: data, mountPath: /data}}]\n      volumes:\n        - name: data\n          persistentVolumeClaim: {{claimName: data-{i}}}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: app-{i}\n  namespace: payments\nspec:\n  podSelector: {{matchLabels: {{app: app-{i}}}}}\n  policyTypes: [Ingress, Egress]\n---\n\
             apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data-{i}\n  namespace: payments\nspec:\n  storageClassName: gp3-encrypted\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: payments\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{name: https, port: 443}}]\n---\n"
        ));
    }
    s
}

// ---- rule regressions (each a way a rule once judged wrongly), each from a small manifest in
// tests/fixtures/check/issue12 ----

const ISSUE12: &str = "tests/fixtures/check/issue12";

/// `check -o json` over the rule regression fixtures (the files carry their own cluster state); the exit
/// code and the JSON.
fn issue12(files: &[&str]) -> (i32, Value) {
    let mut args = Vec::new();
    let paths: Vec<String> = files.iter().map(|f| format!("{ISSUE12}/{f}")).collect();
    for p in &paths {
        args.push("-f");
        args.push(p.as_str());
    }
    args.extend(["-o", "json"]);
    let out = check(&args);
    assert!(code(&out) < 2, "{}{}", stdout(&out), stderr(&out));
    (code(&out), json(&out))
}

/// The Enforce findings of one result as (rule, citation, path, reason code): tests assert on
/// the code, the wording is pinned once in tests/golden.rs.
fn enforced(r: &Value) -> Vec<(String, String, String, String)> {
    findings(r)
        .iter()
        .filter(|f| f["mode"] == "Enforce")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("citation"), s("path"), s("reason"))
        })
        .collect()
}

#[test]
fn issue12_ebs_encrypted_is_compared_to_the_exact_string_true() {
    let (code, v) = issue12(&["storage-class-values.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    let bad = result(&v, "PersistentVolumeClaim", "fhir", "records-title-case");
    assert_eq!(bad["allowed"], false, "{bad:#}");
    let f = enforced(bad);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "encryption-at-rest");
    assert_eq!(f[0].1, AT_REST);
    assert_eq!(f[0].2, "spec.storageClassName");
    assert_eq!(f[0].3, "unencrypted-storage-class");
    // A key in another case is still read (the driver lower-cases keys).
    let good = result(&v, "PersistentVolumeClaim", "fhir", "records-encrypted");
    assert_eq!(good["allowed"], true, "{good:#}");
    assert!(findings(good).is_empty(), "{good:#}");
}

#[test]
fn issue12_audit_sidecars_are_approved_by_registry_and_path() {
    let (code, v) = issue12(&["sidecar-registries.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    for name in [
        "otel-ghcr",
        "aws-fluent-bit",
        "bitnami-fluent-bit",
        "docker-hub-index",
    ] {
        let r = result(&v, "Deployment", "sidecars", name);
        assert_eq!(r["allowed"], true, "{r:#}");
        assert!(findings(r).is_empty(), "{r:#}");
    }
    let r = result(&v, "Deployment", "sidecars", "look-alike");
    let f = enforced(r);
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0].0, "audit-sidecar");
    assert_eq!(f[0].1, AUDIT);
    assert_eq!(f[0].2, "spec.template.spec.containers");
    assert_eq!(f[0].3, "no-audit-sidecar");
}

#[test]
fn issue12_allow_all_network_policies_are_not_segmentation() {
    let (code, v) = issue12(&["allow-all-network-policies.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    let api = result(&v, "Deployment", "db", "api");
    assert_eq!(api["allowed"], true, "{api:#}");
    assert!(findings(api).is_empty(), "{api:#}");

    let db = result(&v, "StatefulSet", "db", "postgresql");
    assert_eq!(db["allowed"], false, "{db:#}");
    let f = enforced(db);
    assert_eq!(f.len(), 1, "{db:#}");
    assert_eq!(f[0].0, "network-segmentation");
    assert_eq!(f[0].1, SEGMENTATION);
    assert_eq!(f[0].2, "spec.template.metadata.labels");
    assert_eq!(f[0].3, "allow-all-ingress");
    // The egress warning is not silenced by `egress: [{}]`.
    let warned: Vec<&Value> = findings(db)
        .iter()
        .filter(|f| f["mode"] == "Warn")
        .collect();
    assert_eq!(warned.len(), 1, "{db:#}");
    assert_eq!(warned[0]["reason"], "allow-all-egress", "{:#}", warned[0]);
}

#[test]
fn issue12_host_network_pods_are_neither_segmented_nor_meshed() {
    let (code, v) = issue12(&["host-network.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    for (kind, name) in [("Deployment", "records"), ("DaemonSet", "node-exporter")] {
        let r = result(&v, kind, "hostnet", name);
        assert_eq!(r["allowed"], false, "{r:#}");
        let f = enforced(r);
        let seg: Vec<&String> = f
            .iter()
            .filter(|f| f.0 == "network-segmentation")
            .map(|f| &f.2)
            .collect();
        assert_eq!(
            seg,
            [
                "spec.template.spec.hostNetwork",
                "spec.template.spec.containers[0].ports[0].hostPort"
            ],
            "{r:#}"
        );
        assert!(f
            .iter()
            .filter(|f| f.0 == "network-segmentation")
            .all(|f| f.1 == SEGMENTATION));
        assert!(
            f.iter()
                .any(|f| f.3 == "host-port-unsegmented" && f.2.ends_with("ports[0].hostPort")),
            "{f:?}"
        );
        // The namespace's mesh labels and STRICT PeerAuthentication do not count.
        let transit: Vec<_> = f
            .iter()
            .filter(|f| f.0 == "encryption-in-transit")
            .collect();
        assert_eq!(transit.len(), 1, "{r:#}");
        assert_eq!(transit[0].1, IN_TRANSIT);
        assert_eq!(transit[0].3, "no-transit-evidence");
    }
}

#[test]
fn issue12_ingress_serving_plain_http_next_to_tls_is_denied() {
    let (code, v) = issue12(&["ingress-plain-http.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    let r = result(&v, "Ingress", "portal", "no-redirect");
    let f = enforced(r);
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0].0, "encryption-in-transit");
    assert_eq!(f[0].1, IN_TRANSIT);
    assert_eq!(
        f[0].2,
        "metadata.annotations[\"nginx.ingress.kubernetes.io/ssl-redirect\"]"
    );
    assert_eq!(f[0].3, "ingress-ssl-redirect-off");

    let r = result(&v, "Ingress", "portal", "forced-redirect");
    assert_eq!(r["allowed"], true, "{r:#}");
    assert!(findings(r).is_empty(), "{r:#}");

    let r = result(&v, "Ingress", "portal", "catch-all");
    let f = enforced(r);
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0].2, "spec.defaultBackend");
    assert_eq!(f[0].1, IN_TRANSIT);
    assert_eq!(f[0].3, "ingress-default-backend");
}

#[test]
fn issue12_postgresql_in_band_tls_is_accepted_on_an_attestation() {
    let (code, v) = issue12(&["postgresql-in-band-tls.yaml"]);
    assert_eq!(code, 1, "{v:#}");
    let ok = result(&v, "Service", "pg", "postgresql");
    assert_eq!(ok["allowed"], true, "{ok:#}");
    assert!(findings(ok).is_empty(), "{ok:#}");

    let plain = result(&v, "Service", "pg", "postgresql-hl");
    let f = enforced(plain);
    assert_eq!(f.len(), 1, "{plain:#}");
    assert_eq!(f[0].0, "encryption-in-transit");
    assert_eq!(f[0].1, IN_TRANSIT);
    assert_eq!(f[0].2, "spec.ports[0]");
    assert_eq!(f[0].3, "plaintext-service-port");
    let fix = findings(plain)[0]["remediation"]
        .as_str()
        .unwrap_or_default();
    assert!(
        fix.contains("appProtocol") && fix.contains("postgresql"),
        "{fix}"
    );
    pinned("plaintext-port-remediation");

    let unattested = result(&v, "Service", "pg", "postgresql-unattested");
    let f = enforced(unattested);
    assert_eq!(f.len(), 1, "{unattested:#}");
    assert_eq!(f[0].3, "plaintext-service-port");
}

/// `check` honours PhiExceptions given as files as the webhook does, expiry included (compared
/// with the time of the run).
#[test]
fn check_honours_exceptions_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let app = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger
  namespace: clinic
  labels: {phiguard.io/data-classification: phi, app: ledger}
spec:
  selector: {matchLabels: {app: ledger}}
  template:
    metadata:
      labels: {phiguard.io/data-classification: phi, app: ledger}
    spec:
      containers:
        - name: app
          image: registry.example.com/ledger@sha256:0000000000000000000000000000000000000000000000000000000000000000
"#;
    let exception = |expires: &str| {
        format!(
            r#"apiVersion: phiguard.io/v1alpha1
kind: PhiException
metadata: {{name: ledger-sidecar}}
spec:
  match: {{namespaces: [clinic], kinds: [Deployment], names: [ledger]}}
  rules: [{{rule: audit-sidecar}}]
  expiresAt: "{expires}"
  ticket: SEC-77
  justification: sidecar rollout next sprint
"#
        )
    };
    let app_file = dir.path().join("app.yaml");
    std::fs::write(&app_file, app).unwrap();
    let run = |expires: &str| {
        let x = dir.path().join("exception.yaml");
        std::fs::write(&x, exception(expires)).unwrap();
        check(&[
            "-f",
            app_file.to_str().unwrap(),
            "--cluster-state",
            x.to_str().unwrap(),
            "-o",
            "json",
        ])
    };
    let sidecar = |out: &Output| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        v["results"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "audit-sidecar")
            .map(|f| {
                (
                    f["mode"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let future = run("2999-01-01T00:00:00Z");
    let waived = sidecar(&future);
    assert!(!waived.is_empty(), "{}", stdout(&future));
    assert!(
        waived.iter().all(|(mode, msg)| mode == "Warn"
            && msg.starts_with(&phi_guard::verdict::notes::excepted_until(
                "2999-01-01T00:00:00Z",
                "SEC-77",
                "ledger-sidecar"
            ))),
        "{waived:?}"
    );
    let past = run("2020-01-01T00:00:00Z");
    let enforced = sidecar(&past);
    assert!(
        enforced
            .iter()
            .all(|(mode, msg)| mode == "Enforce" && !msg.contains("SEC-77")),
        "an expired exception waives nothing: {enforced:?}"
    );
    assert_eq!(code(&past), 1);
    // A malformed exception is an input error naming the field (exit 2).
    let x = dir.path().join("exception.yaml");
    std::fs::write(&x, exception("next tuesday")).unwrap();
    let bad = check(&[
        "-f",
        app_file.to_str().unwrap(),
        "--cluster-state",
        x.to_str().unwrap(),
    ]);
    assert_eq!(code(&bad), 2);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("spec.expiresAt"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    pinned("exception-malformed");
}

// ---- Output for pipelines: SARIF and JUnit (tests/fixtures/check/sarif/) ----

const SARIF_FIX: &str = "tests/fixtures/check/sarif/findings.yaml";

/// The line (from 1) of the only line of `file` containing `needle`.
fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} in {file}: lines {lines:?}");
    lines[0] as u64
}

/// Check a SARIF log's structure; returns its results.
fn sarif_results(v: &Value) -> Vec<Value> {
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "phi-guard");
    assert!(!driver["version"].as_str().unwrap().is_empty());
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "encryption-at-rest",
            "encryption-in-transit",
            "network-segmentation",
            "audit-sidecar",
            "phi-classification",
            // The optional safeguards, listed whether or not a policy enables them;
            // appended, so the existing rules keep their ruleIndex.
            "least-privilege",
            "integrity",
            "entity-authentication",
            "contingency"
        ]
    );
    for r in rules {
        assert!(!r["shortDescription"]["text"].as_str().unwrap().is_empty());
        assert!(r["helpUri"].as_str().unwrap().starts_with("https://"));
        // 164.312 (technical safeguards) or 164.308 (administrative: least privilege,
        // contingency).
        let citation = r["properties"]["hipaa-citation"].as_str().unwrap();
        assert!(
            citation.starts_with("45 CFR 164.312") || citation.starts_with("45 CFR 164.308"),
            "{citation}"
        );
        let sev: f64 = r["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&sev));
        assert!(r["properties"]["tags"]
            .as_array()
            .unwrap()
            .contains(&"security".into()));
    }
    let results = runs[0]["results"].as_array().unwrap().clone();
    for r in &results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(r["ruleId"], ids[i], "{r:#}");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(!loc["artifactLocation"]["uri"].as_str().unwrap().is_empty());
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
    }
    results
}

/// The result for the finding at `path` of object `name`.
fn sarif_result<'a>(results: &'a [Value], name: &str, path: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["properties"]["name"] == name && r["properties"]["path"] == path)
        .unwrap_or_else(|| panic!("no result for {name} {path}: {results:#?}"))
}

fn start_line(r: &Value) -> u64 {
    r["locations"][0]["physicalLocation"]["region"]["startLine"]
        .as_u64()
        .unwrap()
}

#[test]
fn sarif_locates_every_finding_at_its_field() {
    let out = check(&[
        "-f",
        SARIF_FIX,
        "--cluster-state",
        "examples/cluster",
        "-o",
        "sarif",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let results = sarif_results(&json(&out));
    assert_eq!(results.len(), 4, "{results:#?}");
    let hostpath = sarif_result(&results, "intake", "spec.template.spec.volumes[1]");
    assert_eq!(hostpath["ruleId"], "encryption-at-rest");
    assert_eq!(hostpath["level"], "error");
    assert_eq!(start_line(hostpath), line_of(SARIF_FIX, "- name: spool"));
    assert_eq!(
        hostpath["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        SARIF_FIX
    );
    let text = hostpath["message"]["text"].as_str().unwrap();
    assert!(text.contains("Deployment payments/intake"), "{text}");
    pinned("sarif-message");
    assert!(text.contains(AT_REST), "{text}");
    let bypass = sarif_result(
        &results,
        "intake",
        r#"spec.template.metadata.annotations["traffic.sidecar.istio.io/excludeOutboundPorts"]"#,
    );
    assert_eq!(
        start_line(bypass),
        line_of(SARIF_FIX, "excludeOutboundPorts")
    );
    let unpinned = sarif_result(&results, "intake", "spec.template.spec.containers[1].image");
    assert_eq!(unpinned["level"], "warning");
    assert_eq!(unpinned["ruleId"], "audit-sidecar");
    assert_eq!(start_line(unpinned), line_of(SARIF_FIX, "fluent-bit:3.2.1"));
    // An item of a `kind: List` document, after an empty document.
    let nfs = sarif_result(&results, "scratch", "spec.volumes[0]");
    assert_eq!(start_line(nfs), line_of(SARIF_FIX, "nfs: {server") - 1);
    // Values never leave: not the hostPath, not the NFS server.
    let all = stdout(&out);
    assert!(!all.contains("/var/spool/intake") && !all.contains("nfs.example-health.com"));

    // Standard input is located too, under a name of its own.
    let input = std::fs::read(root().join(SARIF_FIX)).unwrap();
    let out = check_with_stdin(
        &[
            "-f",
            "-",
            "--cluster-state",
            "examples/cluster",
            "-o",
            "sarif",
        ],
        &input,
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let results = sarif_results(&json(&out));
    let hostpath = sarif_result(&results, "intake", "spec.template.spec.volumes[1]");
    assert_eq!(start_line(hostpath), line_of(SARIF_FIX, "- name: spool"));
    assert_eq!(
        hostpath["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "stdin"
    );
}

#[test]
fn sarif_and_junit_keep_the_exit_codes() {
    for format in ["sarif", "junit"] {
        let out = check(&[
            "-f",
            "examples/cluster",
            "-f",
            "examples/compliant",
            "-o",
            format,
        ]);
        assert_eq!(code(&out), 0, "{format}: {}", stderr(&out));
        let out = check(&["-f", "examples/does-not-exist.yaml", "-o", format]);
        assert_eq!(code(&out), 2, "{format}");
        assert!(out.stdout.is_empty(), "{format}");
    }
    let out = check(&[
        "-f",
        "examples/cluster",
        "-f",
        "examples/compliant",
        "-o",
        "sarif",
    ]);
    assert!(sarif_results(&json(&out)).is_empty());
}

/// An element of a parsed XML document: name, attributes (unescaped), text (unescaped).
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} has no {name}", self.name))
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').expect("entity ends") + i;
        let entity = &rest[i + 1..end];
        match entity {
            "amp" => out.push('&'),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            e => {
                let n: u32 = e.strip_prefix('#').expect("known entity").parse().unwrap();
                out.push(char::from_u32(n).unwrap());
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A small well-formedness check: declaration, balanced tags, quoted attributes, no raw `<`
/// or `"` inside attribute values, only known entities. Returns the elements in document order.
fn parse_xml(xml: &str) -> Vec<Element> {
    let mut rest = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("XML declaration");
    let (mut elements, mut open): (Vec<Element>, Vec<usize>) = (Vec::new(), Vec::new());
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..lt];
        assert!(!text.contains('>') || !text.contains('<'));
        match open.last() {
            Some(&i) => elements[i].text.push_str(&unescape(text)),
            None => assert!(text.trim().is_empty(), "text outside the root: {text:?}"),
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').unwrap();
            let i = open.pop().expect("a closing tag closes an open element");
            assert_eq!(elements[i].name, &r[..end], "balanced tags");
            rest = &r[end + 1..];
            continue;
        }
        let mut r = &rest[1..];
        let end = r
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap();
        let mut el = Element {
            name: r[..end].to_string(),
            attrs: Vec::new(),
            text: String::new(),
        };
        assert!(!el.name.is_empty());
        r = &r[end..];
        loop {
            r = r.trim_start();
            if let Some(after) = r.strip_prefix("/>") {
                elements.push(el);
                r = after;
                break;
            }
            if let Some(after) = r.strip_prefix('>') {
                open.push(elements.len());
                elements.push(el);
                r = after;
                break;
            }
            let eq = r.find("=\"").expect("attribute=\"value\"");
            let name = r[..eq].to_string();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{name}"
            );
            let v = &r[eq + 2..];
            let close = v.find('"').unwrap();
            assert!(!v[..close].contains('<'), "raw < in an attribute");
            el.attrs.push((name, unescape(&v[..close])));
            r = &v[close + 1..];
        }
        rest = r;
    }
    assert!(open.is_empty(), "unclosed elements");
    elements
}

#[test]
fn junit_has_a_test_case_per_object_and_a_failure_per_denial() {
    let out = check(&[
        "-f",
        SARIF_FIX,
        "-f",
        "examples/compliant/records-api.yaml",
        "--cluster-state",
        "examples/cluster",
        "-o",
        "junit",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let xml = stdout(&out);
    let elements = parse_xml(&xml);
    let count = |name: &str| elements.iter().filter(|e| e.name == name).count();
    assert_eq!(elements[0].name, "testsuites");
    assert_eq!(count("testsuite"), 2, "one per file");
    // findings.yaml: 2 denied, 2 ConfigMaps skipped; records-api.yaml: 3 admitted.
    assert_eq!(count("testcase"), 7);
    assert_eq!(count("failure"), 2);
    assert_eq!(count("skipped"), 2);
    assert_eq!(elements[0].attr("tests"), "7");
    assert_eq!(elements[0].attr("failures"), "2");
    assert_eq!(elements[0].attr("skipped"), "2");
    let suites: Vec<&Element> = elements.iter().filter(|e| e.name == "testsuite").collect();
    assert_eq!(suites[0].attr("name"), SARIF_FIX);
    assert_eq!(suites[0].attr("tests"), "4");
    assert_eq!(suites[1].attr("failures"), "0");
    let case = elements
        .iter()
        .position(|e| e.name == "testcase" && e.attr("name") == "intake")
        .unwrap();
    assert_eq!(elements[case].attr("classname"), "Deployment/payments");
    let failure = &elements[case + 1];
    assert_eq!(failure.name, "failure");
    assert_eq!(failure.attr("message"), "denied: 2 Enforce findings");
    // Every finding, Warn included, with path, citation, message and fix; quotes and angle
    // brackets survive the round trip.
    assert!(failure.text.contains(r#"volume "spool""#));
    assert!(failure.text.contains(
        r#"spec.template.metadata.annotations["traffic.sidecar.istio.io/excludeOutboundPorts"]"#
    ));
    assert!(failure.text.contains(&format!(
        "Warn audit-sidecar [sidecar-not-pinned] ({AUDIT})"
    )));
    assert!(failure.text.contains("`<repository>:<tag>@sha256:"));
    assert!(!xml.contains("<repository>"), "escaped in the document");
    let api = elements
        .iter()
        .find(|e| {
            e.name == "testcase"
                && e.attr("name") == "records-api"
                && e.attr("classname") == "Deployment/payments"
        })
        .unwrap();
    assert_eq!(api.attr("file"), "examples/compliant/records-api.yaml");
}

// ---- A third-party chart (tests/fixtures/third-party/hapi-fhir-jpaserver/, see its README) ----

const FHIR: &str = "tests/fixtures/third-party/hapi-fhir-jpaserver";

/// `(kind, name, allowed, [(mode, rule, path)])` of every result, in input order.
type Verdict = (String, String, bool, Vec<(String, String, String)>);

fn verdicts(v: &Value) -> Vec<Verdict> {
    results(v)
        .iter()
        .map(|r| {
            let f = findings(r)
                .iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap().to_string();
                    (s("mode"), s("rule"), s("path"))
                })
                .collect();
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["allowed"].as_bool().unwrap(),
                f,
            )
        })
        .collect()
}

fn v(kind: &str, allowed: bool, findings: &[(&str, &str, &str)]) -> Verdict {
    let name = if kind == "Pod" {
        "fhir-hapi-fhir-jpaserver-test-endpoints"
    } else {
        "fhir-hapi-fhir-jpaserver"
    };
    (
        kind.to_string(),
        name.to_string(),
        allowed,
        findings
            .iter()
            .map(|(m, r, p)| (m.to_string(), r.to_string(), p.to_string()))
            .collect(),
    )
}

#[test]
fn third_party_fhir_chart_gets_the_verdicts_a_platform_engineer_expects() {
    let rendered = format!("{FHIR}/rendered.yaml");
    let (e, w) = ("Enforce", "Warn");
    let (rest, transit, seg, audit) = (
        "encryption-at-rest",
        "encryption-in-transit",
        "network-segmentation",
        "audit-sidecar",
    );
    let (tmp, lucene) = (
        "spec.template.spec.volumes[0]",
        "spec.template.spec.volumes[1]",
    );

    // Installed as is into a PHI namespace with nothing around it: the FHIR server keeps its
    // Lucene index on node disk (a warning), has no mesh or TLS, no NetworkPolicy and ships no
    // audit logs; its Service exposes plaintext HTTP and metrics in front of those pods; the
    // `helm test` Pod (it reads /fhir/Patient) is PHI work too. The Ingress terminates TLS for
    // its only host and is admitted.
    let out = check(&[
        "-f",
        &rendered,
        "-n",
        "fhir",
        "--cluster-state",
        "tests/fixtures/check/namespace/fhir-namespace.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        verdicts(&json(&out)),
        [
            v(
                "Service",
                false,
                &[(e, transit, "spec.ports[0]"), (e, transit, "spec.ports[1]")]
            ),
            v(
                "Deployment",
                false,
                &[
                    (w, rest, tmp),
                    (w, rest, lucene),
                    (e, transit, "spec.template.metadata"),
                    (e, seg, "spec.template.metadata.labels"),
                    (w, seg, "spec.template.metadata.labels"),
                    (e, audit, "spec.template.spec.containers"),
                ]
            ),
            v("Ingress", true, &[]),
            v(
                "Pod",
                false,
                &[
                    (e, transit, "metadata"),
                    (e, seg, "metadata.labels"),
                    (w, seg, "metadata.labels"),
                    (e, audit, "spec.containers"),
                ]
            ),
        ]
    );

    // With the platform around it (mesh with STRICT mTLS, default deny and allow lists), what
    // is left is what the chart cannot express: no audit sidecar for the server or the test
    // Pod, and the on-disk emptyDirs stay warnings.
    let out = check(&[
        "-f",
        &rendered,
        "-n",
        "fhir",
        "--cluster-state",
        &format!("{FHIR}/platform.yaml"),
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        verdicts(&json(&out)),
        [
            v("Service", true, &[]),
            v(
                "Deployment",
                false,
                &[
                    (w, rest, tmp),
                    (w, rest, lucene),
                    (e, audit, "spec.template.spec.containers")
                ]
            ),
            v("Ingress", true, &[]),
            v("Pod", false, &[(e, audit, "spec.containers")]),
        ]
    );

    // Without -n the chart lands in `default`, which is not PHI: nothing is judged PHI.
    let out = check(&["-f", &rendered, "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(results(&json(&out)).iter().all(|r| r["phi"] == false));
}

/// `examples/platform` relies on Cilium's WireGuard (read from its ConfigMap in the
/// cluster-state files) under a policy that lists CiliumEncryption; with WireGuard off the same
/// Deployment is denied and told that CNI encryption is node-to-node only.
#[test]
fn platform_example_is_admitted_only_while_cilium_encrypts() {
    let out = check(&["-f", "examples/platform"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ADMITTED Deployment lab/lab-results"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("1 ConfigMap,"),
        "the Cilium ConfigMap is read, not skipped: {}",
        stdout(&out)
    );
    pinned("platform-admitted");

    let dir = tempfile::tempdir().unwrap();
    let cluster = std::fs::read_to_string(root().join("examples/platform/00-cluster.yaml"))
        .unwrap()
        .replace("enable-wireguard: \"true\"", "enable-wireguard: \"false\"");
    let off = dir.path().join("cilium-off.yaml");
    std::fs::write(&off, cluster).unwrap();
    let off = off.display().to_string();
    let out = check(&[
        "-f",
        "examples/platform/20-lab-results.yaml",
        "--cluster-state",
        &off,
        "--cluster-state",
        "examples/platform/10-policy.yaml",
    ]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("DENIED   Deployment lab/lab-results"),
        "{text}"
    );
    assert!(
        text.contains("ConfigMap kube-system/cilium-config"),
        "{text}"
    );
    pinned("platform-cilium-off");
}

/// The optional safeguards judged by `check` exactly as by the webhook: the example policy
/// `hipaa-safeguards.yaml` over the records API opted in with `phiguard.io/safeguards:
/// enforced`; the cluster state from files (a PodDisruptionBudget, an Istio
/// AuthorizationPolicy, Velero's Schedule) decides contingency and entity authentication.
#[test]
fn optional_safeguards_are_judged_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = std::fs::read_to_string(root().join("examples/compliant/records-api.yaml"))
        .expect("read records-api")
        .replace(
            "        phiguard.io/data-classification: phi\n",
            "        phiguard.io/data-classification: phi\n        phiguard.io/safeguards: enforced\n",
        );
    let app = write_temp(dir.path(), "api.yaml", &api);
    let run = |state: Option<&Path>| {
        let mut args = vec![
            "-f".to_string(),
            app.display().to_string(),
            "--cluster-state".into(),
            "examples/cluster".into(),
            "--policy".into(),
            "examples/policies/hipaa-safeguards.yaml".into(),
            "-o".into(),
            "json".into(),
        ];
        if let Some(s) = state {
            args.extend(["--cluster-state".into(), s.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(&args)
    };

    let out = run(None);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    let r = result(&v, "Deployment", "payments", "records-api");
    let enforced: Vec<&str> = findings(r)
        .iter()
        .filter(|f| f["mode"] == "Enforce")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(enforced, ["entity-authentication", "contingency"], "{r:#}");
    assert!(
        findings(r)
            .iter()
            .any(|f| f["rule"] == "least-privilege" && f["mode"] == "Warn"),
        "{r:#}"
    );

    let state = write_temp(
        dir.path(),
        "state.yaml",
        r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: records-api, namespace: payments}
spec: {minAvailable: 1, selector: {matchLabels: {app.kubernetes.io/name: records-api}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: records-api, namespace: payments}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: records-api}}
  rules: [{from: [{source: {principals: [cluster.local/ns/payments/sa/portal]}}]}]
---
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: nightly, namespace: velero}
spec: {schedule: "0 2 * * *", template: {includedNamespaces: [other]}}
"#,
    );
    let out = run(Some(&state));
    let v = json(&out);
    let r = result(&v, "Deployment", "payments", "records-api");
    let enforced: Vec<(&str, &str)> = findings(r)
        .iter()
        .filter(|f| f["mode"] == "Enforce")
        .map(|f| (f["rule"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    // Velero is installed (a Schedule exists) but backs up another namespace only.
    assert_eq!(
        enforced,
        [("contingency", "spec.template.metadata.labels")],
        "{r:#}"
    );

    let covered = std::fs::read_to_string(&state)
        .expect("read")
        .replace("includedNamespaces: [other]", "includedNamespaces: [\"*\"]");
    let state = write_temp(dir.path(), "state.yaml", &covered);
    let out = run(Some(&state));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json(&out);
    let r = result(&v, "Deployment", "payments", "records-api");
    assert_eq!(r["allowed"], true, "{r:#}");
}

/// A plaintext Service that selects a PHI StatefulSet's pod by the label the StatefulSet
/// controller adds (`statefulset.kubernetes.io/pod-name`), in the same files as the StatefulSet
/// (as a per-pod LoadBalancer of a broker chart): traced to the StatefulSet's template.
#[test]
fn a_service_selecting_a_statefulset_pod_by_name_is_traced_to_its_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ehr, labels: {phiguard.io/data-classification: phi}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql, namespace: ehr}
spec:
  serviceName: mysql
  selector: {matchLabels: {app: mysql}}
  template:
    metadata: {labels: {app: mysql}}
    spec:
      containers: [{name: mysql, image: "mysql:8.4", ports: [{name: mysql, containerPort: 3306}]}]
---
apiVersion: v1
kind: Service
metadata: {name: mysql-0-external, namespace: ehr}
spec:
  type: LoadBalancer
  selector: {statefulset.kubernetes.io/pod-name: mysql-0}
  ports: [{name: mysql, port: 3306}]
"#;
    let path = write_temp(dir.path(), "ehr.yaml", text);
    let out = check(&["-f", path.to_str().expect("path"), "-o", "json"]);
    let v = json(&out);
    let svc = result(&v, "Service", "ehr", "mysql-0-external");
    let transit: Vec<&Value> = findings(svc)
        .iter()
        .filter(|f| f["rule"] == "encryption-in-transit")
        .collect();
    assert!(
        !transit.is_empty() && transit.iter().all(|f| f["mode"] == "Enforce"),
        "the Service's plaintext port in front of the StatefulSet's PHI pods: {svc:#}"
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

/// A Namespace document among the inputs (as kube-prometheus, sock-shop and podinfo ship
/// theirs) is merged with the cluster's as `kubectl apply` merges it: the PHI label another
/// manager set stays, so the app in it is still judged as PHI.
#[test]
fn a_namespace_document_keeps_the_clusters_phi_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = write_temp(
        dir.path(),
        "state.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {phiguard.io/data-classification: phi, team: web}\n",
    );
    let app = write_temp(
        dir.path(),
        "app.yaml",
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {app.kubernetes.io/part-of: shop, team: storefront}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: carts, namespace: shop}
spec:
  selector: {matchLabels: {app: carts}}
  template:
    metadata: {labels: {app: carts}}
    spec:
      containers: [{name: carts, image: "weaveworksdemos/carts:0.4.8"}]
"#,
    );
    let out = check(&[
        "-f",
        app.to_str().expect("path"),
        "--cluster-state",
        state.to_str().expect("path"),
        "-o",
        "json",
    ]);
    let v = json(&out);
    let carts = result(&v, "Deployment", "shop", "carts");
    assert_eq!(carts["phi"], true, "{carts:#}");
    assert_eq!(carts["allowed"], false, "{carts:#}");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

/// Inputs that are too large or not regular files: refused with a clear error (exit 2), in
/// bounded time and memory. Before, `check -f /dev/zero` grew until killed, a 1 GB one-line file
/// peaked at 4.2 GB and a FIFO hung the run.
mod input_limits {
    use super::*;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// `phi-guard check` under a 1 GiB address-space limit (`ulimit -v`) and a 30 s deadline,
    /// standard input from `stdin` (a path) or empty.
    fn check_bounded(args: &[&str], stdin: Option<&Path>) -> (Output, Duration) {
        let input = match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("open stdin source")),
            None => Stdio::null(),
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -v 1048576 && exec "$0" check "$@""#)
            .arg(env!("CARGO_BIN_EXE_phi-guard"))
            .args(args)
            .current_dir(root())
            .stdin(input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run phi-guard");
        let pid = child.id();
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(out) => (out.expect("phi-guard output"), started.elapsed()),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("phi-guard check {args:?} still running after 30 s");
            }
        }
    }

    /// Exit 2 naming `source` (a path, or `<stdin>`), well within the deadline and the memory
    /// limit. Why it was refused is worded in the golden table (`pinned`).
    fn refused(args: &[&str], stdin: Option<&Path>, source: &str) {
        let message = format!("{source}: ");
        let (out, took) = check_bounded(args, stdin);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(
            err.contains(&message),
            "{args:?}: expected {message:?} in: {err}"
        );
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
    }

    fn mkfifo(path: &Path) {
        let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(ok.success());
    }

    #[test]
    fn devices_are_refused_as_files_and_as_cluster_state() {
        let device = "/dev/zero";
        refused(&["-f", "/dev/zero"], None, device);
        refused(
            &["-f", "examples/compliant", "--cluster-state", "/dev/zero"],
            None,
            device,
        );
        refused(
            &["-f", "examples/compliant", "--policy", "/dev/zero"],
            None,
            device,
        );
        refused(&["-f", "/dev/null"], None, "/dev/null");
        pinned("device");
    }

    #[test]
    fn endless_standard_input_stops_at_the_default_limit() {
        refused(&["-f", "-"], Some(Path::new("/dev/zero")), "<stdin>");
        pinned("over-the-default-limit");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_under_it_read() {
        let dir = tempfile::tempdir().unwrap();
        // One line of 2 MiB, as a minified or generated file would be.
        let big = write_temp(
            dir.path(),
            "big.yaml",
            &format!("# {}\n", "x".repeat(2 * 1024 * 1024)),
        );
        let big = big.to_str().unwrap();
        refused(&["--max-file-mib", "1", "-f", big], None, big);
        pinned("over-a-given-limit");
        refused(
            &[
                "--max-file-mib",
                "1",
                "-f",
                "examples/compliant",
                "--cluster-state",
                big,
            ],
            None,
            big,
        );
        // Standard input, the same limit.
        refused(
            &["--max-file-mib", "1", "-f", "-"],
            Some(Path::new(big)),
            "<stdin>",
        );
        // Walking a directory too.
        refused(
            &["--max-file-mib", "1", "-f", dir.path().to_str().unwrap()],
            None,
            "big.yaml",
        );
        // Real manifests are far below any limit.
        let (out, _) = check_bounded(
            &[
                "--max-file-mib",
                "1",
                "-f",
                "examples/compliant",
                "--cluster-state",
                "examples/cluster",
            ],
            None,
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    /// The default limit, with a sparse file (nothing written to disk) just over it: refused
    /// from its size, before reading.
    #[test]
    fn the_default_limit_refuses_a_larger_file_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yaml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(128 * 1024 * 1024 + 1).unwrap();
        let (out, took) = check_bounded(&["-f", path.to_str().unwrap()], None);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(stderr(&out).contains("huge.yaml: "), "{}", stderr(&out));
        pinned("over-the-default-limit");
        assert!(
            took < Duration::from_secs(5),
            "{took:?}: read before refusing"
        );
    }

    #[test]
    fn a_fifo_is_refused_named_or_found_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        mkfifo(&fifo);
        let fifo = fifo.to_str().unwrap();
        refused(&["-f", fifo], None, fifo);
        refused(
            &["-f", "examples/compliant", "--cluster-state", fifo],
            None,
            fifo,
        );
        pinned("fifo");
        // Met while walking a directory, beside a real manifest.
        let walked = tempfile::tempdir().unwrap();
        std::fs::copy(
            root().join("examples/compliant/records-api.yaml"),
            walked.path().join("app.yaml"),
        )
        .unwrap();
        mkfifo(&walked.path().join("sub.yaml"));
        refused(&["-f", walked.path().to_str().unwrap()], None, "sub.yaml");
    }
}

/// A Deployment whose containers share one environment through `count` aliases of one anchor,
/// as hand-written manifests do.
fn deployment_with_aliases(count: usize) -> String {
    let mut text = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: payments}\n\
         spec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n\
         \x20   spec:\n      containers:\n      - name: c0\n        image: registry.example/api:1\n\
         \x20       env: &env [{name: MODE, value: a}]\n",
    );
    for i in 1..=count {
        text.push_str(&format!(
            "      - name: c{i}\n        image: registry.example/api:1\n        env: *env\n"
        ));
    }
    text
}

#[test]
fn yaml_aliases_kubectl_accepts_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 120 aliases of one anchor: refused before as a "budget breach"; kubectl's go-yaml reads
    // it (it refuses only when more than 99% of a document's nodes come from aliases).
    for count in [120, 2_000] {
        let f = write_temp(dir.path(), "aliases.yaml", &deployment_with_aliases(count));
        let out = check(&["-f", f.to_str().unwrap(), "-o", "json"]);
        assert!(code(&out) < 2, "{count} aliases: {}", stderr(&out));
        let v = json(&out);
        result(&v, "Deployment", "payments", "api");
    }
}

#[test]
fn yaml_alias_bombs_are_refused_as_kubectl_refuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The billion laughs: nine levels of ten aliases each.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*l{p}"); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let f = write_temp(dir.path(), "bomb.yaml", &text);
    let started = std::time::Instant::now();
    let out = check(&["-f", f.to_str().unwrap()]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("bomb.yaml:7:"), "{err}");
    pinned("yaml-alias-bomb");
    assert!(
        !err.contains("budget") && !err.contains('{'),
        "no reader internals: {err}"
    );
}

#[test]
fn yaml_errors_speak_of_the_manifest_not_the_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write_temp(
        dir.path(),
        "dup.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
    );
    let err = stderr(&check(&["-f", f.to_str().unwrap()]));
    assert!(
        err.contains("dup.yaml:5:3:") && err.contains("\"name\""),
        "{err}"
    );
    pinned("yaml-duplicate-key");
    assert!(!err.contains("Policy") && !err.contains("Options"), "{err}");

    let f = write_temp(
        dir.path(),
        "anchor.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: *svc\n",
    );
    let err = stderr(&check(&["-f", f.to_str().unwrap()]));
    assert!(err.contains("anchor.yaml:4:"), "{err}");
    pinned("yaml-unknown-anchor");

    let f = write_temp(
        dir.path(),
        "binary.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: !!binary //79\n",
    );
    let err = stderr(&check(&["-f", f.to_str().unwrap()]));
    assert!(err.contains("binary.yaml:5:"), "{err}");
    pinned("yaml-binary-tag");
    assert!(!err.contains("Options") && !err.contains("//79"), "{err}");

    // An object with an empty name is named as such, not as a bare kind.
    let f = write_temp(
        dir.path(),
        "unnamed.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ''\nspec:\n  containers: [{name: a, image: 3}]\n",
    );
    let out = check(&["-f", f.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("unnamed.yaml#1: Pod") && err.contains("spec.containers[0].image"),
        "{err}"
    );
    pinned("unnamed-object-error");
    let f = write_temp(
        dir.path(),
        "unnamed.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ''\n  namespace: x\nspec:\n  containers: [{name: a, image: b}]\n",
    );
    let text = stdout(&check(&["-f", f.to_str().unwrap()]));
    assert!(text.contains("Pod x/"), "{text}");
    pinned("unnamed-object-text");
}

#[test]
fn a_legacy_cert_manager_cluster_issuer_is_cluster_scoped() {
    // Istio's Bookinfo sample ships a ClusterIssuer of cert-manager's pre-1.0 group
    // (certmanager.k8s.io) with a namespace: kubectl ignores it, so `-n` must not conflict.
    let f = "tests/fixtures/real-world/istio-bookinfo/legacy-cluster-issuer.yaml";
    let out = check(&["-f", f, "-n", "bookinfo"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn operator_kinds_not_judged_say_their_pods_are_judged_when_created() {
    // Crunchy's PostgresCluster: an operator's store phi-guard does not read field by field.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write_temp(
        dir.path(),
        "crunchy.yaml",
        "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\n\
         metadata: {name: records}\nspec: {postgresVersion: 17}\n---\n\
         apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n\
         spec: {server: {image: registry.example/app:1}}\n",
    );
    let out = check(&["-f", f.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    let operator = v["skipped"][0]["message"].as_str().unwrap_or_default();
    assert!(!operator.is_empty(), "{v:#}");
    let image = v["skipped"][1]["message"].as_str().unwrap_or_default();
    assert!(image.contains("spec.server.image"), "{v:#}");
    pinned("skipped-operator-kinds");
}

/// Findings of one object in `check -o json`: (rule, path) pairs.
fn findings_of(v: &serde_json::Value, kind: &str, name: &str) -> Vec<(String, String)> {
    v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == kind && r["name"] == name)
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn has(fs: &[(String, String)], rule: &str, path: &str) -> bool {
    fs.iter().any(|(r, p)| r == rule && p == path)
}

#[test]
fn operators_custom_resources_are_judged_on_their_storage_and_tls() {
    // Reduced from the operators' own examples (tests/fixtures/real-world/operators/README.md).
    let dir = "tests/fixtures/real-world/operators";
    let state = format!("{dir}/state.yaml");
    let run = |file: &str| {
        let f = format!("{dir}/{file}");
        let out = check(&[
            "-f",
            &f,
            "-n",
            "records",
            "--cluster-state",
            &state,
            "-o",
            "json",
        ]);
        assert_eq!(code(&out), 1, "{file}: {}", stderr(&out));
        json(&out)
    };
    let at_rest = "encryption-at-rest";
    let transit = "encryption-in-transit";

    let cnpg = run("cnpg.yaml");
    let plain = findings_of(&cnpg, "Cluster", "charts-db");
    assert!(
        has(&plain, at_rest, "spec.storage.storageClass"),
        "{plain:?}"
    );
    assert!(has(&plain, transit, "spec.postgresql.pg_hba"), "{plain:?}");
    let kept = findings_of(&cnpg, "Cluster", "labs-db");
    // storageClass, walStorage's pvcTemplate: encrypting; the tablespace is not.
    let rest: Vec<_> = kept.iter().filter(|(r, _)| r == at_rest).collect();
    assert_eq!(rest.len(), 1, "{kept:?}");
    assert!(has(
        &kept,
        at_rest,
        "spec.tablespaces[0].storage.storageClass"
    ));
    assert!(!kept.iter().any(|(r, _)| r == transit), "{kept:?}");
    assert!(has(&kept, "audit-sidecar", "spec"), "{kept:?}");

    let strimzi = run("strimzi.yaml");
    let pool = findings_of(&strimzi, "KafkaNodePool", "brokers");
    assert!(
        has(&pool, at_rest, "spec.storage.volumes[1].type"),
        "{pool:?}"
    );
    assert!(
        !has(&pool, at_rest, "spec.storage.volumes[0].class"),
        "{pool:?}"
    );
    let kafka = findings_of(&strimzi, "Kafka", "events");
    assert!(
        has(&kafka, transit, "spec.kafka.listeners[0].tls"),
        "{kafka:?}"
    );
    assert!(
        !has(&kafka, transit, "spec.kafka.listeners[1].tls"),
        "{kafka:?}"
    );
    // The v1beta2 resources most clusters serve are judged alike, with the storage the
    // ZooKeeper-era Kafka resource carries itself.
    let legacy = run("strimzi-v1beta2.yaml");
    let kafka = findings_of(&legacy, "Kafka", "legacy-events");
    assert!(
        has(&kafka, at_rest, "spec.kafka.storage.volumes[0].class"),
        "{kafka:?}"
    );
    assert!(
        !has(&kafka, at_rest, "spec.zookeeper.storage.class"),
        "{kafka:?}"
    );
    assert!(
        has(&kafka, transit, "spec.kafka.listeners[0].tls")
            && !has(&kafka, transit, "spec.kafka.listeners[1].tls"),
        "{kafka:?}"
    );
    let pool = findings_of(&legacy, "KafkaNodePool", "legacy-brokers");
    assert!(has(&pool, at_rest, "spec.storage.type"), "{pool:?}");

    let eck = run("eck.yaml");
    let notes = findings_of(&eck, "Elasticsearch", "notes-search");
    assert!(has(
        &notes,
        at_rest,
        "spec.nodeSets[0].volumeClaimTemplates"
    ));
    assert!(has(
        &notes,
        transit,
        "spec.http.tls.selfSignedCertificate.disabled"
    ));
    let scratch = findings_of(&eck, "Elasticsearch", "scratch-search");
    assert!(has(
        &scratch,
        at_rest,
        "spec.nodeSets[0].podTemplate.spec.volumes[0]"
    ));
    assert!(!scratch.iter().any(|(r, _)| r == transit), "{scratch:?}");

    let mariadb = run("mariadb.yaml");
    let billing = findings_of(&mariadb, "MariaDB", "billing-db");
    assert!(!billing.iter().any(|(r, _)| r == at_rest), "{billing:?}");
    assert!(has(&billing, transit, "spec.tls.required"), "{billing:?}");
    let cache = findings_of(&mariadb, "MariaDB", "cache-db");
    assert!(has(&cache, at_rest, "spec.storage.ephemeral"), "{cache:?}");
    assert!(!cache.iter().any(|(r, _)| r == transit), "{cache:?}");
}

#[test]
fn a_phi_label_the_operator_does_not_copy_to_its_pods_is_a_finding() {
    // CloudNativePG copies only spec.inheritedMetadata to its pods: a Cluster labeled PHI
    // outside a PHI namespace would run pods nobody judges as PHI.
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = |name: &str, inherited: &str| {
        format!(
            "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: {name}\n  \
             labels: {{phiguard.io/data-classification: phi}}\nspec:\n  {inherited}\n  \
             storage: {{size: 1Gi}}\n"
        )
    };
    let text = format!(
        "{}---\n{}",
        cluster("lost", "instances: 1"),
        cluster(
            "kept",
            "inheritedMetadata: {labels: {phiguard.io/data-classification: phi}}"
        )
    );
    let f = write_temp(dir.path(), "cnpg.yaml", &text);
    let out = check(&["-f", f.to_str().unwrap(), "-o", "json"]);
    let v = json(&out);
    let lost = findings_of(&v, "Cluster", "lost");
    assert!(
        has(&lost, "phi-classification", "spec.inheritedMetadata.labels"),
        "{lost:?}"
    );
    let kept = findings_of(&v, "Cluster", "kept");
    assert!(
        !kept.iter().any(|(r, _)| r == "phi-classification"),
        "{kept:?}"
    );
    assert!(
        kept.iter().any(|(r, _)| r == "encryption-at-rest"),
        "{kept:?}"
    );
}

/// `policy` (phi-warn, from tests/fixtures/policies/warn.yaml) at `mode`.
fn phi_warn_at(mode: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/policies/warn.yaml"))
        .expect("read warn.yaml")
        .replace("mode: Warn", &format!("mode: {mode}"))
}

#[test]
fn what_if_from_files_lists_what_a_stricter_policy_denies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stricter = write_temp(dir.path(), "enforce.yaml", &phi_warn_at("Enforce"));
    let stricter = stricter.to_str().expect("utf-8 path");
    let base = [
        "-f",
        "examples/broken",
        "--cluster-state",
        "examples/cluster",
        "--policy",
        "tests/fixtures/policies/warn.yaml",
    ];
    let out = check(&[&base[..], &["--proposed", stricter, "-o", "json"]].concat());
    assert_eq!(
        code(&out),
        1,
        "newly denied workloads exit 1: {}",
        stderr(&out)
    );
    let w = json(&out);
    assert_eq!(w["inForce"], serde_json::json!(["phi-warn (Warn)"]));
    assert_eq!(w["proposed"], serde_json::json!(["phi-warn (Enforce)"]));
    let changes = w["changes"].as_array().expect("changes");
    let c = changes
        .iter()
        .find(|c| c["kind"] == "Deployment" && c["name"] == "eligibility-checker")
        .unwrap_or_else(|| panic!("eligibility-checker is newly denied: {w:#}"));
    assert_eq!(c["effect"], "newly-denied");
    assert_eq!(c["nextRollout"], "admitted-with-warnings");
    assert!(
        changes.iter().all(|c| c["effect"] == "newly-denied"),
        "{w:#}"
    );

    // Proposing the policy in force changes nothing: exit 0.
    let same = check(
        &[
            &base[..],
            &["--proposed", "tests/fixtures/policies/warn.yaml"],
        ]
        .concat(),
    );
    assert_eq!(code(&same), 0, "{}", stdout(&same));
    pinned("what-if-unchanged");
}

#[test]
fn what_if_proposal_takes_only_phi_policies() {
    let out = check(&[
        "-f",
        "examples/broken",
        "--proposed",
        "examples/compliant/records-api.yaml",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("examples/compliant/records-api.yaml"),
        "{}",
        stderr(&out)
    );
    pinned("proposal-not-a-policy");
    let out = check(&[
        "-f",
        "examples/broken",
        "--proposed",
        "tests/fixtures/policies/warn.yaml",
        "-o",
        "sarif",
    ]);
    assert_eq!(
        code(&out),
        2,
        "SARIF locates findings in files, not changes"
    );
}

#[test]
fn report_writes_the_what_if_next_to_the_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stricter = write_temp(dir.path(), "enforce.yaml", &phi_warn_at("Enforce"));
    let out = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(root())
        .args([
            "report",
            "-f",
            "examples/broken",
            "--cluster-state",
            "examples/cluster",
            "--policy",
            "tests/fixtures/policies/warn.yaml",
            "--proposed",
        ])
        .arg(&stricter)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run phi-guard report");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let w: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("phi-guard-what-if.json")).expect("what-if json"),
    )
    .expect("what-if is JSON");
    assert!(
        w["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["name"] == "eligibility-checker" && c["effect"] == "newly-denied"),
        "{w:#}"
    );
    let text = std::fs::read_to_string(dir.path().join("phi-guard-what-if.txt")).expect("text");
    assert!(
        text.contains("NEWLY DENIED     Deployment payments/eligibility-checker"),
        "{text}"
    );
}

/// ingress-nginx's controller ConfigMap (`ingress-nginx/ingress-nginx-controller`) turns the
/// HTTP-to-HTTPS redirect off for every Ingress without its own annotation: the HAPI FHIR
/// chart's Ingress (TLS, no annotation) then serves PHI over plaintext HTTP too, while an
/// Ingress forcing its own redirect is not touched. Without the ConfigMap the controller's
/// defaults are assumed, and `check` says so.
#[test]
fn ingress_nginx_global_ssl_redirect_is_read_from_its_controller_config_map() {
    const NGINX: &str = "tests/fixtures/real-world/ingress-nginx";
    let rendered = format!("{FHIR}/rendered.yaml");
    let forced = format!("{NGINX}/forced.yaml");
    let run = |state: &[&str]| {
        let mut args = vec!["-f", &rendered, "-f", &forced, "-n", "fhir"];
        for s in state {
            args.extend(["--cluster-state", s]);
        }
        args.extend([
            "--cluster-state",
            "tests/fixtures/check/namespace/fhir-namespace.yaml",
            "-o",
            "json",
        ]);
        let out = check(&args);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        json(&out)
    };
    let config_map = format!("{NGINX}/controller-configmap.yaml");
    let v = run(&[&config_map]);
    let r = result(&v, "Ingress", "fhir", "fhir-hapi-fhir-jpaserver");
    let f = enforced(r);
    assert_eq!(f.len(), 1, "{r:#}");
    assert_eq!(f[0].0, "encryption-in-transit");
    assert_eq!(
        f[0].2,
        "metadata.annotations[\"nginx.ingress.kubernetes.io/force-ssl-redirect\"]"
    );
    assert_eq!(f[0].3, "ingress-ssl-redirect-off");
    // Which setting caused it: the message names the global ConfigMap, not the Ingress.
    let message = findings(r)
        .iter()
        .find(|x| x["reason"] == "ingress-ssl-redirect-off")
        .and_then(|x| x["message"].as_str())
        .unwrap_or_default()
        .to_string();
    // The ConfigMap by name; the message's wording is pinned by tests/golden/reasons.txt.
    assert!(
        message.contains("ConfigMap ingress-nginx/ingress-nginx-controller"),
        "{message}"
    );
    let portal = result(&v, "Ingress", "fhir", "portal");
    assert_eq!(portal["allowed"], true, "{portal:#}");
    assert!(v.get("assumed").is_none(), "{v:#}");

    // Unknown ConfigMap: admitted on ingress-nginx's defaults, and the assumption named.
    let v = run(&[]);
    let r = result(&v, "Ingress", "fhir", "fhir-hapi-fhir-jpaserver");
    assert_eq!(r["allowed"], true, "{r:#}");
    let assumed = v["assumed"].as_array().expect("assumed");
    assert_eq!(assumed.len(), 1, "{v:#}");
    let a = assumed[0].as_str().unwrap_or_default();
    assert!(
        a.contains("ConfigMap ingress-nginx/ingress-nginx-controller")
            && a.contains("fhir/fhir-hapi-fhir-jpaserver")
            && !a.contains("fhir/portal"),
        "{a}"
    );
    pinned("ingress-nginx-defaults-assumed");
}

// ---- The CLI's wording, pinned once: tests/golden/cli-messages.txt ----
//
// The tests above assert exit codes, identifiers and positions (paths, `file:line:col`,
// `file.yaml#1`, field paths, kinds and names); what the CLI says around them is pinned here,
// so a rewording changes one reviewed file. Each case runs the binary and gives the lines it
// pins; the table is `case<TAB>line`, in the order of `CLI_CASES`, after a `#` header.

const CLI_GOLDEN: &str = "tests/golden/cli-messages.txt";

const CLI_GOLDEN_HEADER: &str = "\
# The wording of phi-guard check's messages (stderr errors, text output, notes in the JSON
# report), one `case<TAB>line` per line; the cases are CLI_CASES in tests/cli.rs. Scratch
# directories show as <tmp>. Tests elsewhere assert exit codes and identifiers only.
# After an intended rewording: `PHI_GUARD_BLESS=1 cargo test --test cli cli_wording`,
# then review the diff of this file.
";

/// One golden case: its name and a run in a scratch directory giving the lines pinned.
type CliCase = (&'static str, fn(&Path) -> Vec<String>);

/// The non-empty lines of `text`.
fn text_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn err_lines(args: &[&str]) -> Vec<String> {
    text_lines(&stderr(&check(args)))
}

fn out_lines(args: &[&str]) -> Vec<String> {
    text_lines(&stdout(&check(args)))
}

/// The error lines of `check -f` on one file written into `tmp`.
fn file_err_lines(tmp: &Path, name: &str, text: &str) -> Vec<String> {
    let f = write_temp(tmp, name, text);
    err_lines(&["-f", utf8(&f)])
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `source: message` of each object `check -o json` skipped.
fn skipped_notes(args: &[&str]) -> Vec<String> {
    let args = [args, &["-o", "json"]].concat();
    let v = json(&check(&args));
    skipped(&v)
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s["source"].as_str().unwrap_or_default(),
                s["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

const CLI_CASES: &[CliCase] = &[
    ("yaml-syntax-error", |_| {
        err_lines(&["-f", "tests/fixtures/syntax-error.yaml"])
    }),
    ("invalid-policy", |_| {
        err_lines(&[
            "-f",
            "examples/compliant",
            "--policy",
            "tests/fixtures/invalid-policy.yaml",
        ])
    }),
    ("policy-wrong-value-shape", |_| {
        err_lines(&[
            "-f",
            "examples/compliant",
            "--policy",
            "tests/fixtures/bad-mode-policy.yaml",
        ])
    }),
    ("invalid-policy-among-inputs", |_| {
        err_lines(&[
            "-f",
            "examples/compliant",
            "-f",
            "tests/fixtures/invalid-policy.yaml",
        ])
    }),
    ("policy-flag-given-no-policy", |_| {
        err_lines(&[
            "-f",
            "examples/compliant",
            "--policy",
            "examples/cluster/10-storageclasses.yaml",
        ])
    }),
    ("no-kubernetes-objects", |tmp| {
        file_err_lines(tmp, "empty.yaml", "# nothing rendered\n---\n")
    }),
    ("namespace-conflict", |_| {
        err_lines(&[
            "-f",
            "tests/fixtures/check/namespace/conflict.yaml",
            "--namespace",
            "fhir",
        ])
    }),
    ("duplicate-yaml-key", |_| {
        err_lines(&["-f", "tests/fixtures/check/duplicate-labels.yaml"])
    }),
    ("duplicate-json-key", |_| {
        err_lines(&["-f", "tests/fixtures/check/duplicate-keys.json"])
    }),
    ("no-kind", |_| {
        err_lines(&["-f", "tests/fixtures/check/no-kind.yaml"])
    }),
    ("decode-error", |_| {
        err_lines(&["-f", "tests/fixtures/check/annotation-number.yaml"])
    }),
    ("not-a-manifest-named", |_| {
        err_lines(&["-f", "tests/fixtures/check/repo/values.yaml"])
    }),
    ("yaml-alias-bomb", |tmp| {
        let mut text = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..10 {
            let refs = vec![format!("*l{}", i - 1); 10].join(", ");
            text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        let f = write_temp(tmp, "bomb.yaml", &text);
        err_lines(&["-f", utf8(&f)])
    }),
    ("yaml-duplicate-key", |tmp| {
        file_err_lines(
            tmp,
            "dup.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
        )
    }),
    ("yaml-unknown-anchor", |tmp| {
        file_err_lines(
            tmp,
            "anchor.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: *svc\n",
        )
    }),
    ("yaml-binary-tag", |tmp| {
        file_err_lines(
            tmp,
            "binary.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: !!binary //79\n",
        )
    }),
    ("unnamed-object-error", |tmp| {
        file_err_lines(tmp, "unnamed.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ''\nspec:\n  containers: [{name: a, image: 3}]\n")
    }),
    ("unnamed-object-text", |tmp| {
        let f = write_temp(
            tmp,
            "unnamed.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ''\n  namespace: x\nspec:\n  containers: [{name: a, image: b}]\n",
        );
        out_lines(&["-f", utf8(&f)])
            .into_iter()
            .filter(|l| !l.starts_with(' '))
            .collect()
    }),
    ("proposal-not-a-policy", |_| {
        err_lines(&[
            "-f",
            "examples/broken",
            "--proposed",
            "examples/compliant/records-api.yaml",
        ])
    }),
    ("exception-malformed", |tmp| {
        let x = write_temp(
            tmp,
            "exception.yaml",
            "apiVersion: phiguard.io/v1alpha1\nkind: PhiException\nmetadata: {name: ledger-sidecar}\n\
             spec:\n  match: {namespaces: [clinic], kinds: [Deployment], names: [ledger]}\n\
             \x20 rules: [{rule: audit-sidecar}]\n  expiresAt: \"next tuesday\"\n  ticket: SEC-77\n\
             \x20 justification: sidecar rollout next sprint\n",
        );
        err_lines(&["-f", "examples/compliant", "--cluster-state", utf8(&x)])
    }),
    ("device", |_| err_lines(&["-f", "/dev/zero"])),
    ("over-the-default-limit", |tmp| {
        let path = tmp.join("huge.yaml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(128 * 1024 * 1024 + 1).unwrap();
        err_lines(&["-f", utf8(&path)])
    }),
    ("over-a-given-limit", |tmp| {
        let big = write_temp(
            tmp,
            "big.yaml",
            &format!("# {}\n", "x".repeat(2 * 1024 * 1024)),
        );
        err_lines(&["--max-file-mib", "1", "-f", utf8(&big)])
    }),
    ("fifo", |tmp| {
        let fifo = tmp.join("pipe.yaml");
        let ok = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(ok.success());
        err_lines(&["-f", utf8(&fifo)])
    }),
    ("summary-denied", |_| {
        let lines = out_lines(&[
            "-f",
            "examples/broken",
            "--cluster-state",
            "examples/cluster",
            "--cluster-state",
            "examples/compliant",
        ]);
        lines.last().cloned().into_iter().collect()
    }),
    ("cluster-state-only", |_| {
        out_lines(&["-f", "examples/cluster"])
    }),
    ("platform-admitted", |_| {
        out_lines(&["-f", "examples/platform"])
            .into_iter()
            .filter(|l| !l.starts_with(' '))
            .collect()
    }),
    ("platform-cilium-off", |tmp| {
        let cluster = std::fs::read_to_string(root().join("examples/platform/00-cluster.yaml"))
            .unwrap()
            .replace("enable-wireguard: \"true\"", "enable-wireguard: \"false\"");
        let off = write_temp(tmp, "cilium-off.yaml", &cluster);
        out_lines(&[
            "-f",
            "examples/platform/20-lab-results.yaml",
            "--cluster-state",
            utf8(&off),
            "--cluster-state",
            "examples/platform/10-policy.yaml",
        ])
    }),
    ("skipped-custom-resources-text", |_| {
        out_lines(&[
            "-f",
            "tests/fixtures/check/pod-custom-resources.yaml",
            "--cluster-state",
            "examples/cluster",
        ])
        .into_iter()
        .filter(|l| l.starts_with("SKIPPED"))
        .collect()
    }),
    ("skipped-custom-resources-json", |_| {
        skipped_notes(&[
            "-f",
            "tests/fixtures/check/pod-custom-resources.yaml",
            "--cluster-state",
            "examples/cluster",
        ])
    }),
    ("skipped-repository-files", |_| {
        skipped_notes(&["-f", "tests/fixtures/check/repo"])
    }),
    ("skipped-operator-kinds", |tmp| {
        let f = write_temp(
            tmp,
            "crunchy.yaml",
            "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\n\
             metadata: {name: records}\nspec: {postgresVersion: 17}\n---\n\
             apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n\
             spec: {server: {image: registry.example/app:1}}\n",
        );
        skipped_notes(&["-f", utf8(&f)])
    }),
    ("skipped-symbolic-links", |tmp| {
        let base = tmp.join("manifests");
        std::fs::create_dir_all(base.join("nested")).unwrap();
        std::fs::copy(
            root().join(FIX).join("repo/manifests/app.yaml"),
            base.join("app.yaml"),
        )
        .unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&base, base.join("nested/loop")).unwrap();
            std::os::unix::fs::symlink(base.join("app.yaml"), base.join("nested/again.yaml"))
                .unwrap();
            std::os::unix::fs::symlink(base.join("gone.yaml"), base.join("dangling.yaml")).unwrap();
        }
        let mut notes = skipped_notes(&["-f", utf8(&base)]);
        notes.sort();
        notes
    }),
    ("plaintext-port-remediation", |_| {
        let (_, v) = issue12(&["postgresql-in-band-tls.yaml"]);
        let plain = result(&v, "Service", "pg", "postgresql-hl");
        vec![findings(plain)[0]["remediation"]
            .as_str()
            .unwrap_or_default()
            .to_string()]
    }),
    ("sarif-message", |_| {
        let v = json(&check(&["-f", SARIF_FIX, "-o", "sarif"]));
        let results = v["runs"][0]["results"].as_array().unwrap().clone();
        let hostpath = sarif_result(&results, "intake", "spec.template.spec.volumes[1]");
        text_lines(hostpath["message"]["text"].as_str().unwrap())
    }),
    ("what-if-unchanged", |_| {
        out_lines(&[
            "-f",
            "examples/broken",
            "--cluster-state",
            "examples/cluster",
            "--policy",
            "tests/fixtures/policies/warn.yaml",
            "--proposed",
            "tests/fixtures/policies/warn.yaml",
        ])
        .last()
        .cloned()
        .into_iter()
        .collect()
    }),
    ("ingress-nginx-defaults-assumed", |_| {
        let v = json(&check(&[
            "-f",
            &format!("{FHIR}/rendered.yaml"),
            "-f",
            "tests/fixtures/real-world/ingress-nginx/forced.yaml",
            "-n",
            "fhir",
            "--cluster-state",
            "tests/fixtures/check/namespace/fhir-namespace.yaml",
            "-o",
            "json",
        ]));
        v["assumed"]
            .as_array()
            .expect("assumed")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect()
    }),
];

/// The case is one of the golden table's: its wording is checked there.
fn pinned(case: &str) {
    assert!(
        CLI_CASES.iter().any(|(name, _)| *name == case),
        "{case} is not a case of CLI_CASES"
    );
    let golden = std::fs::read_to_string(root().join(CLI_GOLDEN)).expect(CLI_GOLDEN);
    assert!(
        golden.lines().any(|l| l.starts_with(&format!("{case}\t"))),
        "{case} is not in {CLI_GOLDEN} (bless it)"
    );
}

// Unix: the cases include a device, a FIFO and symbolic links.
#[cfg(unix)]
#[test]
fn cli_wording_is_pinned_once() {
    let mut rendered = String::from(CLI_GOLDEN_HEADER);
    for (i, (name, run)) in CLI_CASES.iter().enumerate() {
        assert!(
            !CLI_CASES[..i].iter().any(|(n, _)| n == name),
            "case {name} twice"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let scratch = [
            dir.path().to_path_buf(),
            dir.path().canonicalize().expect("canonical tempdir"),
        ];
        let lines = run(dir.path());
        assert!(!lines.is_empty(), "{name}: nothing to pin");
        for line in lines {
            let line = scratch
                .iter()
                .fold(line, |l, s| l.replace(utf8(s), "<tmp>"));
            rendered.push_str(&format!("{name}\t{line}\n"));
        }
    }
    support::golden_table(
        &root().join(CLI_GOLDEN),
        &rendered,
        "the messages pinned changed",
    );
}
