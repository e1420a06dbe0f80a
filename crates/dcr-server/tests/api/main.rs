//! End-to-end tests: the real server on 127.0.0.1:0, spoken to over HTTP.
//! One test binary (each binary costs a link on CI).

mod helpers;

mod interop_openidconnect;
mod management;
mod registration;
