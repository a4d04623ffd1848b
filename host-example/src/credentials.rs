//! AWS credentials resolved on the host, handed to the component and refreshed
//! before they expire: fixed keys, the AWS default chain of `aws-config`
//! (environment, shared files with `AWS_PROFILE`, web identity, ECS/EKS
//! container credentials, IMDS), or any other `ProvideCredentials`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Mutex;

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

/// The last credentials resolved and when the provider was last asked.
#[derive(Default)]
struct Cache {
    resolved: Option<Resolved>,
    asked: Option<Instant>,
}

/// Where credentials come from; cheap to clone, shared by every instance of a store.
#[derive(Clone)]
pub struct CredentialSource {
    provider: SharedCredentialsProvider,
    cache: Arc<Mutex<Cache>>,
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
            cache: Arc::default(),
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
        let mut chain = DefaultCredentialsChain::builder();
        if let Some(profile) = profile {
            chain = chain.profile_name(profile);
        }
        Self::from_provider(chain.build().await)
    }

    /// The current credentials, fetched when there are none yet or they expire
    /// within [`REFRESH_MARGIN`]. Until they have expired, a fetch is tried at
    /// most every [`REFETCH_INTERVAL`] and a failed one keeps them in use.
    pub async fn current(&self) -> Result<Resolved, Error> {
        let mut cache = self.cache.lock().await;
        let now = SystemTime::now();
        let usable = match &cache.resolved {
            Some(resolved) if resolved.fresh(now) => return Ok(resolved.clone()),
            Some(resolved) if resolved.unexpired(now) => resolved.clone(),
            _ => return self.fetch(&mut cache).await,
        };
        if cache
            .asked
            .is_some_and(|asked| asked.elapsed() < REFETCH_INTERVAL)
        {
            return Ok(usable);
        }
        Ok(self.fetch(&mut cache).await.unwrap_or(usable))
    }

    /// Fetches credentials now, whatever their expiry.
    pub async fn refresh(&self) -> Result<Resolved, Error> {
        let mut cache = self.cache.lock().await;
        self.fetch(&mut cache).await
    }

    /// After the service rejected credentials of `generation`: fetches them
    /// anew (unless that already happened) and returns them when they differ.
    pub async fn refresh_rejected(&self, generation: u64) -> Result<Option<Resolved>, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(resolved) = &cache.resolved {
            if resolved.generation != generation {
                return Ok(Some(resolved.clone()));
            }
        }
        let resolved = self.fetch(&mut cache).await?;
        Ok((resolved.generation != generation).then_some(resolved))
    }

    /// Asks the provider; keeps the generation when nothing changed.
    async fn fetch(&self, cache: &mut Cache) -> Result<Resolved, Error> {
        cache.asked = Some(Instant::now());
        let fetched = self.provider.provide_credentials().await.map_err(|e| {
            Error::Credentials(
                aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            )
        })?;
        let credentials = Credentials {
            access_key_id: fetched.access_key_id().to_string(),
            secret_access_key: fetched.secret_access_key().to_string(),
            session_token: fetched.session_token().map(str::to_string),
        };
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
        source.cache.lock().await.asked = Instant::now().checked_sub(REFETCH_INTERVAL);
        let fetched = source.current().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(fetched.credentials.access_key_id, "AKID2");
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_credentials_that_have_not_expired() {
        let (source, calls) = failing_source(Some(REFRESH_MARGIN - Duration::from_secs(1)), 2);
        source.current().await.unwrap();
        source.cache.lock().await.asked = Instant::now().checked_sub(REFETCH_INTERVAL);
        let kept = source.current().await.unwrap();
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
