//! An edge flag server: LaunchDarkly's server-side polling API
//! (`/sdk/latest-all`, `/sdk/latest-flags[/{key}]`, `/sdk/latest-segments[/{key}]`,
//! `/status`) served from the ld-dynamodb data store, and the evaluation API
//! of client-side, mobile and server SDKs (`/sdk/evalx/...`, `/msdk/evalx/...`)
//! served by the flag evaluator. The logic is plain Rust: [`api`] (routing,
//! polling), [`evalx`] (evaluation routes) with [`context_limits`], [`snapshot`] (the table kept in
//! memory between requests), [`settings`]; `component` maps `wasi:http`,
//! `wasi:config` (settings), `wasi:cli/environment` (secrets),
//! `wasi:cli/stderr` (the log), `wasi:clocks/monotonic-clock` and the
//! store's and evaluator's WIT onto it (compiled for wasm only).

pub mod api;
pub mod context_limits;
pub mod evalx;
pub mod settings;
pub mod snapshot;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "wit",
        world: "edge-flags",
        generate_all,
    });

    use exports::wasi::http::incoming_handler::Guest;
    use ld_dynamodb::evaluation::evaluator as eval;
    use ld_dynamodb::store::data_store::Store;
    use ld_dynamodb::store::types::{Config, Credentials, RetryPolicy, StoreError};
    use std::cell::RefCell;

    use wasi::cli::{environment, stderr};
    use wasi::clocks::monotonic_clock;
    use wasi::config::store as config;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };

    use crate::api::{self, FlagSource, Item};
    use crate::evalx::{EvalFailure, Filter, MAX_BODY};
    use crate::settings::{Auth, Settings};
    use crate::snapshot::{Edge, Read, Snapshot, KINDS};

    struct App;

    thread_local! {
        /// What outlives a request when the host reuses the instance.
        static EDGE: RefCell<Edge<StoreSource>> = RefCell::new(Edge::default());
    }

    /// The data store, and the flag evaluator over its last snapshot, as the
    /// API's flag source.
    struct StoreSource {
        store: Store,
        /// Whether the snapshot is read strongly consistent.
        consistent_reads: bool,
        /// Made from each snapshot; `None` before the first.
        evaluator: Option<eval::Evaluator>,
    }

    /// The store crate's error from either WIT copy of `store-error` (the
    /// store's, or the evaluator's, which repeats it field for field).
    macro_rules! core_error {
        ($($wit:ident)::+, $e:expr) => {{
            use ld_dynamodb_store::error as core;
            match $e {
                $($wit)::+::InvalidConfig(m) => core::StoreError::InvalidConfig(m),
                $($wit)::+::InvalidInput(m) => core::StoreError::InvalidInput(m),
                $($wit)::+::Transport(t) => core::StoreError::Transport(core::TransportError {
                    code: t.code,
                    detail: t.detail,
                    attempts: t.attempts,
                }),
                $($wit)::+::Service(s) => core::StoreError::Service(core::ServiceError {
                    code: s.code,
                    message: s.message,
                    status: s.status,
                    request_id: s.request_id,
                    attempts: s.attempts,
                }),
                $($wit)::+::MalformedResponse(m) => core::StoreError::MalformedResponse(m),
            }
        }};
    }

    /// One line describing a store error: the store crate's text of it.
    fn describe(e: StoreError) -> String {
        core_error!(StoreError, e).to_string()
    }

    fn eval_failure(e: eval::EvalError) -> EvalFailure {
        match e {
            eval::EvalError::InvalidContext(m) | eval::EvalError::InvalidDefault(m) => {
                EvalFailure::InvalidContext(m)
            }
            eval::EvalError::Store(e) => {
                EvalFailure::Store(core_error!(eval::StoreError, e).to_string())
            }
        }
    }

    fn item(i: ld_dynamodb::store::types::Item) -> Item {
        Item {
            version: i.version,
            deleted: i.deleted,
            json: i.json,
        }
    }

    impl FlagSource for StoreSource {
        fn read(&mut self) -> Result<Read, String> {
            let kinds: Vec<String> = KINDS.iter().map(|k| k.to_string()).collect();
            let snapshot = self
                .store
                .snapshot_with(&kinds, self.consistent_reads)
                .map_err(describe)?;
            let mut kinds = snapshot
                .kinds
                .into_iter()
                .map(|items| items.into_iter().map(|k| (k.key, item(k.item))).collect());
            Ok(Read {
                initialized: snapshot.initialized,
                flags: kinds.next().unwrap_or_default(),
                segments: kinds.next().unwrap_or_default(),
            })
        }

        fn load(&mut self, snapshot: &Snapshot) {
            let keyed = |items: &[(String, Item)]| {
                items
                    .iter()
                    .map(|(key, item)| eval::KeyedJson {
                        key: key.clone(),
                        json: item.json.clone(),
                    })
                    .collect::<Vec<_>>()
            };
            self.evaluator = Some(eval::Evaluator::from_items(
                snapshot.initialized,
                &keyed(&snapshot.flags),
                &keyed(&snapshot.segments),
            ));
        }

        fn all_flags_state(
            &mut self,
            context_json: &str,
            filter: Filter,
            with_reasons: bool,
        ) -> Result<String, EvalFailure> {
            let filter = match filter {
                Filter::All => eval::FlagFilter::All,
                Filter::ClientSide => eval::FlagFilter::ClientSide,
                Filter::Mobile => eval::FlagFilter::Mobile,
            };
            let options = eval::StateOptions {
                filter,
                with_reasons,
                details_only_for_tracked_flags: false,
            };
            self.evaluator()
                .all_flags_state(context_json, options)
                .map_err(eval_failure)
        }

        fn secure_mode_hash(
            &mut self,
            context_json: &str,
            sdk_key: &str,
        ) -> Result<String, EvalFailure> {
            self.evaluator()
                .secure_mode_hash(context_json, sdk_key)
                .map_err(eval_failure)
        }
    }

    impl StoreSource {
        /// The evaluator of the loaded snapshot (the API loads one before
        /// it evaluates); before that, one over no data, which answers as an
        /// uninitialized table.
        fn evaluator(&mut self) -> &eval::Evaluator {
            self.evaluator
                .get_or_insert_with(|| eval::Evaluator::from_items(false, &[], &[]))
        }
    }

    fn open(settings: Settings) -> Result<StoreSource, String> {
        if settings.auth == Auth::None {
            log("edge-flags: auth=none: every route is served without a key");
        }
        let consistent_reads = settings.consistent_reads;
        let config = Config {
            table: settings.table,
            prefix: settings.prefix,
            region: settings.region,
            endpoint: settings.endpoint,
            credentials: Credentials {
                access_key_id: settings.access_key_id,
                secret_access_key: settings.secret_access_key,
                session_token: settings.session_token,
            },
            // One retry within a read: the snapshot serves through a longer
            // failure, and the app's own back-off spaces the next read, so an
            // outage costs DynamoDB 2 attempts per query per read.
            retry: Some(RetryPolicy {
                max_attempts: 2,
                base_delay_ms: 50,
                max_delay_ms: 500,
            }),
            timeouts: None,
            init_concurrency: None,
            init_no_progress_ms: None,
        };
        let store = Store::open(&config).map_err(describe)?;
        Ok(StoreSource {
            store,
            consistent_reads,
            evaluator: None,
        })
    }

    /// The body of a REPORT, up to one byte more than the API takes (so it
    /// can tell a body that is too large); empty when it cannot be read.
    fn read_body(request: &IncomingRequest) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(body) = request.consume() else {
            return out;
        };
        if let Ok(stream) = body.stream() {
            while out.len() <= MAX_BODY {
                match stream.blocking_read((MAX_BODY + 1 - out.len()) as u64) {
                    Ok(chunk) => out.extend(chunk),
                    Err(_) => break,
                }
            }
        }
        out
    }

    fn method(m: Method) -> String {
        match m {
            Method::Get => "GET".into(),
            Method::Head => "HEAD".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Connect => "CONNECT".into(),
            Method::Options => "OPTIONS".into(),
            Method::Trace => "TRACE".into(),
            Method::Patch => "PATCH".into(),
            // jco's Node shim lowercases the methods WASI does not name
            // (`report`); the only one served is REPORT.
            Method::Other(other) => other.to_ascii_uppercase(),
        }
    }

    impl Guest for App {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let headers = request.headers();
            let first = |name: &str| headers.get(name).into_iter().next();
            let text = |name: &str| first(name).map(|v| String::from_utf8_lossy(&v).into_owned());
            let path_with_query = request.path_with_query().unwrap_or_default();
            let (path, query) = match path_with_query.split_once('?') {
                Some((path, query)) => (path.to_string(), Some(query.to_string())),
                None => (path_with_query, None),
            };
            let method = method(request.method());
            let body = if method == "REPORT" {
                read_body(&request)
            } else {
                Vec::new()
            };
            let req = api::Request {
                method,
                path,
                query,
                authorization: first("authorization"),
                if_none_match: text("if-none-match"),
                origin: text("origin"),
                content_type: text("content-type"),
                body,
            };
            let environment = environment::get_environment();
            let settings = Settings::read(
                |key| config::get(key).map_err(|e| format!("cannot read the configuration: {e:?}")),
                |name| {
                    environment
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                },
            );
            let started = monotonic_clock::now();
            let response = EDGE.with_borrow_mut(|edge| {
                api::handle(
                    &req,
                    settings.as_ref().map_err(String::as_str),
                    edge,
                    started,
                    || open(settings.clone()?),
                    &mut log,
                )
            });
            let status = response.status;
            send(out, response);
            if settings.is_ok_and(|s| s.access_log) {
                let ms = monotonic_clock::now().saturating_sub(started) as f64 / 1e6;
                log(&format!(
                    "edge-flags: {} {} {status} {ms:.1} ms",
                    req.method,
                    crate::evalx::loggable(&req.path)
                ));
            }
        }
    }

    /// One line to stderr (the host's log); a failed write is ignored.
    fn log(line: &str) {
        let stream = stderr::get_stderr();
        let text = format!("{line}\n");
        for chunk in text.as_bytes().chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }

    /// Sends the response; when it cannot be built, the outparam still gets
    /// an error, so the host answers (500) instead of waiting on nothing.
    fn send(out: ResponseOutparam, response: api::Response) {
        let entries: Vec<(String, Vec<u8>)> = response
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        let fail = |out: ResponseOutparam, what: &str| {
            log(&format!("edge-flags: cannot build the response: {what}"));
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(what.to_string()))));
        };
        let headers = match Fields::from_list(&entries) {
            Ok(headers) => headers,
            Err(e) => return fail(out, &format!("bad header: {e:?}")),
        };
        let outgoing = OutgoingResponse::new(headers);
        if outgoing.set_status_code(response.status).is_err() {
            return fail(out, &format!("bad status {}", response.status));
        }
        let Ok(body) = outgoing.body() else {
            return fail(out, "no body");
        };
        ResponseOutparam::set(out, Ok(outgoing));
        if let Ok(stream) = body.write() {
            for chunk in response.body.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(body, None);
    }

    export!(App);
}
