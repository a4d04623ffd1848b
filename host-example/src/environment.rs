//! The usual AWS settings read from the environment, one way for the CLI, the
//! library's builder and the examples: the endpoint (`AWS_ENDPOINT_URL_DYNAMODB`,
//! then `AWS_ENDPOINT_URL`, as the AWS SDKs order them) and the region
//! (`AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's). Credentials come
//! from [`crate::CredentialSource::default_chain`].

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
