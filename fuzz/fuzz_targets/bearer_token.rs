//! The RFC 6750 bearer parser: any header value and query string.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], Option<&str>)| {
    let (value, query) = input;
    if let Ok(v) = HeaderValue::from_bytes(value) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, v);
        let _ = dcr_http::bearer_token(&headers, query);
    }
});
