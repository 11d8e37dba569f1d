// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! `phi-guard fix` end to end: the binary over copies of `examples/` and of third-party charts'
//! rendered output (tests/fixtures/third-party/fix/), asserting the diff (pinned), that
//! comments and order survive, that `check` after `fix` shows only judgement findings, and that
//! a second `fix` changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `phi-guard` with `args` in `dir`.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run phi-guard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copy `from` (a directory of the crate) into a new temporary directory as `name`.
fn copy(from: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(root().join(from)).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    dir
}

/// Every file's text under `dir`, by name.
fn contents(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// `check -o json` findings as (kind/name, rule, path, mode).
fn findings(dir: &Path, args: &[&str]) -> Vec<(String, String, String, String)> {
    let mut all = vec!["check", "-o", "json"];
    all.extend_from_slice(args);
    let out = run(dir, &all);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let mut f = Vec::new();
    for r in v["results"].as_array().unwrap() {
        for x in r["findings"].as_array().unwrap() {
            f.push((
                format!(
                    "{}/{}",
                    r["kind"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                x["rule"].as_str().unwrap().to_string(),
                x["path"].as_str().unwrap().to_string(),
                x["mode"].as_str().unwrap().to_string(),
            ));
        }
    }
    f
}

const DEMO_FIX: [&str; 9] = [
    "fix",
    "-f",
    "app",
    "--cluster-state",
    "cluster",
    "--transit",
    "cert-manager",
    "--tls-issuer",
    "ClusterIssuer/clinic-ca",
];

fn demo() -> tempfile::TempDir {
    let dir = copy("examples/demo/rejected", "app");
    let cluster = copy("examples/demo/cluster", "cluster");
    for (name, body) in contents(&cluster.path().join("cluster")) {
        std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
        std::fs::write(dir.path().join("cluster").join(name), body).unwrap();
    }
    dir
}

#[test]
fn the_demo_diff_is_pinned() {
    let dir = demo();
    let before = contents(&dir.path().join("app"));
    let out = run(dir.path(), &DEMO_FIX);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = std::fs::read_to_string(root().join("tests/fixtures/fix/demo.diff")).unwrap();
    assert_eq!(text(&out.stdout), want);
    // A diff only: nothing written.
    assert_eq!(contents(&dir.path().join("app")), before);
    let notes = text(&out.stderr);
    assert!(
        notes.contains("storageClassName set to \"ebs-kms\" (the only encrypting StorageClass"),
        "{notes}"
    );
}

#[test]
fn after_fix_the_demo_has_only_judgements_and_a_second_fix_changes_nothing() {
    let dir = demo();
    let before = findings(dir.path(), &["-f", "app", "--cluster-state", "cluster"]);
    assert!(before.iter().any(|f| f.3 == "Enforce"), "{before:?}");
    let mut write = DEMO_FIX.to_vec();
    write.push("--write");
    let out = run(dir.path(), &write);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = findings(dir.path(), &["-f", "app", "--cluster-state", "cluster"]);
    // The sidecar image's digest is the user's to pick: a warning, not a denial.
    assert_eq!(
        after,
        [(
            "Deployment/records-api".to_string(),
            "audit-sidecar".to_string(),
            "spec.template.spec.containers[1].image".to_string(),
            "Warn".to_string()
        )]
    );
    let written = contents(&dir.path().join("app"));
    let again = run(dir.path(), &write);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stderr).contains("nothing to change"));
    assert_eq!(contents(&dir.path().join("app")), written);
    let diff = run(dir.path(), &DEMO_FIX);
    assert_eq!(text(&diff.stdout), "");
}

/// Comment lines and the order of the keys that were there stay as written: the old text is a
/// subsequence of the new one, but for the lines a fix deletes.
fn kept_in_order(old: &str, new: &str, deleted: &[&str]) {
    let mut lines = new.lines();
    for l in old.lines() {
        if deleted.iter().any(|d| l.contains(d)) {
            continue;
        }
        assert!(lines.any(|n| n == l), "line {l:?} is gone or moved:\n{new}");
    }
}

#[test]
fn the_broken_examples_keep_comments_and_order_and_fix_once() {
    let dir = copy("examples/broken", "app");
    let cluster = root().join("examples/cluster");
    let cluster = cluster.to_str().unwrap();
    let before = contents(&dir.path().join("app"));
    let out = run(
        dir.path(),
        &["fix", "-f", "app", "--cluster-state", cluster, "--write"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = contents(&dir.path().join("app"));
    for (name, old) in &before {
        let new = &after.iter().find(|(n, _)| n == name).unwrap().1;
        kept_in_order(
            old,
            new,
            &[
                "annotations:",
                "traffic.sidecar.istio.io/excludeOutboundPorts",
                "storageClassName: standard",
            ],
        );
    }
    assert!(after
        .iter()
        .any(|(n, _)| n == "phi-guard-network-policies-claims.yaml"));
    let mesh = &after
        .iter()
        .find(|(n, _)| n == "mesh-bypass.yaml")
        .unwrap()
        .1;
    assert!(!mesh.contains("excludeOutboundPorts"));
    // What is left: the judgements.
    let left = findings(dir.path(), &["-f", "app", "--cluster-state", cluster]);
    for (object, rule, path, _) in &left {
        let judgement = match rule.as_str() {
            // hostPath: where the data lives is a decision.
            "encryption-at-rest" => {
                path.ends_with("volumes[0]") && object.starts_with("Deployment/report-renderer")
            }
            // Istio still needs a STRICT PeerAuthentication; TLS hosts and Service protocols.
            "encryption-in-transit" => true,
            // A sidecar in the wrong list, an unpinned image: the user's call.
            "audit-sidecar" => object.starts_with("Job/") || path.ends_with(".image"),
            // An allow-all rule someone wrote.
            "network-segmentation" => !object.starts_with("Deployment/claims-intake"),
            _ => true,
        };
        assert!(judgement, "{object} {rule} {path} is left: {left:?}");
    }
    let again = run(
        dir.path(),
        &["fix", "-f", "app", "--cluster-state", cluster],
    );
    assert_eq!(text(&again.stdout), "", "{}", text(&again.stderr));
}

#[test]
fn no_encrypting_class_means_no_change_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("claim.yaml"),
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  labels:\n    phiguard.io/data-classification: phi\nspec:\n  storageClassName: plain\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("state.yaml"),
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: plain\nprovisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["fix", "-f", "claim.yaml", "--cluster-state", "state.yaml"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains(phi_guard::verdict::notes::NO_ENCRYPTING_CLASS),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn jobs_get_a_native_sidecar_and_ssl_redirect_false_goes() {
    let dir = tempfile::tempdir().unwrap();
    let job = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: export
  labels: {phiguard.io/data-classification: phi}
spec:
  template:
    metadata:
      labels:
        phiguard.io/data-classification: phi
        app: export
    spec:
      restartPolicy: Never
      containers:
      - name: export   # the work
        image: registry.example.com/export:1
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: portal
  labels:
    phiguard.io/data-classification: phi
  annotations:
    nginx.ingress.kubernetes.io/ssl-redirect: \"false\"
    example.com/keep: \"yes\"
spec:
  tls:
  - hosts: [portal.example.com]
    secretName: portal-tls
  rules:
  - host: portal.example.com
";
    std::fs::write(dir.path().join("job.yaml"), job).unwrap();
    let out = run(
        dir.path(),
        &[
            "fix",
            "-f",
            "job.yaml",
            "--transit",
            "linkerd",
            "--sidecar-image",
            "cr.fluentbit.io/fluent/fluent-bit:3.2.2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = std::fs::read_to_string(root().join("tests/fixtures/fix/job.diff")).unwrap();
    assert_eq!(text(&out.stdout), want, "{}", text(&out.stderr));
}

#[test]
fn an_unapproved_sidecar_image_and_standard_input_are_refused() {
    let dir = demo();
    let mut args = DEMO_FIX.to_vec();
    args.extend(["--sidecar-image", "evil.example.com/fluent/fluent-bit:3"]);
    let out = run(dir.path(), &args);
    assert!(
        text(&out.stderr).contains("not approved by the policy"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("evil.example.com"));
    let out = run(dir.path(), &["fix", "-f", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("standard input cannot be fixed"));
}

#[test]
fn sarif_carries_the_same_edits_as_fixes() {
    let dir = demo();
    let out = run(
        dir.path(),
        &[
            "check",
            "-o",
            "sarif",
            "-f",
            "app",
            "--cluster-state",
            "cluster",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["runs"][0]["results"].as_array().unwrap();
    let mut fixed = 0;
    for r in results {
        let Some(fixes) = r["fixes"].as_array() else {
            continue;
        };
        for f in fixes {
            assert!(!f["description"]["text"].as_str().unwrap().is_empty());
            for change in f["artifactChanges"].as_array().unwrap() {
                let uri = change["artifactLocation"]["uri"].as_str().unwrap();
                let old = std::fs::read_to_string(dir.path().join(uri)).unwrap_or_default();
                let mut new = old.clone();
                let mut replacements: Vec<&Value> =
                    change["replacements"].as_array().unwrap().iter().collect();
                // Applied from the end, so earlier offsets stay valid.
                replacements
                    .sort_by_key(|r| std::cmp::Reverse(r["deletedRegion"]["byteOffset"].as_u64()));
                for rep in replacements {
                    let at = rep["deletedRegion"]["byteOffset"].as_u64().unwrap() as usize;
                    let len = rep["deletedRegion"]["byteLength"].as_u64().unwrap() as usize;
                    new.replace_range(
                        at..at + len,
                        rep["insertedContent"]["text"].as_str().unwrap(),
                    );
                }
                assert_ne!(new, old);
                fixed += 1;
            }
        }
        if r["properties"]["kind"] == "PersistentVolumeClaim" {
            let rep = &r["fixes"][0]["artifactChanges"][0]["replacements"][0];
            assert_eq!(rep["insertedContent"]["text"], "ebs-kms", "{r:#}");
        }
    }
    // Claim class, audit sidecar, in-transit evidence, the NetworkPolicies (for two findings).
    assert_eq!(fixed, 5, "{v:#}");
}

#[test]
fn third_party_charts_get_minimal_idempotent_fixes() {
    let dir = copy("tests/fixtures/third-party/groundhog2k", "app");
    let app = dir.path().join("app");
    std::fs::rename(app.join("platform.yaml"), dir.path().join("platform.yaml")).unwrap();
    for f in ["LICENSE", "README.md"] {
        std::fs::remove_file(app.join(f)).unwrap();
    }
    let args = [
        "fix",
        "-f",
        "app",
        "--cluster-state",
        "platform.yaml",
        "-n",
        "clinic",
    ];
    let out = run(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = std::fs::read_to_string(root().join("tests/fixtures/fix/groundhog2k.diff")).unwrap();
    assert_eq!(text(&out.stdout), want);
    // Only additions: nothing the charts wrote is removed or moved.
    let diff = text(&out.stdout);
    assert!(
        !diff
            .lines()
            .any(|l| l.starts_with('-') && !l.starts_with("---")),
        "{diff}"
    );
    let before = contents(&app);
    let mut write = args.to_vec();
    write.push("--write");
    assert_eq!(run(dir.path(), &write).status.code(), Some(0));
    let after = contents(&app);
    for (name, old) in &before {
        let new = &after.iter().find(|(n, _)| n == name).unwrap().1;
        kept_in_order(old, new, &[]);
    }
    let left = findings(
        dir.path(),
        &[
            "-f",
            "app",
            "--cluster-state",
            "platform.yaml",
            "-n",
            "clinic",
        ],
    );
    for (object, rule, path, mode) in &left {
        assert_eq!(mode, "Warn", "{object} {rule} {path}");
        assert!(
            (rule == "encryption-at-rest" && path.contains(".volumes["))
                || (rule == "audit-sidecar" && path.ends_with(".image")),
            "{object} {rule} {path} is left"
        );
    }
    assert_eq!(text(&run(dir.path(), &args).stdout), "");

    // The HAPI FHIR chart (tests/fixtures/third-party/hapi-fhir-jpaserver): a Deployment and a
    // test Pod that never restarts, which gets a native sidecar.
    let fhir = copy("tests/fixtures/third-party/hapi-fhir-jpaserver", "app");
    let app = fhir.path().join("app");
    std::fs::rename(app.join("platform.yaml"), fhir.path().join("platform.yaml")).unwrap();
    let args = [
        "fix",
        "-f",
        "app/rendered.yaml",
        "--cluster-state",
        "platform.yaml",
        "-n",
        "fhir",
    ];
    let before = std::fs::read_to_string(app.join("rendered.yaml")).unwrap();
    let mut write = args.to_vec();
    write.push("--write");
    let out = run(fhir.path(), &write);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = std::fs::read_to_string(app.join("rendered.yaml")).unwrap();
    assert_ne!(before, after);
    kept_in_order(&before, &after, &[]);
    assert!(
        after.contains("  initContainers:\n    - name: audit-log-shipper\n"),
        "{after}"
    );
    assert_eq!(text(&run(fhir.path(), &args).stdout), "");
}

#[test]
fn an_ephemeral_volume_claim_template_gets_the_encrypting_class() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pod.yaml"),
        "\
apiVersion: v1
kind: Pod
metadata:
  name: scratch
  labels: {phiguard.io/data-classification: phi}
spec:
  containers:
  - name: app
    image: registry.example.com/app:1
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          storageClassName: plain   # cheap
          resources: {requests: {storage: 1Gi}}
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("state.yaml"),
        "\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: plain}
provisioner: ebs.csi.aws.com
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: sealed}
provisioner: ebs.csi.aws.com
parameters: {encrypted: \"true\"}
",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["fix", "-f", "pod.yaml", "--cluster-state", "state.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("-          storageClassName: plain   # cheap\n+          storageClassName: sealed   # cheap\n"),
        "{diff}"
    );
}
