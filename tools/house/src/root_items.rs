//! A crate root holds docs, `mod` lines and re-exports: an item defined in `lib.rs` (or
//! `main.rs`) that the crate's own modules use is code in the root they depend on, the
//! child-to-parent half of a cycle the root's re-exports close.

use std::fmt;

use crate::cycles::module_name;
use crate::resolve::{Edge, edges};
use crate::tree::{CrateTree, TreeError, read_crate};
use crate::workspace::crate_roots;

/// A module using an item its crate root defines.
#[derive(Debug)]
pub struct RootItemUse {
    /// The crate's name.
    pub krate: String,
    /// The first such reference of the module.
    pub edge: Edge,
}

impl fmt::Display for RootItemUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "in {}: {} uses an item defined in the crate root: {} ({})",
            self.krate,
            module_name(&self.edge.from),
            self.edge.at,
            self.edge.written
        )
    }
}

/// The modules of `tree` that use items its root defines (the first reference of each).
pub fn root_item_uses(tree: &CrateTree) -> Vec<RootItemUse> {
    let mut out: Vec<RootItemUse> = Vec::new();
    for edge in edges(tree) {
        if edge.to.is_empty() && !out.iter().any(|u| u.edge.from == edge.from) {
            out.push(RootItemUse {
                krate: tree.name.clone(),
                edge,
            });
        }
    }
    out
}

/// [`root_item_uses`] of every crate under `workspace`.
pub fn workspace_root_item_uses(
    workspace: &std::path::Path,
) -> Result<Vec<RootItemUse>, TreeError> {
    let mut out = Vec::new();
    for root in crate_roots(workspace) {
        out.extend(root_item_uses(&read_crate(&root.name, &root.root)?));
    }
    Ok(out)
}
