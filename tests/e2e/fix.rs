//! `phi-guard fix` proven through the real API server: the demo's rejected app, fixed by the
//! binary with `--write`, is admitted by the webhook, with only the judgement left as a warning
//! (the audit sidecar's image digest, which is the user's to choose).

use std::process::Command;

use phi_guard::verdict::Reason;

use crate::fixtures::{self, PHI};
use crate::harness::{accepts_eventually, kubectl_ok, rejects, unique, warnings, Ctx, Env, CACHE};
use crate::support::shown_reasons;

/// The demo's rejected app in namespace `ns`, its claim on `plain`.
fn demo_app(ns: &str, plain: &str) -> Vec<(&'static str, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/rejected");
    ["10-records-data.yaml", "20-records-api.yaml"]
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f)).expect("demo file");
            let text = text
                .replace("namespace: clinic", &format!("namespace: {ns}"))
                .replace(
                    "storageClassName: ebs-standard",
                    &format!("storageClassName: {plain}"),
                );
            (f, text)
        })
        .collect()
}

#[tokio::test]
async fn the_fixed_demo_app_is_admitted_but_for_judgements() {
    let ctx = Ctx::new("fix", &[PHI]).await;
    let plain = unique("e2e-fix-plain");
    let enc = unique("e2e-fix-enc");
    let classes = [
        fixtures::plain_storage_class(&plain),
        fixtures::encrypted_storage_class(&enc),
    ];
    for c in &classes {
        kubectl_ok(&["apply"], c);
    }
    ctx.cleanup("storageclass", &plain);
    ctx.cleanup("storageclass", &enc);

    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).expect("app dir");
    let files = demo_app(&ctx.ns, &plain);
    for (name, text) in &files {
        std::fs::write(app.join(name), text).expect("write app");
    }
    // The state fix reads: the namespace (PHI) and the classes, as the cluster has them (the
    // fixtures write JSON: one file each).
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let ns = fixtures::namespace(&ctx.ns, &[PHI]);
    for (i, doc) in [&ns, &classes[0], &classes[1]].into_iter().enumerate() {
        std::fs::write(state.join(format!("{i}.json")), doc).expect("write state");
    }

    // As first written, the API server refuses it.
    let whole: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
    rejects(&whole.join("---\n"));

    let out = Command::new(&Env::get().phi_guard_bin)
        .current_dir(dir.path())
        .args([
            "fix",
            "-f",
            "app",
            "--cluster-state",
            "state",
            "--transit",
            "cert-manager",
            "--tls-issuer",
            "ClusterIssuer/clinic-ca",
            "--write",
        ])
        .output()
        .expect("run phi-guard fix");
    let notes = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{notes}");
    // The claim moved to the encrypting class (the notes name it; the file has it).
    assert!(notes.contains(&enc), "{notes}");
    let read = |name: &str| std::fs::read_to_string(app.join(name)).expect("read fixed file");
    let claim = read("10-records-data.yaml");
    assert!(
        claim
            .lines()
            .any(|l| l.trim_start().starts_with("storageClassName:") && l.contains(&enc)),
        "the claim is not on {enc}:\n{claim}"
    );
    let policies = read(&format!("phi-guard-network-policies-{}.yaml", ctx.ns));
    kubectl_ok(&["apply"], &policies);
    accepts_eventually(&read("10-records-data.yaml"), CACHE).await;
    let stderr = accepts_eventually(&read("20-records-api.yaml"), CACHE).await;
    let ours: Vec<&str> = warnings(&stderr)
        .into_iter()
        .filter(|w| w.contains("phi-guard"))
        .collect();
    assert!(
        ours.iter()
            .all(|w| shown_reasons(w) == [Reason::SidecarNotPinned.as_str()]),
        "only the judgement (the sidecar image's digest) may be left:\n{stderr}"
    );
    assert!(
        !ours.is_empty(),
        "the digest warning is expected:\n{stderr}"
    );
}
