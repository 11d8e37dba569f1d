//! Durations on the command line: one humane form for every flag (`500ms`, `10s`, `2m`, `1h`,
//! `90d`), parsed by [`parse_duration`] and shown by [`HumanDuration`] in `--help` defaults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Parse `500ms`, `10s`, `2m`, `1h`, `90d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (examples: 10s, 500ms, 2m, 90d)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(format!(
                "invalid duration unit {u:?} (use ms, s, m, h or d)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A flag's duration, printed in the largest unit that divides it (`90d`, `2m`, `500ms`), so a
/// default is written once, as a `Duration` constant, and `--help` shows it the way it is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if !d.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{}s", d.as_secs_f64());
        }
        if d.subsec_nanos() != 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
            if secs != 0 && secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        // Days, for certificate lifetimes.
        assert_eq!(parse_duration("5d"), Ok(Duration::from_secs(5 * 86400)));
        assert_eq!(parse_duration("1.5d"), Ok(Duration::from_secs(36 * 3600)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn human_durations_print_as_typed_and_parse_back() {
        for (d, text) in [
            (Duration::from_secs(1825 * 86400), "1825d"),
            (Duration::from_secs(90 * 86400), "90d"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(90), "90s"),
            (Duration::ZERO, "0s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(1500), "0.0015s"),
        ] {
            assert_eq!(HumanDuration(d).to_string(), text);
            assert_eq!(
                text.parse::<HumanDuration>(),
                Ok(HumanDuration(d)),
                "{text}"
            );
        }
    }
}
