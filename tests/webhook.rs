// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! Router tests through real TLS: the webhook is started in-process on 127.0.0.1:0 with an
//! rcgen CA and serving certificate, and driven by a real HTTP client (HTTP/1.1 and HTTP/2)
//! with the AdmissionReview fixtures in tests/fixtures/admission (regenerate them with
//! `python3 tests/fixtures/admission/generate.py`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use phi_guard::cli::serve::state_from_files;
use phi_guard::telemetry::{Metrics, Readiness};
use phi_guard::webhook::{self, Handle, Options};
use reqwest::StatusCode;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;
use support::{check, wait_for_async};

const HOST: &str = "phi-guard.test";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("admission").join(format!("{name}.json"))).expect("fixture")
}

// ---- certificates -------------------------------------------------------------------------

struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        // Every test starts with a CA: install the one crypto provider phi-guard uses, for the
        // test clients too (reqwest is built without one of its own).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "phi-guard test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// A serving certificate for HOST: (cert PEM, key PEM, cert DER). `rsa`: use the fixture RSA
    /// key (PKCS#1) instead of a fresh ECDSA P-256 key.
    fn leaf(&self, cn: &str, rsa: bool) -> (String, String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec![HOST.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        if rsa {
            let dir = fixtures().join("tls");
            let key_pem = std::fs::read_to_string(dir.join("rsa-2048.key")).unwrap();
            let public = RsaPublic(std::fs::read(dir.join("rsa-2048.pub.der")).unwrap());
            let cert = params.signed_by(&public, &issuer).unwrap();
            (cert.pem(), key_pem, cert.der().to_vec())
        } else {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem(), cert.der().to_vec())
        }
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        roots
    }
}

fn client_tls(
    ca: &Ca,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(ca.roots())
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// An RSA public key (PKCS#1 RSAPublicKey DER) for rcgen.
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

// ---- the server under test ----------------------------------------------------------------

struct Server {
    handle: Handle,
    ca: Ca,
    dir: tempfile::TempDir,
    readiness: Arc<Readiness>,
}

struct Setup {
    state: Vec<&'static str>,
    rsa: bool,
    pending: Option<&'static str>,
    request_timeout: Duration,
    /// Serve the certificate through a Kubernetes-style `..data` symlink.
    secret_layout: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            state: vec!["cluster"],
            rsa: false,
            pending: None,
            request_timeout: Duration::from_secs(10),
            secret_layout: false,
        }
    }
}

/// Write cert/key like a kubelet updates a Secret volume: a new timestamped directory, then an
/// atomic rename of the `..data` symlink onto it.
fn write_secret(dir: &Path, version: &str, cert: &str, key: &str) {
    let data = dir.join(version);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), dir.join(f)).unwrap();
        }
    }
}

impl Server {
    async fn start(setup: Setup) -> Server {
        let ca = Ca::new();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = ca.leaf("serving-1", setup.rsa);
        if setup.secret_layout {
            write_secret(dir.path(), "..2025_01_01_v1", &cert, &key);
        } else {
            std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
            std::fs::write(dir.path().join("tls.key"), key).unwrap();
        }
        let paths: Vec<PathBuf> = setup.state.iter().map(|p| fixtures().join(p)).collect();
        let state = Arc::new(state_from_files(&paths).expect("cluster state"));
        let readiness = Readiness::new();
        if let Some(p) = setup.pending {
            readiness.register(p);
        }
        let mut opts = Options::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
        opts.cert_reload_interval = Duration::from_millis(200);
        opts.request_timeout = setup.request_timeout;
        opts.handshake_timeout = Duration::from_secs(2);
        opts.header_read_timeout = Duration::from_secs(2);
        opts.shutdown_grace = Duration::from_secs(5);
        let handle = webhook::start(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            opts,
            state,
            Arc::new(Metrics::new()),
            readiness.clone(),
        )
        .await
        .expect("server starts");
        Server {
            handle,
            ca,
            dir,
            readiness,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.handle.addr.port())
    }

    fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.admin_addr)
    }

    fn client(&self, http2: bool) -> reqwest::Client {
        let alpn: &[&[u8]] = if http2 { &[b"h2"] } else { &[b"http/1.1"] };
        let tls = client_tls(
            &self.ca,
            alpn,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        );
        let b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve(HOST, self.handle.addr)
            .timeout(Duration::from_secs(20));
        let b = if http2 {
            b.http2_prior_knowledge()
        } else {
            b.http1_only()
        };
        b.build().unwrap()
    }

    /// POST a body to /validate: (HTTP status, JSON body).
    async fn post(
        &self,
        client: &reqwest::Client,
        body: Vec<u8>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let resp = client
            .post(self.url("/validate"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// POST a fixture; the AdmissionReview `response`.
    async fn review(&self, client: &reqwest::Client, name: &str) -> Value {
        let body = fixture(name);
        let uid = serde_json::from_slice::<Value>(&body).unwrap()["request"]["uid"].clone();
        let (status, v) = self.post(client, body, "application/json").await;
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{name}");
        assert_eq!(v["kind"], "AdmissionReview", "{name}");
        let r = v["response"].clone();
        assert_eq!(
            r["uid"], uid,
            "{name}: the response carries the request's uid"
        );
        let text = r.to_string();
        assert!(
            !text.contains("do-not-log-this"),
            "{name}: object values must never be echoed: {text}"
        );
        r
    }

    async fn metrics(&self) -> String {
        reqwest::get(self.admin("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The certificate a new TLS connection is served.
    async fn served_cert(&self) -> Vec<u8> {
        let tls = client_tls(&self.ca, &[b"http/1.1"], &[&rustls::version::TLS13]);
        let tcp = TcpStream::connect(self.handle.addr).await.unwrap();
        let conn = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from(HOST).unwrap(), tcp)
            .await
            .expect("TLS handshake");
        conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }
}

fn message(r: &Value) -> &str {
    r["status"]["message"].as_str().unwrap_or_default()
}

fn warnings(r: &Value) -> Vec<String> {
    r["warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn assert_denied(r: &Value, header: &str, rules: &[&str]) {
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 403, "{r}");
    let m = message(r);
    assert!(
        m.starts_with(header),
        "message should start with {header:?}: {m}"
    );
    let shown = support::shown_rules(m);
    for rule in rules {
        assert!(
            shown.iter().any(|r| r == rule),
            "message should list {rule}: {m}"
        );
    }
    for line in m.lines().skip(1).filter(|l| l.starts_with('[')) {
        assert!(
            line.contains("(45 CFR 164."),
            "every finding cites HIPAA: {line}"
        );
        assert!(
            line.contains(" Fix: "),
            "every finding says how to fix it: {line}"
        );
    }
}

/// `text` shows a finding of `rule` at `path`.
fn shown(text: &str, rule: &str, path: &str) -> bool {
    support::shown_findings(text)
        .iter()
        .any(|f| f.rule == rule && f.path == path)
}

fn assert_clean_allow(r: &Value) {
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("status").is_none(), "{r}");
    assert!(warnings(r).is_empty(), "{r}");
    assert!(r.get("auditAnnotations").is_none(), "{r}");
}

// ---- tests --------------------------------------------------------------------------------

#[tokio::test]
async fn fixtures_are_judged_over_http1() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(false);

    // A PHI Deployment on hostPath without an audit sidecar: every finding, in one message.
    let r = s.review(&c, "deployment-create-denied").await;
    assert_denied(
        &r,
        "phi-guard denied Deployment payments/api: 2 HIPAA findings (policy hipaa-baseline):\n",
        &["encryption-at-rest", "audit-sidecar"],
    );
    let m = message(&r);
    assert!(
        m.contains("[encryption-at-rest/inline-volume-not-allowed] spec.template.spec.volumes[0] (45 CFR 164.312(a)(2)(iv)): "),
        "{m}"
    );
    assert!(
        shown(m, "audit-sidecar", "spec.template.spec.containers"),
        "{m}"
    );

    // dryRun is judged the same.
    let dry = s.review(&c, "deployment-create-dryrun").await;
    assert_eq!(message(&dry), message(&r));

    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    assert_clean_allow(&s.review(&c, "deployment-create-nonphi").await);
    assert_clean_allow(&s.review(&c, "deployment-delete").await);

    let r = s.review(&c, "cronjob-create").await;
    assert_denied(
        &r,
        "phi-guard denied CronJob payments/nightly: ",
        &["audit-sidecar"],
    );

    let r = s.review(&c, "networkpolicy-delete").await;
    assert_denied(
        &r,
        "phi-guard denied deletion of NetworkPolicy payments/default-deny: ",
        &["network-segmentation"],
    );

    // Dropping the PHI label is reported.
    let r = s.review(&c, "deployment-update-unlabel").await;
    let w = warnings(&r);
    assert!(
        w.iter()
            .chain([&message(&r).to_string()])
            .any(|t| support::shown_rules(t)
                .iter()
                .any(|r| r == "phi-classification")),
        "{r}"
    );

    // Unknown kinds: admitted, with a warning.
    let r = s.review(&c, "configmap-create").await;
    assert_eq!(r["allowed"], true);
    assert_eq!(
        warnings(&r),
        vec!["phi-guard does not check ConfigMap; admitted without HIPAA checks".to_string()]
    );

    // A known kind that cannot be decoded is refused, naming the kind; values are not echoed.
    let r = s.review(&c, "deployment-create-undecodable").await;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert!(
        message(&r).starts_with("phi-guard cannot judge Deployment payments/api"),
        "{r}"
    );

    // UPDATE judges the new object.
    let r = s.review(&c, "deployment-update").await;
    assert_denied(
        &r,
        "phi-guard denied Deployment payments/api: 1 HIPAA finding",
        &["encryption-at-rest"],
    );
    assert!(
        shown(
            message(&r),
            "encryption-at-rest",
            "spec.template.spec.volumes[2]"
        ),
        "{r}"
    );

    let r = s.review(&c, "pod-create").await;
    assert_denied(
        &r,
        "phi-guard denied Pod payments/worker: ",
        &["encryption-at-rest"],
    );
    assert!(
        shown(message(&r), "encryption-at-rest", "spec.volumes[0]"),
        "{r}"
    );

    let r = s.review(&c, "statefulset-create").await;
    assert_denied(
        &r,
        "phi-guard denied StatefulSet payments/db: ",
        &["encryption-at-rest"],
    );
    assert!(message(&r).contains("spec.volumeClaimTemplates[0]"), "{r}");

    let r = s.review(&c, "pvc-create").await;
    assert_denied(
        &r,
        "phi-guard denied PersistentVolumeClaim payments/scratch: ",
        &["encryption-at-rest"],
    );

    let r = s.review(&c, "ingress-create").await;
    assert_denied(
        &r,
        "phi-guard denied Ingress payments/ledger: ",
        &["encryption-in-transit"],
    );

    // A Service to meshed (STRICT mTLS) PHI pods is fine.
    assert_clean_allow(&s.review(&c, "service-create").await);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn http2_is_served() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(true);
    let resp = c
        .post(s.url("/validate"))
        .header("content-type", "application/json")
        .body(fixture("deployment-create-denied"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response"]["uid"], "uid-deploy-denied");
    assert_eq!(v["response"]["allowed"], false);
    // Many concurrent streams on one connection.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let c = c.clone();
        let url = s.url("/validate");
        tasks.push(tokio::spawn(async move {
            let v: Value = c
                .post(url)
                .header("content-type", "application/json")
                .body(fixture("deployment-create-allowed"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(v["response"]["allowed"], true);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn warn_mode_policy_admits_with_warnings() {
    let s = Server::start(Setup {
        state: vec!["cluster", "policies/warn.yaml"],
        ..Default::default()
    })
    .await;
    let c = s.client(false);
    let r = s.review(&c, "deployment-create-denied").await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("status").is_none());
    let w = warnings(&r);
    assert!(
        w.iter().any(|w| w.starts_with("phi-guard [audit-sidecar/")
            && support::shown_rules(w) == ["audit-sidecar"]),
        "{w:?}"
    );
    for w in &w {
        assert!(w.chars().count() <= 250, "{w}");
        assert!(!w.contains('\n'));
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn audit_mode_policy_records_audit_annotations() {
    let s = Server::start(Setup {
        state: vec!["cluster", "policies/audit.yaml"],
        ..Default::default()
    })
    .await;
    let c = s.client(false);
    let r = s.review(&c, "deployment-create-denied").await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(warnings(&r).is_empty(), "{r}");
    let ann = r["auditAnnotations"].as_object().expect("auditAnnotations");
    assert!(ann.contains_key("audit-sidecar-1"), "{r}");
    assert!(ann.contains_key("encryption-at-rest-1"), "{r}");
    assert!(
        ann["encryption-at-rest-1"]
            .as_str()
            .unwrap()
            .starts_with(
                "policy phi-audit: [encryption-at-rest/inline-volume-not-allowed] spec.template.spec.volumes[0] (45 CFR 164.312(a)(2)(iv)): "
            ),
        "{r}"
    );
    for (k, v) in ann {
        // A valid name segment: the API server prefixes `<webhook name>/`.
        assert!(
            k.len() <= 63 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{k}"
        );
        assert!(v.as_str().unwrap().contains("45 CFR 164."), "{v}");
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn malformed_policy_is_skipped_and_counted() {
    let s = Server::start(Setup {
        state: vec!["cluster", "policies/warn.yaml", "policies/malformed.yaml"],
        ..Default::default()
    })
    .await;
    let c = s.client(false);
    let r = s.review(&c, "deployment-create-denied").await;
    assert_eq!(r["allowed"], true, "the valid Warn policy applies: {r}");
    let m = s.metrics().await;
    assert!(m.contains("phi_guard_rejected_policies 1"), "{m}");
    assert!(m.contains("phi_guard_policies{state=\"active\"} 1"), "{m}");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn only_malformed_policies_fall_back_to_the_baseline() {
    let s = Server::start(Setup {
        state: vec!["cluster", "policies/malformed.yaml"],
        ..Default::default()
    })
    .await;
    let r = s.review(&s.client(false), "deployment-create-denied").await;
    assert_denied(
        &r,
        "phi-guard denied Deployment payments/api: ",
        &["audit-sidecar"],
    );
    assert!(message(&r).contains("(policy hipaa-baseline)"), "{r}");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(false);
    let json = "application/json";

    let (st, v) = s.post(&c, b"{not json".to_vec(), json).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["kind"], "Status");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("not an AdmissionReview JSON"),
        "{v}"
    );

    let (st, v) = s.post(&c, b"[1,2]".to_vec(), json).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    let (st, v) = s
        .post(&c, json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}).to_string().into_bytes(), json)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("expected apiVersion admission.k8s.io/v1"),
        "{v}"
    );

    let (st, _) = s
        .post(
            &c,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "Deployment"})
                .to_string()
                .into_bytes(),
            json,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, v) = s
        .post(
            &c,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})
                .to_string()
                .into_bytes(),
            json,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("no request"), "{v}");

    // A request that can't be read but has a uid: an `invalid` review carrying it.
    let (st, v) = s
        .post(
            &c,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"uid": "u-bad", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                               "operation": "PATCH", "object": {}}})
            .to_string()
            .into_bytes(),
            json,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["uid"], "u-bad");
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["status"]["code"], 400);

    // A known kind without an object is refused.
    let (st, v) = s
        .post(
            &c,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"uid": "u-noobj", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                               "namespace": "payments", "operation": "CREATE"}})
            .to_string()
            .into_bytes(),
            json,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["response"]["allowed"], false, "{v}");

    let (st, v) = s
        .post(&c, fixture("deployment-create-allowed"), "text/plain")
        .await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        v["message"].as_str().unwrap().contains("application/json"),
        "{v}"
    );

    // Over 3 MiB: 413, whether announced by Content-Length or streamed.
    let big = vec![b' '; 4 * 1024 * 1024];
    let (st, _) = s.post(&c, big.clone(), json).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, without Content-Length: cut off at the limit.
    let tls = client_tls(&s.ca, &[b"http/1.1"], &[&rustls::version::TLS13]);
    let tcp = TcpStream::connect(s.handle.addr).await.unwrap();
    let mut conn = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    conn.write_all(
        b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..64 {
        let head = format!("{:x}\r\n", chunk.len());
        if conn.write_all(head.as_bytes()).await.is_err()
            || conn.write_all(&chunk).await.is_err()
            || conn.write_all(b"\r\n").await.is_err()
        {
            break; // the server may stop reading once it has answered
        }
    }
    let mut buf = vec![0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"));

    let resp = c.get(s.url("/validate")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = c.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Still serving, on a fresh client too.
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    assert_clean_allow(
        &s.review(&s.client(false), "deployment-create-allowed")
            .await,
    );
    let m = s.metrics().await;
    assert!(
        m.contains("phi_guard_bad_requests_total{code=\"413\"} 2"),
        "{m}"
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn slow_clients_time_out() {
    let s = Server::start(Setup {
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let tls = client_tls(&s.ca, &[b"http/1.1"], &[&rustls::version::TLS13]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));

    // Headers promise a body that never comes: 408 after the request timeout.
    let tcp = TcpStream::connect(s.handle.addr).await.unwrap();
    let mut conn = connector
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    conn.write_all(
        b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("answered before the test gave up")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
    assert!(started.elapsed() < Duration::from_secs(3));
    // Counted, never invisible.
    assert!(
        s.metrics()
            .await
            .contains("phi_guard_request_timeouts_total 1"),
        "the 408 is counted"
    );

    // A client that never finishes its headers is disconnected (header read timeout 2 s).
    let tcp = TcpStream::connect(s.handle.addr).await.unwrap();
    let mut conn = connector
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    conn.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(6), conn.read(&mut buf))
        .await
        .expect("the server closes a stuck connection");
    assert!(matches!(r, Ok(0) | Ok(_) | Err(_)));

    // A TCP client that never starts TLS is dropped too.
    let mut tcp = TcpStream::connect(s.handle.addr).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(6), tcp.read(&mut buf))
        .await
        .expect("the server drops a silent TCP client");
    assert!(matches!(r, Ok(0) | Err(_)));

    // And the server still answers.
    assert_clean_allow(
        &s.review(&s.client(false), "deployment-create-allowed")
            .await,
    );
    s.handle.shutdown().await;
}

#[tokio::test]
async fn rsa_certificate_over_tls12() {
    let s = Server::start(Setup {
        rsa: true,
        ..Default::default()
    })
    .await;
    let tls = client_tls(&s.ca, &[b"http/1.1"], &[&rustls::version::TLS12]);
    let tcp = TcpStream::connect(s.handle.addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .expect("TLS 1.2 handshake with an RSA certificate");
    assert_eq!(
        conn.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(conn.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let r = s.review(&s.client(false), "deployment-create-denied").await;
    assert_eq!(r["allowed"], false);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn certificate_rotation_is_picked_up_by_new_connections() {
    let s = Server::start(Setup {
        secret_layout: true,
        ..Default::default()
    })
    .await;
    let first = s.served_cert().await;

    // Keep a connection open across the rotation: it keeps working.
    let c = s.client(false);
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);

    let (cert2, key2, der2) = s.ca.leaf("serving-2", false);
    assert_ne!(first, der2);
    write_secret(s.dir.path(), "..2025_01_02_v2", &cert2, &key2);
    let server = s;
    let s = &server;
    let der = &der2;
    wait_for_async(
        "the rotated certificate served",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async move { check(s.served_cert().await == *der, || "the old one".into()) },
    )
    .await;
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    assert_clean_allow(
        &s.review(&s.client(false), "deployment-create-allowed")
            .await,
    );

    // A broken pair is refused: the last good certificate stays and the failure is counted.
    write_secret(s.dir.path(), "..2025_01_03_v3", "garbage", &key2);
    // Wait until the reload has seen the broken pair (its failure is counted), not a fixed time.
    let m = wait_for_async(
        "the broken pair's reload counted",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async move {
            let m = s.metrics().await;
            let failures = support::metric_sum(
                &m,
                "phi_guard_tls_cert_reloads_total",
                &["result=\"failure\""],
            );
            if failures >= 1.0 {
                Ok(m)
            } else {
                Err(m)
            }
        },
    )
    .await;
    assert_eq!(s.served_cert().await, der2);
    assert!(
        m.contains("phi_guard_tls_cert_reloads_total{result=\"failure\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("phi_guard_tls_cert_reloads_total{result=\"success\"} 2"),
        "{m}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn waits_for_a_certificate_written_after_start() {
    // Self-managed TLS writes the files after the server starts.
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(state_from_files(&[fixtures().join("cluster")]).unwrap());
    let readiness = Readiness::new();
    let mut opts = Options::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    opts.cert_reload_interval = Duration::from_millis(100);
    opts.wait_for_certificate = true;
    let handle = webhook::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        opts,
        state,
        Arc::new(Metrics::new()),
        readiness.clone(),
    )
    .await
    .expect("starts without a certificate");
    let readyz = format!("http://{}/readyz", handle.admin_addr);
    assert_eq!(
        reqwest::get(&readyz).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (cert, key, der) = ca.leaf("late", false);
    write_secret(dir.path(), "..v1", &cert, &key);
    wait_for_async(
        "certificate picked up",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || std::future::ready(check(readiness.is_ready(), || "not ready".into())),
    )
    .await;
    assert_eq!(
        reqwest::get(&readyz).await.unwrap().status(),
        StatusCode::OK
    );
    let tls = client_tls(&ca, &[b"http/1.1"], &[&rustls::version::TLS13]);
    let tcp = TcpStream::connect(handle.addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        conn.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        &der[..]
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(false);
    let _ = s.review(&c, "deployment-create-denied").await;
    let _ = s.review(&c, "deployment-create-allowed").await;

    let health = reqwest::get(s.admin("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = reqwest::get(s.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let m = s.metrics().await;
    for needle in [
        "# TYPE phi_guard_review_duration_seconds histogram",
        "phi_guard_review_duration_seconds_bucket{le=\"0.00005\"}",
        "phi_guard_review_duration_seconds_count 2",
        "phi_guard_reviews_total{decision=\"denied\",kind=\"Deployment\",operation=\"CREATE\"} 1",
        "phi_guard_reviews_total{decision=\"allowed\",kind=\"Deployment\",operation=\"CREATE\"} 1",
        "phi_guard_findings_total{policy=\"hipaa-baseline\",rule=\"audit-sidecar\",reason=\"no-audit-sidecar\",mode=\"Enforce\",kind=\"Deployment\",operation=\"CREATE\"}",
        "phi_guard_cache_objects{kind=\"Namespace\"} 2",
        "phi_guard_cache_objects{kind=\"StorageClass\"} 2",
        "phi_guard_tls_cert_expiry_timestamp_seconds ",
        "phi_guard_ready 1",
        "# EOF",
    ] {
        assert!(m.contains(needle), "metrics should contain {needle:?}:\n{m}");
    }
    let expiry: i64 = m
        .lines()
        .find_map(|l| l.strip_prefix("phi_guard_tls_cert_expiry_timestamp_seconds "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(expiry > now, "expiry {expiry} should be in the future");
    s.handle.shutdown().await;
}

#[tokio::test]
async fn not_ready_fails_closed() {
    let s = Server::start(Setup {
        pending: Some("watch/PhiPolicy"),
        ..Default::default()
    })
    .await;
    let ready = reqwest::get(s.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().contains("watch/PhiPolicy"));

    let c = s.client(false);
    let r = s.review(&c, "deployment-create-allowed").await;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 503);
    assert!(message(&r).starts_with("phi-guard is starting"), "{r}");
    // Kinds that need no cache are still answered.
    assert_eq!(s.review(&c, "configmap-create").await["allowed"], true);
    assert_eq!(s.review(&c, "deployment-delete").await["allowed"], true);

    s.readiness.set_ready("watch/PhiPolicy");
    let ready = reqwest::get(s.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    s.handle.shutdown().await;
}

#[tokio::test]
async fn draining_fails_readiness_keeps_judging_and_closes_http1_connections() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(false);
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    s.readiness.drain();
    let ready = reqwest::get(s.admin("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().contains("shutting down"));
    // Reviews are still judged, and each HTTP/1.1 answer tells the client not to reuse the
    // connection, so none is idle when the listener closes.
    let resp = c
        .post(s.url("/validate"))
        .header("content-type", "application/json")
        .body(fixture("deployment-create-allowed"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    let v: Value = resp.json().await.unwrap();
    assert_clean_allow(&v["response"]);
    // HTTP/2 answers carry no connection header (GOAWAY ends those connections).
    let r = s
        .client(true)
        .post(s.url("/validate"))
        .header("content-type", "application/json")
        .body(fixture("deployment-create-allowed"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("connection").is_none());
    s.handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_promptly_with_idle_keepalive_connections() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(false);
    assert_clean_allow(&s.review(&c, "deployment-create-allowed").await);
    let addr = s.handle.addr;
    let started = Instant::now();
    s.handle.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    drop(c);
}

/// A uid longer than any API server sends is not echoed: a short 400 instead (the API server
/// sends UUIDs; anything else posting to the webhook cannot make it answer with a large string).
#[tokio::test]
async fn an_overlong_uid_is_refused_not_echoed() {
    let s = Server::start(Setup::default()).await;
    let c = s.client(true);
    let mut review: Value = serde_json::from_slice(&fixture("deployment-create-denied")).unwrap();
    review["request"]["uid"] = Value::String("u".repeat(100_000));
    let (status, v) = s
        .post(&c, serde_json::to_vec(&review).unwrap(), "application/json")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["kind"], "Status");
    assert!(v.to_string().len() < 512, "{v}");
    // 256 bytes is still answered as a review.
    review["request"]["uid"] = Value::String("u".repeat(256));
    let (status, v) = s
        .post(&c, serde_json::to_vec(&review).unwrap(), "application/json")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["uid"].as_str().map(str::len), Some(256));
}
