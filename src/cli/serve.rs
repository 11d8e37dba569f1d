//! `phi-guard serve`: the validating admission webhook. Cluster state comes from watch caches
//! (in-cluster config or KUBECONFIG), or from YAML files with `--cluster-state` (no API server:
//! local trials, demos, benchmarks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::duration::HumanDuration;
use super::tls::{SelfManagedTlsArgs, TlsArgs};
use crate::certs;
use crate::cluster::files::{load_paths, DEFAULT_MAX_FILE_MIB, MIB};
use crate::cluster::ClusterState;
use crate::policy::effective_policies;
use crate::telemetry::{self, LogFormat, Metrics, Readiness};
use crate::webhook;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub self_managed_tls: SelfManagedTlsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub logging: LogArgs,
}

/// Where and how phi-guard listens.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Address of the HTTPS webhook listener (POST /validate).
    #[arg(long, env = "PHI_GUARD_LISTEN", default_value = webhook::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin listener (/healthz, /readyz, /metrics).
    #[arg(long, env = "PHI_GUARD_ADMIN_LISTEN", default_value = webhook::DEFAULT_ADMIN_LISTEN)]
    pub admin_listen: SocketAddr,
    /// Cap on handling one request, body read included (e.g. 10s, 500ms). Slow clients get 408.
    #[arg(long, env = "PHI_GUARD_REQUEST_TIMEOUT", default_value_t = HumanDuration(webhook::DEFAULT_REQUEST_TIMEOUT))]
    pub request_timeout: HumanDuration,
    /// HTTP/1.1: cap on receiving request headers, which also bounds how long an idle
    /// keep-alive connection is kept. Keep it above the API server's idle timeout (90s), so the
    /// API server, not phi-guard, closes idle connections (a close racing a review fails it).
    #[arg(long, env = "PHI_GUARD_HEADER_READ_TIMEOUT", default_value_t = HumanDuration(webhook::DEFAULT_HEADER_READ_TIMEOUT))]
    pub header_read_timeout: HumanDuration,
    /// Cap on a TLS handshake; a connection that then sends no request within the same time is
    /// closed (the API server sends its review as soon as it connects).
    #[arg(long, env = "PHI_GUARD_HANDSHAKE_TIMEOUT", default_value_t = HumanDuration(webhook::DEFAULT_HANDSHAKE_TIMEOUT))]
    pub handshake_timeout: HumanDuration,
    /// Open webhook connections at most; more wait in the listen backlog until one closes.
    /// Connections that send no request within the handshake timeout, or stay idle past
    /// --header-read-timeout, are closed.
    #[arg(long, env = "PHI_GUARD_MAX_CONNECTIONS", default_value_t = webhook::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Open webhook connections from one peer address at most; more are closed as soon as
    /// they are accepted (counted in phi_guard_connections_refused_total). The API server
    /// calls from a few addresses; one pod must not take every slot.
    #[arg(long, env = "PHI_GUARD_MAX_CONNECTIONS_PER_PEER", default_value_t = webhook::DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    pub max_connections_per_peer: usize,
    /// Listen backlog of both listeners: connections waiting to be accepted while every slot
    /// is taken (the kernel caps it at net.core.somaxconn).
    #[arg(long, env = "PHI_GUARD_LISTEN_BACKLOG", default_value_t = webhook::DEFAULT_LISTEN_BACKLOG)]
    pub listen_backlog: u32,
    /// Memory for request bodies being read, across all requests, in MiB. A quarter is kept
    /// for ordinary reviews (bodies up to 64 KiB), so floods of large bodies never starve them;
    /// requests wait for room (up to --request-timeout). At least one 3 MiB body fits.
    #[arg(long, env = "PHI_GUARD_BODY_BUFFER_MIB", default_value_t = webhook::DEFAULT_BODY_BUFFER_MIB)]
    pub body_buffer_mib: usize,
    /// Reviews over 64 KiB judged at once; more wait (up to --request-timeout). Each holds its
    /// decoded object while judged, so this, not the node's core count, bounds that memory.
    #[arg(long, env = "PHI_GUARD_LARGE_REVIEW_SLOTS", default_value_t = webhook::DEFAULT_LARGE_REVIEW_SLOTS, value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(1..=64))]
    pub large_review_slots: usize,
    /// Memory for response bytes the webhook's connections have not taken yet, in MiB. One
    /// connection may hold an eighth of it; a connection holding more (or the most, when the
    /// total is exceeded) is closed, so clients that never read cannot make phi-guard hold
    /// their answers (phi_guard_connections_closed_total{reason="unread_responses"}).
    #[arg(long, env = "PHI_GUARD_RESPONSE_BUFFER_MIB", default_value_t = webhook::DEFAULT_RESPONSE_BUFFER_MIB)]
    pub response_buffer_mib: usize,
    /// A connection that leaves response bytes untaken this long is closed.
    #[arg(long, env = "PHI_GUARD_RESPONSE_STALL_TIMEOUT", default_value_t = HumanDuration(webhook::DEFAULT_RESPONSE_STALL_TIMEOUT))]
    pub response_stall_timeout: HumanDuration,
    /// On SIGTERM/SIGINT, first keep serving (new connections too) this long with /readyz
    /// answering 503: the pod leaves the Service's endpoints and kube-proxy's rules while it
    /// still answers, so no review is sent to a closed port (with failurePolicy Fail a refused
    /// connection is a refused deploy). Longer than endpoint propagation; 0 stops at once.
    #[arg(long, env = "PHI_GUARD_SHUTDOWN_DELAY", default_value_t = HumanDuration(std::time::Duration::from_secs(10)))]
    pub shutdown_delay: HumanDuration,
    /// How long shutdown (SIGTERM/SIGINT), after the delay, waits for in-flight requests.
    #[arg(long, env = "PHI_GUARD_SHUTDOWN_GRACE", default_value_t = HumanDuration(webhook::DEFAULT_SHUTDOWN_GRACE))]
    pub shutdown_grace: HumanDuration,
}

/// Where cluster state and policies come from.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Take PhiPolicies and cluster objects (Namespaces, StorageClasses, PVCs, PVs,
    /// NetworkPolicies, Services, PeerAuthentications, Certificates, workloads) from these YAML
    /// files or directories instead of an API server. Repeatable. Without PhiPolicies in them,
    /// the built-in hipaa-baseline applies.
    #[arg(long, env = "PHI_GUARD_CLUSTER_STATE", value_delimiter = ',')]
    pub cluster_state: Vec<PathBuf>,
    /// Largest --cluster-state file read, in MiB; a larger one fails the start. Only regular
    /// files are read (a FIFO or device is refused).
    #[arg(long, env = "PHI_GUARD_MAX_FILE_MIB", default_value_t = DEFAULT_MAX_FILE_MIB)]
    pub max_file_mib: u64,
    /// Budget for the consistent API reads that confirm a decision the watch caches cannot
    /// settle (a denial that rests on an object missing from the cache, or an object whose
    /// namespace is not cached yet). Keep it below the webhook's timeoutSeconds.
    #[arg(
        long,
        env = "PHI_GUARD_CONFIRM_TIMEOUT",
        default_value_t = HumanDuration(crate::cluster::confirm::DEFAULT_CONFIRM_TIMEOUT)
    )]
    pub confirm_timeout: HumanDuration,
    /// Keep the webhooks of this ValidatingWebhookConfiguration in step with the PhiPolicies'
    /// scopes, so the API server sends phi-guard exactly the objects in PHI scope (the chart
    /// sets it). Each policy's WebhookScope condition reports it. Unset: the configuration is
    /// left as installed.
    /// phi-guard also restores the configuration when it is deleted and corrects it when others
    /// edit it (within seconds, one replica writing: Lease `phi-guard-webhook-scope` in
    /// --namespace), from its owner's last version.
    #[arg(long, env = "PHI_GUARD_WEBHOOK_SCOPE_CONFIG")]
    pub webhook_scope_config: Option<String>,
    /// Field managers whose writes to the webhook configuration are its owner's: phi-guard
    /// takes them as the version to restore and correct to, and undoes everyone else's (the
    /// chart's Helm writes as `helm`; Argo CD or Flux installs name theirs).
    #[arg(
        long,
        env = "PHI_GUARD_WEBHOOK_CONFIG_OWNERS",
        value_delimiter = ',',
        default_value = "helm"
    )]
    pub webhook_config_owners: Vec<String>,
    /// Run the background audit: re-judge every object in PHI scope when what it depends on
    /// changes and every --audit-sweep, and write PolicyReports and PhiPolicy status. With
    /// several replicas one leads (Lease `phi-guard-audit` in --namespace).
    #[arg(long, env = "PHI_GUARD_AUDIT")]
    pub audit: bool,
    /// Create the default-deny NetworkPolicies PhiPolicies ask for
    /// (`spec.networkSegmentation.generateDefaultDeny`), one replica writing (Lease
    /// `phi-guard-default-deny` in --namespace). Needs permission to create NetworkPolicies.
    /// Without this flag the option has no effect, and phi-guard logs a warning naming the
    /// policies that ask for it.
    #[arg(long, env = "PHI_GUARD_GENERATE_DEFAULT_DENY")]
    pub generate_default_deny: bool,
    /// Time between full audit sweeps (changes are judged within seconds regardless).
    #[arg(
        long,
        env = "PHI_GUARD_AUDIT_SWEEP",
        default_value_t = HumanDuration(std::time::Duration::from_secs(300))
    )]
    pub audit_sweep: HumanDuration,
    /// Also write `pass` results (evidence that every check ran), not only fail and warn.
    #[arg(long, env = "PHI_GUARD_AUDIT_PASS_RESULTS")]
    pub audit_pass_results: bool,
    /// Results per PolicyReport before the namespace's report splits in two (a stable split:
    /// only half of one report's objects move). Lower it to test splitting; raising it makes
    /// bigger reports (the API server refuses objects over about 1.5 MiB).
    #[arg(
        long,
        env = "PHI_GUARD_AUDIT_REPORT_MAX_RESULTS",
        default_value_t = crate::report::MAX_RESULTS,
        value_parser = clap::builder::TypedValueParser::map(
            clap::value_parser!(u16).range(1..=2000),
            usize::from
        )
    )]
    pub audit_report_max_results: usize,
    /// This replica's name in the audit and webhook-configuration Leases (the chart sets the
    /// pod name).
    #[arg(long, env = "PHI_GUARD_POD_NAME", default_value = "phi-guard")]
    pub pod_name: String,
}

/// Logging.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: one JSON object per line, or text. `RUST_LOG` sets the filter.
    #[arg(long, env = "PHI_GUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// How long log lines may wait in memory before a thread of their own writes them to stderr
    /// together (one write per interval instead of one per line: in a pod each write wakes the
    /// runtime's log reader, at about half the cost of judging a Pod; and a review never waits
    /// on a slow reader). WARN and ERROR lines are written at once, and everything waiting is
    /// written before exit; past 256 KiB waiting, lines are dropped and counted
    /// (`phi_guard_log_lines_dropped_total`). `0` writes each line as it is made, on the
    /// thread that logs it.
    #[arg(
        long,
        env = "PHI_GUARD_LOG_FLUSH_INTERVAL",
        default_value_t = HumanDuration(std::time::Duration::from_millis(100)),
        value_parser = parse_flush_interval
    )]
    pub log_flush_interval: HumanDuration,
}

/// A flush interval: `0` (each line written as made) up to 10 s (a longer one would hold
/// lines from `kubectl logs` for no measurable gain, and lose more of them to a SIGKILL).
fn parse_flush_interval(s: &str) -> Result<HumanDuration, String> {
    let d: HumanDuration = s.parse()?;
    if d.0 > std::time::Duration::from_secs(10) {
        return Err(format!("{d} is longer than the 10s maximum"));
    }
    Ok(d)
}

impl LogArgs {
    /// The interval to batch lines over; `None` writes each line as it is made.
    pub fn flush_interval(&self) -> Option<std::time::Duration> {
        Some(self.log_flush_interval.0).filter(|d| !d.is_zero())
    }
}

/// Cluster state and policies from YAML files. Without any valid PhiPolicy in them, the built-in
/// hipaa-baseline applies. Rejected policies are logged and kept in the set (metrics).
pub fn state_from_files(paths: &[PathBuf]) -> anyhow::Result<ClusterState> {
    state_from_files_within(paths, DEFAULT_MAX_FILE_MIB)
}

/// As [`state_from_files`], refusing any file over `max_file_mib` MiB.
pub fn state_from_files_within(
    paths: &[PathBuf],
    max_file_mib: u64,
) -> anyhow::Result<ClusterState> {
    let state = ClusterState::new();
    let policies = load_paths(paths, &state, max_file_mib.saturating_mul(MIB))
        .context("loading --cluster-state")?;
    let set = effective_policies(&policies);
    for r in &set.rejected {
        tracing::error!(policy = %r.name, error = %r.error, "PhiPolicy rejected");
    }
    state.set_policies(set);
    Ok(state)
}

/// Run `serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    telemetry::init_logging(args.logging.log_format, args.logging.flush_interval());
    let code = run_logged(args);
    telemetry::batched::flush();
    code
}

fn run_logged(args: ServeArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("phi-guard")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "phi-guard serve failed");
            ExitCode::from(1)
        }
    }
}

/// The certificate and key files to serve.
fn tls_files(
    args: &ServeArgs,
    managed: Option<&certs::Config>,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let pick = |given: &Option<PathBuf>, name: &str, flag: &str| match (given, managed) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(managed)) => Ok(managed.cert_dir.join(name)),
        (None, None) => Err(anyhow::anyhow!(
            "{flag} is required (or --self-managed-tls, which writes <cert-dir>/{name})"
        )),
    };
    Ok((
        pick(&args.tls.tls_cert_file, "tls.crt", "--tls-cert-file")?,
        pick(&args.tls.tls_key_file, "tls.key", "--tls-key-file")?,
    ))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let self_managed = args.self_managed_tls.config();
    let (cert_file, key_file) = tls_files(&args, self_managed.as_ref())?;
    if let Some(cfg) = &self_managed {
        cfg.validate()?;
    }
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut watchers = None;
    let needs_client = args.cluster.cluster_state.is_empty() || self_managed.is_some();
    let client = if needs_client {
        Some(
            kube::Client::try_default()
                .await
                .context("connecting to the API server (in-cluster config or KUBECONFIG)")?,
        )
    } else {
        None
    };

    let state = match (&client, args.cluster.cluster_state.is_empty()) {
        (Some(client), true) => {
            let state = Arc::new(ClusterState::new());
            // Until the PhiPolicy cache has synced nothing is judged (not ready), so this
            // placeholder is never used to decide; it keeps the state valid from the start.
            state.set_policies(effective_policies(&[]));
            watchers = Some(crate::cluster::watch::spawn(
                client.clone(),
                state.clone(),
                metrics.clone(),
                readiness.clone(),
            ));
            state
        }
        _ => {
            let (paths, max) = (
                args.cluster.cluster_state.clone(),
                args.cluster.max_file_mib,
            );
            let state = tokio::task::spawn_blocking(move || state_from_files_within(&paths, max))
                .await
                .context("loading --cluster-state")??;
            let sizes: Vec<String> = state
                .sizes()
                .iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            tracing::info!(sizes = %sizes.join(" "), "cluster state loaded from files");
            Arc::new(state)
        }
    };

    if let (Some(client), true, Some(name)) = (
        &client,
        args.cluster.cluster_state.is_empty(),
        args.cluster.webhook_scope_config.clone(),
    ) {
        let opts = crate::cluster::webhook_scope::Options {
            config_name: name,
            namespace: args.self_managed_tls.namespace.clone(),
            identity: args.cluster.pod_name.clone(),
            owners: args.cluster.webhook_config_owners.clone(),
        };
        let (client, state, metrics, readiness) = (
            client.clone(),
            state.clone(),
            metrics.clone(),
            readiness.clone(),
        );
        let mut rx = stop_rx.clone();
        background.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            crate::cluster::webhook_scope::run(client, opts, state, metrics, readiness, stop).await;
        }));
    }

    if let (Some(_), true, true) = (
        &client,
        args.cluster.cluster_state.is_empty(),
        args.cluster.audit,
    ) {
        let cfg = crate::audit::Config {
            namespace: args.self_managed_tls.namespace.clone(),
            identity: args.cluster.pod_name.clone(),
            passes: args.cluster.audit_pass_results,
            sweep: args.cluster.audit_sweep.into(),
            max_results: args.cluster.audit_report_max_results,
        };
        let stopped = crate::audit::spawn(
            state.clone(),
            metrics.clone(),
            readiness.clone(),
            cfg,
            stop_rx.clone(),
        )
        .context("starting the audit's thread")?;
        background.push(tokio::spawn(async move {
            let _ = stopped.await;
        }));
    }

    if let (Some(client), true) = (&client, args.cluster.cluster_state.is_empty()) {
        let generate = args.cluster.generate_default_deny;
        let (client, state, metrics, readiness) = (
            client.clone(),
            state.clone(),
            metrics.clone(),
            readiness.clone(),
        );
        let (namespace, identity) = (
            args.self_managed_tls.namespace.clone(),
            args.cluster.pod_name.clone(),
        );
        let mut rx = stop_rx.clone();
        background.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            let opts = crate::cluster::default_deny::Options {
                generate,
                namespace,
                identity,
            };
            crate::cluster::default_deny::run(client, state, metrics, readiness, opts, stop).await;
        }));
    }

    if let (Some(client), Some(cfg)) = (&client, self_managed.clone()) {
        let client = client.clone();
        let mut rx = stop_rx.clone();
        background.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = certs::run(client, cfg, stop).await {
                tracing::error!(error = %e, "self-managed TLS stopped");
            }
        }));
    }

    let backlog = args.listen.listen_backlog;
    let listener = webhook::bind(args.listen.listen, backlog)
        .with_context(|| format!("binding {}", args.listen.listen))?;
    let admin = webhook::bind(args.listen.admin_listen, backlog)
        .with_context(|| format!("binding {}", args.listen.admin_listen))?;
    let mut opts = webhook::Options::new(cert_file, key_file);
    if let (Some(client), true) = (&client, args.cluster.cluster_state.is_empty()) {
        opts.confirmer = Some(crate::cluster::confirm::Confirmer::new(
            client.clone(),
            args.cluster.confirm_timeout.into(),
        ));
    }
    opts.request_timeout = args.listen.request_timeout.into();
    opts.header_read_timeout = args.listen.header_read_timeout.into();
    opts.cert_reload_interval = args.tls.tls_reload_interval.into();
    opts.shutdown_grace = args.listen.shutdown_grace.into();
    opts.max_connections = args.listen.max_connections;
    opts.max_connections_per_peer = args.listen.max_connections_per_peer;
    opts.handshake_timeout = args.listen.handshake_timeout.into();
    opts.body_buffer_mib = args.listen.body_buffer_mib;
    opts.response_buffer_mib = args.listen.response_buffer_mib;
    opts.large_review_slots = args.listen.large_review_slots;
    opts.response_stall_timeout = args.listen.response_stall_timeout.0;
    // Self-managed TLS writes the files after start: wait for them instead of failing.
    opts.wait_for_certificate = self_managed.is_some();
    let handle = webhook::start(listener, admin, opts, state, metrics, readiness.clone()).await?;

    shutdown_signal().await;
    let delay: std::time::Duration = args.listen.shutdown_delay.into();
    if !delay.is_zero() {
        readiness.drain();
        tracing::info!(
            delay = ?delay,
            "shutting down: /readyz now 503 so endpoints drop this pod; still serving until the delay ends"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown_signal() => tracing::info!("second signal: skipping the rest of the delay"),
        }
    }
    tracing::info!("shutting down: no new connections, finishing in-flight reviews");
    let _ = stop_tx.send(true);
    if let Some(w) = watchers {
        w.abort();
    }
    handle.shutdown().await;
    for t in background {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
