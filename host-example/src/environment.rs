//! The usual AWS settings read from the environment, one way for the CLI, the
//! library's builder and the examples: the endpoint (`AWS_ENDPOINT_URL_DYNAMODB`,
//! then `AWS_ENDPOINT_URL`, as the AWS SDKs order them) and the region
//! (`AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's), the CA bundle
//! TLS trusts instead of the built-in roots (`AWS_CA_BUNDLE`, then the
//! profile's `ca_bundle`, as the AWS CLI reads them). Credentials come from
//! [`crate::CredentialSource::default_chain`].

use std::path::PathBuf;

use aws_types::os_shim_internal::{Env, Fs};

use crate::error::Error;

/// The variables that set the endpoint, the first set one wins.
pub const ENDPOINT_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"];

/// The variable that names the table, for the CLI and the examples.
pub const TABLE_VAR: &str = "LD_DYNAMODB_TABLE";

/// `name`'s value, unless unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The endpoint from [`ENDPOINT_VARS`]; `None` means DynamoDB's public one.
pub fn endpoint() -> Option<String> {
    ENDPOINT_VARS.iter().find_map(|name| var(name))
}

/// The region from `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's
/// config file (`AWS_PROFILE`, else `default`).
pub async fn region() -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let chain = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::builder().build());
    chain
        .region()
        .await
        .map(|r| r.to_string())
        .filter(|r| !r.is_empty())
}

/// A PEM file of certificate authorities to trust, and the setting that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    /// The file.
    pub path: PathBuf,
    /// Where it was set, in words: `AWS_CA_BUNDLE`, or a profile's `ca_bundle`.
    pub setting: String,
}

impl std::fmt::Display for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the CA bundle {} ({})",
            self.path.display(),
            self.setting
        )
    }
}

/// The variable that names a CA bundle.
pub const CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// The CA bundle of `AWS_CA_BUNDLE`, else of `ca_bundle` in the profile's
/// config file (`AWS_PROFILE`, else `default`; `AWS_CONFIG_FILE`, else
/// `~/.aws/config`); `None` when neither is set.
pub async fn ca_bundle() -> Option<CaBundle> {
    ca_bundle_in(&Env::real(), &Fs::real()).await
}

async fn ca_bundle_in(env: &Env, fs: &Fs) -> Option<CaBundle> {
    if let Some(path) = env.get(CA_BUNDLE_VAR).ok().filter(|v| !v.is_empty()) {
        return Some(CaBundle {
            path: path.into(),
            setting: CA_BUNDLE_VAR.into(),
        });
    }
    // The default files (`AWS_CONFIG_FILE`, else `~/.aws/config`). A missing
    // or unreadable one sets nothing here; the credential chain reports such
    // files itself.
    let files = Default::default();
    let profiles = aws_config::profile::load(fs, env, &files, None)
        .await
        .ok()?;
    let path = profiles.get("ca_bundle").filter(|v| !v.is_empty())?;
    Some(CaBundle {
        path: path.into(),
        setting: format!("ca_bundle of profile {:?}", profiles.selected_profile()),
    })
}

/// `explicit`, else the region from the environment; an error that says how to
/// set one when there is none.
pub async fn require_region(explicit: Option<String>) -> Result<String, Error> {
    match explicit.filter(|r| !r.is_empty()) {
        Some(region) => Ok(region),
        None => region().await.ok_or_else(|| {
            Error::Config(
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or `region` in the \
                 profile's ~/.aws/config), or pass --region to the CLI"
                    .into(),
            )
        }),
    }
}

/// `table`, unless empty: then an error that says how to name one.
pub fn require_table(table: &str) -> Result<(), Error> {
    if table.is_empty() {
        return Err(Error::Config(format!(
            "no table name: set {TABLE_VAR}, or pass --table to the CLI"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_specific_endpoint_comes_first() {
        // One test touches these variables, so none races with it.
        std::env::set_var("AWS_ENDPOINT_URL", "http://general:1");
        std::env::remove_var("AWS_ENDPOINT_URL_DYNAMODB");
        assert_eq!(endpoint().as_deref(), Some("http://general:1"));
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:2");
        assert_eq!(endpoint().as_deref(), Some("http://dynamodb:2"));
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "");
        assert_eq!(endpoint().as_deref(), Some("http://general:1"));
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::remove_var("AWS_ENDPOINT_URL_DYNAMODB");
        assert_eq!(endpoint(), None);
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_slice(&vars.iter().map(|&(k, v)| (k, v)).collect::<Vec<_>>())
    }

    fn config_file(text: &str) -> Fs {
        Fs::from_slice(&[("/home/me/.aws/config", text)])
    }

    #[tokio::test]
    async fn the_ca_bundle_comes_from_the_variable_then_the_selected_profile() {
        let fs = config_file(
            "[default]\nca_bundle = /etc/default.pem\n[profile work]\nca_bundle = /etc/work.pem\n",
        );
        let home = ("HOME", "/home/me");
        let from = |vars: &[(&str, &str)]| {
            let (env, fs) = (env(vars), fs.clone());
            async move { ca_bundle_in(&env, &fs).await.map(|b| b.to_string()) }
        };
        assert_eq!(
            from(&[
                home,
                ("AWS_CA_BUNDLE", "/tmp/ca.pem"),
                ("AWS_PROFILE", "work")
            ])
            .await,
            Some("the CA bundle /tmp/ca.pem (AWS_CA_BUNDLE)".into())
        );
        assert_eq!(
            from(&[home, ("AWS_PROFILE", "work")]).await,
            Some("the CA bundle /etc/work.pem (ca_bundle of profile \"work\")".into())
        );
        // An empty variable is unset, as the AWS CLI reads it.
        assert_eq!(
            from(&[home, ("AWS_CA_BUNDLE", "")]).await,
            Some("the CA bundle /etc/default.pem (ca_bundle of profile \"default\")".into())
        );
        assert_eq!(from(&[home, ("AWS_PROFILE", "other")]).await, None);
        let (env, fs) = (env(&[home]), Fs::from_slice(&[]));
        assert_eq!(ca_bundle_in(&env, &fs).await, None);
    }

    #[test]
    fn a_missing_table_names_the_variable_and_the_flag() {
        let e = require_table("").unwrap_err().to_string();
        assert!(
            e.contains("LD_DYNAMODB_TABLE") && e.contains("--table"),
            "{e}"
        );
        assert!(require_table("flags").is_ok());
    }
}
