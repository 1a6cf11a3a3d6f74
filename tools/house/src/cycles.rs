//! Cycles between a crate's modules (strongly connected components of the edge graph), each
//! reported with one reference per step as evidence.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::resolve::{Edge, edges};
use crate::tree::{ModPath, TreeError, read_crate};
use crate::workspace::crate_roots;

/// One cycle: modules `a → b → … → a`, with the first reference found for each step.
#[derive(Debug)]
pub struct Cycle {
    /// The crate's name.
    pub krate: String,
    /// The steps, in order; the last one leads back to the first module.
    pub steps: Vec<Edge>,
}

/// The name a report gives a module (`lib` for the root).
pub fn module_name(path: &ModPath) -> String {
    if path.is_empty() {
        "lib".to_owned()
    } else {
        path.join("::")
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = self.steps.iter().map(|e| module_name(&e.from)).collect();
        names.push(module_name(&self.steps[0].from));
        writeln!(f, "cycle in {}: {}", self.krate, names.join(" → "))?;
        for step in &self.steps {
            writeln!(
                f,
                "  {} → {}: {} ({})",
                module_name(&step.from),
                module_name(&step.to),
                step.at,
                step.written
            )?;
        }
        Ok(())
    }
}

/// Every cycle of a crate's edges: each pair of modules referring to each other, and for
/// larger knots, the shortest cycle through each module of the knot.
pub fn cycles(krate: &str, edges: &[Edge]) -> Vec<Cycle> {
    // The first reference found for each (from, to) is the evidence.
    let mut first: BTreeMap<(ModPath, ModPath), Edge> = BTreeMap::new();
    for edge in edges {
        first
            .entry((edge.from.clone(), edge.to.clone()))
            .or_insert_with(|| edge.clone());
    }
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (from, to) in first.keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    // Every pair referring to each other, then the shortest cycle through each module.
    let pairs = first
        .keys()
        .filter(|(a, b)| a < b && first.contains_key(&(b.clone(), a.clone())))
        .map(|(a, b)| vec![a.clone(), b.clone()]);
    let loops = graph
        .keys()
        .filter_map(|start| shortest_cycle(&graph, start));
    let mut seen: BTreeSet<Vec<ModPath>> = BTreeSet::new();
    let mut out = Vec::new();
    for path in pairs.collect::<Vec<_>>().into_iter().chain(loops) {
        // One cycle, whichever module it is found from: keyed by its smallest rotation.
        let smallest = (0..path.len())
            .map(|i| {
                let mut rotated = path[i..].to_vec();
                rotated.extend_from_slice(&path[..i]);
                rotated
            })
            .min()
            .unwrap_or_default();
        if !seen.insert(smallest.clone()) {
            continue;
        }
        let steps = (0..smallest.len())
            .map(|i| {
                let key = (
                    smallest[i].clone(),
                    smallest[(i + 1) % smallest.len()].clone(),
                );
                first[&key].clone()
            })
            .collect();
        out.push(Cycle {
            krate: krate.to_owned(),
            steps,
        });
    }
    out
}

/// The shortest path from `start` back to itself, as the modules it visits (from `start`).
fn shortest_cycle(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    start: &ModPath,
) -> Option<Vec<ModPath>> {
    let mut previous: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                let mut path = vec![at.clone()];
                let mut cursor = at;
                while cursor != start {
                    cursor = previous[cursor];
                    path.push(cursor.clone());
                }
                path.reverse();
                return Some(path);
            }
            if !previous.contains_key(next) {
                previous.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Every module cycle of every crate under `workspace`.
pub fn workspace_cycles(workspace: &std::path::Path) -> Result<Vec<Cycle>, TreeError> {
    let mut out = Vec::new();
    for root in crate_roots(workspace) {
        let tree = read_crate(&root.name, &root.root)?;
        out.extend(cycles(&tree.name, &edges(&tree)));
    }
    Ok(out)
}
