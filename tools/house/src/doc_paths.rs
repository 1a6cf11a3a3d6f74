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

/// The Markdown files whose Rust code blocks are doctests too (the facade includes them).
pub const DOC_EXAMPLE_MARKDOWN: &[&str] = &["README.md"];

/// Each crate a doc example must not name (as a path, `use … as`, `extern crate`), and what to
/// write instead.
const FORBIDDEN: &[(&str, &str)] = &[
    ("auth_layer", "portcullis::server"),
    ("refresh_layer", "portcullis::client"),
    ("portcullis_wire", "portcullis::wire"),
    ("portcullis_testkit", "portcullis::testkit"),
    ("jsonwebtoken", "portcullis::server::jsonwebtoken"),
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
    /// The crate named (`auth_layer`).
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

/// The forbidden crates `code` names, each as a whole identifier: the first segment of a path
/// (or after a leading `::`), `use auth_layer as x;`, `extern crate auth_layer;` alike. A name
/// that is a later segment of another path (`other::auth_layer`) is another item, except
/// `jsonwebtoken` inside a path other than those of [`JSONWEBTOKEN_VIA`].
fn forbidden_in(code: &str) -> Vec<(&'static str, &'static str)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let starts_path = |before: &str| !before.ends_with(|c: char| ident(c) || c == ':');
    let mut out = Vec::new();
    for &(name, instead) in FORBIDDEN {
        let named = code.match_indices(name).any(|(at, _)| {
            let (before, after) = (&code[..at], &code[at + name.len()..]);
            if after.starts_with(ident) || before.ends_with(ident) {
                return false;
            }
            let Some(path) = before.strip_suffix("::") else {
                return starts_path(before);
            };
            if starts_path(path) {
                return true;
            }
            // `auth_layer::jsonwebtoken` is reported once, as `auth_layer`.
            name == "jsonwebtoken"
                && !JSONWEBTOKEN_VIA.iter().any(|v| before.ends_with(v))
                && !FORBIDDEN
                    .iter()
                    .any(|(p, _)| path.ends_with(p) && starts_path(&path[..path.len() - p.len()]))
        });
        if named {
            out.push((name, instead));
        }
    }
    out
}

/// An opening or closing code fence (```` ``` ```` or `~~~`), with its info string.
fn fence(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    ["```", "~~~"].iter().find_map(|f| {
        trimmed
            .strip_prefix(f)
            .map(|info| info.trim_start_matches(['`', '~']).trim())
    })
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
        if let Some(info) = fence(doc) {
            open = match open {
                Some(_) => None,
                None => Some((kind, is_rust_fence(info))),
            };
            continue;
        }
        if let Some((_, true)) = open {
            out.extend(uses_on_line(file, index, doc));
        }
    }
    out
}

/// What line `index` (from 0) of `file`, whose code is `code`, names.
fn uses_on_line<'a>(
    file: &'a Path,
    index: usize,
    code: &str,
) -> impl Iterator<Item = DocPathUse> + 'a {
    forbidden_in(code)
        .into_iter()
        .map(move |(written, instead)| DocPathUse {
            file: file.to_owned(),
            line: index + 1,
            written,
            instead,
        })
}

/// The lines of a Markdown `text` (the source of `file`) where a Rust code block names a
/// forbidden crate.
pub fn markdown_path_uses(file: &Path, text: &str) -> Vec<DocPathUse> {
    let mut out = Vec::new();
    let mut open: Option<bool> = None;
    for (index, line) in text.lines().enumerate() {
        if let Some(info) = fence(line) {
            open = match open {
                Some(_) => None,
                None => Some(is_rust_fence(info)),
            };
            continue;
        }
        if open == Some(true) {
            out.extend(uses_on_line(file, index, line));
        }
    }
    out
}

/// [`doc_path_uses`] of every `.rs` file under [`DOC_EXAMPLE_DIRS`] of `workspace`, and
/// [`markdown_path_uses`] of [`DOC_EXAMPLE_MARKDOWN`].
pub fn workspace_doc_path_uses(workspace: &Path) -> std::io::Result<Vec<DocPathUse>> {
    let mut out = Vec::new();
    for name in DOC_EXAMPLE_MARKDOWN {
        let file = workspace.join(name);
        out.extend(markdown_path_uses(&file, &fs::read_to_string(&file)?));
    }
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
                (2, "auth_layer"),
                (3, "portcullis_wire"),
                (8, "refresh_layer"),
                (9, "portcullis_testkit"),
                (10, "jsonwebtoken"),
                (11, "jsonwebtoken"),
                (12, "auth_layer"),
                (13, "refresh_layer"),
            ]
        );
    }

    #[test]
    fn a_crate_named_by_a_rename_or_extern_crate_or_in_a_tilde_fence_is_reported() {
        let text = "\
/// ~~~
/// use auth_layer as server;
/// extern crate refresh_layer;
/// use portcullis_wire as w;
/// use jsonwebtoken as jwt;
/// ~~~
fn f() {}
";
        assert_eq!(
            found(text),
            vec![
                (2, "auth_layer"),
                (3, "refresh_layer"),
                (4, "portcullis_wire"),
                (5, "jsonwebtoken"),
            ]
        );
    }

    #[test]
    fn markdown_rust_blocks_are_checked_and_other_blocks_are_not() {
        let text = "\
Prose names auth_layer.
```rust
use portcullis::server::AuthLayer;
use auth_layer::Principal;
```
```sh
cargo test -p auth_layer
```
";
        let found: Vec<_> = markdown_path_uses(Path::new("README.md"), text)
            .into_iter()
            .map(|u| (u.line, u.written))
            .collect();
        assert_eq!(found, vec![(4, "auth_layer")]);
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
