//! Doc examples are written with the paths a user imports. A user depends on the `portcullis`
//! facade and names `portcullis::server::…`, `portcullis::client::…`, `portcullis::wire::…`,
//! `portcullis::testkit::…`; an example naming the sub-crates (`auth_layer::…`) or
//! `jsonwebtoken` directly compiles in the workspace but not in the user's project.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::files;

/// The source directories whose doc examples are checked: the facade's and those of the crates
/// it re-exports.
pub const DOC_EXAMPLE_DIRS: &[&str] = &[
    "src",
    "auth-layer/src",
    "refresh-layer/src",
    "wire/src",
    "testkit/src",
];

/// Each path a doc example must not start with, and what to write instead.
const FORBIDDEN: &[(&str, &str)] = &[
    ("auth_layer::", "portcullis::server::"),
    ("refresh_layer::", "portcullis::client::"),
    ("portcullis_wire::", "portcullis::wire::"),
    ("portcullis_testkit::", "portcullis::testkit::"),
    ("jsonwebtoken::", "portcullis::server::jsonwebtoken::"),
];

/// The facade paths `jsonwebtoken` may be named under.
const JSONWEBTOKEN_VIA: &[&str] = &["portcullis::server::", "portcullis::client::"];

/// A line of a doc example naming a crate the user does not depend on.
#[derive(Debug, PartialEq, Eq)]
pub struct DocPathUse {
    /// The source file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// The path written (`auth_layer::`).
    pub written: &'static str,
    /// The facade path to write instead.
    pub instead: &'static str,
}

impl fmt::Display for DocPathUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}: a doc example names `{}`; a user of the facade writes `{}`",
            self.file.display(),
            self.line,
            self.written,
            self.instead
        )
    }
}

/// The text of a doc comment line (`///` or `//!`, one space after it dropped) and which kind
/// it is, or `None` for any other line (`////` is an ordinary comment, as for rustc).
fn doc_text(line: &str) -> Option<(&'static str, &str)> {
    let trimmed = line.trim_start();
    let (kind, rest) = if let Some(rest) = trimmed.strip_prefix("//!") {
        ("//!", rest)
    } else {
        let rest = trimmed.strip_prefix("///")?;
        if rest.starts_with('/') {
            return None;
        }
        ("///", rest)
    };
    Some((kind, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Whether a fence's info string opens Rust code, as rustdoc decides: no language, `rust`, or
/// only rustdoc's own attributes (`no_run`, `ignore`, `edition2024`, …); ```` ```text ````
/// or ```` ```json ```` is not.
fn is_rust_fence(info: &str) -> bool {
    const ATTRIBUTES: &[&str] = &[
        "rust",
        "ignore",
        "no_run",
        "should_panic",
        "compile_fail",
        "test_harness",
        "standalone_crate",
    ];
    info.split([',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .all(|t| ATTRIBUTES.contains(&t) || t.starts_with("edition") || t.starts_with("ignore-"))
}

/// The forbidden paths `code` names: each starts a path (nothing of a path right before it,
/// or a leading `::`), or is `jsonwebtoken::` inside a path other than those of
/// [`JSONWEBTOKEN_VIA`].
fn forbidden_in(code: &str) -> Vec<(&'static str, &'static str)> {
    let in_path = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let starts_path = |before: &str| !before.ends_with(in_path);
    let mut out = Vec::new();
    for &(path, instead) in FORBIDDEN {
        let named = code.match_indices(path).any(|(at, _)| {
            let before = &code[..at];
            let after_segment =
                before.ends_with("::") && !before.strip_suffix("::").is_some_and(starts_path);
            if !after_segment {
                return starts_path(before) || before.ends_with("::");
            }
            // `auth_layer::jsonwebtoken::` is reported once, as `auth_layer::`.
            path == "jsonwebtoken::"
                && !JSONWEBTOKEN_VIA.iter().any(|v| before.ends_with(v))
                && !FORBIDDEN.iter().any(|(p, _)| before.ends_with(p))
        });
        if named {
            out.push((path, instead));
        }
    }
    out
}

/// The lines of `text` (the source of `file`) where a Rust code block of a doc comment names a
/// forbidden path. A block lasts from its fence to the closing fence within one run of doc
/// comment lines of one kind; hidden lines (`# use …`) are code too.
pub fn doc_path_uses(file: &Path, text: &str) -> Vec<DocPathUse> {
    let mut out = Vec::new();
    // (kind of the doc comment, whether its open block is Rust) while inside a block.
    let mut open: Option<(&str, bool)> = None;
    for (index, line) in text.lines().enumerate() {
        let Some((kind, doc)) = doc_text(line) else {
            open = None;
            continue;
        };
        if open.is_some_and(|(k, _)| k != kind) {
            open = None;
        }
        let trimmed = doc.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => Some((kind, is_rust_fence(info.trim_start_matches('`').trim()))),
            };
            continue;
        }
        if let Some((_, true)) = open {
            for (written, instead) in forbidden_in(doc) {
                out.push(DocPathUse {
                    file: file.to_owned(),
                    line: index + 1,
                    written,
                    instead,
                });
            }
        }
    }
    out
}

/// [`doc_path_uses`] of every `.rs` file under [`DOC_EXAMPLE_DIRS`] of `workspace`.
pub fn workspace_doc_path_uses(workspace: &Path) -> std::io::Result<Vec<DocPathUse>> {
    let mut out = Vec::new();
    for dir in DOC_EXAMPLE_DIRS {
        for file in files(&workspace.join(dir)) {
            if file.extension().is_some_and(|e| e == "rs") {
                out.extend(doc_path_uses(&file, &fs::read_to_string(&file)?));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(usize, &'static str)> {
        doc_path_uses(Path::new("x.rs"), text)
            .into_iter()
            .map(|u| (u.line, u.written))
            .collect()
    }

    #[test]
    fn a_sub_crate_path_in_a_doc_example_is_reported_with_its_line() {
        let text = "\
//! ```
//! use auth_layer::AuthLayer;
//! # fn main() -> Result<(), portcullis_wire::InvalidOrigin> { Ok(()) }
//! ```
/// Text.
///
/// ```no_run
/// let a = refresh_layer::Credential::none();
/// let k = portcullis_testkit::es256_key_pair();
/// use jsonwebtoken::Algorithm;
/// let b: ::jsonwebtoken::Algorithm;
/// let c = auth_layer::jsonwebtoken::Algorithm::HS256;
/// let d = ::refresh_layer::Credential::none();
/// ```
fn f() {}
";
        assert_eq!(
            found(text),
            vec![
                (2, "auth_layer::"),
                (3, "portcullis_wire::"),
                (8, "refresh_layer::"),
                (9, "portcullis_testkit::"),
                (10, "jsonwebtoken::"),
                (11, "jsonwebtoken::"),
                (12, "auth_layer::"),
                (13, "refresh_layer::"),
            ]
        );
    }

    #[test]
    fn facade_paths_prose_links_code_and_other_languages_pass() {
        let text = "\
//! Prose may name `auth_layer::AuthLayer` and [`X`](portcullis_wire::X).
//! ```
//! use portcullis::server::AuthLayer;
//! use portcullis::server::jsonwebtoken::Algorithm;
//! # use portcullis::client::jsonwebtoken::Algorithm as A;
//! use my_auth_layer::Thing;
//! use other::auth_layer::Thing as Other;
//! ```
//! ```text
//! auth_layer::AuthLayer
//! ```
use auth_layer::AuthLayer;
//// ```
//// use jsonwebtoken::Algorithm;
fn f() { let _ = jsonwebtoken::Algorithm::HS256; }
";
        assert_eq!(found(text), vec![]);
    }

    #[test]
    fn a_block_ends_where_its_doc_comment_ends() {
        // An unclosed fence in one item's docs does not make the next item's code an example.
        let text = "/// ```\n/// let x = 1;\nfn f() {}\n/// auth_layer:: in prose\nfn g() {}\n";
        assert_eq!(found(text), vec![]);
    }
}
