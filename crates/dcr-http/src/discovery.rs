use axum::Json;
use axum::extract::State;
use dcr_core::Registrar;
use serde_json::{Map, Value};

use crate::{AppState, HttpOptions};

/// The discovery document: `issuer`, `registration_endpoint`, the values registration
/// accepts (from the same [`dcr_core::metadata::ServerMetadata`] the validator enforces), and
/// the configured extra members.
pub fn discovery_document(registrar: &Registrar, options: &HttpOptions) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert(
        "issuer".into(),
        Value::String(registrar.settings().issuer.clone()),
    );
    doc.insert(
        "registration_endpoint".into(),
        Value::String(registrar.settings().registration_endpoint.clone()),
    );
    doc.extend(registrar.server_metadata().discovery_members());
    for (k, v) in &options.discovery_extra {
        doc.entry(k.clone()).or_insert_with(|| v.clone());
    }
    doc
}

pub(crate) async fn serve(State(state): State<AppState>) -> Json<Map<String, Value>> {
    Json(discovery_document(&state.registrar, &state.options))
}
