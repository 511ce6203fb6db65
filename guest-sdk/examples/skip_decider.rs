//! Skip decider (`decide`): turns some endings into skips or failures.
//!
//! Config: `{"skip_exit_codes": [99], "fail_on_oom": true}`. An exit code in
//! `skip_exit_codes` skips the task; an `OOMKilled` termination fails it with a clear reason
//! when `fail_on_oom` is true; an XCom value `{"skip": "why"}` skips; anything else keeps
//! podrun's own decision.

use podrun_guest::{Context, Decision, Hook, Outcome};

struct SkipDecider;

impl Hook for SkipDecider {
    fn decide(outcome: &Outcome, ctx: &Context) -> Result<Decision, String> {
        let skip_codes: Vec<i64> = ctx
            .config
            .get("skip_exit_codes")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|c| c.as_i64()).collect())
            .unwrap_or_default();
        if let Some(code) = outcome.exit_code {
            if skip_codes.contains(&code) {
                return Ok(Decision::Skip(format!("exit code {code} means nothing to do")));
            }
        }
        let fail_on_oom = ctx
            .config
            .get("fail_on_oom")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        if fail_on_oom && outcome.reason.as_deref() == Some("OOMKilled") {
            return Ok(Decision::Fail(
                "container was OOMKilled: raise its memory limit".into(),
            ));
        }
        if let Some(why) = outcome.xcom.get("skip").and_then(|s| s.as_str()) {
            return Ok(Decision::Skip(why.to_string()));
        }
        Ok(Decision::Keep)
    }
}

podrun_guest::export!(SkipDecider: decide);
