//! Registration policies and the RAT issuance decision as Rhai scripts.
//!
//! Script contract for a policy:
//! - `properties`: a mutable map of the client properties about to be validated;
//! - `request`: a read-only map with `method`, `path` and `headers` (lower-case names);
//! - `registration_access_token_policies`: an array of the policies the registration access
//!   token will carry; assign another array (or shadow it with `let`) to change them.
//!
//! `throw "message"` rejects the request with 400 `invalid_client_metadata` and that message.
//! A runtime error, a non-string throw, or exceeding a limit is a 500 `server_error`; the detail
//! is logged, not returned.
//!
//! The engine is hardened: no module imports, no `eval`, limits on operations, call depth,
//! expression depth, string, array and map sizes, and a wall-clock limit per run.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dcr_core::context::RequestContext;
use dcr_core::policy::{Policy, PolicyCall, PolicyError, RatIssuance};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Map as RhaiMap, Scope};
use serde_json::{Map, Value};

/// `[cimd]` decisions as scripts.
pub mod cimd;

/// How long one script run may take.
const WALL_CLOCK_LIMIT: Duration = Duration::from_millis(250);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The hardened engine every script runs on.
fn engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(200_000)
        .set_max_call_levels(32)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(64 * 1024)
        .set_max_array_size(4096)
        .set_max_map_size(4096)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
        .on_print(|s| tracing::info!(target: "dcr::policy", "{s}"))
        .on_debug(|s, _, _| tracing::debug!(target: "dcr::policy", "{s}"))
        .on_progress(|_| {
            let expired =
                DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() > deadline));
            expired.then(|| Dynamic::from("wall-clock limit exceeded"))
        });
    engine.disable_symbol("eval");
    engine
}

/// Compiles the script at `path`; a syntax error names the file, line and position.
fn compile(engine: &Engine, path: &Path) -> anyhow::Result<AST> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading script {}", path.display()))?;
    engine
        .compile(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn request_map(ctx: &RequestContext) -> Dynamic {
    let mut headers = RhaiMap::new();
    for (name, value) in &ctx.headers {
        headers.insert(name.as_str().into(), value.clone().into());
    }
    let mut request = RhaiMap::new();
    request.insert("method".into(), ctx.method.clone().into());
    request.insert("path".into(), ctx.path.clone().into());
    request.insert("headers".into(), headers.into());
    Dynamic::from_map(request).into_read_only()
}

/// Runs `ast` with a wall-clock deadline on the current (blocking) thread.
fn run(engine: &Engine, ast: &AST, scope: &mut Scope<'_>) -> Result<Dynamic, Box<EvalAltResult>> {
    DEADLINE.with(|d| d.set(Some(Instant::now() + WALL_CLOCK_LIMIT)));
    let result = engine.eval_ast_with_scope::<Dynamic>(scope, ast);
    DEADLINE.with(|d| d.set(None));
    result
}

/// Maps a script failure: a thrown string rejects, anything else is a server error.
fn failure(name: &str, err: &EvalAltResult) -> PolicyError {
    match err {
        EvalAltResult::ErrorRuntime(value, _) if value.is_string() => {
            PolicyError::Reject(value.to_string())
        }
        other => PolicyError::Failed(format!("script {name}: {other}")),
    }
}

struct ScriptPolicy {
    name: String,
    engine: Arc<Engine>,
    ast: Arc<AST>,
}

impl ScriptPolicy {
    fn apply_blocking(&self, call: &mut PolicyCall) -> Result<(), PolicyError> {
        let properties = rhai::serde::to_dynamic(&call.properties)
            .map_err(|e| PolicyError::Failed(format!("script {}: properties: {e}", self.name)))?;
        let rat_policies: rhai::Array = call
            .registration_access_token_policies
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(Dynamic::from)
            .collect();
        let mut scope = Scope::new();
        scope.push("properties", properties);
        scope.push_constant_dynamic("request", request_map(&call.request));
        scope.push("registration_access_token_policies", rat_policies);
        let _ = run(&self.engine, &self.ast, &mut scope).map_err(|e| failure(&self.name, &e))?;

        let properties = scope.get_value::<Dynamic>("properties").unwrap_or_default();
        let properties: Map<String, Value> = if properties.is_map() {
            rhai::serde::from_dynamic(&properties).map_err(|e| {
                PolicyError::Failed(format!("script {}: properties: {e}", self.name))
            })?
        } else {
            return Err(PolicyError::Failed(format!(
                "script {}: `properties` is no longer a map",
                self.name
            )));
        };
        call.properties = properties;
        if call.registration_access_token_policies.is_some() {
            let chosen = scope
                .get_value::<Dynamic>("registration_access_token_policies")
                .unwrap_or_default();
            let names: Vec<String> = rhai::serde::from_dynamic(&chosen).map_err(|_| {
                PolicyError::Failed(format!(
                    "script {}: registration_access_token_policies must be an array of policy names",
                    self.name
                ))
            })?;
            call.registration_access_token_policies = Some(names);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Policy for ScriptPolicy {
    async fn apply(&self, call: &mut PolicyCall) -> Result<(), PolicyError> {
        let me = ScriptPolicy {
            name: self.name.clone(),
            engine: self.engine.clone(),
            ast: self.ast.clone(),
        };
        let mut owned = std::mem::take(call);
        let (result, owned) = tokio::task::spawn_blocking(move || {
            let result = me.apply_blocking(&mut owned);
            (result, owned)
        })
        .await
        .map_err(|e| PolicyError::Failed(format!("script {}: {e}", self.name)))?;
        *call = owned;
        result
    }
}

/// A policy backed by the Rhai script at `path`, compiled now.
pub fn policy_script(name: &str, path: &Path) -> anyhow::Result<Arc<dyn Policy>> {
    let engine = engine();
    let ast = compile(&engine, path).with_context(|| format!("registration.policies.{name}"))?;
    Ok(Arc::new(ScriptPolicy {
        name: name.to_owned(),
        engine: Arc::new(engine),
        ast: Arc::new(ast),
    }))
}

/// The RAT issuance decision of the script at `path`: it sees `request` and must return a boolean.
pub fn issuance_script(path: &Path) -> anyhow::Result<RatIssuance> {
    let engine = Arc::new(engine());
    let ast =
        Arc::new(compile(&engine, path).context("registration.issue_registration_access_token")?);
    Ok(RatIssuance::from_async(move |ctx: RequestContext| {
        let engine = engine.clone();
        let ast = ast.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut scope = Scope::new();
                scope.push_constant_dynamic("request", request_map(&ctx));
                let value =
                    run(&engine, &ast, &mut scope).map_err(|e| format!("issuance script: {e}"))?;
                value
                    .as_bool()
                    .map_err(|t| format!("issuance script returned {t}, not a boolean"))
            })
            .await
            .map_err(|e| format!("issuance script: {e}"))?
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.rhai");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn call() -> PolicyCall {
        PolicyCall {
            request: RequestContext {
                method: "POST".into(),
                path: "/reg".into(),
                headers: vec![("x-tenant".into(), "acme".into())],
                ..Default::default()
            },
            properties: json!({"client_name": "a"}).as_object().cloned().unwrap(),
            registration_access_token_policies: Some(vec!["p".into()]),
        }
    }

    #[tokio::test]
    async fn changes_properties_and_rat_policies() {
        let (_d, path) = script(
            r#"
            if !("logo_uri" in properties) { properties.logo_uri = "https://x.example/l.png"; }
            properties.tenant = request.headers["x-tenant"];
            let registration_access_token_policies = ["other"];
            "#,
        );
        let p = policy_script("p", &path).unwrap();
        let mut c = call();
        p.apply(&mut c).await.unwrap();
        assert_eq!(c.properties["logo_uri"], json!("https://x.example/l.png"));
        assert_eq!(c.properties["tenant"], json!("acme"));
        assert_eq!(
            c.registration_access_token_policies,
            Some(vec!["other".to_string()])
        );
    }

    #[tokio::test]
    async fn throw_rejects_and_errors_fail() {
        let (_d, path) = script(r#"throw "client_name is not allowed";"#);
        let mut c = call();
        assert_eq!(
            policy_script("p", &path).unwrap().apply(&mut c).await,
            Err(PolicyError::Reject("client_name is not allowed".into()))
        );
        let (_d, path) = script("throw 42;");
        assert!(matches!(
            policy_script("p", &path).unwrap().apply(&mut call()).await,
            Err(PolicyError::Failed(_))
        ));
        let (_d, path) = script("let x = 1 / 0;");
        assert!(matches!(
            policy_script("p", &path).unwrap().apply(&mut call()).await,
            Err(PolicyError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn runaway_scripts_are_stopped() {
        let (_d, path) = script("loop { }");
        let started = Instant::now();
        let r = policy_script("p", &path).unwrap().apply(&mut call()).await;
        assert!(matches!(r, Err(PolicyError::Failed(_))));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn hardened_engine_refuses_imports_and_eval() {
        let (_d, path) = script(r#"import "/etc/passwd" as x;"#);
        let p = policy_script("p", &path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(matches!(
            rt.block_on(p.apply(&mut call())),
            Err(PolicyError::Failed(_))
        ));
        let (_d, path) = script(r#"eval("1")"#);
        assert!(policy_script("p", &path).is_err());
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let (_d, path) = script("let x = ;\n");
        let e = format!("{:#}", policy_script("p", &path).err().unwrap());
        assert!(e.contains("p.rhai") && e.contains("line 1"), "{e}");
    }

    #[tokio::test]
    async fn issuance_decisions() {
        let (_d, path) = script(r#"request.headers["x-tenant"] == "acme""#);
        assert_eq!(
            issuance_script(&path)
                .unwrap()
                .decide(&call().request)
                .await,
            Ok(true)
        );
        let (_d, path) = script(r#""yes""#);
        assert!(
            issuance_script(&path)
                .unwrap()
                .decide(&call().request)
                .await
                .is_err()
        );
    }
}
