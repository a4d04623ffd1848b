//! AWS credentials resolved on the host, handed to the component and refreshed
//! before they expire: fixed keys, the AWS default chain of `aws-config`
//! (environment, shared files with `AWS_PROFILE`, web identity, ECS/EKS
//! container credentials, IMDS), or any other `ProvideCredentials`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::embed::Credentials;
use crate::error::Error;

/// Temporary credentials are fetched anew when they expire within this margin.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Within the margin, while the credentials have not expired yet, a fetch is
/// tried at most this often, and a failed one keeps the credentials in use.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(15);

/// AWS error codes that mean the credentials were rejected as expired or unknown:
/// a call that fails with one is retried once if a refresh gives other credentials.
pub const REJECTED_CREDENTIALS: [&str; 4] = [
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
];

/// Credentials as the source last resolved them. `generation` grows each time
/// they change, so a holder can tell whether it has the current ones.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// 1 for the first credentials, one more each time they change.
    pub generation: u64,
    /// The credentials themselves (`Debug` shows only the access key id).
    pub credentials: Credentials,
    expiry: Option<SystemTime>,
}

impl Resolved {
    fn fresh(&self, now: SystemTime) -> bool {
        self.expiry
            .is_none_or(|expiry| now + REFRESH_MARGIN < expiry)
    }

    fn unexpired(&self, now: SystemTime) -> bool {
        self.expiry.is_none_or(|expiry| now < expiry)
    }
}

/// The last credentials resolved, when the provider was last asked, and
/// whether a background refresh is under way.
#[derive(Default)]
struct Cache {
    resolved: Option<Resolved>,
    asked: Option<Instant>,
    refreshing: bool,
}

/// The cache (held only for moments, never across a fetch) and the lock that
/// lets one fetch run at a time.
#[derive(Default)]
struct Shared {
    cache: Mutex<Cache>,
    fetching: tokio::sync::Mutex<()>,
}

/// Marks the end of a background refresh when dropped.
struct Refreshing(CredentialSource);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.cache().refreshing = false;
    }
}

/// The HTTPS client of the default chain (STS, SSO, ECS, IMDS): what
/// aws-config's default client is (proxy from the environment, the SDK's
/// timeouts and sleep), with rustls on ring, the crypto the host's own TLS uses.
fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Where credentials come from; cheap to clone, shared by every instance of a store.
#[derive(Clone)]
pub struct CredentialSource {
    provider: SharedCredentialsProvider,
    /// For the default chain: the profile it reads, which its errors name.
    chain_profile: Option<String>,
    shared: Arc<Shared>,
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSource")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// Any credentials provider, such as one of `aws-config`'s.
    pub fn from_provider(provider: impl ProvideCredentials + 'static) -> Self {
        CredentialSource {
            provider: SharedCredentialsProvider::new(provider),
            chain_profile: None,
            shared: Arc::default(),
        }
    }

    /// The same credentials for ever (they are never refreshed).
    pub fn fixed(credentials: Credentials) -> Self {
        Self::from_provider(aws_credential_types::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            None,
            "fixed",
        ))
    }

    /// The AWS default credential chain, with the named profile or, when `None`,
    /// `AWS_PROFILE` (then `default`).
    pub async fn default_chain(profile: Option<&str>) -> Self {
        let mut chain = DefaultCredentialsChain::builder()
            .configure(ProviderConfig::default().with_http_client(https_client()));
        if let Some(profile) = profile {
            chain = chain.profile_name(profile);
        }
        let named = profile
            .map(str::to_string)
            .or_else(|| crate::environment::var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".into());
        CredentialSource {
            chain_profile: Some(named),
            ..Self::from_provider(chain.build().await)
        }
    }

    /// The current credentials. While the held ones are valid they are
    /// returned at once: when they expire within [`REFRESH_MARGIN`], one
    /// refresh runs in the background (at most every [`REFETCH_INTERVAL`]; a
    /// failed one keeps them in use), so no call waits for a slow IMDS or STS.
    /// Only when none are held, or they have expired, does the call wait for a
    /// fetch (one at a time, shared by the callers waiting).
    pub async fn current(&self) -> Result<Resolved, Error> {
        let now = SystemTime::now();
        // Decided under the cache lock, acted on after it is released.
        let fetch_here = {
            let mut cache = self.cache();
            match cache.resolved.clone() {
                Some(resolved) if resolved.fresh(now) => return Ok(resolved),
                Some(usable) if usable.unexpired(now) => {
                    let due = !cache.refreshing
                        && cache
                            .asked
                            .is_none_or(|asked| asked.elapsed() >= REFETCH_INTERVAL);
                    if !due {
                        return Ok(usable);
                    }
                    match tokio::runtime::Handle::try_current() {
                        Ok(runtime) => {
                            cache.refreshing = true;
                            let source = self.clone();
                            runtime.spawn(async move {
                                // Cleared however the task ends (even dropped
                                // with its runtime).
                                let _done = Refreshing(source.clone());
                                // A failure keeps the held credentials.
                                let _ = source.refresh().await;
                            });
                            return Ok(usable);
                        }
                        // No runtime to refresh on: fetch here.
                        Err(_) => Some(usable),
                    }
                }
                _ => None,
            }
        };
        if let Some(usable) = fetch_here {
            return Ok(self.refresh().await.unwrap_or(usable));
        }
        let _fetching = self.shared.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(resolved) = self.valid() {
            return Ok(resolved);
        }
        self.fetch().await
    }

    /// Fetches credentials now, whatever their expiry.
    pub async fn refresh(&self) -> Result<Resolved, Error> {
        let _fetching = self.shared.fetching.lock().await;
        self.fetch().await
    }

    /// After the service rejected credentials of `generation`: fetches them
    /// anew (unless that already happened) and returns them when they differ.
    pub async fn refresh_rejected(&self, generation: u64) -> Result<Option<Resolved>, Error> {
        let _fetching = self.shared.fetching.lock().await;
        if let Some(resolved) = &self.cache().resolved {
            if resolved.generation != generation {
                return Ok(Some(resolved.clone()));
            }
        }
        let resolved = self.fetch().await?;
        Ok((resolved.generation != generation).then_some(resolved))
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache holds plain values: a panic elsewhere leaves it usable.
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One line on a failed fetch: each cause's text (never a `Debug` dump)
    /// and, for the default chain, what was tried and what fixes it.
    fn explain(&self, error: &(dyn std::error::Error + 'static)) -> String {
        let mut causes = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !causes.contains(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        let causes = causes.join(": ").replace('\n', " ");
        match &self.chain_profile {
            Some(profile) => format!(
                "none found in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the \
                 shared files (~/.aws/credentials, ~/.aws/config, profile {profile:?}), web \
                 identity, ECS/EKS container credentials or EC2 instance metadata; set \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to a profile that \
                 has keys (last error: {causes})"
            ),
            None => causes,
        }
    }

    /// The held credentials, if they have not expired.
    fn valid(&self) -> Option<Resolved> {
        let now = SystemTime::now();
        self.cache()
            .resolved
            .clone()
            .filter(|resolved| resolved.unexpired(now))
    }

    /// Asks the provider (the caller holds `fetching`); keeps the generation
    /// when nothing changed.
    async fn fetch(&self) -> Result<Resolved, Error> {
        self.cache().asked = Some(Instant::now());
        let fetched = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Credentials(self.explain(&e)))?;
        let credentials = Credentials {
            access_key_id: fetched.access_key_id().to_string(),
            secret_access_key: fetched.secret_access_key().to_string(),
            session_token: fetched.session_token().map(str::to_string),
        };
        let mut cache = self.cache();
        let generation = match &cache.resolved {
            Some(old) if old.credentials == credentials => old.generation,
            Some(old) => old.generation + 1,
            None => 1,
        };
        let resolved = Resolved {
            generation,
            credentials,
            expiry: fetched.expiry(),
        };
        cache.resolved = Some(resolved.clone());
        Ok(resolved)
    }
}

/// Whether a service error code means the credentials were rejected.
pub fn rejected(code: &str) -> bool {
    REJECTED_CREDENTIALS.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Hands out key `AKID<n>` on the n-th call, expiring `lifetime` later;
    /// fails from call `fail_from` on.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Option<Duration>,
        fail_from: u32,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= self.fail_from {
                return aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded("down"),
                ));
            }
            let expiry = self.lifetime.map(|l| SystemTime::now() + l);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_credential_types::Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    None,
                    expiry,
                    "test",
                ),
            ))
        }
    }

    fn source(lifetime: Option<Duration>) -> (CredentialSource, Arc<AtomicU32>) {
        failing_source(lifetime, u32::MAX)
    }

    fn failing_source(
        lifetime: Option<Duration>,
        fail_from: u32,
    ) -> (CredentialSource, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let provider = Counting {
            calls: calls.clone(),
            lifetime,
            fail_from,
        };
        (CredentialSource::from_provider(provider), calls)
    }

    /// The credentials once no background refresh is under way.
    async fn settled(source: &CredentialSource) -> Resolved {
        for _ in 0..500 {
            if !source.cache().refreshing {
                return source.current().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the background refresh never finished");
    }

    /// First call: `AKID1`, expiring within the refresh margin. Later calls
    /// stall until `release` is notified, then give `AKID2`.
    #[derive(Debug)]
    struct Stalling {
        calls: Arc<AtomicU32>,
        release: Arc<tokio::sync::Notify>,
    }

    impl ProvideCredentials for Stalling {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let release = self.release.clone();
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                if n > 1 {
                    release.notified().await;
                }
                Ok(aws_credential_types::Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    None,
                    Some(SystemTime::now() + REFRESH_MARGIN - Duration::from_secs(60)),
                    "test",
                ))
            })
        }
    }

    #[tokio::test]
    async fn a_stalled_refresh_does_not_block_calls_while_credentials_are_valid() {
        let calls = Arc::new(AtomicU32::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let source = CredentialSource::from_provider(Stalling {
            calls: calls.clone(),
            release: release.clone(),
        });
        assert_eq!(
            source.current().await.unwrap().credentials.access_key_id,
            "AKID1"
        );
        source.cache().asked = Instant::now().checked_sub(REFETCH_INTERVAL);
        // The refresh stalls; every call meanwhile gets the held credentials
        // at once, and only one refresh is started.
        for _ in 0..20 {
            let held = tokio::time::timeout(Duration::from_secs(1), source.current())
                .await
                .expect("a call waited for the stalled refresh")
                .unwrap();
            assert_eq!(held.credentials.access_key_id, "AKID1");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        release.notify_one();
        let fresh = settled(&source).await;
        assert_eq!(
            (fresh.credentials.access_key_id.as_str(), fresh.generation),
            ("AKID2", 2)
        );
    }

    #[tokio::test]
    async fn long_lived_credentials_are_fetched_once() {
        let (source, calls) = source(Some(Duration::from_secs(3600)));
        let first = source.current().await.unwrap();
        let second = source.current().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!((first.generation, second.generation), (1, 1));
        assert_eq!(second.credentials.access_key_id, "AKID1");
    }

    #[tokio::test]
    async fn expired_credentials_are_fetched_anew() {
        let (source, calls) = source(Some(Duration::ZERO));
        source.current().await.unwrap();
        let again = source.current().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(again.generation, 2);
        assert_eq!(again.credentials.access_key_id, "AKID2");
    }

    #[tokio::test]
    async fn credentials_close_to_expiry_are_fetched_at_most_every_interval() {
        let (source, calls) = source(Some(REFRESH_MARGIN - Duration::from_secs(1)));
        source.current().await.unwrap();
        let again = source.current().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(again.credentials.access_key_id, "AKID1");
        // Once the interval has passed (simulated), the next call fetches.
        source.cache().asked = Instant::now().checked_sub(REFETCH_INTERVAL);
        // That call is served the held credentials; the fetch runs beside it.
        let held = source.current().await.unwrap();
        assert_eq!(held.credentials.access_key_id, "AKID1");
        let fetched = settled(&source).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(fetched.credentials.access_key_id, "AKID2");
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_credentials_that_have_not_expired() {
        let (source, calls) = failing_source(Some(REFRESH_MARGIN - Duration::from_secs(1)), 2);
        source.current().await.unwrap();
        source.cache().asked = Instant::now().checked_sub(REFETCH_INTERVAL);
        source.current().await.unwrap();
        let kept = settled(&source).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(kept.credentials.access_key_id, "AKID1");
        // A forced refresh reports the failure.
        let error = source.refresh().await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot resolve AWS credentials"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_rejection_fetches_once_per_generation() {
        let (source, calls) = source(None);
        let first = source.current().await.unwrap();
        let new = source.refresh_rejected(first.generation).await.unwrap();
        assert_eq!(new.unwrap().credentials.access_key_id, "AKID2");
        // A second caller rejected with the old generation gets the new ones
        // without another fetch.
        let shared = source.refresh_rejected(first.generation).await.unwrap();
        assert_eq!(shared.unwrap().generation, 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rejection_with_unchanged_credentials_gives_none() {
        let source = CredentialSource::fixed(Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s".into(),
            session_token: None,
        });
        let first = source.current().await.unwrap();
        assert!(source
            .refresh_rejected(first.generation)
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn debug_shows_no_secret() {
        let resolved = Resolved {
            generation: 1,
            credentials: Credentials {
                access_key_id: "AKIDSHOWN".into(),
                secret_access_key: "very-secret".into(),
                session_token: Some("token-secret".into()),
            },
            expiry: None,
        };
        let shown = format!("{resolved:?}");
        assert!(
            shown.contains("AKIDSHOWN")
                && !shown.contains("very-secret")
                && !shown.contains("token-secret"),
            "{shown}"
        );
    }
}
