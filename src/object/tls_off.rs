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

/// Environment variables whose whole value is a switch: (name, values that turn TLS off or make
/// it optional).
fn env_switch(name: &str, value: &str) -> Option<(&'static str, Strength)> {
    let v = value.trim().to_ascii_lowercase();
    match name {
        "PGSSLMODE" if v == "disable" => Some((
            "PGSSLMODE=disable: PostgreSQL connections without TLS",
            Strength::Off,
        )),
        "PGSSLMODE" if v == "allow" || v == "prefer" => {
            Some(("PGSSLMODE allows a plaintext fallback", Strength::Optional))
        }
        "MONGODB_TLS" | "MONGO_TLS" | "DB_SSL" | "DATABASE_SSL" | "REDIS_TLS" | "DB_TLS"
            if matches!(
                v.as_str(),
                "false" | "0" | "off" | "no" | "disable" | "disabled"
            ) =>
        {
            Some((
                "a TLS switch set off: connections without TLS",
                Strength::Off,
            ))
        }
        "xpack.security.http.ssl.enabled" if v == "false" => Some((
            "xpack.security.http.ssl.enabled=false: Elasticsearch HTTP without TLS",
            Strength::Off,
        )),
        _ => None,
    }
}

/// Match a value or an argument (with its neighbour, for `--tls-port 0` style pairs).
fn matches(text: &str, next: Option<&str>) -> Option<(&'static str, Strength)> {
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

/// `http://<service>[.<namespace>[.svc[.cluster.local]]][:port]`: an in-cluster plaintext call.
fn http_service(value: &str) -> Option<(String, Option<String>)> {
    let lower = value.trim().to_ascii_lowercase();
    let rest = lower.split("http://").nth(1)?;
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
                if let Some(value) = var.value.as_deref() {
                    let hit = env_switch(&var.name, value).or_else(|| matches(value, None));
                    if let Some((meaning, strength)) = hit {
                        out.push(TlsOff {
                            field: "env",
                            index,
                            name: Some(var.name.clone()),
                            meaning,
                            strength,
                            http_service: None,
                        });
                    } else if let Some(svc) = http_service(value) {
                        out.push(TlsOff {
                            field: "env",
                            index,
                            name: Some(var.name.clone()),
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

/// One `env` entry: its name and literal value (`valueFrom` is not followed).
struct EnvVar {
    name: String,
    value: Option<String>,
}

impl<'de> serde::Deserialize<'de> for EnvVar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvVar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an environment variable")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvVar, A::Error> {
                let mut name = String::new();
                let mut value = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "name" => {
                            if let serde_json::Value::String(s) = map.next_value()? {
                                name = s;
                            }
                        }
                        "value" => {
                            if let serde_json::Value::String(s) = map.next_value()? {
                                value = Some(s);
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
}
