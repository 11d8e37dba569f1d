//! Reading YAML and JSON text into documents: multi-document streams, duplicate keys refused,
//! merge keys, a BOM, concatenated JSON; positions in errors, never values.

use super::yaml_fast::MAX_DEPTH;
use super::*;

/// Parse documents from text (`name` is used in errors and sources).
#[cfg(test)]
pub(crate) fn parse_documents(
    name: &str,
    text: &str,
    out: &mut Vec<Document>,
) -> Result<(), FileError> {
    for_each_document(name, text, |d| {
        out.push(d);
        Ok(())
    })
}

/// Parse documents from text one at a time, handing each to `f` (list items separately), so
/// only one document's tree is in memory at once.
#[cfg(test)]
pub(crate) fn for_each_document(
    name: &str,
    text: &str,
    mut f: impl FnMut(Document) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let mut batch = Vec::new();
    for_each_value(name, text, |source, value| {
        push_value(source, value, &mut batch)?;
        for d in batch.drain(..) {
            f(d)?;
        }
        Ok(())
    })
}

/// The YAML reader's settings: duplicate keys refused and merge keys expanded (the crate's
/// defaults, stated so they cannot drift), no source snippets in errors (they would quote
/// input lines, values included), and limits sized for rendered repositories of tens of
/// thousands of objects in one stream rather than for configuration files. Alias expansion is
/// bounded as kubectl bounds it, by [`super::aliases`] before reading; the reader's own alias
/// heuristics (at most 10 aliases per anchor, a replay cap) would refuse documents kubectl
/// accepts, so they are set above what that bound lets through.
pub(super) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        merge_keys: serde_saphyr::MergeKeyPolicy::Merge,
        with_snippet: false,
        // Comments are not data: buffering them only costs time, and a run of more than 96
        // comment lines before a key was refused ("too many buffered comments").
        emit_comments: false,
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_documents: 10_000_000,
            max_events: 1_000_000_000,
            max_nodes: 1_000_000_000,
            max_total_scalar_bytes: 4 << 30,
            max_depth: MAX_DEPTH,
            max_aliases: 1_000_000_000,
            max_anchors: 1_000_000_000,
            max_recorded_anchor_events: 1_000_000_000,
            max_recorded_anchor_bytes: 4 << 30,
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 1_000_000_000,
            max_replay_stack_depth: MAX_DEPTH,
        },
    }
}

/// Hand every document of `text` to `f` as a JSON tree with its `name#index` source. JSON
/// text (a stream of objects, e.g. `kubectl get -o json` output or two objects written one
/// after the other) is read as JSON; everything else, and JSON-looking text that does not
/// parse as JSON (a YAML flow mapping), as YAML. A leading byte-order mark is ignored.
pub(super) fn for_each_value(
    name: &str,
    text: &str,
    mut f: impl FnMut(String, Value) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with(['{', '[']) {
        let mut index = 0usize;
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<StrictValue>();
        let json_err = |e: serde_json::Error| FileError::Json {
            path: name.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        };
        match stream.next() {
            None => return Ok(()),
            Some(Err(e)) if e.is_syntax() || e.is_eof() => {
                // Not JSON after all: YAML flow style. Report the JSON error only if YAML
                // cannot read it either.
                return for_each_yaml(name, text, &mut f).map_err(|y| match y {
                    FileError::Yaml { .. } => json_err(e),
                    other => other,
                });
            }
            Some(Err(e)) => return Err(json_err(e)),
            Some(Ok(StrictValue(v))) => {
                index += 1;
                f(format!("{name}#{index}"), v)?;
            }
        }
        for v in stream {
            let StrictValue(v) = v.map_err(json_err)?;
            index += 1;
            f(format!("{name}#{index}"), v)?;
        }
        return Ok(());
    }
    for_each_yaml(name, text, &mut f)
}

pub(super) fn for_each_yaml(
    name: &str,
    text: &str,
    f: &mut impl FnMut(String, Value) -> Result<(), FileError>,
) -> Result<(), FileError> {
    if let Some((line, column)) = super::aliases::excessive_aliasing(text) {
        return Err(FileError::Yaml {
            path: name.to_string(),
            line,
            column,
            message: "document contains excessive aliasing: more than 99% of its nodes come \
                      from aliases (`*name`), beyond what kubectl accepts; write the repeated \
                      parts out"
                .into(),
        });
    }
    let Some(chunks) = super::yaml_fast::split(text) else {
        return for_each_yaml_stream(name, text, f);
    };
    // Document by document: most through the fast reader, the rest through serde-saphyr (a
    // document's text on its own reads as it does in its stream: anchors do not cross
    // documents). Empty documents are skipped without a number, as the stream reader skips
    // them (`check`'s `name#index` and SARIF's positions count the same way).
    let mut index = 0;
    for chunk in chunks {
        let built = super::yaml_block::read(chunk.text)
            .unwrap_or_else(|| super::yaml_fast::build(chunk.text));
        let value = match built {
            super::yaml_fast::Built::Value(v) => v,
            super::yaml_fast::Built::Null => continue,
            super::yaml_fast::Built::Unusual => {
                match serde_saphyr::from_str_with_options::<Value>(chunk.text, yaml_options()) {
                    Ok(Value::Null) => continue,
                    Ok(v) => v,
                    Err(e) => return Err(yaml_error(name, &e, chunk.first_line - 1)),
                }
            }
        };
        index += 1;
        f(format!("{name}#{index}"), value)?;
    }
    Ok(())
}

/// A stream with directives, read whole by serde-saphyr.
pub(super) fn for_each_yaml_stream(
    name: &str,
    text: &str,
    f: &mut impl FnMut(String, Value) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let mut reader = std::io::Cursor::new(text.as_bytes());
    let docs = serde_saphyr::read_with_options::<_, Value>(&mut reader, yaml_options());
    for (i, value) in docs.enumerate() {
        let value = value.map_err(|e| yaml_error(name, &e, 0))?;
        f(format!("{name}#{}", i + 1), value)?;
    }
    Ok(())
}

/// A reader error at its position in the file (`lines_before`: the lines of the stream before
/// the text the reader was given).
fn yaml_error(name: &str, e: &serde_saphyr::Error, lines_before: usize) -> FileError {
    let (line, column) = e.location().map_or((0, 0), |l| {
        (l.line() as usize + lines_before, l.column() as usize)
    });
    FileError::Yaml {
        path: name.to_string(),
        line,
        column,
        message: yaml_message(e.without_snippet()),
    }
}

/// A reader error as a user can act on it: in the manifest's terms, never the reader's option
/// names or internal structures, and no value from the input (keys may be named).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    use serde_saphyr::Error as E;
    let too_large = |what: &str| format!("the stream is too large to read: {what}");
    match e {
        E::DuplicateMappingKey { key: Some(key), .. } => format!(
            "duplicate key {key:?} in one mapping (kubectl and the API server refuse it; \
             keep one)"
        ),
        E::DuplicateMappingKey { key: None, .. } => {
            "duplicate key in one mapping (kubectl and the API server refuse it; keep one)".into()
        }
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => format!("collections nested more than {MAX_DEPTH} levels deep"),
            B::Documents { .. } => too_large("more than 10,000,000 documents"),
            B::Events { .. } | B::Nodes { .. } => too_large("more than 1,000,000,000 nodes"),
            B::ScalarBytes { .. } | B::RecordedAnchorBytes { .. } => {
                too_large("more than 4 GiB of text")
            }
            B::Aliases { .. }
            | B::Anchors { .. }
            | B::AliasAnchorRatio { .. }
            | B::RecordedAnchorEvents { .. } => {
                "document contains excessive aliasing (`*name`); write the repeated parts out"
                    .into()
            }
            _ => too_large("beyond the reader's limits"),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => {
            "document contains excessive aliasing (`*name`); write the repeated parts out".into()
        }
        E::BinaryNotUtf8 { .. } => {
            "a `!!binary` value that does not decode to UTF-8 text; Kubernetes fields hold \
             text: write the base64 text without the `!!binary` tag (Secret `data` values are \
             base64 already)"
                .into()
        }
        E::UnknownAnchor { .. } => {
            "an alias (`*name`) refers to an anchor (`&name`) not defined before it in this \
             document"
                .into()
        }
        other => strip_position(&other.to_string()),
    }
}

/// A message without its ` at line L column C` tail (the error names the position itself).
pub(super) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A JSON tree that refuses a key repeated within one object: `serde_json::Value` would keep
/// the last one silently, where the API server's strict decoding refuses the object.
pub(super) struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

pub(super) struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?} in one mapping"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}
