//! `hooks:` declarations: one source each, files resolved next to the task file.

use serde_json::{Map, Value};

use super::Ctx;
use crate::spec::hooks::{HookDecl, HookPoint, HookSource, OnError};
use crate::spec::keys;
use crate::spec::path::KeyPath;

const HOOK_KEYS: &[&str] = &[
    "point", "rhai", "script", "wasm", "config", "on_error", "name",
];

pub(super) fn hooks(cx: &mut Ctx) -> Vec<HookDecl> {
    let Some(v) = cx.get("hooks") else {
        return Vec::new();
    };
    let Value::Array(items) = v else {
        cx.wrong("hooks", "a list of hook declarations", &v);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = KeyPath::root().key("hooks").index(i);
        let before = cx.problems.len();
        let Some(map) = cx.record(
            &path,
            item,
            "{point, rhai|script|wasm, config, on_error, name}",
            HOOK_KEYS,
        ) else {
            continue;
        };
        let str_at = |cx: &mut Ctx, key: &str| cx.record_string(map, &path, key);
        let point = match str_at(cx, "point") {
            None => {
                cx.problem(
                    path.key("point"),
                    format!("required: one of {}", HookPoint::NAMES.join(", ")),
                );
                None
            }
            Some(p) => match HookPoint::parse(&p) {
                Some(p) => Some(p),
                None => {
                    let hint = keys::closest(&p, HookPoint::NAMES.iter().copied())
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    cx.problem(
                        path.key("point"),
                        format!(
                            "expected one of {}, found {p:?}{hint}",
                            HookPoint::NAMES.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        let sources: Vec<&str> = ["rhai", "script", "wasm"]
            .into_iter()
            .filter(|k| map.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let source = match sources.as_slice() {
            [one] => {
                let text = str_at(cx, one);
                match (*one, text) {
                    (_, None) => None,
                    ("script", Some(s)) => Some(HookSource::RhaiInline(s)),
                    (kind, Some(rel)) => {
                        let file = cx.dir.join(&rel);
                        if !file.is_file() {
                            cx.problem(
                                path.key(kind),
                                format!("hook file {} does not exist", file.display()),
                            );
                            None
                        } else if kind == "rhai" {
                            Some(HookSource::RhaiFile(file))
                        } else {
                            Some(HookSource::Wasm(file))
                        }
                    }
                }
            }
            [] => {
                cx.problem(path.clone(), "expected exactly one of `rhai: FILE`, `script: SOURCE`, `wasm: FILE`; found none");
                None
            }
            many => {
                cx.problem(
                    path.clone(),
                    format!(
                        "expected exactly one of `rhai`, `script`, `wasm`; found {}",
                        many.join(", ")
                    ),
                );
                None
            }
        };
        let on_error = match str_at(cx, "on_error").as_deref() {
            None | Some("fail") => OnError::Fail,
            Some("ignore") => OnError::Ignore,
            Some(other) => {
                cx.problem(
                    path.key("on_error"),
                    format!("expected fail or ignore, found {other:?}"),
                );
                OnError::Fail
            }
        };
        let name = str_at(cx, "name");
        let config = match map.get("config") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v) => v.clone(),
        };
        if cx.problems.len() > before {
            continue;
        }
        if let (Some(point), Some(source)) = (point, source) {
            out.push(HookDecl {
                name,
                point,
                source,
                config,
                on_error,
            });
        }
    }
    out
}
