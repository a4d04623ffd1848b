//! Fuzzing the app's routes natively: any method, path, query, header and
//! body, on every route family, with and without keys, is answered with a
//! status the API documents, and nothing panics. `PROPTEST_CASES` sets the
//! number of requests (256 by default, the short run of `scripts/test.sh`;
//! BENCHMARKS.md's "Fuzzing" names the long run).

use ld_dynamodb_edge_flags::api::{handle, FlagSource, Item, Request};
use ld_dynamodb_edge_flags::evalx::{EvalFailure, Filter};
use ld_dynamodb_edge_flags::settings::{Auth, Settings};
use ld_dynamodb_edge_flags::snapshot::{Edge, Freshness, Read, Snapshot};
use proptest::prelude::*;

/// A source with two flags and a segment; its evaluator answers a state
/// built from the context's length, or refuses a context without `"key"`.
struct Source;

impl FlagSource for Source {
    fn read(&mut self) -> Result<Read, String> {
        let item = |key: &str, deleted| {
            (
                key.to_string(),
                Item {
                    version: 1,
                    deleted,
                    json: format!("{{\"key\":{key:?},\"version\":1}}"),
                },
            )
        };
        Ok(Read {
            initialized: true,
            flags: vec![item("a", false), item("gone", true)],
            segments: vec![item("s", false)],
        })
    }
    fn load(&mut self, _: &Snapshot) {}
    fn all_flags_state(
        &mut self,
        context: &str,
        _: Filter,
        _: bool,
    ) -> Result<String, EvalFailure> {
        if !context.contains("\"key\"") {
            return Err(EvalFailure::InvalidContext(
                "invalid context: missing field `key`".into(),
            ));
        }
        Ok(format!(
            r#"{{"a": {}, "$flagsState": {{"a": {{"version": 1}}}}, "$valid": true}}"#,
            context.len()
        ))
    }
    fn secure_mode_hash(&mut self, context: &str, _: &str) -> Result<String, EvalFailure> {
        Ok(format!("{:x}", context.len()))
    }
}

fn settings(keyed: bool, secure: bool) -> Settings {
    Settings {
        table: "t".into(),
        prefix: None,
        region: "us-east-1".into(),
        endpoint: None,
        access_key_id: String::new(),
        secret_access_key: String::new(),
        session_token: None,
        auth: if keyed {
            Auth::SdkKey("sdk-1".into())
        } else {
            Auth::None
        },
        client_side_id: Some("env-1".into()),
        mobile_key: Some("mob-1".into()),
        secure_mode_key: secure.then(|| "sdk-1".into()),
        freshness: Freshness {
            refresh: 15_000_000_000,
            max_stale: 60_000_000_000,
        },
        access_log: false,
        consistent_reads: false,
        request_budget_ms: 2_000,
    }
}

/// Paths near the real routes: real prefixes, then arbitrary segments of
/// characters that matter to the router and the decoders.
fn path() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "/sdk/latest-all",
        "/sdk/latest-flags/",
        "/sdk/latest-segments/",
        "/status",
        "/sdk/evalx/contexts/",
        "/sdk/evalx/context",
        "/sdk/evalx/env-1/contexts/",
        "/sdk/evalx/env-1/users/",
        "/sdk/evalx/env-1/context",
        "/sdk/goals/env-1",
        "/msdk/evalx/contexts/",
        "/msdk/evalx/user",
        "/",
        "",
    ]);
    (prefix, "[a-zA-Z0-9_=%/+.~-]{0,40}|\\PC{0,20}")
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "HEAD", "REPORT", "OPTIONS", "POST", "PUT", "DELETE"
        ])
        .prop_map(str::to_string),
        "[A-Za-z]{0,8}",
    ]
}

/// Bodies: JSON contexts of any shape, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    let json = leaf.prop_recursive(6, 300, 12, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(serde_json::Value::from),
            prop::collection::btree_map("kind|key|multi|user|\\PC{0,6}", inner, 0..12)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        json.prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #[test]
    fn every_request_gets_a_documented_status_and_nothing_panics(
        method in method(),
        path in path(),
        query in proptest::option::of("[a-zA-Z0-9=&%+h-]{0,30}"),
        authorization in proptest::option::of(prop_oneof![
            Just(b"sdk-1".to_vec()), Just(b"api_key mob-1".to_vec()),
            prop::collection::vec(any::<u8>(), 0..20)]),
        if_none_match in proptest::option::of("\\PC{0,20}"),
        origin in proptest::option::of("\\PC{0,20}"),
        content_type in proptest::option::of(prop_oneof![
            Just("application/json".to_string()), "\\PC{0,20}"]),
        body in body(),
        keyed in any::<bool>(),
        secure in any::<bool>(),
        now in any::<u64>(),
    ) {
        let request = Request {
            method,
            path,
            query,
            authorization,
            if_none_match,
            origin,
            content_type,
            body,
        };
        let settings = settings(keyed || secure, secure);
        let mut edge = Edge::default();
        let response = handle(&request, Ok(&settings), &mut edge, now, || Ok(Source), &mut |_| {});
        prop_assert!(
            [200, 304, 400, 401, 404, 405, 413, 415].contains(&response.status),
            "{} for {:?}", response.status, request
        );
        if response.status != 304 && request.method != "HEAD" && request.method != "OPTIONS" {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&response.body).is_ok());
        }
    }
}
