//! Bad input through the real binary: every task file under `tests/bad_input/` (the
//! `files/` folder holds the templates, kubeconfigs and hooks they point at) must make
//! `podrun render` exit with code 2 (`podrun::exit::BAD_INPUT`), print nothing on stdout,
//! and print exactly the message in `<name>.expected` on stderr: the file, the key path
//! and what was expected. Extra command-line arguments come from `<name>.args`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad_input exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_input_is_rejected_with_its_message() {
    let files = corpus();
    assert!(
        files.len() >= 30,
        "expected at least 30 bad inputs, found {}",
        files.len()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(root).expect("inside the crate");
        let stem = file.with_extension("");
        let expected = std::fs::read_to_string(stem.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected message file", rel.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podrun"));
        cmd.current_dir(root)
            .arg("render")
            .arg(rel)
            .env_remove("HOME")
            .env("KUBECONFIG", "/nonexistent/kubeconfig");
        if let Ok(args) = std::fs::read_to_string(stem.with_extension("args")) {
            cmd.args(args.lines().filter(|l| !l.trim().is_empty()));
        }
        let out = cmd.output().expect("run podrun");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(i32::from(podrun::exit::BAD_INPUT)) {
            problems.push(format!("exit code {:?}, expected 2", out.status.code()));
        }
        if !out.stdout.is_empty() {
            problems.push(format!(
                "stdout not empty: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if stderr.trim_end() != expected.trim_end() {
            problems.push(format!(
                "stderr:\n  got:  {}\n  want: {}",
                stderr.trim_end(),
                expected.trim_end()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("== {}\n{}", rel.display(), problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
