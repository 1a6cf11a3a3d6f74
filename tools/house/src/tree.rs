//! The module tree of one crate, read from its root file by following `mod` declarations the
//! way rustc does (`#[path]`, inline `mod x { }`, `mod.rs` and `x.rs` layouts). Modules and
//! items under `#[cfg(test)]` are left out: test code may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, UseTree};

/// A module's path from the crate root (empty for the root).
pub type ModPath = Vec<String>;

/// Where something is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The source file.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A path as written in a module, before it is resolved.
#[derive(Clone, Debug)]
pub struct RawPath {
    /// Its segments (`crate`, `super`, `self` included).
    pub segments: Vec<String>,
    /// Where it is written.
    pub at: Location,
}

/// One leaf of a `use` tree.
#[derive(Clone, Debug)]
pub struct Import {
    /// The name it binds in the module, `*` for a glob.
    pub name: String,
    /// The path it names (for a glob, the module whose names it brings).
    pub path: RawPath,
    /// `pub use` / `pub(crate) use`: a re-export, which names a thing and uses nothing.
    pub reexport: bool,
}

/// One module: what it defines, declares and refers to.
#[derive(Debug, Default)]
pub struct Module {
    /// Its path from the crate root.
    pub path: ModPath,
    /// The file it is written in.
    pub file: PathBuf,
    /// Its child modules.
    pub children: BTreeSet<String>,
    /// The items it defines (types, functions, traits, constants, macros…).
    pub items: BTreeSet<String>,
    /// Its `use` leaves.
    pub imports: Vec<Import>,
    /// Every path written in its code (not in its `use` lines).
    pub references: Vec<RawPath>,
}

/// Every module of one crate.
#[derive(Debug)]
pub struct CrateTree {
    /// The crate's name (for reports).
    pub name: String,
    /// Its modules by path.
    pub modules: BTreeMap<ModPath, Module>,
}

/// Why a crate's tree could not be read.
#[derive(Debug)]
pub enum TreeError {
    /// A source file could not be read.
    Read(PathBuf, std::io::Error),
    /// A source file is not Rust syn can parse.
    Parse(PathBuf, syn::Error),
    /// A `mod x;` names no file.
    MissingModule(Location, String),
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(file, e) => write!(f, "{}: {e}", file.display()),
            Self::Parse(file, e) => {
                let at = e.span().start();
                write!(f, "{}:{}: {e}", file.display(), at.line)
            }
            Self::MissingModule(at, name) => write!(f, "{at}: no file for `mod {name};`"),
        }
    }
}

impl std::error::Error for TreeError {}

/// Reads the crate whose root file (`src/lib.rs`, `src/main.rs`) is `root`.
pub fn read_crate(name: &str, root: &Path) -> Result<CrateTree, TreeError> {
    let mut tree = CrateTree {
        name: name.to_owned(),
        modules: BTreeMap::new(),
    };
    let mut exported_macros = Vec::new();
    read_file_module(&mut tree, &mut exported_macros, Vec::new(), root, true)?;
    // `#[macro_export]` puts a macro at the crate root, wherever it is written.
    if let Some(root_module) = tree.modules.get_mut(&Vec::new()) {
        for (name, path, at) in exported_macros {
            let mut segments = vec!["crate".to_owned()];
            segments.extend(path);
            segments.push(name.clone());
            root_module.imports.push(Import {
                name,
                path: RawPath { segments, at },
                reexport: true,
            });
        }
    }
    Ok(tree)
}

type ExportedMacros = Vec<(String, ModPath, Location)>;

fn read_file_module(
    tree: &mut CrateTree,
    macros: &mut ExportedMacros,
    path: ModPath,
    file: &Path,
    mod_rs: bool,
) -> Result<(), TreeError> {
    let source = fs::read_to_string(file).map_err(|e| TreeError::Read(file.to_owned(), e))?;
    let ast = syn::parse_file(&source).map_err(|e| TreeError::Parse(file.to_owned(), e))?;
    let parent = file.parent().unwrap_or(Path::new("")).to_owned();
    // Children of `a.rs` live in `a/`; children of `mod.rs`, `lib.rs`, `main.rs` and of a
    // `#[path]` file live next to it.
    let dir = if mod_rs {
        parent
    } else {
        parent.join(file.file_stem().unwrap_or_default())
    };
    read_items(tree, macros, path, file, &dir, &ast.items)
}

fn read_items(
    tree: &mut CrateTree,
    macros: &mut ExportedMacros,
    path: ModPath,
    file: &Path,
    dir: &Path,
    items: &[Item],
) -> Result<(), TreeError> {
    let mut module = Module {
        path: path.clone(),
        file: file.to_owned(),
        ..Module::default()
    };
    for item in items {
        if is_test_only(item_attrs(item)) {
            continue;
        }
        match item {
            Item::Mod(m) => {
                let name = m.ident.to_string();
                module.children.insert(name.clone());
                let mut child = path.clone();
                child.push(name.clone());
                if let Some((_, content)) = &m.content {
                    read_items(tree, macros, child, file, &dir.join(&name), content)?;
                } else if let Some(custom) = path_attr(&m.attrs) {
                    let parent = file.parent().unwrap_or(Path::new(""));
                    read_file_module(tree, macros, child, &parent.join(custom), true)?;
                } else {
                    let flat = dir.join(format!("{name}.rs"));
                    let nested = dir.join(&name).join("mod.rs");
                    let (found, mod_rs) = if flat.is_file() {
                        (flat, false)
                    } else if nested.is_file() {
                        (nested, true)
                    } else {
                        let at = location(file, m.ident.span());
                        return Err(TreeError::MissingModule(at, name));
                    };
                    read_file_module(tree, macros, child, &found, mod_rs)?;
                }
            }
            Item::Use(u) => collect_use(&mut module, file, u),
            other => {
                if let Some(name) = defined_name(other) {
                    if let Item::Macro(m) = other
                        && m.attrs.iter().any(|a| a.path().is_ident("macro_export"))
                    {
                        let at = location(file, m.mac.path.segments[0].ident.span());
                        macros.push((name.clone(), path.clone(), at));
                    }
                    module.items.insert(name);
                }
                References {
                    file,
                    module: &mut module,
                }
                .visit_item(other);
            }
        }
    }
    tree.modules.insert(path, module);
    Ok(())
}

/// The name an item defines in its module's namespace, if any.
fn defined_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]`, or any `cfg` that names `test` (`all(test, …)`): compiled for tests only.
/// A `cfg(not(test))` item is kept.
fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| names_test(list.tokens.clone()))
    })
}

fn names_test(tokens: TokenStream) -> bool {
    let mut previous_not = false;
    for token in tokens {
        match token {
            TokenTree::Ident(ident) if ident == "test" => return true,
            TokenTree::Ident(ident) => previous_not = ident == "not",
            TokenTree::Group(group) if !previous_not => {
                if names_test(group.stream()) {
                    return true;
                }
            }
            _ => previous_not = false,
        }
    }
    false
}

fn path_attr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| {
        let value = &attr.meta.require_name_value().ok()?.value;
        match value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) if attr.path().is_ident("path") => Some(s.value()),
            _ => None,
        }
    })
}

fn location(file: &Path, span: proc_macro2::Span) -> Location {
    Location {
        file: file.to_owned(),
        line: span.start().line,
    }
}

fn collect_use(module: &mut Module, file: &Path, item: &syn::ItemUse) {
    let reexport = !matches!(item.vis, syn::Visibility::Inherited);
    let mut leaves = Vec::new();
    use_leaves(&item.tree, Vec::new(), &mut leaves);
    for (name, segments, span) in leaves {
        if item.leading_colon.is_some() {
            continue;
        }
        module.imports.push(Import {
            name,
            path: RawPath {
                segments,
                at: location(file, span),
            },
            reexport,
        });
    }
}

type Leaf = (String, Vec<String>, proc_macro2::Span);

fn use_leaves(tree: &UseTree, mut prefix: Vec<String>, out: &mut Vec<Leaf>) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
        }
        UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                // `use a::b::{self}` binds `b`.
                if let Some(last) = prefix.last().cloned() {
                    out.push((last, prefix, n.ident.span()));
                }
            } else {
                prefix.push(name.clone());
                out.push((name, prefix, n.ident.span()));
            }
        }
        UseTree::Rename(r) => {
            let name = r.ident.to_string();
            if name != "self" {
                prefix.push(name);
            }
            out.push((r.rename.to_string(), prefix, r.ident.span()));
        }
        UseTree::Glob(g) => out.push(("*".to_owned(), prefix, g.star_token.span)),
        UseTree::Group(g) => {
            for tree in &g.items {
                use_leaves(tree, prefix.clone(), out);
            }
        }
    }
}

/// Collects the paths written in an item's code.
struct References<'a> {
    file: &'a Path,
    module: &'a mut Module,
}

impl<'ast> Visit<'ast> for References<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none()
            && let Some(first) = path.segments.first()
        {
            self.module.references.push(RawPath {
                segments: path.segments.iter().map(|s| s.ident.to_string()).collect(),
                at: location(self.file, first.ident.span()),
            });
        }
        visit::visit_path(self, path);
    }

    fn visit_item(&mut self, item: &'ast Item) {
        if is_test_only(item_attrs(item)) {
            return;
        }
        match item {
            Item::Use(u) => collect_use(self.module, self.file, u),
            // A module inside a function body is rare; it is not followed.
            Item::Mod(_) => {}
            other => visit::visit_item(self, other),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        let attrs = match item {
            ImplItem::Const(i) => &i.attrs,
            ImplItem::Fn(i) => &i.attrs,
            ImplItem::Type(i) => &i.attrs,
            ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if !is_test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // Macro arguments are tokens, not syntax: the `crate::`, `super::` and `self::` paths
        // in them are read from the tokens.
        macro_paths(mac.tokens.clone(), self.file, &mut self.module.references);
        visit::visit_macro(self, mac);
    }
}

fn macro_paths(tokens: TokenStream, file: &Path, out: &mut Vec<RawPath>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(group) => macro_paths(group.stream(), file, out),
            TokenTree::Ident(ident)
                if ["crate", "super", "self"].contains(&ident.to_string().as_str())
                    && is_path_sep(&tokens, i + 1) =>
            {
                let at = location(file, ident.span());
                let mut segments = vec![ident.to_string()];
                let mut j = i + 1;
                while is_path_sep(&tokens, j) {
                    match tokens.get(j + 2) {
                        Some(TokenTree::Ident(next)) => segments.push(next.to_string()),
                        _ => break,
                    }
                    j += 3;
                }
                out.push(RawPath { segments, at });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    matches!(
        (tokens.get(i), tokens.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':'
    )
}
