//! Text for XML and HTML: one escaper for every markup phi-guard writes (`check -o junit`, the
//! audit evidence page), so both refuse the same characters the same way.

/// Text for XML content and attribute values: the five markup characters as entities, line
/// breaks and tabs kept (as character references, so attribute values keep them too), and the
/// characters XML 1.0 cannot carry at all replaced by U+FFFD.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for element content: as [`escape`], but line breaks kept as they are (readable in the
/// file, and the same to an XML reader).
pub(crate) fn escape_text(text: &str) -> String {
    escape(text).replace("&#10;", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters_are_escaped() {
        assert_eq!(
            escape(r#"a & b <c> "d" 'e'"#),
            "a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;"
        );
        assert_eq!(escape("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
        assert_eq!(escape("bell\u{7}nul\u{0}"), "bell\u{fffd}nul\u{fffd}");
        assert_eq!(escape("ünïcødé ✓"), "ünïcødé ✓");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape_text("a\n<b>&#10;"), "a\n&lt;b&gt;&amp;#10;");
    }
}
