//! XCom: #23 test_xcom_push, #25 the template-file value, the empty-file sentinel, invalid
//! JSON, a 5 MiB value intact, and a failed sidecar stop.

use crate::util::{sh_task, Env};

#[tokio::test]
async fn xcom_value_is_returned_exactly() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "xcom",
            r#"mkdir -p /airflow/xcom; echo '{"hello": "world", "n": [1, 2.5, null]}' > /airflow/xcom/return.json"#,
            "do_xcom_push: true",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.r("xcom"),
        &serde_json::json!({"hello": "world", "n": [1, 2.5, null]})
    );
    let counts = env.sim.request_counts();
    crate::util::assert_deleted(&env).await;
    // One read and one sidecar stop; no polling.
    assert_eq!(counts.get("get pods/exec"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("get pods"), None, "{counts:?}");
    assert_eq!(counts.get("watch pods"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("get pods/log"), Some(&1), "{counts:?}");
    // The budget (issue 4): 7 requests with XCom.
    let total = crate::util::budgeted_requests(&counts);
    assert!(total <= 7, "requests for a task with XCom: {counts:?}");
}

#[tokio::test]
async fn empty_result_is_null_and_invalid_json_fails_saying_so() {
    let env = Env::start().await;
    let task = env.task("e", &sh_task("empty", "true", "do_xcom_push: true"));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.r("xcom"), &serde_json::Value::Null);
    assert!(out.report.as_object().expect("object").contains_key("xcom"));

    let task = env.task(
        "b",
        &sh_task(
            "badjson",
            "echo '{not json' > /airflow/xcom/return.json",
            "do_xcom_push: true\nlog_pod_spec_on_failure: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("reason"), "XComInvalidJson");
    assert!(
        out.r("message")
            .as_str()
            .expect("msg")
            .contains("not valid JSON"),
        "{}",
        out.report
    );
}

#[tokio::test]
async fn five_mib_result_arrives_intact() {
    let env = Env::start().await;
    // 5 MiB of digits inside a JSON string, written by the container.
    let script = r#"{ printf '{"data": "'; head -c 5242880 /dev/zero | tr '\0' '7'; printf '"}'; } > /airflow/xcom/return.json"#;
    let task = env.task("t", &sh_task("bigxcom", script, "do_xcom_push: true"));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let data = out.r("xcom")["data"].as_str().expect("data string");
    assert_eq!(data.len(), 5 * 1024 * 1024);
    assert!(data.bytes().all(|b| b == b'7'));
}
