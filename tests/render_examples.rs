//! Every task file in `examples/` renders with the real binary on a machine with no
//! cluster and no kubeconfig, and yields a valid `Pod`.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;

#[test]
fn every_example_renders_to_a_valid_pod() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<_> = std::fs::read_dir(root.join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    examples.sort();
    for required in [
        "hello.yaml",
        "xcom.yaml",
        "from-template.yaml",
        "everything.yaml",
    ] {
        assert!(
            examples.iter().any(|p| p.ends_with(required)),
            "examples/{required} is missing"
        );
    }
    for example in &examples {
        let out = Command::new(env!("CARGO_BIN_EXE_podrun"))
            .current_dir(root)
            .arg("render")
            .arg(example.strip_prefix(root).expect("inside the crate"))
            .args(["--var", "env=test", "-o", "json"])
            .env_remove("HOME")
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output()
            .expect("run podrun");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            example.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("render prints JSON");
        let pod: Pod = podrun::build::typed(&manifest).expect("a valid Pod");
        let spec = pod.spec.expect("a pod spec");
        assert_eq!(
            spec.restart_policy.as_deref(),
            Some("Never"),
            "{}",
            example.display()
        );
        assert!(!spec.containers.is_empty());
        assert!(pod
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key("podrun.dev/task-id"));
    }
}

#[test]
fn hello_echoes_with_sh_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_podrun"))
        .current_dir(root)
        .args([
            "render",
            "examples/hello.yaml",
            "--logical-date",
            "2020-05-17",
            "-o",
            "json",
        ])
        .env_remove("HOME")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .expect("run podrun");
    assert_eq!(out.status.code(), Some(0));
    let pod: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["sh", "-c"]));
    assert_eq!(
        c["args"],
        serde_json::json!(["echo hello from hello on 2020-05-17"])
    );
}
