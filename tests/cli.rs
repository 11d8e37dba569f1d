//! `phi-guard check` end to end: the binary over `examples/`, asserting exit codes, JSON findings
//! (rule ids, citations, field paths) and the text a developer reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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
            ["apiVersion", "kind", "message", "name", "namespace", "reason", "source"]
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
                ["citation", "message", "mode", "path", "remediation", "rule"]
            );
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
    let summary = lines.last().expect("summary line");
    assert!(
        summary.contains("denied") && summary.contains("findings"),
        "{summary}"
    );
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
        "expected file:line in {err}"
    );
    assert!(err.contains("YAML"), "{err}");
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
    assert!(
        err.contains(
            "PhiPolicy \"strict-volumes\": spec.encryptionAtRest.allowedInlineVolumeTypes[8]: unknown volume type"
        ),
        "{err}"
    );
    assert!(err.contains("tests/fixtures/invalid-policy.yaml"), "{err}");
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
        err.contains("PhiPolicy \"bad-mode\": spec.auditSidecar.requireDigest: unknown variant"),
        "{err}"
    );
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
    assert!(
        stderr(&out).contains("expects PhiPolicy"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_kubernetes_object_at_all_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write_temp(dir.path(), "empty.yaml", "# nothing rendered\n---\n");
    let out = check(&["-f", f.to_str().expect("utf-8 path")]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no Kubernetes objects"),
        "{}",
        stderr(&out)
    );
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
