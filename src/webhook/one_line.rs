//! Text that must stay one line within a length: log fields, warnings, audit annotation
//! values. Control characters become spaces (a newline in a name cannot forge a log line), and
//! text over the limit is cut on a character boundary with an ellipsis.

/// Collapse control characters and cut to at most `max` characters (on a char boundary).
pub(crate) fn single_line(s: &str, max: usize) -> String {
    single_line_cow(s, max).into_owned()
}

/// [`single_line`] of an owned string: returned as is when it is already one line within
/// `max` characters (nearly always), without a copy.
pub(crate) fn single_line_owned(s: String, max: usize) -> String {
    if is_single_line(&s, max) {
        return s;
    }
    single_line_slow(&s, max)
}

/// [`single_line`], borrowing when nothing needs changing (log fields: nearly always).
pub(crate) fn single_line_cow(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if is_single_line(s, max) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(single_line_slow(s, max))
}

/// No control character, and at most `max` characters.
fn is_single_line(s: &str, max: usize) -> bool {
    // Bytes first: ASCII text (nearly every name and message) needs no char decoding.
    if s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return true;
    }
    // Longer in bytes than the limit (a warning nearly always is): `chars().count()` counts
    // without decoding each character.
    if s.len() > max && s.chars().count() > max {
        return false;
    }
    !s.chars().any(char::is_control)
}

/// Control characters as spaces; over `max` characters, the first `max - 1` and an ellipsis.
/// Warnings take this path on every review that has one (most are longer than 250
/// characters), so the cut is found by position and the text copied in runs, not char by char.
fn single_line_slow(s: &str, max: usize) -> String {
    let bytes = s.as_bytes();
    let ascii_head = max > 0 && bytes.get(..max).unwrap_or(bytes).is_ascii();
    let kept = if ascii_head {
        // The first `max` characters are the first `max` bytes (nearly every warning).
        if s.len() > max {
            &s[..max - 1]
        } else {
            s
        }
    } else {
        match max
            .checked_sub(1)
            .and_then(|last| s.char_indices().nth(last))
        {
            // The max-th character is not the last one: cut before it.
            Some((at, c)) if at + c.len_utf8() < s.len() => &s[..at],
            _ => s,
        }
    };
    let mut out = String::with_capacity(kept.len() + '…'.len_utf8());
    let mut run = 0;
    if kept.is_ascii() {
        // ASCII's control characters are C0 and DEL, one byte each.
        for (i, b) in kept.bytes().enumerate() {
            if b < 0x20 || b == 0x7f {
                out.push_str(&kept[run..i]);
                out.push(' ');
                run = i + 1;
            }
        }
    } else {
        for (i, c) in kept.char_indices() {
            if c.is_control() {
                out.push_str(&kept[run..i]);
                out.push(' ');
                run = i + c.len_utf8();
            }
        }
    }
    out.push_str(&kept[run..]);
    if kept.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_cuts_on_char_boundaries() {
        assert_eq!(single_line("a\nb", 10), "a b");
        let long = "é".repeat(300);
        let cut = single_line(&long, 250);
        assert_eq!(cut.chars().count(), 250);
        assert!(cut.ends_with('…'));
        assert_eq!(single_line(&"x".repeat(250), 250).chars().count(), 250);
    }

    /// The fast paths (borrowed, owned) say exactly what the char-by-char cut says.
    #[test]
    fn single_line_fast_paths_agree_with_the_cut() {
        let cases = [
            String::new(),
            "plain ascii".into(),
            "x".repeat(10),
            "x".repeat(11),
            "tab\there".into(),
            "del\u{7f}".into(),
            "c1 \u{85} next line".into(),
            "é".repeat(10),
            "é".repeat(11),
            "naïve\nline".into(),
            "\u{2028}separator".into(),
            "\n".into(),
            "ab\n".into(),
            "\té\tü\u{85}".repeat(4),
            "x".repeat(9) + "\n",
            // ASCII up to the cut and not after it, or not within it; controls in an ASCII head.
            "x".repeat(10) + "é",
            "x".repeat(11) + "é\n",
            "x".repeat(4) + "é" + &"x".repeat(10),
            "a\tb\u{7f}".repeat(40),
            "\u{1f}".repeat(12),
        ];
        // The cut char by char, as it was first written.
        fn by_chars(s: &str, max: usize) -> String {
            let mut out = String::new();
            let mut count = 0;
            let mut chars = s.chars().map(|c| if c.is_control() { ' ' } else { c });
            while let Some(c) = chars.next() {
                if count + 1 == max && chars.clone().next().is_some() {
                    out.push('…');
                    break;
                }
                out.push(c);
                count += 1;
            }
            out
        }
        for c in cases {
            for max in [0, 1, 2, 5, 9, 10, 11, 12, 100] {
                let slow = single_line_slow(&c, max);
                assert_eq!(slow, by_chars(&c, max), "{c:?} {max}");
                assert_eq!(single_line(&c, max), slow, "{c:?} {max}");
                assert_eq!(single_line_cow(&c, max), slow, "{c:?} {max}");
                assert_eq!(single_line_owned(c.clone(), max), slow, "{c:?} {max}");
            }
        }
    }
}
