//! Checks that keep the workspace's shape, runnable by anyone (`cargo run -p house -- check`)
//! and by `.ci/run`:
//!
//! - **cycles**: no two modules of a crate refer to each other, directly or around a loop.
//!   Each crate's module tree is read from its root file following `mod` declarations
//!   (`#[path]`, inline modules, `mod.rs` and `x.rs` layouts; `#[cfg(test)]` code left out).
//!   An edge "A refers to an item defined in B" comes from A's `use crate::…`/`super::…`/
//!   `self::…` lines and the paths in its code; re-exports (`pub use`) are followed to the
//!   defining module, and `mod`/`pub use` lines are not edges themselves. A parent and a child
//!   that use each other's items form a cycle too.
//! - **root items**: no module uses an item defined in its crate's root (`lib.rs`, `main.rs`):
//!   the root holds docs, `mod` lines and re-exports, and the re-exports would close a cycle.
//! - **lines**: no production file (`src/` of every package, `examples/`) over
//!   [`MAX_LINES`] lines.
//! - **doc paths**: a doc example in the facade or a crate it re-exports names the paths a user
//!   imports (`portcullis::server::…`), never `auth_layer::…`, `refresh_layer::…`,
//!   `portcullis_wire::…`, `portcullis_testkit::…` or a bare `jsonwebtoken::…`.
//! - **architecture**: every production file is named in `ARCHITECTURE.md`, and the README's
//!   bench list is `benches/`.

mod architecture;
mod cycles;
mod doc_paths;
mod lines;
mod resolve;
mod root_items;
mod tree;
mod workspace;

pub use architecture::{bench_list_mismatches, unnamed_files};
pub use cycles::{Cycle, cycles, module_name, workspace_cycles};
pub use doc_paths::{
    DOC_EXAMPLE_DIRS, DOC_EXAMPLE_MARKDOWN, DocPathUse, doc_path_uses, markdown_path_uses,
    workspace_doc_path_uses,
};
pub use lines::{MAX_LINES, long_files};
pub use resolve::{Edge, defining_module, edges};
pub use root_items::{RootItemUse, root_item_uses, workspace_root_item_uses};
pub use tree::{CrateTree, Location, ModPath, Module, TreeError, read_crate};
pub use workspace::{CrateRoot, crate_roots, production_files};
