//! Where the workspace's crates and production files are, found by walking the directories
//! (no `cargo` run needed): every `Cargo.toml` with a `src/lib.rs` or `src/main.rs`, and the
//! examples.

use std::fs;
use std::path::{Path, PathBuf};

/// One crate root to read modules from.
#[derive(Clone, Debug)]
pub struct CrateRoot {
    /// The package name (`name (bin)` for a binary next to a library; `example x` for an
    /// example).
    pub name: String,
    /// Its root file.
    pub root: PathBuf,
}

/// Directories never walked: build output, dependencies and hidden ones (VCS data) anywhere;
/// at the top, the fuzz package (built apart with nightly) and the Node peers.
const SKIPPED: &[&str] = &["target", "node_modules"];
const SKIPPED_AT_TOP: &[&str] = &["fuzz", "interop"];

fn walk(dir: &Path, top: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || SKIPPED.contains(&name) {
            continue;
        }
        if top && SKIPPED_AT_TOP.contains(&name) {
            continue;
        }
        if path.is_dir() {
            walk(&path, false, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file under `dir` (sorted; skipped directories left out).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, true, &mut out);
    out
}

fn package_name(manifest: &Path) -> Option<String> {
    let text = fs::read_to_string(manifest).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

/// The directories holding a package manifest.
pub(crate) fn package_dirs(workspace: &Path) -> Vec<PathBuf> {
    files(workspace)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "Cargo.toml"))
        .filter_map(|f| f.parent().map(Path::to_owned))
        .collect()
}

/// Every crate root: each package's `src/lib.rs` and `src/main.rs`, and each example
/// (`examples/x.rs`, `examples/x/main.rs`).
pub fn crate_roots(workspace: &Path) -> Vec<CrateRoot> {
    let mut out = Vec::new();
    for dir in package_dirs(workspace) {
        let Some(name) = package_name(&dir.join("Cargo.toml")) else {
            continue;
        };
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        if lib.is_file() {
            out.push(CrateRoot {
                name: name.clone(),
                root: lib.clone(),
            });
        }
        if main.is_file() {
            let name = if lib.is_file() {
                format!("{name} (bin)")
            } else {
                name
            };
            out.push(CrateRoot { name, root: main });
        }
    }
    let examples = workspace.join("examples");
    for entry in fs::read_dir(&examples).into_iter().flatten().flatten() {
        let path = entry.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let root = if path.extension().is_some_and(|e| e == "rs") {
            path.clone()
        } else {
            path.join("main.rs")
        };
        if root.is_file() && !path.join("Cargo.toml").is_file() {
            out.push(CrateRoot {
                name: format!("example {stem}"),
                root,
            });
        }
    }
    out.sort_by(|a, b| a.root.cmp(&b.root));
    out
}

/// The production sources: `src/` of every package (the benches' package excluded) and
/// everything under `examples/`. Tests and benches are not production code.
pub fn production_files(workspace: &Path) -> Vec<PathBuf> {
    let benches = workspace.join("benches");
    let mut out: Vec<PathBuf> = package_dirs(workspace)
        .into_iter()
        .filter(|dir| !dir.starts_with(&benches))
        .flat_map(|dir| files(&dir.join("src")))
        .chain(files(&workspace.join("examples")))
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .collect();
    out.sort();
    out.dedup();
    out
}
