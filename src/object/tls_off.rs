//! TLS switched off by configuration: the container `env` literals and `command`/`args` that
//! tell a PHI app or its client library to talk plaintext although certificates may be mounted
//! (`sslmode=disable`, `useSSL=false`, `--skip-ssl`, a Kafka `PLAINTEXT://` listener, an
//! `http://` URL to an in-cluster Service ...). Read while decoding, by pattern; only what
//! matched is kept (the field, the index, the variable's name and what the pattern means),
//! never a value. Values in Secrets or ConfigMaps (`valueFrom`, `envFrom`) are never followed.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// How sure a pattern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// The setting turns TLS off.
    Off,
    /// The setting lets a client fall back to plaintext (opportunistic TLS, not verified).
    Optional,
}

/// One setting that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOff {
    /// `env`, `command` or `args`.
    pub field: &'static str,
    pub index: usize,
    /// The environment variable's name (names are not values).
    pub name: Option<String>,
    /// What the setting does, in words (never the value).
    pub meaning: &'static str,
    pub strength: Strength,
    /// For `http://` URLs to in-cluster Services: (service, namespace if written).
    pub http_service: Option<(String, Option<String>)>,
}

/// (lower-cased needle, meaning, strength) found anywhere in a value or argument.
const PATTERNS: [(&str, &str, Strength); 16] = [
    (
        "sslmode=disable",
        "libpq sslmode=disable: PostgreSQL connections without TLS",
        Strength::Off,
    ),
    (
        "sslmode=allow",
        "libpq sslmode=allow: PostgreSQL connections that fall back to plaintext",
        Strength::Optional,
    ),
    (
        "sslmode=prefer",
        "libpq sslmode=prefer: PostgreSQL connections that fall back to plaintext",
        Strength::Optional,
    ),
    (
        "usessl=false",
        "JDBC useSSL=false: MySQL connections without TLS",
        Strength::Off,
    ),
    (
        "ssl=false",
        "ssl=false: database connections without TLS",
        Strength::Off,
    ),
    (
        "requiressl=false",
        "JDBC requireSSL=false: connections that fall back to plaintext",
        Strength::Optional,
    ),
    (
        "sslmode=disabled",
        "MySQL sslMode=DISABLED: MySQL connections without TLS",
        Strength::Off,
    ),
    (
        "ssl-mode=disabled",
        "MySQL ssl-mode=DISABLED: MySQL connections without TLS",
        Strength::Off,
    ),
    (
        "encrypt=false",
        "JDBC encrypt=false: SQL Server connections without TLS",
        Strength::Off,
    ),
    ("--skip-ssl", "--skip-ssl: MySQL without TLS", Strength::Off),
    (
        "require_secure_transport=off",
        "require_secure_transport=OFF: the MySQL server accepts plaintext clients",
        Strength::Off,
    ),
    (
        "require-secure-transport=off",
        "require-secure-transport=OFF: the MySQL server accepts plaintext clients",
        Strength::Off,
    ),
    (
        "ssl=off",
        "ssl=off: the PostgreSQL server without TLS",
        Strength::Off,
    ),
    (
        "tlsmode=disabled",
        "tlsMode disabled: MongoDB without TLS",
        Strength::Off,
    ),
    (
        "plaintext://",
        "a PLAINTEXT:// Kafka listener: brokers without TLS",
        Strength::Off,
    ),
    (
        "xpack.security.http.ssl.enabled=false",
        "xpack.security.http.ssl.enabled=false: Elasticsearch HTTP without TLS",
        Strength::Off,
    ),
];

/// The names [`env_switch`] reads.
const SWITCHES: [&str; 8] = [
    "PGSSLMODE",
    "MONGODB_TLS",
    "MONGO_TLS",
    "DB_SSL",
    "DATABASE_SSL",
    "REDIS_TLS",
    "DB_TLS",
    "xpack.security.http.ssl.enabled",
];

/// Environment variables whose whole value is a switch: (name, values that turn TLS off or make
/// it optional). `lower` is the value trimmed and lower-cased.
fn env_switch(name: &str, lower: &str) -> Option<(&'static str, Strength)> {
    match name {
        "PGSSLMODE" if lower == "disable" => Some((
            "PGSSLMODE=disable: PostgreSQL connections without TLS",
            Strength::Off,
        )),
        "PGSSLMODE" if lower == "allow" || lower == "prefer" => {
            Some(("PGSSLMODE allows a plaintext fallback", Strength::Optional))
        }
        "MONGODB_TLS" | "MONGO_TLS" | "DB_SSL" | "DATABASE_SSL" | "REDIS_TLS" | "DB_TLS"
            if matches!(lower, "false" | "0" | "off" | "no" | "disable" | "disabled") =>
        {
            Some((
                "a TLS switch set off: connections without TLS",
                Strength::Off,
            ))
        }
        "xpack.security.http.ssl.enabled" if lower == "false" => Some((
            "xpack.security.http.ssl.enabled=false: Elasticsearch HTTP without TLS",
            Strength::Off,
        )),
        _ => None,
    }
}

/// `text` lower-cased (ASCII), borrowed when it already is.
fn lowered(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(text.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Match a value or an argument (with its neighbour, for `--tls-port 0` style pairs).
fn matches(text: &str, next: Option<&str>) -> Option<(&'static str, Strength)> {
    if !may_hold_setting(text.as_bytes()) {
        return None;
    }
    matches_lower(&lowered(text), next)
}

/// [`matches`] on a value already lower-cased (one without `=`, `:` or `--` matches nothing).
fn matches_lower(lower: &str, next: Option<&str>) -> Option<(&'static str, Strength)> {
    if let Some(k) = first_pattern(lower) {
        let (_, meaning, strength) = PATTERNS[k];
        return Some((meaning, strength));
    }
    if !lower.starts_with("--") {
        return None;
    }
    let flag = |name: &str| {
        lower == name && next.is_some_and(|n| n.trim() == "0")
            || lower.strip_prefix(name) == Some("=0")
    };
    if flag("--tls-port") {
        return Some(("--tls-port 0: Redis without TLS", Strength::Off));
    }
    if flag("--ssl") {
        return Some(("--ssl=0: MySQL without TLS", Strength::Off));
    }
    if (lower == "--tlsmode" || lower == "--sslmode")
        && next.is_some_and(|n| n.trim().eq_ignore_ascii_case("disabled"))
    {
        return Some(("tlsMode disabled: MongoDB without TLS", Strength::Off));
    }
    None
}

/// Which entries of [`PATTERNS`] start with each byte (bit `k` for entry `k`).
const FIRST_BYTE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut k = 0;
    while k < PATTERNS.len() {
        table[PATTERNS[k].0.as_bytes()[0] as usize] |= 1 << k;
        k += 1;
    }
    table
};

/// Whether `bytes` can hold any setting this module reads: every pattern and flag has `=`,
/// `:` or `--` in it, and so does an `http://` URL. Most values have none and are done here.
///
/// Written as two reductions without an early exit, which the compiler turns into vector
/// compares (it runs on every env value of every review; the byte loop it replaced branched on
/// every byte). Reading the entries themselves (serde's keys and strings) costs more than this.
fn may_hold_setting(bytes: &[u8]) -> bool {
    let sep = bytes
        .iter()
        .fold(false, |acc, &b| acc | (b == b'=') | (b == b':'));
    let dashes = bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .fold(false, |acc, (&a, &b)| acc | (a == b'-') & (b == b'-'));
    sep | dashes
}

/// The first entry of [`PATTERNS`] (in the table's order, which is its priority) found in `hay`
/// as a whole setting. One pass over `hay`: at each byte only the needles starting with it are
/// compared (a searcher built per needle per value cost more than the rest of the review).
fn first_pattern(hay: &str) -> Option<usize> {
    let bytes = hay.as_bytes();
    let mut best = u32::BITS;
    for (start, &c) in bytes.iter().enumerate() {
        // Only entries before the best found so far can still win.
        let mut candidates = FIRST_BYTE[usize::from(c)] & ((1u64 << best) - 1) as u32;
        while candidates != 0 {
            let k = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let needle = PATTERNS[k as usize].0;
            if bytes[start..].starts_with(needle.as_bytes()) && whole_setting(bytes, needle, start)
            {
                best = k;
                break;
            }
        }
        if best == 0 {
            break;
        }
    }
    (best < u32::BITS).then_some(best as usize)
}

/// `needle` at `start` of `bytes` as a whole setting: not the tail of a longer key
/// (`nossl=false`), not followed by more of the value (`ssl=falsey`).
fn whole_setting(bytes: &[u8], needle: &str, start: usize) -> bool {
    let end = start + needle.len();
    let before_ok = start == 0
        || needle.starts_with('-')
        || !bytes[start - 1].is_ascii_alphanumeric() && bytes[start - 1] != b'_';
    let after_ok = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
    before_ok && after_ok
}

/// `http://<service>[.<namespace>[.svc[.cluster.local]]][:port]`: an in-cluster plaintext call.
fn http_service(lower: &str) -> Option<(String, Option<String>)> {
    let at = find_bytes(lower.as_bytes(), b"http://")?;
    let rest = lower.get(at + 7..)?;
    let host = rest
        .split(['/', ':', '?', ' ', ',', ';', '"'])
        .next()
        .unwrap_or_default();
    let parts: Vec<&str> = host.split('.').collect();
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match parts.as_slice() {
        [svc] if valid(svc) && *svc != "localhost" => Some((svc.to_string(), None)),
        [svc, ns] | [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"]
            if valid(svc) && valid(ns) =>
        {
            Some((svc.to_string(), Some(ns.to_string())))
        }
        _ => None,
    }
}

/// Where `needle` first starts in `hay`.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    (0..hay.len()).find(|&i| hay[i] == first && hay[i..].starts_with(needle))
}

/// `env:` of a container: only the matches.
pub(crate) fn env<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TlsOff>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<TlsOff>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of environment variables")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            let mut index = 0;
            while let Some(var) = seq.next_element::<EnvVar>()? {
                // Most values hold no setting: no lower-casing, no search.
                let value = var
                    .value
                    .as_deref()
                    .filter(|v| may_hold_setting(v.as_bytes()) || SWITCHES.contains(&&*var.name));
                if let Some(value) = value {
                    let lower = lowered(value);
                    let hit =
                        env_switch(&var.name, lower.trim()).or_else(|| matches_lower(&lower, None));
                    if let Some((meaning, strength)) = hit {
                        out.push(TlsOff {
                            field: "env",
                            index,
                            name: Some(var.name.to_string()),
                            meaning,
                            strength,
                            http_service: None,
                        });
                    } else if let Some(svc) = http_service(lower.trim()) {
                        out.push(TlsOff {
                            field: "env",
                            index,
                            name: Some(var.name.to_string()),
                            meaning: "an http:// URL: plaintext calls to an in-cluster Service",
                            strength: Strength::Off,
                            http_service: Some(svc),
                        });
                    }
                }
                index += 1;
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// `command:` or `args:` of a container: only the matches.
fn strings<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<Vec<TlsOff>, D::Error> {
    // Lenient: what is not a string (the API server would refuse it) is not read.
    let items: Option<Vec<serde_json::Value>> = serde::Deserialize::deserialize(d)?;
    let items: Vec<String> = items
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            _ => String::new(),
        })
        .collect();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // A shell script in one argument (`sh -c "... --skip-ssl"`) is read word by word.
        let words: Vec<&str> = item.split_whitespace().collect();
        let next_item = items.get(i + 1).map(String::as_str);
        let hit = words.iter().enumerate().find_map(|(j, w)| {
            let next =
                words
                    .get(j + 1)
                    .copied()
                    .or(if words.len() == 1 { next_item } else { None });
            matches(w, next)
        });
        if let Some((meaning, strength)) = hit {
            out.push(TlsOff {
                field,
                index: i,
                name: None,
                meaning,
                strength,
                http_service: None,
            });
        }
    }
    Ok(out)
}

pub(crate) fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TlsOff>, D::Error> {
    strings(d, "command")
}

pub(crate) fn args<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TlsOff>, D::Error> {
    strings(d, "args")
}

/// One `env` entry: its name and literal value (`valueFrom` is not followed), borrowed from the
/// input when it can be.
struct EnvVar<'de> {
    name: Text<'de>,
    value: Option<Text<'de>>,
}

/// A string read leniently: borrowed when the input allows, owned when it had escapes; what is
/// not a string (the API server would refuse it) reads as empty.
#[derive(Default)]
enum Text<'de> {
    #[default]
    Empty,
    Borrowed(&'de str),
    Owned(String),
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Empty => "",
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Text<'de>, E> {
                Ok(Text::Empty)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text::Empty)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::Empty)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for EnvVar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvVar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an environment variable")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvVar<'de>, A::Error> {
                let mut name = Text::Empty;
                let mut value = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        "name" => name = map.next_value()?,
                        "value" => {
                            value = match map.next_value()? {
                                Text::Empty => None,
                                t => Some(t),
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(EnvVar { name, value })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(v: serde_json::Value) -> Vec<TlsOff> {
        env(v).expect("env")
    }

    #[test]
    fn connection_strings_and_switches_are_recognised_without_keeping_values() {
        let hits = env_of(serde_json::json!([
            {"name": "DATABASE_URL", "value": "postgres://u:secret@db:5432/ehr?sslmode=disable"},
            {"name": "JDBC_URL", "value": "jdbc:mysql://db:3306/ehr?useSSL=false&serverTimezone=UTC"},
            {"name": "PGSSLMODE", "value": "prefer"},
            {"name": "FHIR_URL", "value": "http://fhir.clinical.svc.cluster.local:8080/fhir"},
            {"name": "OK", "value": "postgres://db/ehr?sslmode=verify-full"},
            {"name": "NOT_A_SWITCH", "value": "nossl=false"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
        ]));
        let got: Vec<(usize, Strength)> = hits.iter().map(|h| (h.index, h.strength)).collect();
        assert_eq!(
            got,
            [
                (0, Strength::Off),
                (1, Strength::Off),
                (2, Strength::Optional),
                (3, Strength::Off)
            ]
        );
        assert_eq!(
            hits[3].http_service,
            Some(("fhir".to_string(), Some("clinical".to_string())))
        );
        for h in &hits {
            assert!(!h.meaning.contains("secret") && !h.meaning.contains("ehr"));
        }
    }

    #[test]
    fn server_flags_are_recognised_in_args_and_shell_scripts() {
        let hits = args(serde_json::json!(["--port", "6379", "--tls-port", "0"])).expect("args");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].index, 2);
        let hits = args(serde_json::json!([
            "-c",
            "exec mysqld --skip-ssl --user=mysql"
        ]))
        .expect("args");
        assert_eq!(hits.len(), 1);
        let hits = command(serde_json::json!(["postgres", "-c", "ssl=off"])).expect("command");
        assert_eq!(hits.len(), 1);
        let fine = args(serde_json::json!(["--tls-port", "6380", "--port", "0"])).expect("args");
        assert!(fine.is_empty());
        let listeners = env_of(serde_json::json!([
            {"name": "KAFKA_LISTENERS", "value": "PLAINTEXT://:9092,CONTROLLER://:9093"}
        ]));
        assert_eq!(listeners.len(), 1);
    }

    /// The matcher before the one-pass scan, kept to compare against.
    fn reference(text: &str, next: Option<&str>) -> Option<(&'static str, Strength)> {
        let lower = text.to_ascii_lowercase();
        for (needle, meaning, strength) in PATTERNS {
            if contains_setting(&lower, needle) {
                return Some((meaning, strength));
            }
        }
        let flag = |name: &str| {
            lower == name && next.is_some_and(|n| n.trim() == "0") || lower == format!("{name}=0")
        };
        if flag("--tls-port") {
            return Some(("--tls-port 0: Redis without TLS", Strength::Off));
        }
        if flag("--ssl") {
            return Some(("--ssl=0: MySQL without TLS", Strength::Off));
        }
        if (lower == "--tlsmode" || lower == "--sslmode")
            && next.is_some_and(|n| n.trim().eq_ignore_ascii_case("disabled"))
        {
            return Some(("tlsMode disabled: MongoDB without TLS", Strength::Off));
        }
        None
    }

    /// `needle` as a whole setting: not the tail of a longer key (`nossl=false`), not followed by
    /// more of the value (`ssl=falsey`).
    fn contains_setting(hay: &str, needle: &str) -> bool {
        let bytes = hay.as_bytes();
        let mut from = 0;
        while let Some(at) = hay[from..].find(needle) {
            let start = from + at;
            let end = start + needle.len();
            let before_ok = start == 0
                || needle.starts_with('-')
                || !bytes[start - 1].is_ascii_alphanumeric() && bytes[start - 1] != b'_';
            let after_ok = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if before_ok && after_ok {
                return true;
            }
            from = start + 1;
        }
        false
    }

    #[test]
    fn the_filter_agrees_with_a_byte_loop() {
        fn by_bytes(bytes: &[u8]) -> bool {
            let mut dash = false;
            for &b in bytes {
                if b == b'=' || b == b':' || dash && b == b'-' {
                    return true;
                }
                dash = b == b'-';
            }
            false
        }
        let alphabet = b"=:-a_ 9";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut seen = [0usize; 2];
        for len in 0..80 {
            for _ in 0..200 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly letters, so values without a separator are common.
                        let k = usize::try_from(seed % 40).unwrap_or(0);
                        alphabet.get(k).copied().unwrap_or(b'x')
                    })
                    .collect();
                let want = by_bytes(&text);
                assert_eq!(
                    may_hold_setting(&text),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
                seen[usize::from(want)] += 1;
            }
        }
        assert!(
            seen[0] > 1_000 && seen[1] > 1_000,
            "both answers reached: {seen:?}"
        );
        for t in ["", "-", "--", "a-", "-a-", "a--", "=", ":", "value-1-xx"] {
            assert_eq!(
                may_hold_setting(t.as_bytes()),
                by_bytes(t.as_bytes()),
                "{t:?}"
            );
        }
    }

    #[test]
    fn every_switch_name_is_listed_for_the_filter() {
        for name in SWITCHES {
            assert!(
                ["disable", "false", "0"]
                    .iter()
                    .any(|v| env_switch(name, v).is_some()),
                "{name}"
            );
        }
        // A switch value has no '=', ':' or '--': without the list it would be skipped.
        let hits = env_of(serde_json::json!([{"name": "DB_TLS", "value": "Off"}]));
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn the_one_pass_scan_finds_what_a_search_per_pattern_found() {
        // Values built from pieces of every pattern, boundaries, case and noise: the same
        // verdict, and the same meaning (the table's order decides between two settings).
        let mut pieces: Vec<String> = PATTERNS
            .iter()
            .flat_map(|(n, _, _)| {
                let n = n.to_string();
                [
                    n.clone(),
                    n.to_ascii_uppercase(),
                    n[..n.len() / 2].to_string(),
                    n[n.len() / 2..].to_string(),
                ]
            })
            .collect();
        pieces.extend(
            [
                "x",
                "_",
                "&",
                "?",
                " ",
                "=",
                "0",
                "1",
                "ssl",
                "tls",
                "http://",
                "://",
                "-",
                "--tls-port",
                "--ssl",
                "no",
            ]
            .map(String::from),
        );
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut hits = 0;
        for _ in 0..20_000 {
            let n = usize::try_from(next() % 5).unwrap_or(0) + 1;
            let text: String = (0..n)
                .map(|_| pieces[usize::try_from(next()).unwrap_or(0) % pieces.len()].as_str())
                .collect();
            let neighbour =
                ["0", " 0 ", "disabled", "6380"][usize::try_from(next() % 4).unwrap_or(0)];
            for nb in [None, Some(neighbour)] {
                let want = reference(&text, nb);
                assert_eq!(matches(&text, nb), want, "{text:?} next {nb:?}");
                // The filter in front of env values never hides a setting.
                if want.is_some() || http_service(&text.to_ascii_lowercase()).is_some() {
                    assert!(may_hold_setting(text.as_bytes()), "{text:?}");
                }
                hits += usize::from(want.is_some());
            }
        }
        assert!(
            hits > 5_000,
            "the generator must reach the patterns: {hits}"
        );
    }
}
