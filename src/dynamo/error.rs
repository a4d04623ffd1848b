//! Decoding of error responses: DynamoDB's JSON `__type` bodies and the XML
//! bodies that auth failures get from some servers (moto answers 403 XML).

use serde::Deserialize;

use crate::error::ServiceError;
use crate::transport::{HttpResponse, REQUEST_ID};

/// The service error carried by a non-2xx response (`attempts` is left at 0 for the caller).
pub fn service_error(response: &HttpResponse) -> ServiceError {
    let status = response.status().as_u16();
    let body = response.body();
    let (code, message) = json_error(body)
        .or_else(|| xml_error(body))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            (format!("HTTP{status}"), text)
        });
    ServiceError {
        code,
        message,
        status,
        request_id: response
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        attempts: 0,
    }
}

fn json_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "__type")]
        kind: String,
        #[serde(default, alias = "Message")]
        message: Option<String>,
    }
    let parsed: Body = serde_json::from_slice(body).ok()?;
    let code = parsed
        .kind
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .to_string();
    Some((code, parsed.message.unwrap_or_default()))
}

fn xml_error(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let code = xml_element(text, "Code")?;
    let message = xml_element(text, "Message").unwrap_or_default();
    Some((code, message))
}

fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        http::Response::builder()
            .status(status)
            .header("x-amzn-requestid", "REQ1")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn json_type_is_cut_after_the_hash() {
        let e = service_error(&response(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
        ));
        assert_eq!(e.code, "ConditionalCheckFailedException");
        assert_eq!(e.message, "The conditional request failed");
        assert_eq!(e.status, 400);
        assert_eq!(e.request_id.as_deref(), Some("REQ1"));
        let e = service_error(&response(
            400,
            r#"{"__type":"com.amazon.coral.service#InvalidSignatureException","Message":"bad sig"}"#,
        ));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidSignatureException", "bad sig")
        );
    }

    #[test]
    fn moto_xml_auth_failure_gives_its_code() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"#;
        let e = service_error(&response(403, body));
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert!(e.message.starts_with("The request signature we calculated"));
        assert_eq!(e.status, 403);
    }

    #[test]
    fn unknown_bodies_fall_back_to_the_status() {
        let e = service_error(&response(502, "<html>Bad Gateway</html>"));
        assert_eq!(e.code, "HTTP502");
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        let e = service_error(&response(500, ""));
        assert_eq!((e.code.as_str(), e.message.as_str()), ("HTTP500", ""));
    }
}
