//! Fuzz tests of everything that reads the network: arbitrary bytes, mutated
//! real responses and random JSON built from DynamoDB's vocabulary must decode
//! to a value or a malformed-response error, never panic; and the redaction of
//! service messages, over arbitrary UTF-8 with every Unicode whitespace
//! character next to each label it looks for, must never panic nor leave a
//! scope or a known secret. Each runs for a bounded time (`LD_FUZZ_SECONDS`,
//! default 3).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::error::service_error;
use super::redact::redact;
use super::response;
use crate::config::Credentials;
use crate::error::StoreError;
use crate::schema;
use crate::store::DataStore;
use crate::testing::{config, FakePlatform, Sent};

/// xorshift64*: small, deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "Item",
    "Items",
    "Count",
    "LastEvaluatedKey",
    "UnprocessedItems",
    "PutRequest",
    "DeleteRequest",
    "Key",
    "Table",
    "TableStatus",
    "__type",
    "message",
    "Message",
    "namespace",
    "key",
    "version",
    "item",
    "S",
    "N",
    "SS",
    "M",
    "L",
    "BOOL",
    "NULL",
    "synchronizedOn",
    "included",
    "excluded",
    "tbl",
    "deleted",
    "#",
    "ACTIVE",
    "",
];

const SAMPLES: &[&str] = &[
    r#"{"Item":{"namespace":{"S":"features"},"key":{"S":"f"},"version":{"N":"3"},"item":{"S":"{\"key\":\"f\",\"version\":3,\"deleted\":true}"}}}"#,
    r#"{"Items":[{"namespace":{"S":"features"},"key":{"S":"a"},"version":{"N":"1"},"item":{"S":"null"}}],"Count":1,"LastEvaluatedKey":{"namespace":{"S":"features"},"key":{"S":"a"}}}"#,
    r#"{"UnprocessedItems":{"tbl":[{"PutRequest":{"Item":{"key":{"S":"k"}}}},{"DeleteRequest":{"Key":{}}}]}}"#,
    r#"{"Table":{"TableStatus":"ACTIVE"}}"#,
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
    "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error></Errors></ErrorResponse>",
];

fn random_json(rng: &mut Rng, depth: u32) -> Value {
    let word = |rng: &mut Rng| WORDS[rng.below(WORDS.len())].to_string();
    match if depth > 4 {
        rng.below(5)
    } else {
        rng.below(8)
    } {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.next() as i64 >> rng.below(64)),
        3 => json!((rng.next() % 1_000_000) as f64 / 7.0 - 1e5),
        4 => Value::String(if rng.below(2) == 0 {
            word(rng)
        } else {
            (rng.next() % 100_000).to_string()
        }),
        5 | 6 => {
            let mut map = Map::new();
            for _ in 0..rng.below(5) {
                map.insert(word(rng), random_json(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[at] = rng.next() as u8,
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, b"{}[]\":,\\0aSN"[rng.below(12)]),
            _ => bytes.truncate(at),
        }
    }
}

fn malformed_or_ok<T>(result: Result<T, StoreError>, input: &[u8]) {
    if let Err(e) = result {
        assert!(
            matches!(e, StoreError::MalformedResponse(_)),
            "{e:?} for {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Every decoder over one input.
fn decode_all(input: &[u8], status: u16) {
    malformed_or_ok(response::get_item::<response::Row>(input), input);
    if let Ok(Some(row)) = response::get_item::<response::Row>(input) {
        malformed_or_ok(response::stored_item("features", row), input);
    }
    if let Ok(page) = response::query(input) {
        for raw in page.items {
            malformed_or_ok(response::stored_item("features", raw), input);
        }
    } else {
        malformed_or_ok(response::query(input), input);
    }
    malformed_or_ok(response::unprocessed_items(input, "tbl"), input);
    malformed_or_ok(response::put_item(input), input);
    malformed_or_ok(response::table_status(input), input);
    let error = service_error(
        &http::Response::builder()
            .status(status)
            .body(input.to_vec())
            .unwrap(),
    );
    assert_eq!(error.status, status);
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = schema::is_deleted(Some(text));
    }
}

fn fuzz_seconds() -> u64 {
    std::env::var("LD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

#[test]
fn decoders_never_panic() {
    let seconds = fuzz_seconds();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = 0u64;
    while Instant::now() < deadline {
        for _ in 0..500 {
            let status = [200, 400, 403, 500, 503][rng.below(5)];
            let input: Vec<u8> = match rng.below(3) {
                0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
                1 => {
                    let mut bytes = SAMPLES[rng.below(SAMPLES.len())].as_bytes().to_vec();
                    mutate(&mut rng, &mut bytes);
                    bytes
                }
                _ => serde_json::to_vec(&random_json(&mut rng, 0)).unwrap(),
            };
            decode_all(&input, status);
            cases += 1;
        }
    }
    assert!(cases > 1000, "ran {cases} cases");
    eprintln!("decoder fuzz: {cases} cases in {seconds} s");
}

/// What redaction looks for, and the secrets of [`fuzz_credentials`].
const LABELS: &[&str] = &[
    "x-amz-security-token:",
    "X-Amz-Security-Token=",
    "Signature=",
    "credential=",
    "/aws4_request",
    "AKID/20261127/us-east-1/dynamodb/aws4_request",
    "** redacted **",
    "fuzz-secret-key",
    "fuzz-session-token",
];

fn fuzz_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKID".into(),
        secret_access_key: "fuzz-secret-key".into(),
        session_token: Some("fuzz-session-token".into()),
    }
}

/// Arbitrary UTF-8: labels, Unicode whitespace, separators, and random
/// characters of every width (1 to 4 bytes), in random order.
fn random_text(rng: &mut Rng, spaces: &[char]) -> String {
    let mut text = String::new();
    for _ in 0..rng.below(12) {
        match rng.below(5) {
            0 => text.push_str(LABELS[rng.below(LABELS.len())]),
            1 => text.push(spaces[rng.below(spaces.len())]),
            2 => text.push(['\'', '"', ',', '&', '<', '\\', '=', '/'][rng.below(8)]),
            3 => text.push_str(["AKID", "20261127", "us-east-1", "dynamodb"][rng.below(4)]),
            _ => text.push(char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('\u{fffd}')),
        }
    }
    text
}

fn check_redacted(message: &str, shown: &str) {
    assert!(
        !shown.contains("/aws4_request")
            && !shown.contains("fuzz-secret-key")
            && !shown.contains("fuzz-session-token"),
        "{message:?} became {shown:?}"
    );
}

#[test]
fn redaction_never_panics_and_leaves_no_scope_or_secret() {
    let spaces: Vec<char> = (0..=0x10_FFFFu32)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
        .collect();
    let credentials = fuzz_credentials();
    // Every whitespace character, on each side of each label.
    for label in LABELS {
        for &space in &spaces {
            for message in [
                format!("a{space}{label}b"),
                format!("{label}{space}x"),
                format!("{space}{label}"),
                format!("{label}{space}"),
            ] {
                check_redacted(&message, &redact(&message, &credentials));
            }
        }
    }
    let seconds = fuzz_seconds();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut cases = 0u64;
    while Instant::now() < deadline {
        for _ in 0..500 {
            let message = random_text(&mut rng, &spaces);
            check_redacted(&message, &redact(&message, &credentials));
            // The whole error path: the message in a JSON or XML error body,
            // decoded and redacted as the client does it.
            let body = if rng.below(2) == 0 {
                serde_json::to_vec(
                    &json!({"__type": "x#InvalidSignatureException", "message": message}),
                )
                .unwrap()
            } else {
                format!(
                    "<Error><Code>SignatureDoesNotMatch</Code><Message>{message}</Message></Error>"
                )
                .into_bytes()
            };
            let response = http::Response::builder().status(400).body(body).unwrap();
            let error = service_error(&response);
            check_redacted(&error.message, &redact(&error.message, &credentials));
            cases += 1;
        }
    }
    assert!(cases > 1000, "ran {cases} cases");
    eprintln!("redaction fuzz: {cases} cases in {seconds} s");
}

#[test]
fn store_calls_answered_with_arbitrary_error_text_give_typed_errors() {
    let spaces: Vec<char> = (0..=0x10_FFFFu32)
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..2_000 {
        let message = random_text(&mut rng, &spaces);
        let body = serde_json::to_string(
            &json!({"__type": "x#InvalidSignatureException", "message": message}),
        )
        .unwrap();
        let store = DataStore::new(
            config("", 1, 8),
            FakePlatform::new(move |_: &Sent| Ok((400, body.clone()))),
        );
        match store.get("features", "flag") {
            Err(StoreError::Service(e)) => {
                assert_eq!(e.code, "InvalidSignatureException");
                assert!(!e.message.contains("/aws4_request"), "{:?}", e.message);
            }
            other => panic!("{other:?} for {message:?}"),
        }
    }
}
