//! Decoding of `application/vnd.kubernetes.protobuf` request bodies for the kinds kubectl's
//! typed client sends that way (`kubectl create namespace|secret|configmap|serviceaccount`).
//!
//! Only request bodies are decoded (answers are always JSON, which every client accepts).
//! The envelope is `k8s\0` + `runtime.Unknown{typeMeta=1, raw=2}`; field numbers follow
//! `k8s.io/api/core/v1/generated.proto` and `apimachinery/.../meta/v1/generated.proto`.
//! Pods are not decoded: clients send them as JSON.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::sim::kind::Kind;
use crate::sim::status::ApiError;

const MAGIC: &[u8] = b"k8s\0";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn bad() -> ApiError {
    ApiError::bad_request("unable to decode protobuf body")
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(bad)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad())
}

/// Iterate over (field number, value) of a message.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wt) = (key >> 3, key & 7);
        let f = match wt {
            0 => Field::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(bad)?;
                let b = &buf[pos..end];
                pos = end;
                Field::Bytes(b)
            }
            5 => {
                pos += 4;
                Field::Fixed
            }
            _ => return Err(bad()),
        };
        out.push((num, f));
    }
    if pos > buf.len() {
        return Err(bad());
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad())
}

/// A `map<string,string>` (or bytes, base64-encoded) entry.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut k = String::new();
    let mut v = Value::String(String::new());
    for (n, f) in fields(b)? {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = string(x)?,
                2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(x)),
                2 => v = json!(string(x)?),
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn insert_map(obj: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    let m = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(entry.0, entry.1);
    }
}

fn push(obj: &mut Map<String, Value>, key: &str, v: Value) {
    let a = obj.entry(key.to_string()).or_insert_with(|| json!([]));
    if let Some(a) = a.as_array_mut() {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => drop(m.insert("name".into(), json!(string(x)?))),
            (2, Field::Bytes(x)) => drop(m.insert("generateName".into(), json!(string(x)?))),
            (3, Field::Bytes(x)) => drop(m.insert("namespace".into(), json!(string(x)?))),
            (6, Field::Bytes(x)) => drop(m.insert("resourceVersion".into(), json!(string(x)?))),
            (11, Field::Bytes(x)) => insert_map(&mut m, "labels", map_entry(x, false)?),
            (12, Field::Bytes(x)) => insert_map(&mut m, "annotations", map_entry(x, false)?),
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", json!(string(x)?)),
            (13, Field::Bytes(x)) => {
                let mut r = Map::new();
                for (k, f) in fields(x)? {
                    match (k, f) {
                        (1, Field::Bytes(v)) => drop(r.insert("kind".into(), json!(string(v)?))),
                        (3, Field::Bytes(v)) => drop(r.insert("name".into(), json!(string(v)?))),
                        (4, Field::Bytes(v)) => drop(r.insert("uid".into(), json!(string(v)?))),
                        (5, Field::Bytes(v)) => {
                            drop(r.insert("apiVersion".into(), json!(string(v)?)))
                        }
                        (6, Field::Varint(v)) => drop(r.insert("controller".into(), json!(v != 0))),
                        (7, Field::Varint(v)) => {
                            drop(r.insert("blockOwnerDeletion".into(), json!(v != 0)))
                        }
                        _ => {}
                    }
                }
                push(&mut m, "ownerReferences", Value::Object(r));
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn kind_body(kind: Kind, raw: &[u8]) -> Result<Value, ApiError> {
    let mut o = Map::new();
    for (n, f) in fields(raw)? {
        match (kind, n, f) {
            (_, 1, Field::Bytes(x)) => drop(o.insert("metadata".into(), object_meta(x)?)),
            (Kind::Namespace, 2, Field::Bytes(x)) => {
                let mut spec = Map::new();
                for (k, f) in fields(x)? {
                    if let (1, Field::Bytes(v)) = (k, f) {
                        push(&mut spec, "finalizers", json!(string(v)?));
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            (Kind::Secret, 2, Field::Bytes(x)) => insert_map(&mut o, "data", map_entry(x, true)?),
            (Kind::Secret, 3, Field::Bytes(x)) => drop(o.insert("type".into(), json!(string(x)?))),
            (Kind::Secret, 4, Field::Bytes(x)) => {
                insert_map(&mut o, "stringData", map_entry(x, false)?)
            }
            (Kind::Secret, 5, Field::Varint(v)) => {
                drop(o.insert("immutable".into(), json!(v != 0)))
            }
            (Kind::ConfigMap, 2, Field::Bytes(x)) => {
                insert_map(&mut o, "data", map_entry(x, false)?)
            }
            (Kind::ConfigMap, 3, Field::Bytes(x)) => {
                insert_map(&mut o, "binaryData", map_entry(x, true)?)
            }
            (Kind::ConfigMap, 4, Field::Varint(v)) => {
                drop(o.insert("immutable".into(), json!(v != 0)))
            }
            (Kind::ServiceAccount, 3, Field::Bytes(x)) => {
                let mut r = Map::new();
                for (k, f) in fields(x)? {
                    if let (1, Field::Bytes(v)) = (k, f) {
                        r.insert("name".into(), json!(string(v)?));
                    }
                }
                push(&mut o, "imagePullSecrets", Value::Object(r));
            }
            (Kind::ServiceAccount, 4, Field::Varint(v)) => {
                drop(o.insert("automountServiceAccountToken".into(), json!(v != 0)))
            }
            _ => {}
        }
    }
    o.insert("apiVersion".into(), json!("v1"));
    o.insert("kind".into(), json!(kind.kind()));
    Ok(Value::Object(o))
}

/// Decode a protobuf request body for `kind` into its JSON form (415 for kinds not decoded).
pub fn decode(kind: Kind, body: &[u8]) -> Result<Value, ApiError> {
    if !matches!(
        kind,
        Kind::Namespace | Kind::Secret | Kind::ConfigMap | Kind::ServiceAccount
    ) {
        return Err(ApiError::unsupported_media_type(
            "application/vnd.kubernetes.protobuf",
        ));
    }
    let env = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let raw = fields(env)?
        .into_iter()
        .find_map(|(n, f)| match (n, f) {
            (2, Field::Bytes(b)) => Some(b),
            _ => None,
        })
        .ok_or_else(bad)?;
    kind_body(kind, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3) | 2, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_configmap() {
        let meta = ld(1, b"cm1");
        let entry = [ld(1, b"k"), ld(2, b"v")].concat();
        let raw = [ld(1, &meta), ld(2, &entry)].concat();
        let body = [MAGIC.to_vec(), ld(2, &raw)].concat();
        let v = decode(Kind::ConfigMap, &body).expect("decode");
        assert_eq!(v["metadata"]["name"], "cm1");
        assert_eq!(v["data"]["k"], "v");
    }
}
