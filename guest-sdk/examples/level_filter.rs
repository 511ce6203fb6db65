//! Level filter (`filter_log`): drops lines containing any of `config.drop` (default
//! `["DEBUG"]`): the simplest useful log predicate, and the throughput benchmark's guest.

use podrun_guest::{Context, Hook, LineAction};

struct LevelFilter;

impl Hook for LevelFilter {
    fn filter_log(lines: Vec<String>, ctx: &Context) -> Result<Vec<LineAction>, String> {
        let drop: Vec<&str> = match ctx.config.get("drop").and_then(|d| d.as_array()) {
            Some(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            None => vec!["DEBUG"],
        };
        Ok(lines
            .iter()
            .map(|l| {
                if drop.iter().any(|d| l.contains(d)) {
                    LineAction::Drop
                } else {
                    LineAction::Keep
                }
            })
            .collect())
    }
}

podrun_guest::export!(LevelFilter: filter_log);
