//! Bounds on what is stored: every stored document must be readable again.
//!
//! Stores read a client back with `serde_json`, which refuses JSON nested deeper than 128
//! levels. A value written deeper (say an extra member a policy wrapped once more) would make
//! the client unreadable for ever, so the document that is about to be stored is bounded well
//! below that, after policies ran, and an incoming body is bounded before it is parsed.

use serde_json::{Map, Value};

use super::MetadataError;

/// How deeply arrays and objects may nest in one member's value (`"a"` is 0, `["a"]` is 1):
/// a quarter of what `serde_json` reads back, so a stored document is always readable.
pub const MAX_VALUE_DEPTH: usize = 32;

/// The largest stored document, in bytes of compact JSON (about; strings counted unescaped).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Checks the document about to be stored: no member nests deeper than [`MAX_VALUE_DEPTH`],
/// and the whole is at most [`MAX_DOCUMENT_BYTES`]. The error names the member.
pub(crate) fn check_stored(m: &Map<String, Value>) -> Result<(), MetadataError> {
    let mut total = 2;
    let mut largest: Option<(&str, usize)> = None;
    for (name, value) in m {
        let Some(size) = bounded_size(value, MAX_VALUE_DEPTH) else {
            return Err(too_deep(name));
        };
        let size = size + name.len() + 4;
        total += size;
        if largest.is_none_or(|(_, s)| size > s) {
            largest = Some((name, size));
        }
    }
    match largest {
        Some((name, _)) if total > MAX_DOCUMENT_BYTES => Err(MetadataError::metadata(format!(
            "{name} is too large: a client's metadata may take at most {MAX_DOCUMENT_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

fn too_deep(member: &str) -> MetadataError {
    MetadataError::metadata(format!(
        "{member} nests arrays and objects deeper than {MAX_VALUE_DEPTH} levels"
    ))
}

/// The approximate size of `value` as compact JSON, or `None` when arrays and objects nest
/// more than `depth` levels.
fn bounded_size(value: &Value, depth: usize) -> Option<usize> {
    match value {
        Value::Null | Value::Bool(_) => Some(5),
        Value::Number(_) => Some(20),
        Value::String(s) => Some(s.len() + 2),
        Value::Array(items) => {
            let depth = depth.checked_sub(1)?;
            items
                .iter()
                .try_fold(2, |n, v| Some(n + 1 + bounded_size(v, depth)?))
        }
        Value::Object(map) => {
            let depth = depth.checked_sub(1)?;
            map.iter().try_fold(2, |n, (k, v)| {
                Some(n + k.len() + 4 + bounded_size(v, depth)?)
            })
        }
    }
}

/// Checks the nesting of a JSON request body before it is parsed: a member of the top-level
/// object whose value nests deeper than [`MAX_VALUE_DEPTH`] is refused, naming the member.
///
/// Only brackets outside strings are counted; whether the body is valid JSON is left to the
/// parser (a body that is not an object is not checked here).
pub fn check_body_depth(body: &[u8]) -> Result<(), MetadataError> {
    // A member nests too deep only past MAX_VALUE_DEPTH + 1 open brackets: a body with no
    // more brackets than that in all (strings included) passes without being walked. The
    // count is a branch-free pass over the bytes (`b | 0x20` is `{` exactly for `{` and `[`),
    // summed in bytes per block of 128 so that it vectorises (< 1 instruction a byte; the walk
    // below takes ~10).
    let brackets: usize = body
        .chunks(128)
        .map(|block| {
            let n = block
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b | 0x20 == b'{')));
            usize::from(n)
        })
        .sum();
    if brackets <= MAX_VALUE_DEPTH + 1 {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut key: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && expect_key {
                    key = Some((start, i.min(body.len() - 1)));
                    expect_key = false;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = body[i] == b'{';
                } else if depth > MAX_VALUE_DEPTH + 1 {
                    let Some((start, end)) = key else {
                        return Ok(());
                    };
                    let raw = &body[start..=end];
                    let name = serde_json::from_slice::<String>(raw)
                        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
                    return Err(too_deep(&name));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!("x"), |v, _| json!([v]))
    }

    #[test]
    fn depth_is_bounded_per_member() {
        let ok = json!({"a": nested(MAX_VALUE_DEPTH), "b": {"c": nested(MAX_VALUE_DEPTH - 1)}});
        assert!(check_stored(ok.as_object().unwrap()).is_ok());
        let deep = json!({"a": 1, "tenant": nested(MAX_VALUE_DEPTH + 1)});
        let e = check_stored(deep.as_object().unwrap()).unwrap_err();
        assert_eq!(
            e.description,
            "tenant nests arrays and objects deeper than 32 levels"
        );
        let deep = json!({"b": {"c": nested(MAX_VALUE_DEPTH)}});
        assert!(check_stored(deep.as_object().unwrap()).is_err());
    }

    #[test]
    fn size_is_bounded_naming_the_largest_member() {
        let big = "x".repeat(MAX_DOCUMENT_BYTES / 2);
        let ok = json!({"a": big});
        assert!(check_stored(ok.as_object().unwrap()).is_ok());
        let too_big = json!({"a": big, "b": format!("{big}y"), "c": 1});
        let e = check_stored(too_big.as_object().unwrap()).unwrap_err();
        assert!(
            e.description.starts_with("b is too large"),
            "{}",
            e.description
        );
    }

    #[test]
    fn body_depth_names_the_member() {
        let body = |v: Value| serde_json::to_vec(&v).unwrap();
        let at_bound = json!({"a": "[[[", "b": nested(MAX_VALUE_DEPTH)});
        assert!(check_body_depth(&body(at_bound)).is_ok());
        let deep =
            json!({"a\"{": "]]", "x": [1, {"y": 2}], "t\u{e9}": nested(MAX_VALUE_DEPTH + 1)});
        let e = check_body_depth(&body(deep)).unwrap_err();
        assert_eq!(
            e.description,
            "t\u{e9} nests arrays and objects deeper than 32 levels"
        );
        // Not an object, or not JSON: left to the parser.
        assert!(check_body_depth(&body(nested(200))).is_ok());
        assert!(check_body_depth(b"{\"a\":\"\\").is_ok());
        assert!(check_body_depth(b"").is_ok());
        // Exactly at the bound of open brackets (the fast path) and one past it.
        let at_bound = body(json!({"a": nested(MAX_VALUE_DEPTH)}));
        assert!(check_body_depth(&at_bound).is_ok());
        let past = body(json!({"a": nested(MAX_VALUE_DEPTH + 1)}));
        assert!(check_body_depth(&past).is_err());
    }

    #[test]
    fn arbitrary_bodies_never_panic() {
        for body in [&b"\""[..], b"{\"", b"{\"\\", b"{\"a\":[[", b"]]]}}}{"] {
            let _ = check_body_depth(body);
        }
    }
}
