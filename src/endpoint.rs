//! The endpoint requests go to: a configured URL, validated, or DynamoDB's
//! public endpoint for the region. One derivation, for the component and for
//! hosts that pin what it may reach.

use crate::error::StoreError;

/// Where the endpoint is: scheme and authority (host and optional port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`, lowercase.
    pub scheme: String,
    /// The host and its port, when one was given.
    pub authority: String,
}

impl Endpoint {
    /// The URL requests are sent to (DynamoDB's JSON protocol always posts to `/`).
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.authority)
    }
}

/// The endpoint requests go to: `endpoint` when given (validated), else
/// DynamoDB's public endpoint for `region`. The one place both are derived,
/// for the component and for hosts that pin what it may reach.
pub fn resolve(region: &str, endpoint: Option<&str>) -> Result<Endpoint, StoreError> {
    match endpoint.map(str::trim) {
        None | Some("") => Ok(default_endpoint(region)),
        Some(url) => parse_endpoint(url),
    }
}

/// DynamoDB's public endpoint for a region: `https://dynamodb.<region>.amazonaws.com`,
/// or `.amazonaws.com.cn` for the China regions (`cn-*`).
pub fn default_endpoint(region: &str) -> Endpoint {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Endpoint {
        scheme: "https".into(),
        authority: format!("dynamodb.{region}.{domain}"),
    }
}

fn parse_endpoint(url: &str) -> Result<Endpoint, StoreError> {
    let bad = |why: &str| {
        Err(StoreError::InvalidConfig(format!(
            "endpoint {url:?} is invalid: {why}"
        )))
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected http://host[:port] or https://host[:port]");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return bad("only http and https are supported");
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return bad("the host is missing");
    }
    if authority.contains(['/', '?', '#', '@']) || authority.contains(char::is_whitespace) {
        return bad(
            "expected only a scheme, a host and an optional port (no path, query or user info)",
        );
    }
    if authority.parse::<http::uri::Authority>().is_err() {
        return bad("the host or port is malformed");
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return bad("the port must be a number from 0 to 65535");
        }
    }
    Ok(Endpoint {
        scheme,
        authority: authority.to_string(),
    })
}
