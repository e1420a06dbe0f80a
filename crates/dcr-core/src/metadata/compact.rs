//! The compact JSON of stored metadata: byte for byte what `serde_json::to_string` writes,
//! with strings that need no escaping (nearly all of them) copied whole instead of being
//! escaped byte by byte (`serde_json` spent ≈ 6,700 of the ≈ 10,000 instructions of a
//! registration's document there).

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// `map` as compact JSON, exactly as `serde_json::to_string(map)`.
pub(super) fn to_string(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(1024);
    write_object(&mut out, map);
    out
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_number(out: &mut String, n: &Number) {
    // Integers print as `serde_json` prints them (decimal digits); floats go through it.
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else {
        out.push_str(&serde_json::to_string(n).unwrap_or_default());
    }
}

/// Appends `s` as a JSON string, exactly as `serde_json` writes it.
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a `Vec` cannot fail.
        let _ = serde_json::to_writer(out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn write_str(out: &mut String, s: &str) {
    if needs_escape(s.as_bytes()) {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether `s` holds a byte `serde_json` escapes: `"`, `\\` or a control character below
/// U+0020 (nothing else). Eight bytes at a time: a word has a byte below `n` (`n` ≤ 0x80)
/// exactly when `(x - n·0x01…01) & !x & 0x80…80` is not zero, and a byte equal to `c`
/// exactly when `x ^ c·0x01…01` has a byte below 1.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x;
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_ne_bytes(bytes);
        let special = below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1);
        if special & HIGH != 0 {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn same_as_serde_json(v: &Value) {
        let Value::Object(map) = v else {
            panic!("not an object: {v}")
        };
        assert_eq!(to_string(map), serde_json::to_string(map).unwrap());
    }

    #[test]
    fn writes_what_serde_json_writes() {
        same_as_serde_json(&json!({}));
        same_as_serde_json(&json!({
            "client_id": "abc",
            "client_id_issued_at": 1_767_000_000,
            "client_secret_expires_at": 0,
            "redirect_uris": ["https://app.example.com/cb", "https://app.example.com/s?a=1&b=%20"],
            "client_name": "Q\"uote\\back\nline\ttab\u{1}\u{1f}\u{7f}\u{e9}\u{1f600}",
            "client_name#ja-Jpan-JP": "クライアント",
            "n": [-1, 0, u64::MAX, i64::MIN, 0.5, -0.0, 1e300, 2.5e-8, 1.0],
            "b": [true, false, null],
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}], "e": {}, "a": []},
            "": "",
            "\"k\\": "\u{0}",
        }));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<String>().prop_map(Value::String),
            "[ -~]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn json_strings_are_pushed_as_serde_json_writes_them() {
        for s in [
            "",
            "tok-_en",
            "https://as.example/reg/a%20b",
            "a\"b\\c\n\u{1}\u{e9}",
        ] {
            let mut out = b"x".to_vec();
            push_json_string(&mut out, s);
            assert_eq!(
                out,
                [&b"x"[..], serde_json::to_string(s).unwrap().as_bytes()].concat()
            );
        }
    }

    #[test]
    fn escapes_are_found_at_every_position() {
        let plain = |b: u8| !(b < 0x20 || b == b'"' || b == b'\\');
        for filler in [b'a', b'!', 0x80, 0xff] {
            for len in 0..20 {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![filler; len];
                        s[at] = b;
                        assert_eq!(needs_escape(&s), !plain(b), "{filler} {len} {at} {b}");
                    }
                }
            }
        }
        assert!(!needs_escape("\u{e9}\u{7f}\u{1f600}~ !#".as_bytes()));
    }

    proptest! {
        #[test]
        fn any_document_is_written_as_serde_json_writes_it(
            members in prop::collection::btree_map(any::<String>(), value(), 0..8)
        ) {
            same_as_serde_json(&Value::Object(members.into_iter().collect()));
        }
    }
}
