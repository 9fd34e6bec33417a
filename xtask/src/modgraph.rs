//! `cargo xtask modules`: the core's module graph must have no cycle, and
//! `platform.rs` must import nothing from the crate (issue 14, DESIGN §2).
//!
//! The graph is built from the source with `syn`, so it needs no compiler
//! plugin and runs in a second:
//! - a node is a module of `core-nostd` (a file or an inline `mod`);
//!   `#[cfg(test)]` modules and `tests` modules are left out (tests use
//!   everything by design);
//! - an edge M → N is a `use` in M, or a `crate::`/`super::`/`self::` path in
//!   M's code, that names an item *defined* in N. A path through a
//!   re-export (`pub use`) is followed to the module that defines the item,
//!   and the re-export itself is an edge of the re-exporting module, as a
//!   `use` is;
//! - names from other crates (smoltcp, heapless, ...) are not nodes.
//!
//! A cycle is printed with one source line per edge, so it can be mended.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module path inside the crate, `[]` for the crate root.
type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    file: PathBuf,
    /// Child modules.
    children: BTreeSet<String>,
    /// Items defined here (structs, enums, fns, traits, consts, ...).
    items: BTreeSet<String>,
    /// Names brought in by `use` (any visibility), to their absolute paths.
    uses: BTreeMap<String, ModPath>,
    /// Glob imports `use a::b::*`, as absolute module paths.
    globs: Vec<ModPath>,
    /// Every absolute path this module refers to, with the line.
    refs: Vec<(ModPath, usize)>,
    /// The macros this module invokes, with the line.
    calls: Vec<(String, usize)>,
}

/// The module graph of a crate.
pub struct Graph {
    modules: BTreeMap<ModPath, Module>,
    /// Where each of the crate's `macro_rules!` macros is defined.
    macros: BTreeMap<String, ModPath>,
}

fn is_test_cfg(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().replace(' ', "") == "test")
    })
}

impl Graph {
    /// Reads the crate whose root is `lib`.
    pub fn load(lib: &Path) -> Result<Graph, String> {
        let mut g = Graph {
            modules: BTreeMap::new(),
            macros: BTreeMap::new(),
        };
        let dir = lib.parent().ok_or("no source dir")?.to_path_buf();
        g.load_file(Vec::new(), lib, &dir)?;
        g.absolutize_uses();
        Ok(g)
    }

    /// Makes every `use` target absolute; another crate's are dropped.
    fn absolutize_uses(&mut self) {
        let keys: Vec<ModPath> = self.modules.keys().cloned().collect();
        for at in keys {
            let Some(m) = self.modules.get(&at) else {
                continue;
            };
            let uses: BTreeMap<String, ModPath> = m
                .uses
                .iter()
                .filter_map(|(name, raw)| Some((name.clone(), self.local(&at, raw)?)))
                .collect();
            let globs: Vec<ModPath> = m.globs.iter().filter_map(|g| self.local(&at, g)).collect();
            if let Some(m) = self.modules.get_mut(&at) {
                m.uses = uses;
                m.globs = globs;
            }
        }
    }

    /// `raw` as written in a `use` of module `at`, made absolute; `None`
    /// for another crate's path.
    fn local(&self, at: &ModPath, raw: &[String]) -> Option<ModPath> {
        let first = raw.first()?;
        let mut out = match first.as_str() {
            "crate" => Vec::new(),
            "self" => at.clone(),
            "super" => {
                let mut b = at.clone();
                let mut rest = raw;
                while rest.first().is_some_and(|s| s == "super") {
                    b.pop();
                    rest = rest.get(1..).unwrap_or(&[]);
                }
                b.extend(rest.iter().cloned());
                return Some(b);
            }
            child if self.modules.get(at)?.children.contains(child) => {
                let mut b = at.clone();
                b.extend(raw.iter().cloned());
                return Some(b);
            }
            _ => return None,
        };
        out.extend(raw.iter().skip(1).cloned());
        Some(out)
    }

    /// Loads the module `path` from `file`; its children live in `dir`.
    fn load_file(&mut self, path: ModPath, file: &Path, dir: &Path) -> Result<(), String> {
        let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        self.load_items(path, file, dir, &ast.items)
    }

    fn load_items(
        &mut self,
        path: ModPath,
        file: &Path,
        dir: &Path,
        items: &[syn::Item],
    ) -> Result<(), String> {
        let mut m = Module {
            file: file.to_path_buf(),
            ..Module::default()
        };
        let mut subs = Vec::new();
        for item in items {
            if let syn::Item::Mod(sub) = item {
                let name = sub.ident.to_string();
                if is_test_cfg(&sub.attrs) || name == "tests" {
                    continue;
                }
                m.children.insert(name.clone());
                subs.push(sub);
                continue;
            }
            if let syn::Item::Use(u) = item {
                if is_test_cfg(&u.attrs) {
                    continue;
                }
                let line = u.use_token.span.start().line;
                let mut leaves = Vec::new();
                use_leaves(&u.tree, Vec::new(), &mut leaves);
                for (full, alias) in leaves {
                    match alias {
                        Some(name) => {
                            m.uses.insert(name, full.clone());
                        }
                        None => m.globs.push(full.clone()),
                    }
                    m.refs.push((full, line));
                }
                continue;
            }
            if let Some(name) = item_name(item) {
                m.items.insert(name);
            }
            if is_test_cfg(item_attrs(item)) {
                continue;
            }
            if let syn::Item::Macro(mac) = item {
                if let Some(name) = &mac.ident {
                    // A definition: what its expansion names is this
                    // module's dependency, and its callers depend on it.
                    self.macros.insert(name.to_string(), path.clone());
                    token_paths(mac.mac.tokens.clone(), &mut m.refs);
                    continue;
                }
            }
            let mut v = PathCollector {
                refs: &mut m.refs,
                calls: &mut m.calls,
            };
            v.visit_item(item);
        }
        self.modules.insert(path.clone(), m);
        for sub in subs {
            let name = sub.ident.to_string();
            let mut child = path.clone();
            child.push(name.clone());
            match &sub.content {
                Some((_, inner)) => {
                    let sub_dir = dir.join(&name);
                    self.load_items(child, file, &sub_dir, inner)?;
                }
                None => {
                    let flat = dir.join(format!("{name}.rs"));
                    let nested = dir.join(&name).join("mod.rs");
                    let f = if flat.exists() { flat } else { nested };
                    self.load_file(child, &f, &dir.join(&name))?;
                }
            }
        }
        Ok(())
    }

    /// Turns `raw` (as written in module `at`'s code) into an absolute
    /// path, or `None` for another crate's path: a `crate`/`self`/`super`
    /// or child-module path, else one through a name the module imports.
    fn absolute(&self, at: &ModPath, raw: &[String]) -> Option<ModPath> {
        if let Some(path) = self.local(at, raw) {
            return Some(path);
        }
        let via = self.modules.get(at)?.uses.get(raw.first()?)?;
        let mut b = via.clone();
        b.extend(raw.iter().skip(1).cloned());
        Some(b)
    }

    /// The module that defines what `path` (absolute) names.
    fn definer(&self, path: &[String], depth: usize) -> Option<ModPath> {
        if depth > 16 {
            return None;
        }
        let mut at: ModPath = Vec::new();
        for (i, seg) in path.iter().enumerate() {
            let m = self.modules.get(&at)?;
            if m.children.contains(seg) {
                at.push(seg.clone());
                continue;
            }
            if m.items.contains(seg) {
                return Some(at);
            }
            if let Some(target) = m.uses.get(seg) {
                let mut t = target.clone();
                t.extend(path.iter().skip(i + 1).cloned());
                return self.definer(&t, depth + 1);
            }
            for glob in &m.globs {
                let mut t = glob.clone();
                t.extend(path.iter().skip(i).cloned());
                if let Some(d) = self.definer(&t, depth + 1) {
                    return Some(d);
                }
            }
            // Another crate's name (`core`, `smoltcp`): no node.
            if i == 0 {
                return None;
            }
            // A name we cannot see (a macro, an enum variant path): the
            // module reached so far is the definer.
            return Some(at);
        }
        Some(at)
    }

    /// Every edge, with a source line for each.
    pub fn edges(&self) -> BTreeMap<(ModPath, ModPath), (PathBuf, usize)> {
        let mut out = BTreeMap::new();
        for (from, m) in &self.modules {
            for (raw, line) in &m.refs {
                let Some(abs) = self.absolute(from, raw) else {
                    continue;
                };
                let Some(to) = self.definer(&abs, 0) else {
                    continue;
                };
                if &to != from {
                    out.entry((from.clone(), to))
                        .or_insert((m.file.clone(), *line));
                }
            }
            for (name, line) in &m.calls {
                if let Some(to) = self.macros.get(name) {
                    if to != from {
                        out.entry((from.clone(), to.clone()))
                            .or_insert((m.file.clone(), *line));
                    }
                }
            }
        }
        out
    }

    /// Strongly connected components with more than one module.
    pub fn cycles(&self) -> Vec<Vec<ModPath>> {
        let edges = self.edges();
        let nodes: Vec<&ModPath> = self.modules.keys().collect();
        let index_of: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut adj = vec![Vec::new(); nodes.len()];
        for (from, to) in edges.keys() {
            if let (Some(&a), Some(&b)) = (index_of.get(from), index_of.get(to)) {
                adj[a].push(b);
            }
        }
        tarjan(&adj)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| c.into_iter().map(|i| nodes[i].clone()).collect())
            .collect()
    }
}

/// Tarjan's strongly connected components (iterative).
fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = adj[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut c = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    c.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(c);
            }
        }
    }
    out
}

fn use_leaves(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(ModPath, Option<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            use_leaves(&p.tree, next, out);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                let alias = prefix.last().cloned();
                out.push((prefix, alias));
            } else {
                let mut full = prefix;
                full.push(name.clone());
                out.push((full, Some(name)));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix;
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            out.push((full, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix, None)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(t, prefix.clone(), out);
            }
        }
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    Some(match item {
        syn::Item::Const(i) => i.ident.to_string(),
        syn::Item::Enum(i) => i.ident.to_string(),
        syn::Item::Fn(i) => i.sig.ident.to_string(),
        syn::Item::Macro(i) => i.ident.as_ref()?.to_string(),
        syn::Item::Static(i) => i.ident.to_string(),
        syn::Item::Struct(i) => i.ident.to_string(),
        syn::Item::Trait(i) => i.ident.to_string(),
        syn::Item::TraitAlias(i) => i.ident.to_string(),
        syn::Item::Type(i) => i.ident.to_string(),
        syn::Item::Union(i) => i.ident.to_string(),
        _ => return None,
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        _ => &[],
    }
}

/// Collects every path in code that could name a crate item, and every
/// macro invoked (whose arguments are scanned for paths too).
struct PathCollector<'r> {
    refs: &'r mut Vec<(ModPath, usize)>,
    calls: &'r mut Vec<(String, usize)>,
}

/// The `crate::`/`$crate::`/`super::`/`self::` paths in a macro's tokens
/// (a definition's body or an invocation's arguments), which `syn` leaves
/// unparsed.
fn token_paths(tokens: proc_macro2::TokenStream, out: &mut Vec<(ModPath, usize)>) {
    use proc_macro2::{Spacing, TokenTree};
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        if let TokenTree::Group(g) = &trees[i] {
            token_paths(g.stream(), out);
            i += 1;
            continue;
        }
        // `$crate` is `crate`.
        let (start, first) = match (&trees[i], trees.get(i + 1)) {
            (TokenTree::Punct(p), Some(TokenTree::Ident(id)))
                if p.as_char() == '$' && id == "crate" =>
            {
                (i + 2, ("crate".to_string(), id.span().start().line))
            }
            (TokenTree::Ident(id), _) if id == "crate" || id == "super" || id == "self" => {
                (i + 1, (id.to_string(), id.span().start().line))
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let mut segs = vec![first.0];
        let mut j = start;
        while let (
            Some(TokenTree::Punct(a)),
            Some(TokenTree::Punct(b)),
            Some(TokenTree::Ident(id)),
        ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
        {
            if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':' {
                break;
            }
            segs.push(id.to_string());
            j += 3;
        }
        if segs.len() > 1 {
            out.push((segs, first.1));
        }
        i = j.max(i + 1);
    }
}

impl<'ast> Visit<'ast> for PathCollector<'_> {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() && p.segments.len() > 1 {
            let segs: ModPath = p.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = p
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            self.refs.push((segs, line));
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Some(last) = mac.path.segments.last() {
            let line = last.ident.span().start().line;
            self.calls.push((last.ident.to_string(), line));
        }
        token_paths(mac.tokens.clone(), self.refs);
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Inline modules are nodes of their own.
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

fn show(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The check: no cycle, and `platform` refers to nothing in the crate.
pub fn check(root: &Path) -> Result<String, String> {
    let g = Graph::load(&root.join("core-nostd/src/lib.rs"))?;
    let edges = g.edges();
    let mut problems = Vec::new();
    let platform = vec!["platform".to_string()];
    for ((from, to), (file, line)) in &edges {
        if *from == platform {
            problems.push(format!(
                "platform imports {} ({}:{line}): platform.rs must be a leaf",
                show(to),
                file.display()
            ));
        }
    }
    for cycle in g.cycles() {
        let set: BTreeSet<&ModPath> = cycle.iter().collect();
        let mut lines = vec![format!(
            "cycle of {} modules: {}",
            cycle.len(),
            cycle.iter().map(show).collect::<Vec<_>>().join(", ")
        )];
        for ((from, to), (file, line)) in &edges {
            if set.contains(from) && set.contains(to) {
                lines.push(format!(
                    "  {} -> {}  ({}:{line})",
                    show(from),
                    show(to),
                    file.display()
                ));
            }
        }
        problems.push(lines.join("\n"));
    }
    if problems.is_empty() {
        Ok(format!(
            "core-nostd: {} modules, {} edges, no cycle; platform imports nothing",
            g.modules.len(),
            edges.len()
        ))
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate written out to a scratch directory.
    fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("modgraph-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join("core-nostd/src").join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_child_reaching_into_its_facade_is_a_cycle() {
        let dir = write_crate(
            "facade",
            &[
                ("lib.rs", "pub mod platform;\npub mod a;\n"),
                ("platform.rs", "pub struct P;\n"),
                ("a/mod.rs", "mod b;\npub use b::B;\npub struct Shared;\n"),
                ("a/b.rs", "use super::Shared;\npub struct B(Shared);\n"),
            ],
        );
        let err = check(&dir).unwrap_err();
        assert!(
            err.contains("cycle of 2 modules: a, a::b")
                || err.contains("cycle of 2 modules: a::b, a"),
            "{err}"
        );
    }

    #[test]
    fn a_facade_that_only_re_exports_is_no_cycle() {
        let dir = write_crate(
            "clean",
            &[
                ("lib.rs", "pub mod platform;\npub mod a;\n"),
                ("platform.rs", "pub struct P;\n"),
                (
                    "a/mod.rs",
                    "mod b;\nmod shared;\npub use b::B;\npub use shared::Shared;\n",
                ),
                ("a/shared.rs", "pub struct Shared;\n"),
                ("a/b.rs", "use super::Shared;\npub struct B(Shared);\n"),
            ],
        );
        let summary = check(&dir).unwrap();
        assert!(summary.contains("no cycle"), "{summary}");
    }

    #[test]
    fn a_macro_defined_in_the_facade_and_called_by_a_child_is_a_cycle() {
        let dir = write_crate(
            "macro",
            &[
                ("lib.rs", "pub mod platform;\n#[macro_use]\npub mod a;\n"),
                ("platform.rs", "pub struct P;\n"),
                (
                    "a/mod.rs",
                    "macro_rules! make { ($n:ident) => { pub struct $n($crate::a::Id); } }\n\
                     mod b;\npub use b::B;\npub struct Id;\n",
                ),
                ("a/b.rs", "make!(B);\n"),
            ],
        );
        let err = check(&dir).unwrap_err();
        assert!(err.contains("a::b -> a "), "{err}");
    }

    #[test]
    fn paths_inside_macro_arguments_count() {
        let dir = write_crate(
            "args",
            &[
                ("lib.rs", "pub mod platform;\npub mod a;\n"),
                (
                    "platform.rs",
                    "pub fn f(x: u8) -> bool { matches!(x, crate::a::X) }\n",
                ),
                ("a.rs", "pub const X: u8 = 1;\n"),
            ],
        );
        let err = check(&dir).unwrap_err();
        assert!(err.contains("platform imports a"), "{err}");
    }
}
