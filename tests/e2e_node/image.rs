//! The image hack/images.sh builds without Docker keeps the Dockerfile's runtime contract, so the
//! two cannot drift: user, entrypoint, command, environment, ports and labels of the Dockerfile's
//! final stage are the image's; the binary sits where the Dockerfile copies it, the CA bundle is
//! there, and there is no shell.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::Env;

/// The instructions of the Dockerfile's final stage, continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut cur = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            cur.push_str(part);
            cur.push(' ');
        } else {
            cur.push_str(t);
            joined.push(std::mem::take(&mut cur));
        }
    }
    let last_from = joined
        .iter()
        .rposition(|l| l.to_uppercase().starts_with("FROM "))
        .expect("the Dockerfile has a FROM");
    joined[last_from..]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (op.to_uppercase(), rest.trim().to_string())
        })
        .collect()
}

/// `KEY=VALUE KEY2="VALUE 2"` (ENV, LABEL) into pairs.
fn pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').expect("KEY=VALUE");
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.trim().to_string(), value));
        rest = tail.trim();
    }
    out
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn blob(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").expect("sha256 digest"))
}

#[test]
fn image_built_without_docker_keeps_the_dockerfile_runtime_contract() {
    let env = Env::get();
    let archive = env.images_dir.join("phi-guard.oci.tar");
    let dir = tempfile::tempdir().expect("tempdir");
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path()));
    let read = |p: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON")
    };
    let index = read(&dir.path().join("index.json"));
    let manifest = read(&blob(
        dir.path(),
        index["manifests"][0]["digest"].as_str().expect("manifest"),
    ));
    let config_digest = manifest["config"]["digest"].as_str().expect("config");
    assert_eq!(
        config_digest, env.image_id,
        "the archive is not the image the node runs"
    );
    let config = read(&blob(dir.path(), config_digest));
    let cfg = &config["config"];

    let dockerfile = std::fs::read_to_string(format!("{}/Dockerfile", crate::harness::ROOT))
        .expect("read Dockerfile");
    let stage = final_stage(&dockerfile);
    let mut checked = 0;
    for (op, arg) in &stage {
        match op.as_str() {
            "USER" => {
                assert_eq!(cfg["User"], arg.as_str(), "USER");
                checked += 1;
            }
            "ENTRYPOINT" | "CMD" => {
                let want: Value = serde_json::from_str(arg).expect("exec form");
                let key = if op == "CMD" { "Cmd" } else { "Entrypoint" };
                assert_eq!(cfg[key], want, "{op}");
                checked += 1;
            }
            "ENV" => {
                let have: Vec<&str> = cfg["Env"]
                    .as_array()
                    .expect("Env")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                for (k, v) in pairs(arg) {
                    assert!(
                        have.contains(&format!("{k}={v}").as_str()),
                        "ENV {k}={v} is not in the image's {have:?}"
                    );
                }
                checked += 1;
            }
            "EXPOSE" => {
                for port in arg.split_whitespace() {
                    let key = if port.contains('/') {
                        port.to_string()
                    } else {
                        format!("{port}/tcp")
                    };
                    assert!(
                        cfg["ExposedPorts"].get(&key).is_some(),
                        "EXPOSE {port} missing from {}",
                        cfg["ExposedPorts"]
                    );
                }
                checked += 1;
            }
            "LABEL" => {
                for (k, v) in pairs(arg) {
                    assert_eq!(cfg["Labels"][&k], v.as_str(), "LABEL {k}");
                }
                checked += 1;
            }
            "COPY" => {
                let dest = arg.split_whitespace().last().expect("COPY dest");
                assert_eq!(
                    dest, "/phi-guard",
                    "the Dockerfile copies the binary elsewhere"
                );
            }
            _ => {}
        }
    }
    assert!(
        checked >= 6,
        "too few Dockerfile instructions compared: {stage:?}"
    );

    // The files: the static binary, the CA bundle, nonroot in /etc/passwd, and no shell.
    let layer = blob(
        dir.path(),
        manifest["layers"][0]["digest"].as_str().expect("layer"),
    );
    let listing = sh(Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&layer));
    let entry = |path: &str| listing.lines().find(|l| l.ends_with(&format!(" ./{path}")));
    let bin = entry("phi-guard").unwrap_or_else(|| panic!("no /phi-guard:\n{listing}"));
    assert!(bin.starts_with("-rwxr-xr-x 0/0"), "{bin}");
    assert!(
        entry("etc/ssl/certs/ca-certificates.crt").is_some(),
        "no CA bundle:\n{listing}"
    );
    for shell in ["bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"] {
        assert!(entry(shell).is_none(), "the image has a shell: /{shell}");
    }
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(dir.path())
        .arg("./etc/passwd"));
    let passwd = std::fs::read_to_string(dir.path().join("etc/passwd")).expect("passwd");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
}
