//! `[cimd] allow_fetch` and `allow_client` as Rhai scripts, on the hardened engine of the
//! policies. Each returns a boolean; anything else (or an error) fails the resolution with a
//! server-side error, never a silent yes.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use dcr_core::cimd::Decision;
use dcr_core::metadata::ClientMetadata;
use rhai::{Dynamic, Scope};

use super::{compile, engine, run};

/// Runs a compiled decision script with `vars` in scope, on a blocking thread.
async fn decide(
    engine: Arc<rhai::Engine>,
    ast: Arc<rhai::AST>,
    what: &'static str,
    vars: Vec<(&'static str, Dynamic)>,
) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || {
        let mut scope = Scope::new();
        for (name, value) in vars {
            scope.push_constant_dynamic(name, value);
        }
        let value = run(&engine, &ast, &mut scope).map_err(|e| format!("{what} script: {e}"))?;
        value
            .as_bool()
            .map_err(|t| format!("{what} script returned {t}, not a boolean"))
    })
    .await
    .map_err(|e| format!("{what} script: {e}"))?
}

/// The `allow_fetch` decision of the script at `path`: it sees `url` and `host`.
pub fn allow_fetch_script(path: &Path) -> anyhow::Result<Decision<url::Url>> {
    let engine = Arc::new(engine());
    let ast = Arc::new(compile(&engine, path).context("cimd.allow_fetch")?);
    Ok(Decision::from_async(move |url: url::Url| {
        let vars = vec![
            ("url", Dynamic::from(url.as_str().to_owned())),
            (
                "host",
                Dynamic::from(url.host_str().unwrap_or_default().to_owned()),
            ),
        ];
        decide(engine.clone(), ast.clone(), "allow_fetch", vars)
    }))
}

/// The `allow_client` decision of the script at `path`: it sees `client_id` and `client`
/// (the validated metadata, read-only).
pub fn allow_client_script(path: &Path) -> anyhow::Result<Decision<ClientMetadata>> {
    let engine = Arc::new(engine());
    let ast = Arc::new(compile(&engine, path).context("cimd.allow_client")?);
    Ok(Decision::from_async(move |md: ClientMetadata| {
        let engine = engine.clone();
        let ast = ast.clone();
        async move {
            let client = rhai::serde::to_dynamic(md.as_map())
                .map_err(|e| format!("allow_client script: client: {e}"))?;
            let vars = vec![
                ("client_id", Dynamic::from(md.client_id().to_owned())),
                ("client", client.into_read_only()),
            ];
            decide(engine, ast, "allow_client", vars).await
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.rhai");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn decisions_see_their_subject() {
        let (_d, p) = script(r#"host.ends_with(".example") && url.contains("/ok")"#);
        let fetch = allow_fetch_script(&p).unwrap();
        let ok = url::Url::parse("https://a.example/ok.json").unwrap();
        let no = url::Url::parse("https://a.example/no.json").unwrap();
        assert_eq!(fetch.decide(ok).await, Ok(true));
        assert_eq!(fetch.decide(no).await, Ok(false));
        let (_d, p) =
            script(r#"client.client_name != "Evil" && client_id.starts_with("https://")"#);
        let client = allow_client_script(&p).unwrap();
        let md = |name: &str| {
            ClientMetadata::from_trusted(
                json!({"client_id": "https://a.example/c", "client_name": name})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
        };
        assert_eq!(client.decide(md("Good")).await, Ok(true));
        assert_eq!(client.decide(md("Evil")).await, Ok(false));
        let (_d, p) = script("42");
        let err = allow_client_script(&p)
            .unwrap()
            .decide(md("x"))
            .await
            .unwrap_err();
        assert!(err.contains("not a boolean"), "{err}");
    }
}
