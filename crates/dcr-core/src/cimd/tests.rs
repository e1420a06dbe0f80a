//! The resolver against an in-memory fetcher (the HTTPS end-to-end tests live in dcr-server).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::Registrar;
use crate::metadata::{ClientMetadata, ServerMetadata};
use crate::settings::{InitialAccessTokenMode, RegistrarSettings};
use crate::store::MemoryStore;

const URL: &str = "https://app.example/client.json";

/// A document body and its freshness.
type Published = (Vec<u8>, Option<Duration>);

/// Serves documents from a map, counting fetches.
#[derive(Debug, Default)]
struct FakeFetcher {
    docs: Mutex<HashMap<String, Published>>,
    fetches: AtomicUsize,
    delay: Option<Duration>,
}

impl FakeFetcher {
    fn with(url: &str, doc: &Value, max_age: Option<u64>) -> Arc<Self> {
        let f = Arc::new(Self::default());
        f.set(url, doc, max_age);
        f
    }

    fn set(&self, url: &str, doc: &Value, max_age: Option<u64>) {
        self.docs.lock().unwrap().insert(
            url.into(),
            (
                doc.to_string().into_bytes(),
                max_age.map(Duration::from_secs),
            ),
        );
    }

    fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl MetadataDocumentFetcher for FakeFetcher {
    async fn fetch_document(
        &self,
        url: &url::Url,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let found = self.docs.lock().unwrap().get(url.as_str()).cloned();
        let (body, freshness) = found.ok_or_else(|| FetchError("HTTP 404".into()))?;
        if body.len() > max_bytes {
            return Err(FetchError("too large".into()));
        }
        Ok(FetchedDocument { body, freshness })
    }
}

fn doc(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Example",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

fn registrar() -> Registrar {
    Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example"),
    )
    .build()
    .unwrap()
}

fn resolver(fetcher: Arc<FakeFetcher>, settings: CimdSettings) -> DocumentResolver {
    DocumentResolver::builder(registrar(), fetcher, settings)
        .build()
        .unwrap()
}

#[tokio::test]
async fn resolves_a_native_client_and_caches_it_for_its_lifetime() {
    let f = FakeFetcher::with(URL, &doc(URL), Some(600));
    let r = resolver(f.clone(), CimdSettings::default());
    let got = r.resolve(URL).await.unwrap();
    assert_eq!(got.client_id, URL);
    assert_eq!(got.metadata.str("application_type"), Some("native"));
    assert_eq!(got.metadata.str("token_endpoint_auth_method"), Some("none"));
    assert_eq!(got.expires_at - got.fetched_at, 600);
    r.resolve(URL).await.unwrap();
    assert_eq!(f.count(), 1);
}

#[tokio::test]
async fn lifetimes_are_clamped_to_the_bounds() {
    let f = FakeFetcher::with(URL, &doc(URL), Some(10_000_000));
    let other = "https://app.example/other.json";
    f.set(other, &doc(other), None);
    let settings = CimdSettings {
        cache_min_seconds: 60,
        cache_max_seconds: 3_600,
        ..CimdSettings::default()
    };
    let r = resolver(f, settings);
    let long = r.resolve(URL).await.unwrap();
    assert_eq!(long.expires_at - long.fetched_at, 3_600);
    let short = r.resolve(other).await.unwrap();
    assert_eq!(short.expires_at - short.fetched_at, 60);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let mut bad = doc(URL);
    bad["client_secret"] = json!("s");
    let f = FakeFetcher::with(URL, &bad, Some(600));
    let r = resolver(f.clone(), CimdSettings::default());
    let err = r.resolve(URL).await.unwrap_err();
    assert!(
        matches!(&err, CimdError::Invalid(d) if d.contains("client_secret")),
        "{err}"
    );
    assert!(r.resolve(URL).await.is_err());
    assert_eq!(f.count(), 2);
    f.set(URL, &doc(URL), Some(600));
    r.resolve(URL).await.unwrap();
    assert_eq!(f.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resolutions_share_one_fetch() {
    let f = Arc::new(FakeFetcher {
        delay: Some(Duration::from_millis(200)),
        ..FakeFetcher::default()
    });
    f.set(URL, &doc(URL), Some(600));
    let r = resolver(f.clone(), CimdSettings::default());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.resolve(URL).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().client_id, URL);
    }
    assert_eq!(f.count(), 1);
}

#[tokio::test]
async fn allow_client_runs_on_cache_hits_and_allow_fetch_before_fetching() {
    let f = FakeFetcher::with(URL, &doc(URL), Some(600));
    let allowed = Arc::new(AtomicBool::new(true));
    let flag = allowed.clone();
    let r = DocumentResolver::builder(registrar(), f.clone(), CimdSettings::default())
        .allow_client(Decision::sync(move |md: &ClientMetadata| {
            Ok(flag.load(Ordering::SeqCst) && md.str("client_name") == Some("Example"))
        }))
        .allow_fetch(Decision::from_async(|url: url::Url| async move {
            Ok(url.path() != "/blocked.json")
        }))
        .build()
        .unwrap();
    r.resolve(URL).await.unwrap();
    allowed.store(false, Ordering::SeqCst);
    let err = r.resolve(URL).await.unwrap_err();
    assert!(
        matches!(&err, CimdError::Refused(d) if d.contains("allow_client")),
        "{err}"
    );
    assert_eq!(f.count(), 1);
    let err = r
        .resolve("https://app.example/blocked.json")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CimdError::Refused(d) if d.contains("allow_fetch")),
        "{err}"
    );
    assert_eq!(f.count(), 1);
}

#[tokio::test]
async fn hosts_are_checked_before_fetching() {
    let f = FakeFetcher::with(URL, &doc(URL), Some(600));
    let settings = CimdSettings {
        allowed_hosts: vec!["*.example".into()],
        denied_hosts: vec!["app.example".into()],
        ..CimdSettings::default()
    };
    let r = resolver(f.clone(), settings);
    let err = r.resolve(URL).await.unwrap_err();
    assert!(
        matches!(&err, CimdError::Refused(d) if d.contains("denied_hosts")),
        "{err}"
    );
    let err = r.resolve("https://claude.ai/x").await.unwrap_err();
    assert!(
        matches!(&err, CimdError::Refused(d) if d.contains("allowed_hosts")),
        "{err}"
    );
    assert_eq!(f.count(), 0);
}

#[tokio::test]
async fn policies_run_on_every_document() {
    let mut rs = RegistrarSettings::new("https://as.example");
    rs.initial_access_token = InitialAccessTokenMode::Stored;
    let registrar = Registrar::builder(Arc::new(MemoryStore::new()), ServerMetadata::default(), rs)
        .policy(
            "brand",
            crate::policy::sync_policy(|call| {
                call.properties
                    .insert("client_name".into(), json!("Forced"));
                Ok(())
            }),
        )
        .build()
        .unwrap();
    let f = FakeFetcher::with(URL, &doc(URL), Some(600));
    let settings = CimdSettings {
        policies: vec!["brand".into(), "no-claude".into()],
        ..CimdSettings::default()
    };
    let r = DocumentResolver::builder(registrar, f, settings)
        .policy(
            "no-claude",
            crate::policy::sync_policy(|call| {
                if call.properties.get("client_uri") == Some(&json!("https://claude.ai")) {
                    return Err(crate::policy::PolicyError::Reject("not here".into()));
                }
                Ok(())
            }),
        )
        .build()
        .unwrap();
    assert_eq!(
        r.resolve(URL).await.unwrap().metadata.str("client_name"),
        Some("Forced")
    );
    let unknown = DocumentResolver::builder(
        registrar_plain(),
        FakeFetcher::with(URL, &doc(URL), None),
        CimdSettings {
            policies: vec!["missing".into()],
            ..CimdSettings::default()
        },
    )
    .build();
    assert!(unknown.is_err());
}

fn registrar_plain() -> Registrar {
    registrar()
}

#[tokio::test]
async fn fetches_per_host_are_bounded() {
    let f = Arc::new(FakeFetcher::default());
    for i in 0..20 {
        let u = format!("https://flood.example/{i}.json");
        f.set(&u, &doc(&u), Some(600));
    }
    let settings = CimdSettings {
        host_fetch_burst: 3,
        host_fetch_per_second: 0.001,
        ..CimdSettings::default()
    };
    let r = resolver(f.clone(), settings);
    let mut limited = 0;
    for i in 0..20 {
        if let Err(CimdError::Fetch(d)) =
            r.resolve(&format!("https://flood.example/{i}.json")).await
        {
            assert!(d.contains("too many"), "{d}");
            limited += 1;
        }
    }
    assert_eq!(f.count(), 3);
    assert_eq!(limited, 17);
    // Another host has its own budget.
    let u = "https://calm.example/c.json";
    f.set(u, &doc(u), None);
    r.resolve(u).await.unwrap();
}

/// Allows the hosts it is given, recording every host it is asked about.
#[derive(Debug, Default)]
struct ListLimiter {
    allowed: Vec<String>,
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl HostFetchLimiter for ListLimiter {
    async fn check(&self, host: &str) -> Result<(), Duration> {
        self.asked.lock().unwrap().push(host.to_owned());
        if self.allowed.iter().any(|h| h == host) {
            Ok(())
        } else {
            Err(Duration::from_secs(1))
        }
    }
}

#[tokio::test]
async fn a_replaced_host_limiter_decides_every_fetch() {
    let f = Arc::new(FakeFetcher::default());
    let (open, shut) = ("https://open.example/a.json", "https://shut.example/b.json");
    f.set(open, &doc(open), None);
    f.set(shut, &doc(shut), None);
    let limiter = Arc::new(ListLimiter {
        allowed: vec!["open.example".into()],
        ..ListLimiter::default()
    });
    // A burst of 1 in the settings: the replaced limiter, not the default one, decides.
    let settings = CimdSettings {
        host_fetch_burst: 1,
        host_fetch_per_second: 0.001,
        ..CimdSettings::default()
    };
    let r = DocumentResolver::builder(registrar(), f.clone(), settings)
        .host_fetch_limiter(limiter.clone())
        .build()
        .unwrap();
    r.resolve(open).await.unwrap();
    r.evict(open).await.unwrap();
    r.resolve(open).await.unwrap();
    let Err(CimdError::Fetch(d)) = r.resolve(shut).await else {
        panic!("shut.example is limited");
    };
    assert_eq!(
        d,
        "too many documents fetched from shut.example; try again later"
    );
    assert_eq!(f.count(), 2);
    assert_eq!(
        *limiter.asked.lock().unwrap(),
        ["open.example", "open.example", "shut.example"]
    );
}

#[tokio::test]
async fn a_shared_cache_serves_another_instance_without_a_fetch() {
    let shared: Arc<dyn MetadataDocumentCache> = Arc::new(MemoryDocumentCache::default());
    let f = FakeFetcher::with(URL, &doc(URL), Some(600));
    let build = |f: Arc<FakeFetcher>| {
        DocumentResolver::builder(registrar(), f, CimdSettings::default())
            .shared_cache(shared.clone())
            .build()
            .unwrap()
    };
    let a = build(f.clone());
    let b = build(f.clone());
    a.resolve(URL).await.unwrap();
    let got = b.resolve(URL).await.unwrap();
    assert_eq!(got.metadata.str("client_name"), Some("Example"));
    assert_eq!(f.count(), 1);
    assert_eq!(b.list(10).await.unwrap().len(), 1);
    assert!(b.evict(URL).await.unwrap());
    b.resolve(URL).await.unwrap();
    assert_eq!(f.count(), 2);
}

#[tokio::test]
async fn an_expired_document_is_served_within_stale_if_error_only() {
    let clock = Arc::new(crate::clock::FixedClock::new(1_000));
    let shared: Arc<dyn MetadataDocumentCache> = Arc::new(MemoryDocumentCache::default());
    let f = FakeFetcher::with(URL, &doc(URL), Some(60));
    let build = |stale: u64| {
        DocumentResolver::builder(
            registrar(),
            f.clone(),
            CimdSettings {
                stale_if_error_seconds: stale,
                ..CimdSettings::default()
            },
        )
        .shared_cache(shared.clone())
        .clock(clock.clone())
        .build()
        .unwrap()
    };
    build(0).resolve(URL).await.unwrap();
    f.docs.lock().unwrap().clear();
    clock.advance(100);
    assert!(build(0).resolve(URL).await.is_err());
    assert!(build(300).resolve(URL).await.is_ok());
    clock.advance(400);
    assert!(build(300).resolve(URL).await.is_err());
}

#[test]
fn changes_name_the_members() {
    let a = ClientMetadata::from_trusted(doc(URL).as_object().unwrap().clone());
    let mut changed = doc(URL);
    changed["redirect_uris"] = json!(["http://127.0.0.1:9/cb"]);
    changed["jwks_uri"] = json!("https://app.example/jwks");
    let b = ClientMetadata::from_trusted(changed.as_object().unwrap().clone());
    assert_eq!(
        resolver::changed_members(&a, &b),
        ["jwks_uri", "redirect_uris"]
    );
    assert!(resolver::changed_members(&a, &a).is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn member() -> impl Strategy<Value = (String, Value)> {
        let key = prop_oneof![
            Just("client_id".to_owned()),
            Just("redirect_uris".to_owned()),
            Just("token_endpoint_auth_method".to_owned()),
            Just("client_secret".to_owned()),
            Just("jwks".to_owned()),
            Just("grant_types".to_owned()),
            Just("logo_uri".to_owned()),
            "[a-z_]{1,12}",
        ];
        let value = prop_oneof![
            Just(json!(URL)),
            Just(json!("none")),
            Just(json!("private_key_jwt")),
            Just(json!(["http://127.0.0.1/cb"])),
            Just(json!(["https://app.example/cb", 3])),
            Just(json!(null)),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ];
        (key, value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_url_is_a_clean_answer(raw in "https?://[a-z0-9.:@%#?/\\\\ \\x00-\\x1f]{0,40}") {
            let f = Arc::new(FakeFetcher::default());
            let r = resolver(f, CimdSettings::default());
            let got = runtime().block_on(r.resolve(&raw));
            prop_assert!(got.is_err());
        }

        #[test]
        fn any_document_is_validated_or_refused_and_never_cached_when_refused(
            members in proptest::collection::vec(member(), 0..8),
        ) {
            let doc = Value::Object(members.into_iter().collect());
            let f = FakeFetcher::with(URL, &doc, Some(600));
            let r = resolver(f.clone(), CimdSettings::default());
            let rt = runtime();
            match rt.block_on(r.resolve(URL)) {
                Ok(got) => {
                    prop_assert_eq!(got.metadata.client_id(), URL);
                    prop_assert!(got.metadata.client_secret().is_none());
                }
                Err(e) => {
                    prop_assert!(!matches!(e, CimdError::Unavailable(_)), "{e}");
                    let _ = rt.block_on(r.resolve(URL));
                    prop_assert_eq!(f.count(), 2);
                }
            }
        }
    }
}
