//! Generated bad input: every refusal is `invalid_client`, never a panic, and no refusal
//! echoes the presented secret or assertion.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::{NOW, SECRET, basic, claims, form, jwt_form, key, sign_ed, sign_hs, world};
use super::*;

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (NOW - 100..NOW + 10_000).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(json!("none")),
        Just(json!("HS256")),
        Just(json!("EdDSA")),
        Just(json!(super::tests::AUD)),
        Just(json!(["hs", "pk"])),
        Just(json!({})),
    ]
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alg"),
        Just("typ"),
        Just("kid"),
        Just("iss"),
        Just("sub"),
        Just("aud"),
        Just("exp"),
        Just("nbf"),
        Just("iat"),
        Just("jti"),
        Just("crit"),
        Just("jwk"),
    ]
    .prop_map(str::to_owned)
}

/// A JWT-shaped string from mutated headers and claims, signed or not.
fn assertion() -> impl Strategy<Value = String> {
    let client = prop_oneof![
        Just("hs"),
        Just("pk"),
        Just("pkuri"),
        Just("basic"),
        Just("nobody")
    ];
    (
        client,
        proptest::collection::vec((member(), json_value()), 0..4),
        proptest::collection::vec((member(), json_value()), 0..4),
        0..6u8,
        ".{0,16}",
    )
        .prop_map(|(client, head_edits, claim_edits, how, junk)| {
            let mut c = claims(client);
            for (k, v) in claim_edits {
                c[k] = v;
            }
            let mut h = json!({"alg": "HS256", "typ": "JWT"});
            for (k, v) in head_edits {
                h[k] = v;
            }
            let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
            match how {
                0 => sign_hs(Algorithm::HS256, SECRET.as_bytes(), &c),
                1 => sign_ed(&key(), Some("k1"), &c),
                2 => format!(
                    "{}.{}.{}",
                    b64(&h),
                    b64(&c),
                    URL_SAFE_NO_PAD.encode(junk.as_bytes())
                ),
                3 => format!("{}.{}", b64(&h), b64(&c)),
                4 => format!("{junk}.{}.{junk}", b64(&c)),
                _ => junk,
            }
        })
}

fn header() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        ".{0,40}".prop_map(Some),
        ".{0,20}".prop_map(|s| Some(format!("Basic {s}"))),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Some(format!("Basic {}", STANDARD.encode(b)))),
        (".{0,10}", ".{0,10}").prop_map(|(i, s)| Some(basic(&i, &s))),
        (".{0,10}", ".{0,10}")
            .prop_map(|(i, s)| Some(format!("Basic {}", STANDARD.encode(format!("{i}:{s}"))))),
    ]
}

fn params() -> impl Strategy<Value = HashMap<String, String>> {
    let key = prop_oneof![
        Just("client_id"),
        Just("client_secret"),
        Just("client_assertion_type"),
        Just("client_assertion"),
        Just("grant_type"),
    ];
    let value = prop_oneof![
        ".{0,12}",
        Just("basic".to_owned()),
        Just("public".to_owned()),
        Just(SECRET.to_owned()),
        Just(JWT_BEARER_ASSERTION_TYPE.to_owned()),
    ];
    prop_oneof![
        proptest::collection::hash_map(key.prop_map(str::to_owned), value, 0..4),
        assertion().prop_map(|a| jwt_form(&a)),
        (assertion(), ".{0,8}").prop_map(|(a, id)| {
            let mut f = jwt_form(&a);
            f.insert("client_id".into(), id);
            f
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn bad_input_is_invalid_client_and_never_echoes_credentials(
        header in header(),
        params in params(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let w = world();
        let result = runtime.block_on(w.run(header.as_deref(), &params));
        if let Err(e) = result {
            prop_assert!(e.is_invalid_client(), "{e:?}");
            let text = e.to_string();
            prop_assert!(!text.contains(SECRET));
            if let Some(a) = params.get("client_assertion").filter(|a| a.len() >= 16 && *a != JWT_BEARER_ASSERTION_TYPE) {
                prop_assert!(!text.contains(a.as_str()));
            }
            // (The assertion type URN appears in descriptions by design.)
            if let Some(s) = params.get("client_secret").filter(|s| s.len() >= 8 && *s != JWT_BEARER_ASSERTION_TYPE) {
                prop_assert!(!text.contains(s.as_str()));
            }
        }
    }
}

#[tokio::test]
async fn the_generators_reach_success_too() {
    // A sanity check that the vocabulary above can authenticate at all.
    let w = world();
    assert!(
        w.run(Some(&basic("basic", SECRET)), &form(&[]))
            .await
            .is_ok()
    );
}
