//! Words a peer chose (a server's problem `detail`, its header values and metadata, a key
//! set's members, a token's claim names and values) reach a terminal only escaped. Otherwise a
//! hostile server or token could clear the screen, write the clipboard (OSC 52), reorder what
//! is shown (a right-to-left override), or start a report line of its own ("verdict: ok").
//!
//! Escaped are the characters [`must_escape`] names: the controls (C0 with tab, line feed and
//! carriage return, DEL, C1 with the 8-bit CSI), the invisible format characters (Unicode
//! category Cf: bidirectional marks, embeddings, overrides and isolates, zero-width spaces and
//! joiners, the byte-order mark, tags, …) and the line and paragraph separators. The text form:
//!
//! | character | shown as |
//! |---|---|
//! | `\` | `\\` |
//! | tab, line feed, carriage return | `\t`, `\n`, `\r` |
//! | other C0, DEL | `\xHH` (`\x1b`, `\x7f`) |
//! | from U+0080 | `\u{…}`, lowercase hex (`\u{9b}`, `\u{202e}`) |
//!
//! Every backslash shown starts one of these, so the form is reversible: two different words
//! are never shown alike, and a literal `\x1b` sent as text reads `\\x1b`.
//!
//! JSON output ([`json_line`]) keeps every word exactly and stays one line: the same characters
//! are written as JSON `\uXXXX` escapes, which a parser turns back into them.

use std::fmt::{self, Display, Write as _};
use std::io;

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, Serializer as JsonSerializer};

/// Unicode general category Cf (format), as of Unicode 16.0: invisible characters that change
/// how the text around them is shown. U+2065 is unassigned; taking the whole block keeps a
/// later assignment covered.
const FORMAT: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{06dd}', '\u{06dd}'),
    ('\u{070f}', '\u{070f}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08e2}', '\u{08e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// Whether `c` is never written raw to a terminal: a control character (C0, DEL, C1), a
/// format character (category Cf), or the line or paragraph separator (U+2028, U+2029).
pub(crate) fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || (c >= '\u{00ad}'
            && FORMAT
                .binary_search_by(|&(lo, hi)| {
                    if hi < c {
                        std::cmp::Ordering::Less
                    } else if lo > c {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok())
}

/// Write `s` in the text form; inside quotes (`quote`), `"` is written `\"` as well.
fn escape(f: &mut impl fmt::Write, s: &str, quote: bool) -> fmt::Result {
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let special = c == '\\' || (quote && c == '"') || must_escape(c);
        if !special {
            continue;
        }
        f.write_str(&s[plain..i])?;
        plain = i + c.len_utf8();
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\t' => f.write_str("\\t")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "\\u{{{:x}}}", c as u32)?,
        }
    }
    f.write_str(&s[plain..])
}

/// Text that may carry a peer's words. It is shown only escaped ([`Display`]); it serializes
/// as the words themselves (for [`json_line`], which escapes them its own way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Untrusted(String);

impl Untrusted {
    /// The words as they came, to compare or search them; never to print them.
    pub(crate) fn raw(&self) -> &str {
        &self.0
    }

    /// Append more words.
    pub(crate) fn push_str(&mut self, more: &str) {
        self.0.push_str(more);
    }

    /// Replace every `from` with `to`.
    pub(crate) fn replace_all(&mut self, from: &str, to: &str) {
        if self.0.contains(from) {
            self.0 = self.0.replace(from, to);
        }
    }
}

impl From<String> for Untrusted {
    fn from(s: String) -> Self {
        Untrusted(s)
    }
}

impl From<&str> for Untrusted {
    fn from(s: &str) -> Self {
        Untrusted(s.to_owned())
    }
}

impl Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape(f, &self.0, false)
    }
}

impl Serialize for Untrusted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A borrowed word shown escaped, bare.
pub(crate) struct Shown<'a>(pub &'a str);

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape(f, self.0, false)
    }
}

/// A borrowed word shown escaped, in double quotes (a quote inside is `\"`).
pub(crate) struct ShownQuoted<'a>(pub &'a str);

impl Display for ShownQuoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        escape(f, self.0, true)?;
        f.write_char('"')
    }
}

/// A JSON value shown in compact JSON layout with its strings (and member names) in the text
/// form: `"a\x1bb"`, not JSON's `"a\u001bb"`, so that every value reads the same way.
pub(crate) struct ShownJson<'a>(pub &'a Value);

impl Display for ShownJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::String(s) => ShownQuoted(s).fmt(f),
            Value::Array(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    ShownJson(v).fmt(f)?;
                }
                f.write_char(']')
            }
            Value::Object(members) => {
                f.write_char('{')?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{}:{}", ShownQuoted(k), ShownJson(v))?;
                }
                f.write_char('}')
            }
            // Numbers, booleans and null: serde_json's own digits and words.
            other => other.fmt(f),
        }
    }
}

/// serde_json's compact layout, with every character [`must_escape`] names written as a
/// `\uXXXX` escape (serde_json escapes C0 itself; DEL, C1 and format characters it would
/// write raw).
struct GuardedJson;

impl Formatter for GuardedJson {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut plain = 0;
        for (i, c) in fragment.char_indices() {
            if must_escape(c) {
                w.write_all(&fragment.as_bytes()[plain..i])?;
                plain = i + c.len_utf8();
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        CompactFormatter.write_string_fragment(w, &fragment[plain..])
    }
}

/// `v` as one line of JSON with no raw control, bidirectional or format character.
pub(crate) fn json_line(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = JsonSerializer::with_formatter(&mut out, GuardedJson);
    // Writing a Value into memory fails only on a non-string map key, which a Value has not.
    if v.serialize(&mut ser).is_err() {
        return "null".to_owned();
    }
    // The formatter writes only whole UTF-8 characters and ASCII escapes.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The oracle, independent of [`must_escape`]: C0, DEL and C1 by `char::is_control`, and
    /// the bidirectional and zero-width characters named one by one.
    fn forbidden(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200b}'..='\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2060}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{feff}'
            )
    }

    /// The inverse of the text form, written for the test: `None` when `shown` is not one.
    fn unescape(shown: &str, quote: bool) -> Option<String> {
        let mut out = String::new();
        let mut it = shown.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                if quote && c == '"' {
                    return None;
                }
                out.push(c);
                continue;
            }
            match it.next()? {
                '\\' => out.push('\\'),
                '"' if quote => out.push('"'),
                't' => out.push('\t'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                'x' => {
                    let hex: String = [it.next()?, it.next()?].iter().collect();
                    out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                }
                'u' => {
                    if it.next()? != '{' {
                        return None;
                    }
                    let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    fn shown(s: &str) -> String {
        Shown(s).to_string()
    }

    fn quoted(s: &str) -> String {
        ShownQuoted(s).to_string()
    }

    /// Any character, with the ones that matter often.
    fn words() -> impl Strategy<Value = String> {
        let tricky = prop::sample::select(vec![
            '\u{1b}', '\u{7}', '\n', '\r', '\t', '\0', '\u{7f}', '\u{9b}', '\u{85}', '\u{202e}',
            '\u{2066}', '\u{200b}', '\u{feff}', '\u{2028}', '\\', '"', 'x', 'u', '{', '}', '1',
            'b',
        ]);
        prop::collection::vec(prop_oneof![any::<char>(), tricky], 0..48)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #[test]
        fn no_forbidden_character_survives_the_text_form(s in words()) {
            for out in [shown(&s), quoted(&s)] {
                prop_assert!(!out.chars().any(forbidden), "{:?} -> {:?}", s, out);
            }
        }

        #[test]
        fn the_text_form_is_reversible(s in words()) {
            prop_assert_eq!(unescape(&shown(&s), false), Some(s.clone()));
            let q = quoted(&s);
            prop_assert_eq!(unescape(&q[1..q.len() - 1], true), Some(s));
        }

        #[test]
        fn two_different_words_are_never_shown_alike(a in words(), b in words()) {
            prop_assume!(a != b);
            prop_assert_ne!(shown(&a), shown(&b));
            prop_assert_ne!(quoted(&a), quoted(&b));
        }

        #[test]
        fn json_lines_carry_the_words_exactly(s in words()) {
            let v = serde_json::json!({ s.clone(): [s.clone(), 1] });
            let line = json_line(&v);
            prop_assert!(!line.chars().any(forbidden), "{:?}", line);
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), v);
        }
    }

    #[test]
    fn the_forms_read_as_documented() {
        assert_eq!(
            shown("a\u{1b}[2J\t\r\n\u{7f}\u{9b}\u{202e}\u{e0041}\\\"é"),
            r#"a\x1b[2J\t\r\n\x7f\u{9b}\u{202e}\u{e0041}\\"é"#
        );
        assert_eq!(quoted("say \"hi\"\u{7}"), r#""say \"hi\"\x07""#);
        let v = serde_json::json!({"k\u{202e}": ["\u{1b}", 2, null, true]});
        assert_eq!(
            ShownJson(&v).to_string(),
            r#"{"k\u{202e}":["\x1b",2,null,true]}"#
        );
        assert_eq!(
            json_line(&serde_json::json!(["\u{1b}\u{7f}\u{9b}\u{202e}\u{e0001}é"])),
            r#"["\u001b\u007f\u009b\u202e\udb40\udc01é"]"#
        );
    }

    #[test]
    fn every_escaped_character_is_one_the_standard_library_deems_unprintable() {
        // std's `escape_debug` has its own Unicode tables: a character it prints as it is
        // would be a mistake in ours.
        for c in (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| must_escape(c))
        {
            assert!(c.escape_debug().next() == Some('\\'), "{c:?}");
        }
        for c in (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| forbidden(c))
        {
            assert!(must_escape(c), "{c:?}");
        }
        let ranges = FORMAT.windows(2).all(|w| w[0].1 < w[1].0);
        assert!(
            ranges,
            "the table is sorted and disjoint, for the binary search"
        );
    }

    #[test]
    fn printable_text_is_shown_as_it_is() {
        for s in [
            "verdict: ok",
            "Grüße, 東京 🙂",
            "https://id.example/a?b=c",
            "é\u{301}",
        ] {
            assert_eq!(shown(s), s);
        }
    }
}
