//! The validation pipeline: input members → [`ClientMetadata`] or the first rule broken.
//!
//! Each step is a named function in the file of its concern: `defaults.rs` (assigning,
//! defaults, forced values), `choices.rs` (allowed values, RP Metadata Choices), `types.rs`,
//! `rules.rs` (rules between members), `uris.rs`, `keys.rs`, `bounds.rs`. What the server
//! knows about each member is its row in `members.rs`.

use serde_json::{Map, Value};

use super::members::{CLIENT_KEY_MEMBERS, ClientKey, Encryption, Kind, MEMBERS, Member, Rule, Uri};
use super::{
    ClientMetadata, MetadataError, ServerMetadata, application_type, bounds, choices, defaults,
    keys, rules, types, uris,
};

/// Validates client metadata against what the server supports.
///
/// `input` holds the client's members plus the server-assigned ones (`client_id`,
/// `client_id_issued_at`, `client_secret`, `client_secret_expires_at`). `null` members count
/// as absent. Unknown members are dropped (RFC 7591 §2) unless listed in
/// [`ServerMetadata::extra_metadata`]; members of features that are off are dropped too.
/// Language-tagged human-readable members (`client_name#de`) are kept when the tag is a
/// well-formed BCP 47 tag. With [`Features::rp_metadata_choices`](super::Features), choice
/// lists (`token_endpoint_auth_methods_supported`, ...) pick their target member and are not
/// kept. Returns the metadata with defaults applied, or the first rule the
/// input breaks. Never panics, whatever the input.
///
/// Builds the server-dependent tables on every call: a service validating many documents
/// against the same server keeps a [`Validator`] instead.
pub fn validate(
    input: Map<String, Value>,
    server: &ServerMetadata,
) -> Result<ClientMetadata, MetadataError> {
    validate_prepared(input, server, &Prepared::new(server))
}

/// What validation derives from the [`ServerMetadata`] and the member table, built once.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    /// Every recognised member, in checking order.
    pub(super) recognised: Vec<&'static Member>,
    /// Their names and kinds, sorted by name length then name, for lookups (most comparisons
    /// are then settled by the length alone).
    pub(super) by_name: Vec<(&'static str, Kind)>,
    /// All the defaults (with the operator's `client_defaults`).
    pub(super) defaults: Map<String, Value>,
    /// The defaults of recognised members, already through their type check.
    pub(super) recognised_defaults: Vec<(String, Value)>,
    /// Whether every recognised default passes its type check.
    pub(super) defaults_typed: bool,
    /// The recognised encryption `alg` members with their `enc` and signing members.
    pub(super) encryptions: Vec<(&'static str, Encryption)>,
    /// Of those, the encrypted responses: `[alg, enc, signed]`.
    pub(super) encrypted_responses: Vec<[&'static str; 3]>,
    /// The recognised members whose asymmetric algorithm needs a client key (signatures first).
    pub(super) key_members: Vec<(&'static str, ClientKey)>,
    /// The recognised members with an allowed-value rule.
    pub(super) allowed_value_rules: Vec<&'static Member>,
    /// The preference lists a client may offer (RP Metadata Choices) and their targets.
    pub(super) choices: Vec<(&'static str, &'static Member)>,
    /// The recognised URI members that are not redirect URIs.
    pub(super) uri_members: Vec<&'static Member>,
    /// The recognised redirect URI members.
    pub(super) redirect_members: Vec<&'static str>,
    /// `response_types_supported`, each normalised.
    pub(super) response_types_supported: Vec<String>,
}

impl Prepared {
    fn new(server: &ServerMetadata) -> Self {
        let recognised: Vec<&'static Member> = MEMBERS
            .iter()
            .filter(|m| (m.on)(&server.features))
            .collect();
        let mut by_name: Vec<(&'static str, Kind)> =
            recognised.iter().map(|m| (m.name, m.kind)).collect();
        by_name.sort_by_key(|(n, _)| (n.len(), *n));
        let rows = |keep: fn(&Member) -> bool| -> Vec<&'static Member> {
            recognised.iter().copied().filter(|m| keep(m)).collect()
        };
        let encryptions: Vec<(&'static str, Encryption)> = recognised
            .iter()
            .filter_map(|m| Some((m.name, m.encryption?)))
            .collect();
        let mut prepared = Self {
            by_name,
            defaults: defaults::defaults(server, &recognised),
            recognised_defaults: Vec::new(),
            defaults_typed: true,
            encrypted_responses: encryptions
                .iter()
                .filter_map(|(alg, e)| Some([*alg, e.enc, e.signed?]))
                .collect(),
            encryptions,
            key_members: CLIENT_KEY_MEMBERS
                .iter()
                .copied()
                .filter(|(name, key)| {
                    matches!(key, ClientKey::Verify | ClientKey::Encrypt)
                        && recognised.iter().any(|m| m.name == *name)
                })
                .collect(),
            allowed_value_rules: rows(|m| m.rule != Rule::None),
            choices: recognised
                .iter()
                .filter_map(|m| {
                    let supported = m.supported?;
                    (server.features.rp_metadata_choices && supported.choice)
                        .then_some((supported.key, *m))
                })
                .collect(),
            // The web URIs first, then the https ones.
            uri_members: {
                let mut uris = rows(|m| matches!(m.uri, Uri::Web | Uri::Https | Uri::Fetched));
                uris.sort_by_key(|m| m.uri != Uri::Web);
                uris
            },
            redirect_members: rows(|m| m.uri == Uri::Redirect)
                .iter()
                .map(|m| m.name)
                .collect(),
            response_types_supported: server
                .response_types_supported
                .iter()
                .map(|r| rules::normalise_response_type(r))
                .collect(),
            recognised,
        };
        for (k, v) in &prepared.defaults {
            let Some(kind) = prepared.kind_of(k) else {
                continue;
            };
            let mut v = v.clone();
            prepared.defaults_typed &= types::check_type(k, kind, &mut v).is_ok();
            prepared.recognised_defaults.push((k.clone(), v));
        }
        prepared
    }

    /// The kind of the recognised member `k`.
    pub(super) fn kind_of(&self, k: &str) -> Option<Kind> {
        self.by_name
            .binary_search_by(|(n, _)| (n.len(), *n).cmp(&(k.len(), k)))
            .ok()
            .map(|i| self.by_name[i].1)
    }
}

/// Validation against one [`ServerMetadata`], with the tables derived from it (recognised
/// members, defaults) built once instead of per document. [`Validator::validate`] gives the
/// same results as [`validate`].
#[derive(Debug, Clone)]
pub struct Validator {
    server: ServerMetadata,
    prepared: Prepared,
}

impl Validator {
    /// Prepares validation against `server`.
    pub fn new(server: ServerMetadata) -> Self {
        let prepared = Prepared::new(&server);
        Self { server, prepared }
    }

    /// The server metadata it validates against.
    pub fn server(&self) -> &ServerMetadata {
        &self.server
    }

    /// As [`validate`].
    pub fn validate(&self, input: Map<String, Value>) -> Result<ClientMetadata, MetadataError> {
        validate_prepared(input, &self.server, &self.prepared)
    }

    /// As [`needs_secret_after_defaults`].
    pub fn needs_secret_after_defaults(&self, properties: &Map<String, Value>) -> bool {
        needs_secret_prepared(properties, &self.server, &self.prepared)
    }
}

fn validate_prepared(
    mut input: Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<ClientMetadata, MetadataError> {
    application_type::infer(&mut input, server)?;
    let choices = choices::offered_choices(&input, prepared);
    let defaults::Assigned {
        mut m,
        mut localized,
        extra,
        all_typed,
    } = defaults::assign(input, &choices, server, prepared);
    choices::resolve_choices(&mut m, &choices, server, prepared)?;
    types::check_types(&mut m, &mut localized, all_typed, prepared)?;
    types::check_identifiers(&m)?;
    let response_types = rules::normalise_response_types(&mut m);
    rules::check_mandatory(&m, response_types.any)?;
    keys::check_keys_present(&m, &prepared.key_members)?;
    defaults::apply_encryption(&mut m, prepared)?;
    choices::check_allowed_values(&m, server, prepared)?;
    uris::check_uri_members(&m, &localized, server, prepared)?;
    rules::check_scope(&mut m, server)?;
    uris::check_redirect_uris(&m, prepared, response_types.implicit())?;
    types::check_contacts(&m)?;
    defaults::force(&mut m, server);
    rules::check_non_empty(&m, response_types.any, server)?;
    rules::derive_grant_types(&mut m, response_types, server)?;
    keys::check_proof_of_possession(&m, response_types.token)?;
    keys::check_tls_subject(&mut m, server.features.mtls_client_auth)?;
    keys::check_keys(&m)?;
    // Language-tagged and extra members are kept; extra members named as URIs follow the URI
    // rule. Last, what is stored must be readable again.
    m.extend(localized);
    for (k, v) in extra {
        uris::check_extra_member(&k, &v)?;
        m.entry(k).or_insert(v);
    }
    bounds::check_stored(&m)?;
    Ok(ClientMetadata::from_trusted(m))
}

/// Whether `properties` describe a client that needs a secret once the server's defaults
/// are applied (decided on what will be registered, not on the raw input).
///
/// Choice lists (feature `rp_metadata_choices`) are resolved first, so a client offering only
/// `"token_endpoint_auth_methods_supported": ["none"]` needs no secret.
pub fn needs_secret_after_defaults(
    properties: &Map<String, Value>,
    server: &ServerMetadata,
) -> bool {
    needs_secret_prepared(properties, server, &Prepared::new(server))
}

fn needs_secret_prepared(
    properties: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> bool {
    let choices = choices::offered_choices(properties, prepared);
    let defaults = &prepared.defaults;
    if choices.is_empty() {
        // The input over the defaults, looked up member by member rather than merged into a copy.
        return super::needs_secret_by(|k| {
            properties
                .get(k)
                .filter(|v| !v.is_null())
                .or_else(|| defaults.get(k))
        });
    }
    let mut merged = defaults.clone();
    for (choice, target) in &prepared.choices {
        if choices.contains_key(*choice) {
            merged.remove(target.name);
        }
    }
    for (k, v) in properties {
        if !v.is_null() && !choices.contains_key(k) {
            merged.insert(k.clone(), v.clone());
        }
    }
    match choices::resolve_choices(&mut merged, &choices, server, prepared) {
        Ok(()) => super::needs_secret(&merged),
        // Validation refuses these choices anyway; a secret does no harm meanwhile.
        Err(_) => true,
    }
}
