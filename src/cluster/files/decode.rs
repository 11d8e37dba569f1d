//! Turning a document into a typed object or lean view: errors name the field path, never the
//! value.

use super::*;

/// Add a parsed document to `out`: nothing for an empty document, each item of a `List`,
/// else the object. Not a mapping with apiVersion and kind: a [`FileError::Object`].
pub(super) fn push_value(
    source: String,
    value: Value,
    out: &mut Vec<Document>,
) -> Result<(), FileError> {
    let obj = match value {
        Value::Null => return Ok(()), // empty document (e.g. a trailing `---`)
        Value::Object(obj) => obj,
        _ => {
            return Err(FileError::Object {
                source_ref: source,
                kind: String::new(),
                name: String::new(),
                message: "a Kubernetes object (a mapping with apiVersion and kind) was expected"
                    .into(),
            })
        }
    };
    let text_field = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (text_field("apiVersion"), text_field("kind"));
    let mut value = Value::Object(obj);
    if kind.is_empty() || api_version.is_empty() {
        return Err(FileError::Object {
            source_ref: source,
            kind,
            name: meta(&value, "name"),
            message: "apiVersion and kind are required".into(),
        });
    }
    let is_list = kind == "List" || kind.ends_with("List") && value.get("items").is_some();
    if is_list {
        if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
            for (j, item) in items.into_iter().enumerate() {
                push_value(format!("{source}.{}", j + 1), item, out)?;
            }
        }
        return Ok(());
    }
    out.push(Document {
        source,
        api_version,
        kind,
        value,
    });
    Ok(())
}

pub(super) fn object_err(d: &Document, message: impl Into<String>) -> FileError {
    FileError::Object {
        source_ref: d.source.clone(),
        kind: d.kind.clone(),
        name: d.name(),
        message: message.into(),
    }
}

pub(super) fn typed<T: serde::de::DeserializeOwned>(d: &Document) -> Result<T, FileError> {
    decode(&d.value).map_err(|m| object_err(d, m))
}

/// Decode a JSON tree as `T`. On failure: `field.path: what was expected`, naming the field
/// but never the value found there (manifests carry PHI in annotations, env values, ...).
pub(crate) fn decode<'a, T: Deserialize<'a>>(value: &'a Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| with_path(e.path(), &without_values(&e.inner().to_string())))
}

/// Decode an object as the kind phi-guard judges it as, with the same error shape as
/// [`decode`].
pub(crate) fn decode_object(
    kind: Kind,
    value: &Value,
    namespace: Option<&str>,
) -> Result<Object, String> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    Object::deserialize_as(kind, namespace, de)
        .map_err(|e| with_path(&track.path(), &without_values(&e.to_string())))
}

pub(super) fn with_path(path: &serde_path_to_error::Path, message: &str) -> String {
    let path = field_path(path);
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// A field path as Kubernetes writes it: `spec.containers[0].image`, and map keys that are
/// data rather than field names in brackets: `metadata.annotations["example.com/x"]`.
pub(crate) fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    const DATA_MAPS: &[&str] = &[
        "labels",
        "annotations",
        "matchLabels",
        "nodeSelector",
        "selector",
        "parameters",
        "data",
        "stringData",
        "volumeAttributes",
    ];
    let mut out = String::new();
    let mut parent: Option<&str> = None;
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                parent = None;
            }
            Segment::Map { key } => {
                let field_like =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if parent.is_some_and(|p| DATA_MAPS.contains(&p)) || !field_like {
                    out.push_str(&format!("[{key:?}]"));
                } else {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                parent = Some(key.as_str());
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
                parent = None;
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
                parent = None;
            }
        }
    }
    out
}

/// A serde message without the value it quotes: `invalid type: integer `42`, expected a
/// string` becomes `invalid type: integer, expected a string`; other quoted or numeric
/// values become `…` (see [`crate::telemetry::redact`]). Field and variant names that the
/// schema expects stay.
pub(crate) fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = match rest.find(", expected ") {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            // `integer `42``, `string "x"`, `floating point `1.5``: keep the type words.
            let what: Vec<&str> = found
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
                .collect();
            return format!("{prefix}{}{expected}", what.join(" "));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if let Some(i) = rest.find(", expected ") {
            return format!("unknown variant{}", &rest[i..]);
        }
    }
    crate::telemetry::redact(message)
}
