//! The map and the territory: every production file is named in `ARCHITECTURE.md`, and the
//! README's list of benches is the `benches/` directory's.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::production_files;

/// Whether `text` names `word` with no identifier character or `/` right before it and no
/// identifier character right after it (`jwt/keys.rs` names `jwt/keys.rs`, not `keys.rs`;
/// `monkeys.rs` does not name `keys.rs`).
fn mentions(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| is_ident(c) || c == '/') && !after.is_some_and(is_ident)
    })
}

/// Where a production file must be named: the `ARCHITECTURE.md` section whose `## ` heading
/// holds `` `key` `` (the package's directory with a slash, `src/` for the root package,
/// `examples/` for the examples), and the name it must be given there: its path under the
/// package's `src/` (under `examples/` for examples), a `mod.rs` by its directory (`jwt/jwks/`).
fn place_of(workspace: &Path, file: &Path) -> Option<(String, String)> {
    let rel = file.strip_prefix(workspace).unwrap_or(file);
    let rel = rel.to_str()?.trim_start_matches("./").to_owned();
    let (key, inner) = if let Some(inner) = rel.strip_prefix("src/") {
        ("src/".to_owned(), inner.to_owned())
    } else if let Some((pkg, inner)) = rel.split_once("/src/") {
        (format!("{pkg}/"), inner.to_owned())
    } else {
        let inner = rel.strip_prefix("examples/")?;
        ("examples/".to_owned(), inner.to_owned())
    };
    let name = match inner.strip_suffix("mod.rs") {
        Some(dir) if dir.is_empty() || dir.ends_with('/') => dir.to_owned(),
        _ => inner,
    };
    Some((key, name))
}

/// The production files `ARCHITECTURE.md` does not name in their package's section (see
/// `place_of`), so a file added to a crate without a line on the map is reported, and a
/// name written in another crate's section does not count.
pub fn unnamed_files(workspace: &Path) -> std::io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string(workspace.join("ARCHITECTURE.md"))?;
    let sections: Vec<(&str, &str)> = text
        .split("\n## ")
        .skip(1)
        .map(|s| s.split_once('\n').unwrap_or((s, "")))
        .collect();
    Ok(production_files(workspace)
        .into_iter()
        .filter(|file| {
            let Some((key, name)) = place_of(workspace, file) else {
                return true;
            };
            let heading_key = format!("`{key}`");
            !sections
                .iter()
                .any(|(heading, body)| heading.contains(&heading_key) && mentions(body, &name))
        })
        .collect())
}

/// What the README's "Tests and benchmarks" section and `benches/` disagree on: benches the
/// section does not name (as `` `name` ``), and `benches/…` files it names that do not exist.
pub fn bench_list_mismatches(workspace: &Path) -> std::io::Result<Vec<String>> {
    let readme = fs::read_to_string(workspace.join("README.md"))?;
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Tests and benchmarks"))
        .unwrap_or("");
    let benches = workspace.join("benches");
    let mut out = Vec::new();
    let mut names: Vec<String> = fs::read_dir(&benches)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .collect();
    names.sort();
    for name in names {
        if !section.contains(&format!("`{name}`")) {
            out.push(format!(
                "bench `{name}` (benches/{name}.rs) is not in the README's list"
            ));
        }
    }
    for (at, _) in section.match_indices("benches/") {
        let rest = &section[at..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || "/._-".contains(c)))
            .unwrap_or(rest.len());
        let named = rest[..end].trim_end_matches('.');
        if !workspace.join(named).exists() {
            out.push(format!("the README names {named}, which does not exist"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_named_by_its_path_under_src_in_its_packages_section() {
        let ws = Path::new("/w");
        let place = |p: &str| place_of(ws, Path::new(p)).unwrap();
        assert_eq!(
            place("/w/auth-layer/src/jwt/jwks/builder.rs"),
            ("auth-layer/".into(), "jwt/jwks/builder.rs".into())
        );
        assert_eq!(
            place("/w/auth-layer/src/jwt/mod.rs"),
            ("auth-layer/".into(), "jwt/".into())
        );
        assert_eq!(place("/w/src/lib.rs"), ("src/".into(), "lib.rs".into()));
        assert_eq!(
            place("/w/examples/support/src/demo_app.rs"),
            ("examples/support/".into(), "demo_app.rs".into())
        );
        assert_eq!(
            place("/w/examples/mcp_gateway/main.rs"),
            ("examples/".into(), "mcp_gateway/main.rs".into())
        );
    }

    #[test]
    fn a_nested_path_does_not_name_a_top_level_file_of_the_same_name() {
        assert!(mentions("jwt/builder.rs  the builder", "jwt/builder.rs"));
        assert!(!mentions("jwt/builder.rs  the builder", "builder.rs"));
        assert!(!mentions("monkeys.rs", "keys.rs"));
        assert!(mentions("keys.rs, header.rs", "keys.rs"));
    }
}
