//! SigV4 signing of DynamoDB requests with `aws-sigv4`.

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::config::Credentials;
use crate::error::StoreError;
use crate::transport::HttpRequest;

/// The SigV4 service name of DynamoDB.
pub const SERVICE: &str = "dynamodb";

/// Signs the request in place: adds `x-amz-date`, `authorization` and, with a
/// session token, `x-amz-security-token`. Every header already on the request
/// is signed, so callers set only the headers SigV4 needs (`host`,
/// `content-type`, `content-length`, `x-amz-target`), never `user-agent`.
pub fn sign_request(
    request: &mut HttpRequest,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), StoreError> {
    let identity = AwsCredentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "ld-dynamodb-store",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| StoreError::InvalidConfig(format!("cannot sign requests: {e}")))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default()));
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers,
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| StoreError::InvalidInput(format!("cannot sign request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| StoreError::InvalidInput(format!("cannot sign request: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The AWS SigV4 test suite's credentials and time (20150830T123600Z).
    fn vector_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    fn vector_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
        request.headers()[name].to_str().unwrap()
    }

    fn dynamo_request() -> HttpRequest {
        let body = bytes::Bytes::from_static(br#"{"TableName":"t"}"#);
        http::Request::post("http://127.0.0.1:8000/")
            .header("host", "127.0.0.1:8000")
            .header("content-type", "application/x-amz-json-1.0")
            .header("content-length", body.len().to_string())
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .body(body)
            .unwrap()
    }

    #[test]
    fn signs_only_the_headers_present_and_scopes_to_dynamodb() {
        let mut request = dynamo_request();
        sign_request(
            &mut request,
            &vector_credentials(None),
            "eu-west-1",
            vector_time(),
        )
        .unwrap();
        let auth = header(&request, "authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/dynamodb/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains(
                "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target,"
            ),
            "{auth}"
        );
        assert!(!auth.contains("user-agent"));
        assert!(request.headers().get("x-amz-security-token").is_none());
        assert!(!auth.contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let mut request = dynamo_request();
        sign_request(
            &mut request,
            &vector_credentials(Some("TOKEN123")),
            "us-east-1",
            vector_time(),
        )
        .unwrap();
        assert_eq!(header(&request, "x-amz-security-token"), "TOKEN123");
        assert!(header(&request, "authorization").contains("x-amz-security-token"));
    }

    #[test]
    fn signature_depends_on_body_and_secret() {
        let sig = |secret: &str, body: &[u8]| {
            let mut request = dynamo_request();
            *request.body_mut() = bytes::Bytes::copy_from_slice(body);
            let mut creds = vector_credentials(None);
            creds.secret_access_key = secret.into();
            sign_request(&mut request, &creds, "us-east-1", vector_time()).unwrap();
            header(&request, "authorization").to_string()
        };
        assert_eq!(sig("a", b"{}"), sig("a", b"{}"));
        assert_ne!(sig("a", b"{}"), sig("b", b"{}"));
        assert_ne!(sig("a", b"{}"), sig("a", b"{ }"));
    }
}
