// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! The real `phi-guard serve` binary under abuse: memory must stay bounded by configuration,
//! not by traffic. Limits: each test
//! sends the abuse while real reviews and `/readyz` are sent beside it, and checks they are still
//! answered promptly and that the server's memory (VmRSS of its process) stays within what its
//! configuration allows, not what the traffic asks for. No PHI in output: canary values in every
//! place an object can carry them, at `RUST_LOG=trace`, never appear in responses, logs or
//! metrics.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::{check, free_port, try_wait_for_async, wait_for_async};

const HOST: &str = "phi-guard.test";
/// A stalled body: declared 3,000,000 bytes (under the 3 MiB limit), 2.9 MB sent.
const DECLARED: usize = 3_000_000;
const SENT: usize = 2_900_000;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Server {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    roots: rustls::RootCertStore,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `phi-guard serve` on the fixture cluster state, with a fresh CA and serving certificate.
    async fn start(extra: &[&str]) -> Server {
        Server::launch(extra, "info").await
    }

    async fn launch(extra: &[&str], rust_log: &str) -> Server {
        Server::launch_logging_to(extra, rust_log, None).await
    }

    /// As [`Server::launch`], with stderr given (a pipe) instead of the log file.
    async fn launch_logging_to(extra: &[&str], rust_log: &str, stderr: Option<Stdio>) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = rcgen::CertificateParams::new(vec![HOST.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.path().join("tls.crt"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();

        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
            .arg("serve")
            .arg("--cluster-state")
            .arg(repo().join("tests/fixtures/cluster"))
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .args(["--listen", &addr.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--log-format", "text", "--shutdown-delay", "0s"])
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(stderr.unwrap_or_else(|| log.into()))
            .spawn()
            .expect("phi-guard serve starts");
        let s = Server {
            child,
            addr,
            admin,
            roots,
            dir,
        };
        let ready = try_wait_for_async(
            "phi-guard ready",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async move {
                let r = reqwest::get(format!("http://{admin}/readyz")).await;
                check(r.is_ok_and(|r| r.status().is_success()), || {
                    "/readyz not 200".into()
                })
            },
        )
        .await;
        if let Err(e) = ready {
            panic!("{e}: {}", s.log());
        }
        s
    }

    /// SIGTERM to the server process; fails the test if `kill` does.
    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Resident memory of the server process, bytes.
    fn rss(&self) -> u64 {
        let kib = support::rss_kib(self.child.id());
        assert!(
            kib > 0,
            "no VmRSS: the server process is gone: {}",
            self.log()
        );
        kib * 1024
    }

    fn tls(&self, alpn: &[u8]) -> tokio_rustls::TlsConnector {
        let mut cfg = rustls::ClientConfig::builder()
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    async fn connect(
        &self,
        alpn: &[u8],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        self.tls(alpn)
            .connect(ServerName::try_from(HOST).unwrap(), tcp)
            .await
    }

    fn client(&self) -> reqwest::Client {
        let mut cfg = rustls::ClientConfig::builder()
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .resolve(HOST, self.addr)
            .http1_only()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// One real review (a compliant PHI Deployment) on a fresh connection: its latency.
    async fn review(&self) -> Duration {
        let body = std::fs::read(fixture("deployment-create-allowed")).unwrap();
        let started = Instant::now();
        let resp = self
            .client()
            .post(format!("https://{HOST}:{}/validate", self.addr.port()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("review answered");
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["response"]["allowed"], true, "{v}");
        started.elapsed()
    }

    async fn readyz(&self) -> Duration {
        let started = Instant::now();
        let r = reqwest::Client::new()
            .get(format!("http://{}/readyz", self.admin))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("readyz answered");
        assert_eq!(r.status(), 200);
        started.elapsed()
    }

    async fn metric_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The series `name` (with its labels, as /metrics writes them).
    async fn metric(&self, name: &str) -> f64 {
        support::metric(&self.metric_text().await, name)
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// While the abuse runs: real reviews and /readyz every 200 ms for `window`, each answered
    /// within `max_latency`; the server's peak RSS above `before` (its RSS before the abuse).
    async fn under_abuse(
        &self,
        before: u64,
        window: Duration,
        max_latency: Duration,
    ) -> (u64, usize) {
        let mut peak = before;
        let started = Instant::now();
        let mut answered = 0;
        while started.elapsed() < window {
            let (review, ready) = tokio::join!(self.review(), self.readyz());
            assert!(
                review < max_latency && ready < max_latency,
                "under abuse, a review took {review:?} and /readyz {ready:?} (limit {max_latency:?})"
            );
            answered += 1;
            peak = peak.max(self.rss());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (peak.saturating_sub(before), answered)
    }
}

fn fixture(name: &str) -> PathBuf {
    repo().join(format!("tests/fixtures/admission/{name}.json"))
}

const MIB: u64 = 1024 * 1024;

/// 90 HTTP/1.1 connections each declare a 3 MB body and stall at 2.9 MB (measured before the
/// body budget: RSS 23 -> 284 MB). Now the server reads at most its budget (32 MiB by default)
/// and real reviews keep flowing beside them.
#[tokio::test]
async fn stalled_large_bodies_over_http1_stay_within_the_body_budget() {
    // All from one address, as the real reviews beside them: the per-peer cap (tested on its
    // own below) is lifted, so the body budget is what holds.
    let s = Server::start(&[
        "--request-timeout",
        "30s",
        "--max-connections-per-peer",
        "256",
    ])
    .await;
    let before = s.rss();
    let mut stallers = Vec::new();
    for _ in 0..90 {
        let mut conn = s.connect(b"http/1.1").await.unwrap();
        stallers.push(tokio::spawn(async move {
            let head = format!(
                "POST /validate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
            );
            conn.write_all(head.as_bytes()).await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < SENT {
                let n = chunk.len().min(SENT - sent);
                conn.write_all(&chunk[..n]).await?;
                sent += n;
            }
            // Stall: hold the connection open without finishing the body.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, std::io::Error>(conn)
        }));
    }
    // Give the abuse a second to take hold before measuring beside it (a pause by design).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (growth, answered) = s
        .under_abuse(before, Duration::from_secs(6), Duration::from_secs(2))
        .await;
    eprintln!(
        "http1: RSS +{} MiB, {answered} reviews answered beside",
        growth / MIB
    );
    assert!(answered >= 5, "{answered} reviews answered");
    assert!(
        growth < 80 * MIB,
        "RSS grew by {} MiB under 90 stalled 3 MB bodies (budget 32 MiB)",
        growth / MIB
    );
    assert!(
        s.metric("phi_guard_body_budget_waits_total").await >= 1.0,
        "the stalled bodies beyond the budget waited"
    );
    for t in stallers {
        t.abort();
    }
}

/// One HTTP/2 connection opens 128 streams, each declaring a 3 MB body (measured before: one
/// connection with 256 such streams took RSS 23 -> 984 MB). The connection's flow-control
/// window bounds what it can make phi-guard hold.
#[tokio::test]
async fn stalled_streams_over_http2_stay_within_the_body_budget() {
    let s = Server::start(&["--request-timeout", "30s"]).await;
    let before = s.rss();
    let conn = s.connect(b"h2").await.unwrap();
    let (client, connection) = h2::client::handshake(conn).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut streams = Vec::new();
    let mut client = client.ready().await.unwrap();
    for _ in 0..128 {
        let req = stalled_request();
        let (resp, mut body) = match client.send_request(req, false) {
            Ok(r) => r,
            Err(_) => break, // the server's stream limit
        };
        body.reserve_capacity(SENT);
        // Queued on the client; the server takes only what its windows allow.
        let _ = body.send_data(axum::body::Bytes::from(vec![b' '; SENT]), false);
        streams.push((resp, body));
        client = client.ready().await.unwrap();
    }
    assert!(streams.len() >= 100, "{} streams opened", streams.len());
    // Give the abuse a second to take hold before measuring beside it (a pause by design).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (growth, answered) = s
        .under_abuse(before, Duration::from_secs(6), Duration::from_secs(2))
        .await;
    eprintln!(
        "http2: RSS +{} MiB, {answered} reviews answered beside",
        growth / MIB
    );
    assert!(answered >= 5, "{answered} reviews answered");
    assert!(
        growth < 48 * MIB,
        "RSS grew by {} MiB under 128 stalled HTTP/2 streams",
        growth / MIB
    );
    driver.abort();
}

/// A compliant PHI Deployment review of about `bytes` bytes whose judging is slow: tens of
/// thousands of PVC volumes, each looked up and mounted nowhere.
fn large_review(bytes: usize) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("deployment-create-allowed")).unwrap())
            .unwrap();
    let volumes = v["request"]["object"]["spec"]["template"]["spec"]["volumes"]
        .as_array_mut()
        .unwrap();
    let mut i = 0;
    let mut size = 2_000;
    while size < bytes {
        let vol = serde_json::json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": "data"}});
        size += vol.to_string().len() + 1;
        volumes.push(vol);
        i += 1;
    }
    serde_json::to_vec(&v).unwrap()
}

/// Threads of the server process.
fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads")
}

/// Eight clients send a 2.9 MB review that takes seconds to judge, with a 200 ms request
/// timeout, and send it again as soon as they get their 408 (measured before: the judgments
/// went on after their 408 while their judging slot and body budget were handed to the next
/// request; RSS 15 MB -> 7.4 GB, 90 threads). A judgment that timed out keeps what it holds
/// until it ends, so at most `--large-review-slots` large reviews are judged at once and at
/// most the body budget is buffered, however often the clients retry.
#[tokio::test]
async fn judging_that_timed_out_keeps_its_slot_and_budget() {
    let s = Server::start(&["--request-timeout", "200ms"]).await;
    let body = Arc::new(large_review(SENT));
    assert!(
        body.len() > 2_800_000 && body.len() < DECLARED,
        "{}",
        body.len()
    );
    let before = s.rss();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (client, body, stop) = (s.client(), body.clone(), stop.clone());
        let url = format!("https://{HOST}:{}/validate", s.addr.port());
        senders.push(tokio::spawn(async move {
            let mut timed_out = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 408) {
                    timed_out += 1;
                }
            }
            timed_out
        }));
    }
    // Give the abuse a second to take hold before measuring beside it (a pause by design).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut peak_threads = 0;
    let started = Instant::now();
    let (growth, answered) = {
        let abuse = s.under_abuse(before, Duration::from_secs(8), Duration::from_secs(2));
        tokio::pin!(abuse);
        loop {
            tokio::select! {
                r = &mut abuse => break r,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    peak_threads = peak_threads.max(threads(s.child.id()));
                }
            }
        }
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut timed_out = 0;
    for t in senders {
        timed_out += t.await.unwrap();
    }
    // The default --large-review-slots (2), whatever the machine's core count.
    let cores = phi_guard::webhook::DEFAULT_LARGE_REVIEW_SLOTS as u64;
    eprintln!(
        "timed-out judging: RSS +{} MiB, peak {peak_threads} threads, {timed_out} 408s in {:?}, \
         {answered} reviews answered beside",
        growth / MIB,
        started.elapsed()
    );
    assert!(timed_out >= 8, "the abuse timed out ({timed_out} 408s)");
    assert!(answered >= 5, "{answered} reviews answered");
    // The body budget (32 MiB by default), per judging slot (one per core) a review being
    // decoded and judged (about 40 MiB for this one in a debug build: 103-139 MiB in all with
    // two slots), and 32 MiB for the allocator's slack and the reviews sent beside.
    let ceiling = 32 * MIB + cores * 64 * MIB + 32 * MIB;
    assert!(
        growth < ceiling,
        "RSS grew by {} MiB (ceiling {} MiB: the body budget and {cores} judging slots)",
        growth / MIB,
        ceiling / MIB
    );
    // Async workers, a few helpers, and at most one blocking thread per judging slot (plus
    // idle ones the pool keeps for 10 s).
    assert!(
        peak_threads <= 8 + 2 * cores,
        "{peak_threads} threads: judgments piled up on the blocking pool"
    );
}

/// A TLS connection to the webhook from `ip` (any 127.0.0.0/8 address is this host), which
/// sends one real review, reads its answer and stays open, idle, as a keep-alive connection.
async fn idle_after_one_review(
    s: &Server,
    ip: &str,
    body: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(format!("{ip}:0").parse().unwrap())?;
    let tcp = sock.connect(s.addr).await?;
    let mut conn = s
        .tls(b"http/1.1")
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await?;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    Ok(conn)
}

/// One pod opens connections, sends a review on each and leaves them idle (measured before,
/// with the defaults: 400 such connections left 0 of 20 fresh reviews answered within 10 s
/// while /readyz said 200). Scaled down here: a cap of 32 connections, 8 per peer address, and
/// 100 connections from one address. The pod keeps its 8; the API server's fresh reviews,
/// from another address, are answered at once. Four such pods take every slot: then the
/// saturation shows in /metrics and /readyz.
#[tokio::test]
async fn one_peer_cannot_take_every_connection() {
    let s = Server::start(&["--max-connections", "32", "--max-connections-per-peer", "8"]).await;
    let body = std::fs::read(fixture("deployment-create-allowed")).unwrap();
    let started = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            idle_after_one_review(&s, "127.0.0.2", &body),
        )
        .await;
        match attempt {
            Ok(Ok(c)) => held.push(c),
            _ => refused += 1,
        }
    }
    eprintln!(
        "one peer: {} connections held, {refused} refused in {:?}",
        held.len(),
        started.elapsed()
    );
    assert_eq!(held.len(), 8, "the per-peer cap holds");
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(s.review().await);
    }
    eprintln!("20 fresh reviews beside them, the slowest in {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    assert!(
        s.metric("phi_guard_connections_refused_total{listener=\"webhook\",reason=\"per_peer\"}")
            .await
            >= 90.0
    );
    assert_eq!(
        s.metric("phi_guard_connections_saturated{listener=\"webhook\"}")
            .await,
        0.0
    );
    // Three more addresses take the remaining 24 slots: saturated, and said so.
    for ip in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        for _ in 0..8 {
            held.push(idle_after_one_review(&s, ip, &body).await.unwrap());
        }
    }
    // The gauge follows the accepts: poll it (the assertion below stays exact).
    let saturated = "phi_guard_connections_saturated{listener=\"webhook\"}";
    let s = &s;
    let _ = try_wait_for_async(
        "saturated",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async move { check(s.metric(saturated).await == 1.0, String::new) },
    )
    .await;
    assert_eq!(
        s.metric("phi_guard_connections_saturated{listener=\"webhook\"}")
            .await,
        1.0
    );
    let ready = reqwest::get(format!("http://{}/readyz", s.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains("saturated: every webhook connection slot"),
        "{text}"
    );
    // Slots come back as connections close.
    held.truncate(20);
    assert!(s.review().await < Duration::from_secs(2));
}

/// A review's request head over HTTP/2 (its body is sent on the stream).
fn review_request() -> axum::http::Request<()> {
    axum::http::Request::builder()
        .method("POST")
        .uri(format!("https://{HOST}/validate"))
        .header("content-type", "application/json")
        .body(())
        .unwrap()
}

/// Sends `body` as one review on an HTTP/2 connection; the answer's future.
fn send_review_h2(
    client: &mut h2::client::SendRequest<axum::body::Bytes>,
    body: &[u8],
) -> h2::client::ResponseFuture {
    let (resp, mut stream) = client.send_request(review_request(), false).unwrap();
    stream.reserve_capacity(body.len());
    stream
        .send_data(axum::body::Bytes::copy_from_slice(body), true)
        .unwrap();
    resp
}

fn stalled_request() -> axum::http::Request<()> {
    axum::http::Request::builder()
        .method("POST")
        .uri(format!("https://{HOST}/validate"))
        .header("content-type", "application/json")
        .header("content-length", DECLARED.to_string())
        .body(())
        .unwrap()
}

/// TLS connections that never send a request are closed after the handshake timeout; at
/// `--max-connections` new ones wait, and are served once the idle ones are gone.
#[tokio::test]
async fn idle_connections_are_closed_and_the_connection_cap_holds() {
    let s = Server::start(&["--handshake-timeout", "1s", "--max-connections", "4"]).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(s.connect(b"http/1.1").await.unwrap());
    }
    assert_eq!(
        s.metric("phi_guard_open_connections{listener=\"webhook\"}")
            .await,
        4.0
    );
    // A fifth waits in the backlog: its handshake cannot complete while four are open.
    let fifth = tokio::time::timeout(Duration::from_millis(500), s.connect(b"http/1.1")).await;
    assert!(
        fifth.is_err(),
        "a fifth connection was served beyond the cap"
    );
    // The idle four are closed by the server (EOF) within the first-request timeout.
    let started = Instant::now();
    for mut c in idle {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("idle connection closed within 5 s");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Then real reviews go through.
    assert!(s.review().await < Duration::from_secs(2));
}

/// An unfinished request on the admin port (headers never completed) does not keep the process
/// alive after SIGTERM (measured before: still alive after 60 s).
#[tokio::test]
async fn an_unfinished_admin_request_does_not_delay_shutdown() {
    let mut s = Server::start(&[]).await;
    let mut slow = TcpStream::connect(s.admin).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle_h2 = s.connect(b"h2").await.unwrap();
    idle_h2
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.sigterm();
    let exited = try_wait_for_async(
        "exit after SIGTERM",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let code = s.child.try_wait().unwrap();
            std::future::ready(code.ok_or_else(|| "still running".to_string()))
        },
    )
    .await;
    match exited {
        Ok(code) => assert!(code.success(), "exit {code:?}: {}", s.log()),
        Err(e) => panic!("{e}: {}", s.log()),
    }
    let mut rest = String::new();
    let _ = std::fs::File::open(s.dir.path().join("serve.log"))
        .unwrap()
        .read_to_string(&mut rest);
    assert!(rest.contains("stopped"), "{rest}");
}

// ---- no PHI in any output ---------------------------------------------------------------------

/// Canary values: none may appear in any response, log line or metric.
const CANARIES: [&str; 9] = [
    "canary-env-5d1e",
    "canary-arg-77b2",
    "canary-cmd-19c4",
    "canary-annotation-a0f3",
    "canary-label-6e21",
    "canary-configmap-c3d9",
    "canary-field-string-8b0e",
    "424242424242",
    "canary-img-4c7a",
];

/// The denied Deployment fixture with canaries in env values, args, command, annotations, a
/// label value and the image names (app and a would-be sidecar).
fn canary_deployment() -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("deployment-create-denied")).unwrap())
            .unwrap();
    let obj = &mut v["request"]["object"];
    obj["metadata"]["annotations"]["note"] = "canary-annotation-a0f3".into();
    obj["metadata"]["labels"]["team"] = "canary-label-6e21".into();
    let spec = &mut obj["spec"]["template"]["spec"];
    spec["containers"][0]["env"][0]["value"] = "canary-env-5d1e".into();
    spec["containers"][0]["args"] = serde_json::json!(["--token=canary-arg-77b2"]);
    spec["containers"][0]["command"] = serde_json::json!(["/bin/canary-cmd-19c4"]);
    spec["containers"][0]["image"] = "registry.example.com/canary-img-4c7a:latest".into();
    spec["containers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "log-shipper",
            "image": "evil.example.com/canary-img-4c7a/fluent-bit:1",
            "env": [{"name": "K", "value": "canary-env-5d1e"}],
        }));
    v
}

#[tokio::test]
async fn canaries_never_leave_the_pod_even_at_trace() {
    let mut s = Server::launch(&[], "trace").await;
    let mut bodies: Vec<serde_json::Value> = vec![canary_deployment()];
    // The same as UPDATE (old and new objects judged).
    let mut update = canary_deployment();
    update["request"]["operation"] = "UPDATE".into();
    update["request"]["oldObject"] = update["request"]["object"].clone();
    update["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"] =
        serde_json::json!(["--token=canary-arg-77b2", "--more"]);
    bodies.push(update);
    // A ConfigMap's data.
    let mut cm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("configmap-create")).unwrap()).unwrap();
    cm["request"]["object"]["data"]["k"] = "canary-configmap-c3d9".into();
    bodies.push(cm);
    // Values in the wrong type: decode errors must name the field, not echo the value.
    let mut bad = canary_deployment();
    bad["request"]["object"]["spec"]["replicas"] = "canary-field-string-8b0e".into();
    bodies.push(bad);
    let mut bad = canary_deployment();
    bad["request"]["object"]["metadata"]["annotations"]["n"] = serde_json::json!(424242424242u64);
    bodies.push(bad);
    let mut bad = canary_deployment();
    bad["request"]["object"]["metadata"]["labels"]["phiguard.io/data-classification"] =
        serde_json::json!(424242424242u64);
    bodies.push(bad);

    let client = s.client();
    let mut seen = String::new();
    for body in &bodies {
        let resp = client
            .post(format!("https://{HOST}:{}/validate", s.addr.port()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("answered");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status == 200 || status == 400, "{status}: {text}");
        seen.push_str(&text);
    }
    // Something was judged (the canary Deployment is denied): the test can see findings.
    assert!(seen.contains("\"allowed\":false"), "{seen}");
    seen.push_str(&s.metric_text().await);
    // Stop the server so every log line is written.
    s.sigterm();
    let _ = s.child.wait();
    let log = s.log();
    assert!(
        log.contains(" DEBUG ") || log.contains(" TRACE "),
        "debug and trace logging are on: {log}"
    );
    seen.push_str(&log);
    let leaked: Vec<&str> = CANARIES
        .iter()
        .copied()
        .filter(|c| seen.contains(c))
        .collect();
    assert!(
        leaked.is_empty(),
        "canaries in responses, metrics or the trace log: {leaked:?}\n{}",
        leaked
            .iter()
            .filter_map(|c| seen.lines().find(|l| l.contains(c)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A denied PHI Deployment whose answer is as long as phi-guard makes one: ten hostPath
/// volumes (the most a rule lists) with long names, and as many containers.
fn long_denial() -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("deployment-create-denied")).unwrap())
            .unwrap();
    let spec = &mut v["request"]["object"]["spec"]["template"]["spec"];
    for i in 0..12 {
        let name = format!("v{i}-{}", "x".repeat(240));
        spec["volumes"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": name, "hostPath": {"path": "/mnt/phi"}}));
        spec["containers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": format!("c{i}-{}", "y".repeat(240)),
                "image": "registry.example.com/api:1",
                "ports": [{"containerPort": 8080 + i, "name": "http"}],
            }));
    }
    serde_json::to_vec(&v).unwrap()
}

/// Clients that open HTTP/2 streams and never read the answers (their flow-control window is
/// 0, so not one byte of a body can be sent). Before the response budget, each answer waited
/// in memory until the idle timeout: one connection with 100 streams of ~1 MB answers held
/// +103 MB for 120 s. Now answers are bounded (16 KiB message, 4 KiB warnings, a uid of at most
/// 256 bytes), what connections leave untaken is bounded by --response-buffer-mib (a connection
/// over its eighth, or holding the most, is closed) and by --response-stall-timeout.
#[tokio::test]
async fn unread_http2_responses_stay_within_the_response_budget() {
    let s = Server::start(&[
        "--response-buffer-mib",
        "2",
        "--response-stall-timeout",
        "4s",
    ])
    .await;
    let body = long_denial();
    // The answer is long: the test holds many of them.
    let one = s
        .client()
        .post(format!("https://{HOST}:{}/validate", s.addr.port()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(one.len() > 8 * 1024, "a denial of {} bytes", one.len());
    assert!(one.len() < 24 * 1024, "a denial of {} bytes", one.len());
    let before = s.rss();
    let mut drivers = Vec::new();
    let mut held = Vec::new();
    let mut opened = 0;
    for _ in 0..8 {
        let conn = s.connect(b"h2").await.unwrap();
        let Ok((client, connection)) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, axum::body::Bytes>(conn)
            .await
        else {
            continue;
        };
        drivers.push(tokio::spawn(connection));
        let mut client = client;
        for _ in 0..100 {
            let Ok(ready) = client.ready().await else {
                break;
            };
            client = ready;
            let req = review_request();
            let Ok((resp, mut stream)) = client.send_request(req, false) else {
                break;
            };
            stream.reserve_capacity(body.len());
            if stream
                .send_data(axum::body::Bytes::from(body.clone()), true)
                .is_err()
            {
                break;
            }
            held.push(resp);
            opened += 1;
        }
    }
    assert!(opened >= 200, "{opened} streams opened");
    // The answers come back as headers only (the window is 0); their bodies wait.
    let (growth, answered) = s
        .under_abuse(before, Duration::from_secs(3), Duration::from_secs(2))
        .await;
    // On a loaded machine the 800 answers are still being made when the abuse window ends:
    // wait (bounded) until the budget has closed a connection.
    let closed_total =
        "phi_guard_connections_closed_total{listener=\"webhook\",reason=\"unread_responses\"}";
    let s = &s;
    let _ = try_wait_for_async(
        "a connection closed over the budget",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async move { check(s.metric(closed_total).await >= 1.0, String::new) },
    )
    .await;
    let closed = s.metric(closed_total).await;
    let unsent = s
        .metric("phi_guard_unsent_response_bytes{listener=\"webhook\"}")
        .await;
    eprintln!(
        "unread http2 answers: {opened} streams of {} bytes each on 8 connections: RSS +{} MiB, \
         {unsent} bytes waiting, {closed} connections closed over budget, {answered} reviews \
         answered beside",
        one.len(),
        growth / MIB
    );
    assert!(unsent <= 2.0 * MIB as f64, "{unsent} bytes waiting");
    assert!(closed >= 1.0, "no connection closed over the budget");
    assert!(growth < 32 * MIB, "RSS grew by {} MiB", growth / MIB);
    // What is left stalls: closed after the stall timeout, and nothing waits any more.
    wait_for_async(
        "nothing waits any more",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || async move {
            let unsent = s
                .metric("phi_guard_unsent_response_bytes{listener=\"webhook\"}")
                .await;
            check(unsent == 0.0, || format!("{unsent} bytes still waiting"))
        },
    )
    .await;
    assert!(s.review().await < Duration::from_secs(2));
    for d in drivers {
        d.abort();
    }
}

/// One answer that waits unread on a connection whose loop went to sleep before any request
/// came (its next wake is the first-request timeout, 30 s here): the stall timeout still closes
/// it on time. Before the loop was woken when bytes began to wait, it closed at 30 s.
#[tokio::test]
async fn an_unread_answer_stalls_on_time_whatever_the_connection_loop_was_waiting_for() {
    let s = Server::start(&[
        "--response-stall-timeout",
        "1s",
        "--handshake-timeout",
        "30s",
    ])
    .await;
    let body = long_denial();
    let conn = s.connect(b"h2").await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, axum::body::Bytes>(conn)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let resp = send_review_h2(&mut client, &body);
    // The headers come (not flow-controlled); the body waits on the closed window.
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .expect("answer headers within 10 s")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stalled =
        "phi_guard_connections_closed_total{listener=\"webhook\",reason=\"stalled_responses\"}";
    let s = &s;
    wait_for_async(
        "the stalled connection closed after its answer (stall timeout 1 s)",
        Duration::from_secs(8),
        Duration::from_millis(100),
        || async move {
            let closed = s.metric(stalled).await;
            check(closed >= 1.0, || format!("closed: {closed}"))
        },
    )
    .await;
    assert_eq!(
        s.metric("phi_guard_unsent_response_bytes{listener=\"webhook\"}")
            .await,
        0.0
    );
    driver.abort();
}

/// Pause between a worker's reviews: none. At 100 ms (100 reviews a second from ten workers,
/// the rate the issue names) the server before this change lost nothing either: its connections
/// were idle almost always and the client saw each close before reusing it. Back to back
/// (~300-500 reviews a second per protocol here) it lost HTTP/1.1 reviews (`IncompleteMessage`,
/// 2 in the first run), so that is what the test sends.
const PAUSE_MS: u64 = 0;

/// What a client saw of its reviews around a SIGTERM.
#[derive(Debug, Default)]
struct Seen {
    answered: usize,
    /// Never sent: the connection could not be made (the listener is closed).
    not_sent: usize,
    /// Sent and never answered.
    lost: Vec<String>,
}

/// Reviews from `workers` tasks, each on its own keep-alive client, `PAUSE_MS` apart, until
/// `until`.
async fn steady_reviews(s: &Server, http2: bool, workers: usize, until: Instant) -> Seen {
    let body = std::fs::read(fixture("deployment-create-allowed")).unwrap();
    let url = format!("https://{HOST}:{}/validate", s.addr.port());
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let mut cfg = rustls::ClientConfig::builder()
            .with_root_certificates(s.roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![if http2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let b = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .resolve(HOST, s.addr)
            .timeout(Duration::from_secs(10));
        let client = if http2 {
            b.http2_prior_knowledge()
        } else {
            b.http1_only()
        }
        .build()
        .unwrap();
        let (body, url) = (body.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while Instant::now() < until {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status() == 200 => match resp.bytes().await {
                        Ok(_) => seen.answered += 1,
                        Err(e) => seen.lost.push(format!("body: {e:?}")),
                    },
                    Ok(resp) => seen.lost.push(format!("status {}", resp.status())),
                    Err(e) if e.is_connect() => seen.not_sent += 1,
                    Err(e) => {
                        let text = format!("{e:?}");
                        // HTTP/2: a stream the server refused (after its GOAWAY) was not
                        // processed, and the client may send it again.
                        if text.contains("REFUSED_STREAM") {
                            seen.not_sent += 1;
                        } else {
                            seen.lost.push(text);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(PAUSE_MS)).await;
            }
            seen
        }));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.unwrap();
        all.answered += s.answered;
        all.not_sent += s.not_sent;
        all.lost.extend(s.lost);
    }
    all
}

/// A connection whose client has sent nothing yet when SIGTERM comes (TLS done, its review on
/// the way: a client that reconnected after its old connection's GOAWAY) is answered, over
/// either protocol. Asked to close before hyper has read the first bytes that tell HTTP/2 from
/// HTTP/1.1, a connection is dropped outright, without a GOAWAY, and the review sent on it is lost
/// (1 of the 7 SIGTERM runs of `no_review_is_lost_at_sigterm` in a cold CI run).
#[tokio::test]
async fn a_connection_that_has_sent_nothing_at_sigterm_is_still_answered() {
    let body = std::fs::read(fixture("deployment-create-allowed")).unwrap();
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let s = Server::start(&["--shutdown-grace", "5s"]).await;
        let mut conn = s.connect(alpn).await.unwrap();
        s.sigterm();
        // Pacing: the signal reaches the connection's task (which then closed it, before).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = if alpn == b"h2" {
            let (client, connection) = h2::client::handshake(conn).await.unwrap();
            let driver = tokio::spawn(connection);
            let mut client = client.ready().await.unwrap();
            let resp = send_review_h2(&mut client, &body);
            let status = match resp.await {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) => format!("{e:?}"),
            };
            driver.abort();
            status
        } else {
            let head = format!(
                "POST /validate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(&body).await.unwrap();
            let mut answer = vec![0u8; 64];
            match conn.read(&mut answer).await {
                Ok(n) => String::from_utf8_lossy(&answer[..n])
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("nothing (EOF)")
                    .to_string(),
                Err(e) => format!("{e:?}"),
            }
        };
        assert_eq!(
            status,
            "200",
            "{}: the review sent after SIGTERM on a connection opened before it: {}",
            String::from_utf8_lossy(alpn),
            s.log()
        );
    }
}

/// SIGTERM while clients send reviews back to back straight to the pod (five over HTTP/1.1 and
/// five over HTTP/2, keep-alive): every review the server took is answered. HTTP/1.1 answers
/// after the signal say `Connection: close`, so the client sends its next review on a new
/// connection instead of racing the close; HTTP/2 gets GOAWAY. Reviews after the listener
/// closes cannot connect (not lost: never sent). Ten runs.
#[tokio::test]
async fn no_review_is_lost_at_sigterm() {
    for run in 0..10 {
        let s = Server::start(&["--shutdown-grace", "5s"]).await;
        let until = Instant::now() + Duration::from_millis(2500);
        let (h1, h2, ()) = tokio::join!(
            steady_reviews(&s, false, 5, until),
            steady_reviews(&s, true, 5, until),
            async {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                s.sigterm();
            }
        );
        eprintln!(
            "run {run}: HTTP/1.1 {} answered, {} not sent, {} lost; HTTP/2 {} answered, {} not \
             sent, {} lost",
            h1.answered,
            h1.not_sent,
            h1.lost.len(),
            h2.answered,
            h2.not_sent,
            h2.lost.len()
        );
        // Enough traffic that a loss at the signal would show: hundreds a protocol on a quiet
        // machine, under a hundred on a loaded one (83 and 71 at load average 12).
        assert!(
            h1.answered >= 20 && h2.answered >= 20,
            "run {run}: too few answered"
        );
        assert!(
            h1.lost.is_empty() && h2.lost.is_empty(),
            "run {run}: reviews lost at SIGTERM: {:?} {:?}\n{}",
            h1.lost,
            h2.lost,
            s.log()
        );
    }
}

// ---- batched log lines ------------------------------------------------------------------------

/// Review lines in a text log (each review's line carries its decision).
fn review_lines(log: &str) -> usize {
    log.lines().filter(|l| l.contains(" decision=")).count()
}

/// At the default interval (100 ms) a review's line is in the log promptly, while the server
/// runs: the writing thread works without any WARN line or exit to push it.
#[tokio::test]
async fn a_review_line_is_written_within_the_interval() {
    let s = Server::start(&[]).await;
    s.review().await;
    let written = try_wait_for_async(
        "the review's log line",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || std::future::ready(check(review_lines(&s.log()) == 1, || s.log())),
    )
    .await;
    assert!(written.is_ok(), "{written:?}");
}

/// Lines wait for `--log-flush-interval` (10 s here) and none is lost to the wait: every review
/// line is written when the server exits at SIGTERM. (Had the interval passed first, the lines
/// would be in the log early; the test then says so and still checks that none is missing.)
#[tokio::test]
async fn batched_log_lines_are_all_written_at_exit() {
    let started = Instant::now();
    let mut s = Server::start(&["--log-flush-interval", "10s"]).await;
    const REVIEWS: usize = 5;
    for _ in 0..REVIEWS {
        s.review().await;
    }
    let before = review_lines(&s.log());
    if started.elapsed() < Duration::from_secs(9) {
        assert_eq!(before, 0, "lines written before the interval:\n{}", s.log());
    } else {
        eprintln!("the 10 s interval may have passed ({before} lines written before exit)");
    }
    s.sigterm();
    let exited = try_wait_for_async(
        "exit after SIGTERM",
        Duration::from_secs(8),
        Duration::from_millis(50),
        || {
            std::future::ready(
                s.child
                    .try_wait()
                    .unwrap()
                    .ok_or_else(|| "running".to_string()),
            )
        },
    )
    .await;
    assert!(exited.is_ok_and(|c| c.success()), "{}", s.log());
    assert_eq!(review_lines(&s.log()), REVIEWS, "{}", s.log());
    assert!(s.log().contains("stopped"), "{}", s.log());
}

/// A reader of stderr that stops reading (a container runtime's shim on a node whose disk is
/// slow) never holds up a review: once the pipe and the 256 KiB of waiting lines are full, lines
/// are dropped and counted, reviews keep being answered, and when the reader reads again a WARN
/// line says how many went. (Before, the review that logged waited for the reader.)
#[tokio::test]
async fn a_stalled_log_reader_never_holds_up_a_review() {
    let mut s = Server::launch_logging_to(&[], "debug", Some(Stdio::piped())).await;
    let mut stderr = s.child.stderr.take().expect("stderr piped");
    let client = s.client();
    let body = std::fs::read(fixture("deployment-create-allowed")).unwrap();
    let url = format!("https://{HOST}:{}/validate", s.addr.port());
    let dropped = "phi_guard_log_lines_dropped_total";
    let started = Instant::now();
    let mut reviews = 0;
    // Nobody reads stderr: review until lines are dropped (a 64 KiB pipe and 256 KiB waiting
    // take ~1,500 review lines at info, fewer at debug), each answered within 5 s.
    while s.metric(dropped).await == 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no line dropped after {reviews} reviews"
        );
        let batch = (0..8).map(|_| {
            let sent = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send();
            async move { (r.await, sent.elapsed()) }
        });
        for (r, took) in futures::future::join_all(batch).await {
            let r =
                r.unwrap_or_else(|e| panic!("a review waited on the log ({e}) after {reviews}"));
            assert_eq!(r.status(), 200);
            assert!(took < Duration::from_secs(5), "a review took {took:?}");
            reviews += 1;
        }
    }
    // The reader reads again: the count of dropped lines is written, at WARN.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            let _ = tx.send(String::from_utf8_lossy(&text).into_owned());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    while !log.contains("log lines dropped") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => log = l,
            Err(_) => panic!("no report of dropped lines in {} bytes of log", log.len()),
        }
    }
    let report = log
        .lines()
        .find(|l| l.contains("log lines dropped"))
        .unwrap_or_default();
    let n: f64 = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("dropped="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped=N in the report: {report}"));
    assert!(report.contains("WARN"), "{report}");
    // The report counts lines the metric counted (the metric may have counted more since).
    assert!(n > 0.0 && n <= s.metric(dropped).await, "{report}");
    s.review().await;
}

/// A bad interval is refused at start with what is wrong, not taken.
#[test]
fn a_flush_interval_over_ten_seconds_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_phi-guard"))
        .args(["serve", "--log-flush-interval", "1m", "--cluster-state"])
        .arg(repo().join("tests/fixtures/cluster"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--log-flush-interval") && err.contains("10s"),
        "{err}"
    );
}
