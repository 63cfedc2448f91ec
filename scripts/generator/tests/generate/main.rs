//! End-to-end tests of the generator binary's library: each test generates into Cargo's
//! per-target temp folder and decodes what was written.

mod data;
mod eval;
mod presets;
mod sample;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Parser;
use trailsight_gen::cli::Args;

/// Runs the generator with `args` into a fresh `dir` under the test temp folder.
pub fn generate(dir: &str, args: &[&str]) -> (PathBuf, trailsight_gen::Summary) {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let _ = fs::remove_dir_all(&root);
    let out = root.to_str().expect("utf-8 temp path").to_string();
    let mut argv = vec!["trailsight-gen", "--out", &out];
    argv.extend_from_slice(args);
    let config = Args::try_parse_from(argv).unwrap().into_config().unwrap();
    let summary = trailsight_gen::run(&config).unwrap();
    (root, summary)
}

/// Every file under `root`, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[expect(
    clippy::disallowed_types,
    reason = "decodes the generator's own trusted output"
)]
pub fn gunzip(path: &Path) -> String {
    use flate2::read::GzDecoder;
    let mut text = String::new();
    GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// `path` relative to `root`, with `/` separators: the S3 key.
pub fn key_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap()
        .to_str()
        .unwrap()
        .replace('\\', "/")
}
