//! Removes signing material from service messages. AWS's signature errors echo
//! the canonical request (with `x-amz-security-token:<token>`), the string to
//! sign (with the credential scope) and sometimes the `Authorization` header;
//! none of it may reach an error, a log line or `Debug` output.

use crate::config::Credentials;

/// What replaces a redacted value.
pub const REDACTED: &str = "** redacted **";

/// `message` with the session token, the secret key, signatures and credential
/// scopes replaced by [`REDACTED`].
pub fn redact(message: &str, credentials: &Credentials) -> String {
    let mut text = message.to_string();
    // Known values first, wherever they appear.
    for secret in [
        Some(credentials.secret_access_key.as_str()),
        credentials.session_token.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    {
        text = text.replace(secret, REDACTED);
    }
    // Then anything shaped like signing material, whoever's it is.
    text = redact_after(&text, "x-amz-security-token:");
    text = redact_after(&text, "x-amz-security-token=");
    text = redact_after(&text, "signature=");
    text = redact_after(&text, "credential=");
    redact_scopes(&text)
}

/// Whether `c` ends a value in an echoed request (header lines, quoted text,
/// comma-separated `Authorization` fields).
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | ',' | '&' | '<' | '\\')
}

/// Replaces the value after every (ASCII case-insensitive) occurrence of `label`.
fn redact_after(text: &str, label: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(label) {
        let start = search + found + label.len();
        let end = if text[start..].starts_with(REDACTED) {
            start + REDACTED.len()
        } else {
            text[start..]
                .find(ends_value)
                .map_or(text.len(), |at| start + at)
        };
        out.push_str(&text[copied..start]);
        if end > start {
            out.push_str(REDACTED);
        }
        copied = end;
        search = end.max(start);
    }
    out.push_str(&text[copied..]);
    out
}

/// Replaces credential scopes (`<key id>/<date>/<region>/<service>/aws4_request`
/// or `<date>/<region>/<service>/aws4_request`) as whole words.
fn redact_scopes(text: &str) -> String {
    const SUFFIX: &str = "/aws4_request";
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find(SUFFIX) {
        let end = search + found + SUFFIX.len();
        // The scope starts after the last separator before the suffix; the
        // separator may be multi-byte (Unicode whitespace), so step over its
        // UTF-8 length, never over one byte.
        let start = text[copied..search + found]
            .char_indices()
            .rfind(|&(_, c)| ends_value(c) || c == '=')
            .map_or(copied, |(at, c)| copied + at + c.len_utf8());
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
        search = end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVz".into()),
        }
    }

    /// The shape of DynamoDB's `InvalidSignatureException` message.
    const AWS_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-length:2\ncontent-type:application/x-amz-json-1.0\nhost:dynamodb.us-east-1.amazonaws.com\nx-amz-date:20261127T120000Z\nx-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVz\nx-amz-target:DynamoDB_20120810.GetItem\n\ncontent-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261127T120000Z\n20261127/us-east-1/dynamodb/aws4_request\nbd3a1e0d4e4ba9d5e5a0a1c1f2b1d6f1e5c0b1f2a1d6e5f0c1b2a3d4e5f6a7b8'\n";

    #[test]
    fn echoed_canonical_request_loses_token_and_scope() {
        let shown = redact(AWS_MESSAGE, &credentials());
        assert!(!shown.contains("IQoJb3JpZ2luX2VjEXAMPLETOKEN"), "{shown}");
        assert!(!shown.contains("aws4_request"), "{shown}");
        assert!(
            shown.contains("x-amz-security-token:** redacted **\n"),
            "{shown}"
        );
        assert!(shown.contains("The request signature we calculated"));
        assert!(shown.contains("x-amz-target:DynamoDB_20120810.GetItem"));
    }

    #[test]
    fn another_token_and_an_authorization_header_are_redacted_by_shape() {
        let message = "header was 'AWS4-HMAC-SHA256 Credential=AKIDOTHER/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd' with X-Amz-Security-Token:OTHERTOKEN";
        let shown = redact(message, &credentials());
        for secret in ["AKIDOTHER", "0123abcd", "OTHERTOKEN", "aws4_request"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert!(shown.contains("SignedHeaders=host;x-amz-date"), "{shown}");
    }

    #[test]
    fn a_scope_after_multi_byte_whitespace_is_redacted_without_panicking() {
        for space in ['\u{a0}', '\u{2003}', '\u{3000}', '\u{85}'] {
            let message = format!("scope{space}AKID/20261127/us-east-1/dynamodb/aws4_request end");
            let shown = redact(&message, &credentials());
            assert_eq!(shown, format!("scope{space}** redacted ** end"));
        }
    }

    #[test]
    fn known_secrets_are_redacted_anywhere_and_plain_text_is_kept() {
        let c = credentials();
        let message = format!("odd {} text", c.secret_access_key);
        assert_eq!(redact(&message, &c), "odd ** redacted ** text");
        let plain = "Requested resource not found: Table: flags not found";
        assert_eq!(redact(plain, &c), plain);
    }
}
