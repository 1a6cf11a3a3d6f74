//! No production file over a bound: past it a file holds more than one concept.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace::production_files;

/// The most lines a production file may have.
pub const MAX_LINES: usize = 600;

/// The production files over `limit` lines, with their line counts.
pub fn long_files(workspace: &Path, limit: usize) -> Vec<(PathBuf, usize)> {
    production_files(workspace)
        .into_iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(&file).ok()?.lines().count();
            (lines > limit).then_some((file, lines))
        })
        .collect()
}
