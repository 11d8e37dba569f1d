//! phi-guard keeps its ValidatingWebhookConfiguration (`--webhook-scope-config`): deleted, it is
//! created again within seconds (an Event, the drift metric, PHI applies denied again); edited
//! by someone other than Helm, it is set back; `helm uninstall` is not undone.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

use crate::fixtures::{App, PHI};
use crate::harness::{http_get, kubectl, rejects, rejects_eventually, Ctx, CACHE};
use crate::support::{check, try_wait_for_async, wait_for_async};

const CONFIG: &str = "phi-guard";
/// The promise: restored or corrected within this.
const WITHIN: Duration = Duration::from_secs(10);

/// `phi_guard_webhook_configuration_drift_total{drift="<drift>"}` from the shared phi-guard.
fn drift_total(ctx: &Ctx, drift: &str) -> f64 {
    let (status, text) =
        http_get(ctx.phi_guard_admin_port(), "/metrics").expect("phi-guard /metrics answers");
    assert_eq!(status, 200, "/metrics: {text}");
    let series = format!("phi_guard_webhook_configuration_drift_total{{drift=\"{drift}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// Events in `default` regarding the configuration with `reason`.
async fn events(ctx: &Ctx, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(CONFIG)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref())
                    == Some("ValidatingWebhookConfiguration")
        })
        .collect()
}

async fn live(ctx: &Ctx) -> Option<ValidatingWebhookConfiguration> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
    api.get_opt(CONFIG).await.expect("read the configuration")
}

/// Poll (100 ms) until `ok` holds for the live configuration; the time it took.
async fn until(
    ctx: &Ctx,
    what: &str,
    limit: Duration,
    ok: impl Fn(Option<&ValidatingWebhookConfiguration>) -> bool,
) -> Duration {
    let start = Instant::now();
    let ok = &ok;
    try_wait_for_async(what, limit, Duration::from_millis(100), || async move {
        let v = live(ctx).await;
        check(ok(v.as_ref()), || {
            format!("now {}", serde_json::to_string(&v).unwrap_or_default())
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nphi-guard log:\n{}", ctx.phi_guard_log()));
    start.elapsed()
}

/// Wait until the configuration has not changed for 2 s: earlier tests' PhiPolicies, deleted
/// as they end, change the webhooks phi-guard writes, which is not drift.
async fn settled(ctx: &Ctx) {
    // The last resourceVersion seen, and since when.
    let last = std::cell::RefCell::new((None, Instant::now()));
    let last = &last;
    wait_for_async(
        "the webhook configuration unchanged for 2 s",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async move {
            let rv = live(ctx).await.and_then(|v| v.metadata.resource_version);
            let mut last = last.borrow_mut();
            if rv != last.0 {
                *last = (rv, Instant::now());
            }
            let since = last.1.elapsed();
            check(since >= Duration::from_secs(2), || {
                format!("resourceVersion {:?} for {since:?}", last.0)
            })
        },
    )
    .await;
}

fn failure_policy(v: &ValidatingWebhookConfiguration, webhook: &str) -> Option<String> {
    v.webhooks
        .iter()
        .flatten()
        .find(|w| w.name == webhook)
        .and_then(|w| w.failure_policy.clone())
}

#[tokio::test]
async fn webhook_configuration_deleted_is_restored_within_seconds() {
    // Exclusive: without the configuration every other test's PHI applies are admitted.
    let ctx = Ctx::exclusive("restore", &[PHI]).await;
    let app = App::bare(&ctx.ns, "intake");
    rejects(&app.deployment());
    settled(&ctx).await;
    let before = live(&ctx).await.expect("the chart's configuration exists");
    let old_uid = before.metadata.uid.clone().expect("uid");
    let deleted_before = drift_total(&ctx, "deleted");

    // Timed from the DELETE request itself (kubectl's --wait would hide the first moments).
    let api: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
    let start = Instant::now();
    api.delete(CONFIG, &Default::default())
        .await
        .expect("delete the configuration");
    until(&ctx, "the deleted configuration restored", WITHIN, |v| {
        v.is_some_and(|v| v.metadata.uid.as_deref() != Some(old_uid.as_str()))
    })
    .await;
    eprintln!(
        "webhook configuration restored {:?} after its deletion",
        start.elapsed()
    );

    let restored = live(&ctx).await.expect("restored");
    let labels = restored.metadata.labels.clone().unwrap_or_default();
    let annotations = restored.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("Helm"),
        "Helm must still own the restored object: {labels:?}"
    );
    assert_eq!(
        annotations
            .get("meta.helm.sh/release-name")
            .map(String::as_str),
        Some("phi-guard")
    );
    // The webhooks the policies' scopes need now (other tests' policies may come and go, so
    // the count before may differ): at least the baseline's, each with its failurePolicy.
    let names: Vec<&str> = restored
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.name.as_str())
        .collect();
    for name in [
        "phi-namespaces.phiguard.io",
        "phi-objects.phiguard.io",
        "namespace-labels.phiguard.io",
        "network.phiguard.io",
        "exceptions.phiguard.io",
    ] {
        assert!(names.contains(&name), "{name} not restored: {names:?}");
    }
    assert_eq!(
        failure_policy(&restored, "network.phiguard.io").as_deref(),
        Some("Ignore")
    );
    assert_eq!(
        failure_policy(&restored, "phi-namespaces.phiguard.io").as_deref(),
        Some("Fail")
    );
    let url = |v: &ValidatingWebhookConfiguration| {
        v.webhooks
            .as_ref()
            .and_then(|w| w[0].client_config.url.clone())
    };
    assert_eq!(url(&restored), url(&before));
    assert!(restored.webhooks.iter().flatten().all(|w| w
        .client_config
        .ca_bundle
        .as_ref()
        .is_some_and(|c| !c.0.is_empty())));

    let uid = restored.metadata.uid.clone();
    let (ctx_ref, uid_ref) = (&ctx, &uid);
    let found = wait_for_async(
        "a WebhookConfigurationRestored Event regarding the restored object",
        WITHIN,
        Duration::from_millis(200),
        || async move {
            let found = events(ctx_ref, "WebhookConfigurationRestored").await;
            if found
                .iter()
                .any(|e| e.regarding.as_ref().and_then(|r| r.uid.clone()) == *uid_ref)
            {
                Ok(found)
            } else {
                Err(format!("{found:?}"))
            }
        },
    )
    .await;
    let note = found[0].note.clone().unwrap_or_default();
    assert!(note.contains(CONFIG), "{note}");
    let deleted_after = drift_total(&ctx, "deleted");
    assert!(
        deleted_after >= deleted_before + 1.0,
        "phi_guard_webhook_configuration_drift_total{{drift=\"deleted\"}}: {deleted_before} -> {deleted_after}"
    );

    // Protection is back: a non-compliant PHI apply is denied again (the API server's webhook
    // informer takes the new object within moments).
    rejects_eventually(&[], &app.deployment(), CACHE).await;

    // Helm still owns it: an upgrade of the release goes through and keeps it.
    ctx.reinstall();
    let after = live(&ctx).await.expect("kept by the upgrade");
    assert_eq!(after.metadata.uid, uid, "helm upgrade replaced the object");
}

#[tokio::test]
async fn webhook_configuration_edited_is_corrected() {
    let ctx = Ctx::exclusive("correct", &[PHI]).await;
    settled(&ctx).await;
    let edited_before = drift_total(&ctx, "edited");
    let before = live(&ctx).await.expect("the chart's configuration exists");
    assert_eq!(
        before.webhooks.as_ref().map(|w| w[0].name.as_str()),
        Some("phi-namespaces.phiguard.io"),
        "the edits below address the first webhook"
    );
    assert_eq!(
        failure_policy(&before, "phi-namespaces.phiguard.io").as_deref(),
        Some("Fail")
    );

    // Someone turns the PHI namespaces' webhook to failurePolicy Ignore.
    let run = kubectl(
        &[
            "patch",
            "validatingwebhookconfiguration",
            CONFIG,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]"#,
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    let took = until(&ctx, "failurePolicy set back to Fail", WITHIN, |v| {
        v.is_some_and(|v| {
            failure_policy(v, "phi-namespaces.phiguard.io").as_deref() == Some("Fail")
        })
    })
    .await;
    eprintln!("failurePolicy edit corrected after {took:?}");

    // Someone removes a webhook.
    let run = kubectl(
        &[
            "patch",
            "validatingwebhookconfiguration",
            CONFIG,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/webhooks/0"}]"#,
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    let took = until(&ctx, "the removed webhook put back", WITHIN, |v| {
        v.is_some_and(|v| {
            failure_policy(v, "phi-namespaces.phiguard.io").as_deref() == Some("Fail")
        })
    })
    .await;
    eprintln!("webhook removal corrected after {took:?}");

    let edited_after = drift_total(&ctx, "edited");
    assert!(
        edited_after >= edited_before + 2.0,
        "phi_guard_webhook_configuration_drift_total{{drift=\"edited\"}}: {edited_before} -> {edited_after}"
    );
    let ctx_ref = &ctx;
    wait_for_async(
        "a WebhookConfigurationCorrected Event",
        WITHIN,
        Duration::from_millis(200),
        || async move {
            let n = events(ctx_ref, "WebhookConfigurationCorrected").await.len();
            check(n > 0, || "none".into())
        },
    )
    .await;
    let app = App::bare(&ctx.ns, "intake");
    rejects(&app.deployment());
}

#[tokio::test]
async fn webhook_configuration_helm_uninstall_is_not_undone() {
    let ctx = Ctx::exclusive("uninstall", &[PHI]).await;
    uninstall_is_left_alone(&ctx, &[]).await;
    // Back to the suite's installation for the tests after this one.
    ctx.reinstall();
    rejects(&App::bare(&ctx.ns, "reinstalled").deployment());
}

/// `HELM_DRIVER=configmap`: Helm keeps the release's records in ConfigMaps. phi-guard reads them
/// there, and tells the uninstall by the record (Helm 3 and 4 mark it `uninstalling` before
/// they delete anything), not only by the Deployment going first as Helm 3 orders it.
#[tokio::test]
async fn webhook_configuration_helm_uninstall_with_the_configmap_driver_is_not_undone() {
    let ctx = Ctx::exclusive("uninstall-configmap", &[PHI]).await;
    let configmap = [("HELM_DRIVER", "configmap")];
    // The suite's release (Secret records) goes, and comes back with ConfigMap records.
    uninstall_is_left_alone(&ctx, &[]).await;
    ctx.reinstall_with(&configmap);
    let records = kubectl(
        &[
            "get",
            "configmaps",
            "-n",
            "phi-guard",
            "-l",
            "owner=helm,name=phi-guard",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        records.ok && !records.stdout.trim().is_empty(),
        "no ConfigMap records: {}",
        records.stderr
    );
    uninstall_is_left_alone(&ctx, &configmap).await;
    ctx.reinstall();
    rejects(&App::bare(&ctx.ns, "reinstalled").deployment());
}

/// `helm uninstall --wait` (with `env`, e.g. its storage driver) succeeds, and phi-guard, still
/// running (a local process here), leaves the deletion alone because Helm's record says
/// `uninstalling`.
async fn uninstall_is_left_alone(ctx: &Ctx, env_vars: &[(&str, &str)]) {
    let deleted_before = drift_total(ctx, "deleted");
    let env = crate::harness::Env::get();
    let log_path = env.state_dir.join("phi-guard.log");
    let log_start =
        std::fs::metadata(&log_path).map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
    let out = std::process::Command::new(&env.helm)
        .env("KUBECONFIG", &env.kubeconfig)
        .envs(env_vars.iter().copied())
        .args(["uninstall", "phi-guard", "-n", "phi-guard", "--wait"])
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm uninstall ({env_vars:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It must leave the deletion alone, now and after a few of its looks.
    assert!(ctx.phi_guard_alive());
    // Six looks a second apart: a duration to stay deleted, not a condition to poll.
    for _ in 0..6 {
        assert!(
            live(ctx).await.is_none(),
            "phi-guard restored the configuration helm uninstall removed\nphi-guard log:\n{}",
            ctx.phi_guard_log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(drift_total(ctx, "deleted"), deleted_before);
    // It saw the deletion and chose to leave it (not merely missed it), told by the record.
    let log = std::fs::read(&log_path).unwrap_or_default();
    let log = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
    let line = log
        .lines()
        .find(|l| l.contains("deleted by an uninstall; not restoring it"))
        .unwrap_or_else(|| {
            panic!(
                "phi-guard should log that it leaves the uninstall alone:\n{}",
                ctx.phi_guard_log()
            )
        });
    assert!(
        line.contains("the Helm release is being uninstalled"),
        "told by something other than Helm's record ({env_vars:?}): {line}"
    );
}

/// The chart's pre-delete hook deletes the configuration while phi-guard still runs (in a
/// cluster: the hook Job is running, the Deployment stands). A hook Job like the chart's, which
/// never runs here (no nodes), stands for it.
#[tokio::test]
async fn webhook_configuration_deleted_by_the_pre_delete_hook_is_not_undone() {
    let ctx = Ctx::exclusive("hook", &[PHI]).await;
    settled(&ctx).await;
    let deleted_before = drift_total(&ctx, "deleted");
    let job = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: phi-guard-uninstall-e2e
  namespace: phi-guard
  labels: {app.kubernetes.io/instance: phi-guard}
  annotations: {helm.sh/hook: pre-delete}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: remove-webhook, image: registry.k8s.io/kubectl:v1.33.4, args: [version]}]
"#;
    let run = kubectl(&["apply", "-f", "-"], Some(job));
    assert!(run.ok, "{}", run.stderr);
    let env = crate::harness::Env::get();
    let log_path = env.state_dir.join("phi-guard.log");
    let log_start =
        std::fs::metadata(&log_path).map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));

    let api: Api<ValidatingWebhookConfiguration> = Api::all(ctx.client.clone());
    api.delete(CONFIG, &Default::default())
        .await
        .expect("delete the configuration");
    // Five looks a second apart: a duration to stay deleted, not a condition to poll.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            live(&ctx).await.is_none(),
            "phi-guard restored the configuration its pre-delete hook removed\nphi-guard log:\n{}",
            ctx.phi_guard_log()
        );
    }
    assert_eq!(drift_total(&ctx, "deleted"), deleted_before);
    let log = std::fs::read(&log_path).unwrap_or_default();
    let log = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
    assert!(
        log.contains("pre-delete hook is running"),
        "phi-guard should log that the hook's deletion is an uninstall:\n{}",
        ctx.phi_guard_log()
    );
    let run = kubectl(
        &[
            "delete",
            "job",
            "-n",
            "phi-guard",
            "phi-guard-uninstall-e2e",
        ],
        None,
    );
    assert!(run.ok, "{}", run.stderr);
    // Back to the suite's installation (Helm creates the missing configuration again).
    ctx.reinstall();
    rejects(&App::bare(&ctx.ns, "reinstalled").deployment());
}
