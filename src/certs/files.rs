//! Atomic writes of the certificate directory, in the kubelet's Secret-volume layout, so the
//! listener never reads a new certificate with an old key.

use std::path::Path;

use k8s_openapi::jiff::Timestamp;

use super::{CertError, Result};

/// Write `files` into `dir` the way the kubelet fills a Secret volume: a fresh `..<stamp>`
/// directory, an atomic rename of the `..data` symlink onto it, and `name -> ..data/name`
/// links. Returns false (and writes nothing) when the content is already there.
pub(crate) fn write_cert_dir(dir: &Path, files: &[(&str, String)]) -> Result<bool> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    let data_link = dir.join("..data");
    let unchanged = files.iter().all(|(name, content)| {
        std::fs::read_to_string(data_link.join(name)).is_ok_and(|old| &old == content)
    });
    if unchanged {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let stamp = format!(
        "..{}_{}",
        Timestamp::now().as_nanosecond(),
        std::process::id()
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir(&fresh).map_err(io(&fresh))?;
    for (name, content) in files {
        let path = fresh.join(name);
        write_private(&path, content.as_bytes()).map_err(io(&path))?;
    }
    let old_target = std::fs::read_link(&data_link).ok();
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(Path::new(&stamp), &tmp_link).map_err(io(&tmp_link))?;
    std::fs::rename(&tmp_link, &data_link).map_err(io(&data_link))?;
    for (name, _) in files {
        let link = dir.join(name);
        let target = Path::new("..data").join(name);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            // Replace whatever is there (a plain file from an older layout) atomically.
            let tmp = dir.join(format!("..{name}.tmp"));
            let _ = std::fs::remove_file(&tmp);
            symlink(&target, &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &link).map_err(io(&link))?;
        }
    }
    if let Some(old) = old_target {
        let old = dir.join(old);
        if old != fresh && old.starts_with(dir) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(true)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "self-managed TLS needs symlinks (unix)",
    ))
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_dir_swaps_atomically_and_skips_unchanged_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("tls");
        let v1 = [("tls.crt", "c1".to_string()), ("tls.key", "k1".to_string())];
        assert!(write_cert_dir(&d, &v1).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("tls.crt")).unwrap(), "c1");
        assert!(!write_cert_dir(&d, &v1).unwrap(), "unchanged: no write");
        let first = std::fs::read_link(d.join("..data")).unwrap();
        let v2 = [("tls.crt", "c2".to_string()), ("tls.key", "k2".to_string())];
        assert!(write_cert_dir(&d, &v2).unwrap());
        assert_eq!(std::fs::read_to_string(d.join("tls.key")).unwrap(), "k2");
        assert!(
            std::fs::read_link(d.join("tls.key")).is_ok(),
            "a symlink into ..data"
        );
        assert!(!d.join(first).exists(), "old generation removed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join("tls.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key not readable by others");
        }
    }
}
