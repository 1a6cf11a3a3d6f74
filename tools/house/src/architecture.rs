//! The map and the territory: every production file is named in `ARCHITECTURE.md`, and the
//! README's list of benches is the `benches/` directory's.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::production_files;

/// Whether `text` names `word` with no identifier character right before or after it
/// (`jwt/keys.rs` names `keys.rs`; `monkeys.rs` does not).
fn mentions(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The production files `ARCHITECTURE.md` does not name. A file is named by its file name
/// (`keys.rs`); a `mod.rs` by its directory (`jwt/`).
pub fn unnamed_files(workspace: &Path) -> std::io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string(workspace.join("ARCHITECTURE.md"))?;
    Ok(production_files(workspace)
        .into_iter()
        .filter(|file| {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let named = if name == "mod.rs" {
                let dir = file.parent().and_then(|d| d.file_name());
                let dir = dir.and_then(|d| d.to_str()).unwrap_or("");
                mentions(&text, &format!("{dir}/"))
            } else {
                mentions(&text, name)
            };
            !named
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
