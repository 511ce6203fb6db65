//! XCom transformer (`process_xcom`): wraps the task's XCom value with provenance and
//! optionally keeps only some keys.
//!
//! Config: `{"keep": ["rows", "status"]}` (optional; only for object values). The result is
//! `{"value": <value>, "task_id": ..., "try_number": ...}`. A `null` XCom stays `null`.

use podrun_guest::{json, Context, Hook, Value};

struct XcomTransformer;

impl Hook for XcomTransformer {
    fn process_xcom(value: Value, ctx: &Context) -> Result<Value, String> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let value = match (ctx.config.get("keep").and_then(|k| k.as_array()), value) {
            (Some(keep), Value::Object(map)) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| keep.iter().any(|w| w.as_str() == Some(k.as_str())))
                    .collect(),
            ),
            (_, v) => v,
        };
        Ok(json!({
            "value": value,
            "task_id": ctx.task_id,
            "try_number": ctx.try_number,
        }))
    }
}

podrun_guest::export!(XcomTransformer: process_xcom);
