//! End-to-end tests: the real server on 127.0.0.1:0, spoken to over HTTP.
//! One test binary (each binary costs a link on CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod abuse_limits;
mod admin_authn;
mod cimd;
mod cimd_audit;
mod cimd_cli;
mod cimd_harness;
mod cimd_origin;
mod cimd_shared;
mod cimd_shared_limits;
mod configuration;
mod connections;
mod hostile_metadata;
mod hostile_requests;
mod initial_access_tokens;
mod interop_openidconnect;
mod library;
mod management;
mod mcp;
mod multi_instance;
mod operations;
mod policies;
mod process;
mod registration;
mod remote_documents;
mod request_ids;
mod shared_limits;
mod store_races;
mod undecodable_clients;
