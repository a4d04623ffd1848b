//! Fuzz test of the response decoders: arbitrary bytes, mutated real responses
//! and random JSON built from DynamoDB's vocabulary must decode to a value or
//! a malformed-response error, never panic. Runs for a bounded time
//! (`LD_FUZZ_SECONDS`, default 3).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::error::service_error;
use super::response;
use crate::error::StoreError;
use crate::schema;

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

#[test]
fn decoders_never_panic() {
    let seconds = std::env::var("LD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
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
