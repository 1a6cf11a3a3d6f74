//! From written paths to edges "module A refers to an item defined in module B": `use`
//! aliases, re-exports and globs are followed to the module that defines the item.

use crate::tree::{CrateTree, Location, ModPath, Module};

/// One reference from a module to an item another module defines.
#[derive(Clone, Debug)]
pub struct Edge {
    /// The referring module.
    pub from: ModPath,
    /// The module defining the item.
    pub to: ModPath,
    /// Where the reference is written.
    pub at: Location,
    /// The path as written.
    pub written: String,
}

/// Aliases lead to aliases; past this many steps a path is taken as unresolvable (a `use`
/// loop rustc would refuse anyway).
const MAX_DEPTH: usize = 32;

/// Every edge of a crate: its modules' private `use` lines and the paths in their code.
/// `mod` lines and re-exports (`pub use`) are not edges: they name, they do not use.
pub fn edges(tree: &CrateTree) -> Vec<Edge> {
    let mut out = Vec::new();
    for module in tree.modules.values() {
        let imports = module
            .imports
            .iter()
            .filter(|i| !i.reexport && i.name != "*")
            .map(|i| &i.path);
        for raw in imports.chain(&module.references) {
            let Some(to) = defining_module(tree, &module.path, &raw.segments) else {
                continue;
            };
            if to != module.path {
                out.push(Edge {
                    from: module.path.clone(),
                    to,
                    at: raw.at.clone(),
                    written: raw.segments.join("::"),
                });
            }
        }
    }
    out
}

/// The module defining the item `segments` names when written in module `from`; `None` for
/// paths outside the crate, locals, and paths that end on a module rather than an item.
pub fn defining_module(tree: &CrateTree, from: &ModPath, segments: &[String]) -> Option<ModPath> {
    let absolute = absolute(tree, from, segments, 0)?;
    resolve(tree, &absolute, 0)
}

fn module<'a>(tree: &'a CrateTree, path: &ModPath) -> Option<&'a Module> {
    tree.modules.get(path)
}

fn names(module: &Module, name: &str) -> bool {
    module.children.contains(name)
        || module.items.contains(name)
        || module.imports.iter().any(|i| i.name == name)
}

/// `segments` written in module `from`, as a path from the crate root (whose segments may go on
/// through items and aliases).
fn absolute(
    tree: &CrateTree,
    from: &ModPath,
    segments: &[String],
    depth: usize,
) -> Option<Vec<String>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (first, rest) = segments.split_first()?;
    let here = module(tree, from)?;
    let joined = |base: &[String], rest: &[String]| -> Vec<String> {
        base.iter().chain(rest).cloned().collect()
    };
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some(joined(from, rest)),
        "super" => {
            let mut base = from.clone();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some(joined(&base, rest))
        }
        name => {
            if here.children.contains(name) || here.items.contains(name) {
                return Some(joined(from, segments));
            }
            if let Some(import) = here.imports.iter().find(|i| i.name == name) {
                let target = absolute(tree, from, &import.path.segments, depth + 1)?;
                return Some(joined(&target, rest));
            }
            // A name a glob brings in.
            for glob in here.imports.iter().filter(|i| i.name == "*") {
                let Some(source) = absolute(tree, from, &glob.path.segments, depth + 1) else {
                    continue;
                };
                if module(tree, &source).is_some_and(|m| names(m, name)) {
                    return Some(joined(&source, segments));
                }
            }
            None
        }
    }
}

/// The module that defines what the root-relative `path` names.
fn resolve(tree: &CrateTree, path: &[String], depth: usize) -> Option<ModPath> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut at: ModPath = Vec::new();
    for (i, segment) in path.iter().enumerate() {
        let here = module(tree, &at)?;
        if here.children.contains(segment) {
            at.push(segment.clone());
            continue;
        }
        if here.items.contains(segment) {
            return Some(at);
        }
        if let Some(import) = here.imports.iter().find(|im| &im.name == segment) {
            let mut target = absolute(tree, &at, &import.path.segments, depth + 1)?;
            target.extend_from_slice(&path[i + 1..]);
            return resolve(tree, &target, depth + 1);
        }
        for glob in here.imports.iter().filter(|im| im.name == "*") {
            let Some(mut source) = absolute(tree, &at, &glob.path.segments, depth + 1) else {
                continue;
            };
            if module(tree, &source).is_some_and(|m| names(m, segment)) {
                source.extend_from_slice(&path[i..]);
                return resolve(tree, &source, depth + 1);
            }
        }
        return None;
    }
    // The path ends on a module: a reference to the module as a whole names nothing it
    // defines (its items, when used, are edges of their own).
    None
}
