//! `house check [DIR]`: module cycles, modules using their crate root's items, long files and
//! doc examples naming sub-crate paths; `house architecture [DIR]`: the files
//! `ARCHITECTURE.md` does not name and the README's bench list. Exit code 1 when a check
//! finds something, 2 for a usage or read error.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: house <check|cycles|root-items|lines|doc-paths|architecture> [WORKSPACE_DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(command), dir) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let workspace = PathBuf::from(dir.map_or(".", String::as_str));
    let result = match command.as_str() {
        "check" => cycles(&workspace)
            .and_then(|a| Ok(a & root_items(&workspace)?))
            .map(|a| a & lines(&workspace))
            .and_then(|a| Ok(a & doc_paths(&workspace)?)),
        "cycles" => cycles(&workspace),
        "root-items" => root_items(&workspace),
        "lines" => Ok(lines(&workspace)),
        "doc-paths" => doc_paths(&workspace),
        "architecture" => architecture(&workspace),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("house: {e}");
            ExitCode::from(2)
        }
    }
}

type Outcome = Result<bool, Box<dyn std::error::Error>>;

fn cycles(workspace: &std::path::Path) -> Outcome {
    let found = house::workspace_cycles(workspace)?;
    for cycle in &found {
        print!("{cycle}");
    }
    println!("module cycles: {}", found.len());
    Ok(found.is_empty())
}

fn root_items(workspace: &std::path::Path) -> Outcome {
    let found = house::workspace_root_item_uses(workspace)?;
    for use_ in &found {
        print!("{use_}");
    }
    println!("modules using items of their crate root: {}", found.len());
    Ok(found.is_empty())
}

fn lines(workspace: &std::path::Path) -> bool {
    let long = house::long_files(workspace, house::MAX_LINES);
    for (file, count) in &long {
        println!(
            "{}: {count} lines (at most {})",
            file.display(),
            house::MAX_LINES
        );
    }
    println!(
        "production files over {} lines: {}",
        house::MAX_LINES,
        long.len()
    );
    long.is_empty()
}

fn doc_paths(workspace: &std::path::Path) -> Outcome {
    let found = house::workspace_doc_path_uses(workspace)?;
    for use_ in &found {
        print!("{use_}");
    }
    println!("doc example lines naming a sub-crate path: {}", found.len());
    Ok(found.is_empty())
}

fn architecture(workspace: &std::path::Path) -> Outcome {
    let unnamed = house::unnamed_files(workspace)?;
    for file in &unnamed {
        println!("{}: not named in ARCHITECTURE.md", file.display());
    }
    let benches = house::bench_list_mismatches(workspace)?;
    for mismatch in &benches {
        println!("README.md: {mismatch}");
    }
    println!(
        "files not in ARCHITECTURE.md: {}; README bench list mismatches: {}",
        unnamed.len(),
        benches.len()
    );
    Ok(unnamed.is_empty() && benches.is_empty())
}
