//! Namespace resolution through the library entry point the binary uses
//! (`spec::load` then `build::build_pod`), for the steps the command line cannot reach
//! on a test machine: the in-cluster service-account namespace file and several
//! `$KUBECONFIG` files.

use std::path::{Path, PathBuf};

use podrun::build::{self, Options};
use podrun::spec::{self, RenderVars};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

fn namespace_of(task: &Path, opts: &Options) -> String {
    let task = spec::load(task, &RenderVars::default()).expect("valid task");
    let pod = build::build_pod(&task, opts).expect("pod");
    pod["metadata"]["namespace"]
        .as_str()
        .expect("namespace")
        .to_string()
}

const KUBECONFIG_A: &str =
    "current-context: a\ncontexts:\n  - {name: a, context: {namespace: from-a}}\n";
const KUBECONFIG_B: &str = "current-context: b\ncontexts:\n  - {name: b, context: {namespace: from-b}}\n  - {name: a, context: {namespace: shadowed}}\n";

#[test]
fn in_cluster_file_is_used_when_no_kubeconfig_names_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write(dir.path(), "task.yaml", "task_id: t\nimage: busybox\n");
    let ns_file = write(dir.path(), "namespace", "from-service-account");
    let opts = Options {
        incluster_namespace_file: Some(ns_file.clone()),
        ..Options::default()
    };
    assert_eq!(namespace_of(&task, &opts), "from-service-account");

    // A kubeconfig context namespace comes first...
    let kc = write(dir.path(), "kc", KUBECONFIG_A);
    let opts = Options {
        default_kubeconfigs: vec![kc],
        incluster_namespace_file: Some(ns_file),
        ..Options::default()
    };
    assert_eq!(namespace_of(&task, &opts), "from-a");
    // ...unless in-cluster configuration is selected, which reads no kubeconfig.
    let opts = Options {
        in_cluster: Some(true),
        ..opts
    };
    assert_eq!(namespace_of(&task, &opts), "from-service-account");
}

#[test]
fn several_kubeconfig_files_merge_like_kubectl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write(dir.path(), "task.yaml", "task_id: t\nimage: busybox\n");
    let a = write(dir.path(), "a", KUBECONFIG_A);
    let b = write(dir.path(), "b", KUBECONFIG_B);
    // The first file's current-context wins; its context is looked up in file order.
    let opts = Options {
        default_kubeconfigs: vec![a.clone(), dir.path().join("missing"), b.clone()],
        incluster_namespace_file: None,
        ..Options::default()
    };
    assert_eq!(namespace_of(&task, &opts), "from-a");
    let opts = Options {
        default_kubeconfigs: vec![b, a],
        incluster_namespace_file: None,
        ..Options::default()
    };
    assert_eq!(namespace_of(&task, &opts), "from-b");
}

#[test]
fn nothing_found_means_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = write(dir.path(), "task.yaml", "task_id: t\nimage: busybox\n");
    let opts = Options {
        default_kubeconfigs: vec![dir.path().join("missing")],
        incluster_namespace_file: Some(dir.path().join("missing-namespace")),
        ..Options::default()
    };
    assert_eq!(namespace_of(&task, &opts), "default");
}
