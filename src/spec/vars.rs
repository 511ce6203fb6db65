//! The run identity and the variables a task file's templates can use: `task_id`, `run_id`,
//! `try_number`, `ds`, `ts` (and `ds_nodash`, `ts_nodash`), `params`, `vars`.
//!
//! Nothing here reads the host environment: every value comes from the command line or
//! the task file.

use jiff::{tz::TimeZone, Timestamp};

use super::error::Error;

/// What the command line supplies for rendering a task file.
#[derive(Clone, Debug, Default)]
pub struct RenderVars {
    /// `--run-id`; default `manual__<ts>`, as Airflow names a manual run.
    pub run_id: Option<String>,
    /// `--try-number`; default 1.
    pub try_number: Option<u32>,
    /// `--logical-date`; default now (UTC).
    pub logical_date: Option<Timestamp>,
    /// `--param k=v` pairs, overriding the task file's `params:` map (values are strings).
    pub params: Vec<(String, String)>,
    /// `--var k=v` pairs, available as `vars.k`.
    pub vars: Vec<(String, String)>,
}

impl RenderVars {
    /// Parses a `k=v` command-line pair (`--param`, `--var`).
    pub fn parse_pair(text: &str) -> Result<(String, String), Error> {
        match text.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Option(format!(
                "`{text}`: expected KEY=VALUE with a non-empty KEY"
            ))),
        }
    }

    /// Parses `--logical-date`: an RFC 3339 timestamp (any offset, converted to UTC) or a
    /// plain `YYYY-MM-DD` date (midnight UTC).
    pub fn parse_logical_date(text: &str) -> Result<Timestamp, Error> {
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Ok(ts);
        }
        if let Ok(date) = text.parse::<jiff::civil::Date>() {
            if let Ok(z) = date.to_zoned(TimeZone::UTC) {
                return Ok(z.timestamp());
            }
        }
        Err(Error::Option(format!(
            "--logical-date `{text}`: expected an RFC 3339 timestamp (2016-01-01T00:00:00+00:00) or a date (2016-01-01)"
        )))
    }

    /// Resolves defaults into the identity of this run.
    pub fn identity(&self, task_id: &str) -> RunIdentity {
        let logical_date = self.logical_date.unwrap_or_else(Timestamp::now);
        let ts = airflow_ts(logical_date);
        RunIdentity {
            task_id: task_id.to_string(),
            run_id: self
                .run_id
                .clone()
                .unwrap_or_else(|| format!("manual__{ts}")),
            try_number: self.try_number.unwrap_or(1),
            ds: logical_date.strftime("%Y-%m-%d").to_string(),
            ts,
            logical_date,
        }
    }
}

/// Who this run is: the values behind `podrun.dev/*` labels and the template variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunIdentity {
    /// The task file's `task_id`.
    pub task_id: String,
    /// The run id (`manual__2016-01-01T00:00:00+00:00` by default).
    pub run_id: String,
    /// The attempt number, from 1.
    pub try_number: u32,
    /// The logical date.
    pub logical_date: Timestamp,
    /// `YYYY-MM-DD` of the logical date (UTC).
    pub ds: String,
    /// Airflow's `ts`: ISO 8601 with `+00:00`, microseconds only when non-zero.
    pub ts: String,
}

/// Python's `datetime.isoformat()` for a UTC datetime, which Airflow uses for `ts`.
fn airflow_ts(t: Timestamp) -> String {
    let base = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = t.subsec_microsecond();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_airflow() {
        let vars = RenderVars {
            logical_date: Some(
                RenderVars::parse_logical_date("2016-01-01T01:00:00+01:00").expect("valid date"),
            ),
            ..Default::default()
        };
        let id = vars.identity("t");
        assert_eq!(id.ts, "2016-01-01T00:00:00+00:00");
        assert_eq!(id.ds, "2016-01-01");
        assert_eq!(id.run_id, "manual__2016-01-01T00:00:00+00:00");
        assert_eq!(id.try_number, 1);
        let d = RenderVars::parse_logical_date("2020-02-03").expect("date");
        assert_eq!(airflow_ts(d), "2020-02-03T00:00:00+00:00");
    }

    #[test]
    fn pairs_need_a_key() {
        assert!(RenderVars::parse_pair("=x").is_err());
        assert_eq!(
            RenderVars::parse_pair("a=b=c").expect("pair"),
            ("a".into(), "b=c".into())
        );
    }
}
