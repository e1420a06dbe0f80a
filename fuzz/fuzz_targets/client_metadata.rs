//! The metadata validator and the JWK Set checks: any JSON the body reader would accept.
#![no_main]

use dcr_core::metadata::{ServerMetadata, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) {
        let _ = validate(map, &ServerMetadata::default());
    }
});
