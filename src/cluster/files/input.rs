//! Reading input bytes within a size limit, from regular files and standard input only: a
//! device (`/dev/zero`), a FIFO or a socket would grow memory without end or block forever.

use std::io::Read as _;
use std::path::Path;

use super::FileError;

/// The default cap on one input file or standard input: far above any real manifest (the API
/// server refuses an object over 3 MiB) and above a rendered repository or a cluster dump of
/// thousands of objects, while a mistaken input fails in seconds instead of exhausting memory
/// (a document's tree takes about four times its text).
pub(crate) const DEFAULT_MAX_FILE_MIB: u64 = 128;

/// Bytes in a MiB.
pub(crate) const MIB: u64 = 1024 * 1024;

/// What a path is, when it is not a regular file or a directory.
fn special_kind(md: &std::fs::Metadata) -> Option<&'static str> {
    if md.is_file() || md.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let t = md.file_type();
        if t.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
    }
    Some("an unsupported file type")
}

/// Refuse anything but a regular file or a directory (checked with `stat`, before opening: opening
/// a FIFO blocks until a writer comes).
pub(super) fn refuse_special(path: &Path, md: &std::fs::Metadata) -> Result<(), FileError> {
    match special_kind(md) {
        None => Ok(()),
        Some(what) => Err(FileError::NotRegular {
            path: path.display().to_string(),
            what,
        }),
    }
}

/// The whole of a regular file, refused when larger than `max_bytes`.
pub(super) fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let name = || path.display().to_string();
    let io = |e| FileError::Io {
        path: name(),
        source: e,
    };
    let md = std::fs::metadata(path).map_err(io)?;
    refuse_special(path, &md)?;
    if md.len() > max_bytes {
        return Err(too_large(&name(), max_bytes));
    }
    let file = open_nonblocking(path).map_err(io)?;
    // The path may have been swapped between the check and the open.
    refuse_special(path, &file.metadata().map_err(io)?)?;
    read_bounded(file, &name(), max_bytes)
}

/// Everything from `input` (standard input), refused once it passes `max_bytes`.
pub(crate) fn read_bounded(
    input: impl std::io::Read,
    name: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly the limit" from "more"; a file that grew after
    // `stat`, or a /proc file that reports size 0, is bounded the same way.
    input
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Io {
            path: name.to_string(),
            source: e,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(name, max_bytes));
    }
    Ok(bytes)
}

fn too_large(name: &str, max_bytes: u64) -> FileError {
    FileError::TooLarge {
        path: name.to_string(),
        limit: format_limit(max_bytes),
    }
}

fn format_limit(max_bytes: u64) -> String {
    if max_bytes.is_multiple_of(MIB) {
        format!("{} MiB", max_bytes / MIB)
    } else {
        format!("{max_bytes} bytes")
    }
}

/// Opening with O_NONBLOCK: a FIFO put in place of a checked file opens at once (and is then
/// refused) instead of blocking; regular files ignore the flag.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_past_the_limit_is_refused_and_at_the_limit_read() {
        let ok = read_bounded(&[b'a'; 10][..], "<stdin>", 10).expect("at the limit");
        assert_eq!(ok.len(), 10);
        let err = read_bounded(std::io::repeat(0), "<stdin>", 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "<stdin>: larger than the limit of 1024 bytes (--max-file-mib)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_before_reading() {
        let err = read_file(Path::new("/dev/zero"), MIB).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    what: "a device",
                    ..
                }
            ),
            "{err}"
        );
    }
}
