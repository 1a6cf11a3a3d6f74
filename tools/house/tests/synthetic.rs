//! The checks on small synthetic crates written to a temporary directory, and a read of the
//! real workspace.

use std::fs;
use std::path::{Path, PathBuf};

use house::{Cycle, cycles, edges, read_crate};

/// A fresh directory holding `files` (path, contents) under `src/`, removed when dropped.
struct TempCrate(PathBuf);

impl std::ops::Deref for TempCrate {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCrate {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_crate(test: &str, files: &[(&str, &str)]) -> TempCrate {
    let dir = std::env::temp_dir().join(format!("house-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in files {
        let file = dir.join("src").join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    }
    TempCrate(dir)
}

fn cycles_of(dir: &Path) -> Vec<Cycle> {
    let tree = read_crate("synthetic", &dir.join("src/lib.rs")).unwrap();
    cycles("synthetic", &edges(&tree))
}

fn names(cycle: &Cycle) -> Vec<String> {
    cycle
        .steps
        .iter()
        .map(|s| house::module_name(&s.from))
        .collect()
}

#[test]
fn two_modules_using_each_other_are_a_cycle_with_a_line_each_way() {
    let dir = write_crate(
        "cycle",
        &[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            (
                "b.rs",
                "pub struct B;\n\nfn make() -> crate::a::A {\n    crate::a::A(B)\n}\n",
            ),
        ],
    );
    let found = cycles_of(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(names(&found[0]), ["a", "b"]);
    let evidence = found[0].to_string();
    assert!(evidence.contains("src/a.rs:1 (crate::b::B)"), "{evidence}");
    assert!(evidence.contains("src/b.rs:3 (crate::a::A)"), "{evidence}");
}

#[test]
fn a_one_way_chain_is_no_cycle() {
    let dir = write_crate(
        "chain",
        &[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("b.rs", "pub struct B(pub super::c::C);\n"),
            ("c.rs", "pub struct C;\n"),
        ],
    );
    assert!(cycles_of(&dir).is_empty());
}

#[test]
fn a_reexport_is_followed_to_the_defining_module() {
    let dir = write_crate(
        "reexport",
        &[
            ("lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
            ("a.rs", "use crate::B;\npub struct A(B);\n"),
            ("b.rs", "pub struct B;\nfn f(_: &crate::a::A) {}\n"),
        ],
    );
    let tree = read_crate("synthetic", &dir.join("src/lib.rs")).unwrap();
    let edges = edges(&tree);
    assert!(
        edges.iter().any(|e| e.from == ["a"] && e.to == ["b"]),
        "{edges:?}"
    );
    // Not a cycle through the root: the root only re-exports.
    let found = cycles("synthetic", &edges);
    assert_eq!(found.len(), 1);
    assert_eq!(names(&found[0]), ["a", "b"]);
}

#[test]
fn a_cfg_test_module_is_ignored() {
    let dir = write_crate(
        "cfg_test",
        &[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
            (
                "b.rs",
                "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n\
                 #[cfg(all(test, unix))]\nfn helper(_: crate::a::A) {}\n",
            ),
        ],
    );
    assert!(cycles_of(&dir).is_empty());
}

#[test]
fn a_child_using_its_parent_while_the_parent_uses_it_is_a_cycle() {
    let dir = write_crate(
        "parent",
        &[
            (
                "lib.rs",
                "mod child;\npub struct X;\npub fn run() {\n    child::f();\n}\n",
            ),
            ("child.rs", "pub fn f() {\n    let _ = super::X;\n}\n"),
        ],
    );
    let found = cycles_of(&dir);
    assert_eq!(found.len(), 1);
    assert_eq!(names(&found[0]), ["lib", "child"]);
}

#[test]
fn mod_rs_path_attributes_and_inline_modules_are_followed() {
    let dir = write_crate(
        "layouts",
        &[
            (
                "lib.rs",
                "mod d;\n#[path = \"other/e.rs\"]\nmod e;\nmod inline {\n    pub fn g() {\n        \
                 crate::d::h();\n    }\n}\n",
            ),
            (
                "d/mod.rs",
                "mod nested;\npub fn h() {\n    crate::inline::g();\n}\n",
            ),
            (
                "d/nested.rs",
                "pub fn n() {\n    format!(\"{}\", crate::e::E);\n}\n",
            ),
            ("other/e.rs", "pub struct E;\n"),
        ],
    );
    let tree = read_crate("synthetic", &dir.join("src/lib.rs")).unwrap();
    for module in [vec!["d"], vec!["d", "nested"], vec!["e"], vec!["inline"]] {
        let module: Vec<String> = module.into_iter().map(str::to_owned).collect();
        assert!(tree.modules.contains_key(&module), "{module:?}");
    }
    let edges = edges(&tree);
    // A path inside a macro's arguments counts.
    assert!(
        edges
            .iter()
            .any(|e| e.from == ["d", "nested"] && e.to == ["e"])
    );
    let found = cycles("synthetic", &edges);
    assert_eq!(found.len(), 1);
    assert_eq!(names(&found[0]), ["d", "inline"]);
}

#[test]
fn a_three_module_loop_is_reported_once() {
    let dir = write_crate(
        "loop",
        &[
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "pub struct A(pub crate::b::B);\n"),
            ("b.rs", "pub struct B(pub crate::c::C);\n"),
            ("c.rs", "pub struct C(pub Box<crate::a::A>);\n"),
        ],
    );
    let found = cycles_of(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(names(&found[0]), ["a", "b", "c"]);
}

#[test]
fn a_file_over_the_bound_is_long() {
    let dir = write_crate("long", &[("lib.rs", &"//\n".repeat(601)), ("ok.rs", "")]);
    fs::write(dir.join("Cargo.toml"), "[package]\nname = \"long\"\n").unwrap();
    let long = house::long_files(&dir, house::MAX_LINES);
    assert_eq!(long, [(dir.join("src/lib.rs"), 601)]);
}

#[test]
fn every_crate_of_the_workspace_is_read() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let roots = house::crate_roots(&workspace);
    for expected in [
        "portcullis",
        "auth-layer",
        "refresh-layer",
        "portcullis-wire",
    ] {
        assert!(roots.iter().any(|r| r.name == expected), "{roots:?}");
    }
    for root in roots {
        read_crate(&root.name, &root.root).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_module_using_an_item_of_the_crate_root_is_found() {
    let dir = write_crate(
        "root_item",
        &[
            (
                "lib.rs",
                "mod a;\nmod b;\npub use a::A;\npub struct Root;\n",
            ),
            ("a.rs", "pub struct A(pub crate::Root);\n"),
            ("b.rs", "pub struct B(pub crate::A);\n"),
        ],
    );
    let tree = read_crate("synthetic", &dir.join("src/lib.rs")).unwrap();
    let found = house::root_item_uses(&tree);
    // `b` names `crate::A`, a re-export: that is `a`'s item, not the root's.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].edge.from, ["a"]);
    assert!(found[0].to_string().contains("src/a.rs:1"), "{}", found[0]);
}
