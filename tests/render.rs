//! `podrun render` through the real binary, one case per directory under `tests/render/`:
//! `task.yaml` (or `task.json`), the pod the operator would build written out in full in
//! `expected.yaml`, optional extra command-line arguments in `args` (one per line) and
//! optional expected warnings in `expected_stderr`.
//!
//! Every case runs with `--logical-date 2016-01-01T00:00:00+00:00`, no `$HOME` and
//! `KUBECONFIG` pointing at nothing, so no local kubeconfig leaks in. Random parts are
//! blanked before comparing: a name suffix written as `-XXXXXXXX` in the expected pod must
//! be 8 characters of `[a-z0-9]` in the output, and `secretvol<uuid4>` volume names are
//! compared as `secretvol-UUID`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render")
}

/// Runs `podrun render` for one case; returns (exit code, stdout, stderr).
fn render(case: &Path) -> (i32, String, String) {
    let task = ["task.yaml", "task.json"]
        .iter()
        .map(|f| case.join(f))
        .find(|p| p.exists())
        .expect("case has task.yaml or task.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_podrun"));
    cmd.current_dir(case)
        .arg("render")
        .arg(task.file_name().expect("file name"))
        .args(["--logical-date", "2016-01-01T00:00:00+00:00"])
        .env_remove("HOME")
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    if let Ok(args) = std::fs::read_to_string(case.join("args")) {
        cmd.args(args.lines().filter(|l| !l.trim().is_empty()));
    }
    let out = cmd.output().expect("run podrun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Replaces the random parts of `actual` where `expected` has placeholders.
fn blank_random(actual: &mut Value, expected: &Value) -> Result<(), String> {
    let exp_name = expected["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(prefix) = exp_name.strip_suffix("-XXXXXXXX") {
        let got = actual["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let suffix = got.strip_prefix(prefix).and_then(|s| s.strip_prefix('-'));
        match suffix {
            Some(s)
                if s.len() == 8
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
            {
                actual["metadata"]["name"] = Value::String(exp_name.to_string());
            }
            _ => {
                return Err(format!(
                    "name {got:?} is not {prefix:?} + '-' + 8 random [a-z0-9]"
                ))
            }
        }
    }
    Ok(())
}

fn blank_secret_volumes(text: &str) -> String {
    let re = regex::Regex::new(
        r"secretvol[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    )
    .expect("literal regex");
    re.replace_all(text, "secretvol-UUID").into_owned()
}

fn check_case(case: &Path) -> Result<(), String> {
    let expected_text = std::fs::read_to_string(case.join("expected.yaml"))
        .map_err(|e| format!("expected.yaml: {e}"))?;
    let expected: Value =
        serde_yaml_ng::from_str(&expected_text).map_err(|e| format!("expected.yaml: {e}"))?;
    let (code, stdout, stderr) = render(case);
    if code != 0 {
        return Err(format!("exit code {code}, stderr:\n{stderr}"));
    }
    let mut actual: Value = serde_yaml_ng::from_str(&blank_secret_volumes(&stdout))
        .map_err(|e| format!("output is not YAML: {e}\n{stdout}"))?;
    blank_random(&mut actual, &expected)?;
    if actual != expected {
        let a = serde_yaml_ng::to_string(&actual).unwrap_or_default();
        let e = serde_yaml_ng::to_string(&sort(expected)).unwrap_or_default();
        return Err(format!(
            "pod differs:\n{}",
            pretty_assertions::StrComparison::new(&e, &a)
        ));
    }
    let want_stderr = std::fs::read_to_string(case.join("expected_stderr")).unwrap_or_default();
    if stderr.trim() != want_stderr.trim() {
        return Err(format!(
            "stderr differs:\n--- expected\n{want_stderr}\n--- actual\n{stderr}"
        ));
    }
    Ok(())
}

fn sort(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut e: Vec<_> = m.into_iter().collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(e.into_iter().map(|(k, v)| (k, sort(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
        o => o,
    }
}

#[test]
fn every_render_case_matches_its_expected_pod() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/render exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "expected at least 30 render cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = check_case(case) {
            failures.push(format!(
                "== {}\n{why}",
                case.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn json_output_is_the_same_pod() {
    let case = cases_dir().join("basic");
    let out = Command::new(env!("CARGO_BIN_EXE_podrun"))
        .current_dir(&case)
        .args([
            "render",
            "task.yaml",
            "-o",
            "json",
            "--logical-date",
            "2016-01-01",
        ])
        .env_remove("HOME")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .expect("run podrun");
    assert_eq!(out.status.code(), Some(0));
    let mut actual: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let expected: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(case.join("expected.yaml")).expect("expected.yaml"),
    )
    .expect("yaml");
    blank_random(&mut actual, &expected).expect("name");
    assert_eq!(actual, expected);
}

#[test]
fn names_are_random_per_render() {
    let case = cases_dir().join("basic");
    let names: Vec<String> = (0..2)
        .map(|_| {
            let (code, stdout, _) = render(&case);
            assert_eq!(code, 0);
            let v: Value = serde_yaml_ng::from_str(&stdout).expect("yaml");
            v["metadata"]["name"].as_str().expect("name").to_string()
        })
        .collect();
    assert_ne!(names[0], names[1]);
}
