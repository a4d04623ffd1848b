//! An edge flag server: LaunchDarkly's server-side polling API
//! (`/sdk/latest-all`, `/sdk/latest-flags[/{key}]`, `/sdk/latest-segments[/{key}]`,
//! `/status`) served from the ld-dynamodb data store, and the evaluation API
//! of client-side, mobile and server SDKs (`/sdk/evalx/...`, `/msdk/evalx/...`)
//! served by the flag evaluator, and the Relay Proxy's event routes
//! ([`events`]), forwarded to LaunchDarkly's events service. With `events`
//! on (the default) the app's own analytics events (the contexts its evalx
//! answers saw) are sent after each answer. The logic is plain Rust: [`api`] (routing,
//! polling), [`evalx`] (evaluation routes) with [`context_limits`], [`snapshot`] (the table kept in
//! memory between requests), [`settings`]; `component` maps `wasi:http`,
//! `wasi:config` (settings), `wasi:cli/environment` (secrets),
//! `wasi:cli/stderr` (the log) and `wasi:clocks/monotonic-clock` onto it
//! (compiled for wasm only). The data store and the flag evaluator are linked
//! in as Rust libraries (the store crate on its WASI platform, the evaluator
//! crate without its exports): one core module, one store per instance.

#![deny(missing_docs)]

pub mod api;
pub mod context_limits;
pub mod evalx;
pub mod events;
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
    use ld_dynamodb_evaluator::component::{self as eval, EvalError, Evaluator, EventOptions};
    use ld_dynamodb_store::config::{Config, ConfigInput, Credentials, RetryPolicy};
    use ld_dynamodb_store::error::StoreError;
    use ld_dynamodb_store::store::DataStore;
    use ld_dynamodb_store::sys::{write_line as log, WasiPlatform};
    use std::cell::RefCell;
    use std::time::Duration;

    use wasi::cli::environment;
    use wasi::clocks::monotonic_clock;
    use wasi::config::store as config;
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
        OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
    };
    use wasi::io::poll;

    use crate::api::{self, FlagSource, Item};
    use crate::evalx::{EvalFailure, Filter, MAX_BODY};
    use crate::events::{self as event_routes, Forward, Step, Upstream, MAX_EVENTS_BODY};
    use crate::settings::{Auth, EventSettings, Settings};
    use crate::snapshot::{Edge, Read, Snapshot, KINDS};

    struct App;

    thread_local! {
        /// What outlives a request when the host reuses the instance.
        static EDGE: RefCell<Edge<StoreSource>> = RefCell::new(Edge::default());
    }

    /// The data store, and the flag evaluator over its last snapshot, as the
    /// API's flag source.
    struct StoreSource {
        store: DataStore<WasiPlatform>,
        /// Whether the snapshot is read strongly consistent.
        consistent_reads: bool,
        /// How long one answer's evaluation may take, in milliseconds.
        budget_ms: u32,
        /// Made from each snapshot; `None` before the first.
        evaluator: Option<Evaluator>,
    }

    fn eval_failure(e: EvalError) -> EvalFailure {
        match e {
            EvalError::InvalidContext(m) | EvalError::InvalidDefault(m) => {
                EvalFailure::InvalidContext(m)
            }
            EvalError::Store(e) => EvalFailure::Store(e.to_string()),
        }
    }

    impl FlagSource for StoreSource {
        fn read(&mut self) -> Result<Read, String> {
            let snapshot = self
                .store
                .snapshot_with(&KINDS, self.consistent_reads)
                .map_err(|e| e.to_string())?;
            let mut kinds = snapshot.kinds.into_iter().map(|items| {
                items
                    .into_iter()
                    .map(|k| {
                        let item = Item {
                            version: k.item.version,
                            deleted: k.item.deleted,
                            json: k.item.json,
                        };
                        (k.key, item)
                    })
                    .collect()
            });
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
                    .map(|(key, item)| (key.clone(), item.json.clone()))
                    .collect()
            };
            self.evaluator = Some(Evaluator::from_items(
                snapshot.initialized,
                keyed(&snapshot.flags),
                keyed(&snapshot.segments),
            ));
        }

        fn all_flags_state(
            &mut self,
            context_json: &str,
            filter: Filter,
            with_reasons: bool,
        ) -> Result<String, EvalFailure> {
            let filter = match filter {
                Filter::All => ld_dynamodb_evaluator::Filter::All,
                Filter::ClientSide => ld_dynamodb_evaluator::Filter::ClientSide,
                Filter::Mobile => ld_dynamodb_evaluator::Filter::Mobile,
            };
            let options = ld_dynamodb_evaluator::StateOptions {
                filter,
                with_reasons,
                details_only_for_tracked_flags: false,
            };
            let budget_ms = self.budget_ms;
            self.evaluator()
                .all_flags_state_within(context_json, options, budget_ms)
                .map_err(eval_failure)?
                .ok_or(EvalFailure::OverBudget(budget_ms))
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
        fn evaluator(&mut self) -> &Evaluator {
            self.evaluator
                .get_or_insert_with(|| Evaluator::from_items(false, Vec::new(), Vec::new()))
        }
    }

    /// Turns the evaluator's events on (or off) for this instance.
    fn configure_events(events: &EventSettings) {
        let settings = match (&events.sdk_key, events.send) {
            (Some(key), true) => Some(EventOptions {
                sdk_key: key.clone(),
                base_uri: Some(events.uri.clone()),
                all_attributes_private: events.all_attributes_private,
                private_attributes: events.private_attributes.clone(),
                capacity: None,
                context_keys_capacity: None,
                context_keys_flush_interval_ms: None,
                retry_delay_ms: None,
                // Two attempts and the wait between them stay within a
                // host's time limit per request (10 s in
                // scripts/edge-serve-flags.sh), which the flush counts in.
                timeout_ms: Some(3_000),
            }),
            (None, true) => {
                log("edge-flags: events=true but LD_SDK_KEY is unset: the app sends no events of its own");
                None
            }
            (_, false) => None,
        };
        if let Err(e) = eval::configure_events(settings) {
            log(&format!("edge-flags: events are off: {e}"));
        }
    }

    thread_local! {
        /// When this instance last sent its events (monotonic nanoseconds).
        static FLUSHED_AT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }

    /// Sends the events queued while answering (after the answer went out):
    /// every time, or once per `interval_ms` in this instance.
    fn flush_events(interval_ms: u64) {
        let now = monotonic_clock::now();
        let due = FLUSHED_AT
            .get()
            .is_none_or(|at| now.saturating_sub(at) >= interval_ms * 1_000_000);
        if !due {
            return;
        }
        FLUSHED_AT.set(Some(now));
        let report = eval::flush();
        if report.events > 0 && !report.delivered {
            log(&format!(
                "edge-flags: {} events not delivered after {} attempts: {}",
                report.events,
                report.attempts,
                report.error.as_deref().unwrap_or("no answer")
            ));
        }
        if report.dropped > 0 {
            log(&format!(
                "edge-flags: {} events dropped: the queue was full",
                report.dropped
            ));
        }
    }

    fn open(settings: Settings, events: &EventSettings) -> Result<StoreSource, String> {
        if settings.auth == Auth::None {
            log("edge-flags: auth=none: every route is served without a key");
        }
        configure_events(events);
        let (consistent_reads, budget_ms) = (settings.consistent_reads, settings.request_budget_ms);
        let config = ConfigInput {
            table: settings.table,
            prefix: settings.prefix,
            region: settings.region,
            endpoint: settings.endpoint,
            credentials: Some(Credentials {
                access_key_id: settings.access_key_id,
                secret_access_key: settings.secret_access_key,
                session_token: settings.session_token,
            }),
            // One retry within a read: the snapshot serves through a longer
            // failure, and the app's own back-off spaces the next read, so an
            // outage costs DynamoDB 2 attempts per query per read.
            retry: Some(RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
            }),
            // The other settings at their defaults (a new one needs no line here).
            ..ConfigInput::default()
        };
        let config = Config::new(config).map_err(|e: StoreError| e.to_string())?;
        Ok(StoreSource {
            store: DataStore::new(config, WasiPlatform),
            consistent_reads,
            budget_ms,
            evaluator: None,
        })
    }

    /// The body of a request, up to one byte more than `limit` (so the
    /// API can tell a body that is too large); empty when it cannot be read.
    fn read_body(request: &IncomingRequest, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(body) = request.consume() else {
            return out;
        };
        if let Ok(stream) = body.stream() {
            while out.len() <= limit {
                match stream.blocking_read((limit + 1 - out.len()).min(65_536) as u64) {
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
            let family = event_routes::route(&path);
            let body = match (&family, method.as_str()) {
                (Some(_), "POST") => read_body(&request, MAX_EVENTS_BODY),
                (None, "REPORT") => read_body(&request, MAX_BODY),
                _ => Vec::new(),
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
            let env = |name: &str| {
                environment
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let read = |key: &str| {
                config::get(key).map_err(|e| format!("cannot read the configuration: {e:?}"))
            };
            let events = EventSettings::read(read, env);
            // A bad events setting is a bad configuration: 503 everywhere.
            let settings = Settings::read(read, env)
                .and_then(|s| events.as_ref().map(|_| s).map_err(Clone::clone));
            let started = monotonic_clock::now();
            let response = match (family, &settings, &events) {
                (Some(family), Ok(settings), Ok(events)) => {
                    let all = headers.entries();
                    event_route(&req, &family, &all, settings, &events.upstream)
                }
                (Some(_), Err(e), _) => {
                    EDGE.with_borrow_mut(|edge| api::not_configured(edge, e, &mut log))
                }
                _ => EDGE.with_borrow_mut(|edge| {
                    api::handle(
                        &req,
                        settings.as_ref().map_err(String::as_str),
                        edge,
                        started,
                        || open(settings.clone()?, events.as_ref()?),
                        &mut log,
                    )
                }),
            };
            let status = response.status;
            send(out, response);
            // The answer is out: the events its evaluation queued go now.
            if let Ok(e) = &events {
                if e.send && e.sdk_key.is_some() {
                    flush_events(e.flush_interval_ms);
                }
            }
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

    /// Answers an event route: refused, or forwarded and answered by what
    /// the events service said.
    fn event_route(
        req: &api::Request,
        family: &event_routes::Family,
        headers: &[(String, Vec<u8>)],
        settings: &Settings,
        upstream: &Upstream,
    ) -> api::Response {
        let response =
            match event_routes::check(req, family, headers, req.body.len(), settings, upstream) {
                Step::Answer(response) => response,
                Step::Forward(forward) => {
                    let outcome = forward_payload(&forward, upstream, &req.body);
                    if let Err(e) = &outcome {
                        log(&format!("edge-flags: events not forwarded: {e}"));
                    }
                    event_routes::forwarded(&outcome)
                }
            };
        event_routes::finish(family, req, response)
    }

    /// The time limit of a forwarded payload's exchange.
    const FORWARD_TIMEOUT_NS: u64 = 10_000_000_000;

    /// Sends a payload to the events service: its status, or why none came
    /// (no header value in it).
    fn forward_payload(f: &Forward, upstream: &Upstream, body: &[u8]) -> Result<u16, String> {
        let mut entries = f.headers.clone();
        if !body.is_empty() {
            entries.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let headers = Fields::from_list(&entries)
            .map_err(|_| "a forwarded header was refused".to_string())?;
        let request = OutgoingRequest::new(headers);
        let method = if f.method == "GET" {
            Method::Get
        } else {
            Method::Post
        };
        let scheme = if upstream.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let set = [
            request.set_method(&method),
            request.set_scheme(Some(&scheme)),
            request.set_authority(Some(&upstream.authority)),
            request.set_path_with_query(Some(&f.path_with_query)),
        ];
        if set.iter().any(Result::is_err) {
            return Err("the forwarded request was refused by the host".into());
        }
        let outgoing = request
            .body()
            .map_err(|()| "the forwarded body was taken".to_string())?;
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(FORWARD_TIMEOUT_NS));
        let _ = options.set_first_byte_timeout(Some(FORWARD_TIMEOUT_NS));
        let deadline = monotonic_clock::subscribe_duration(FORWARD_TIMEOUT_NS);
        let future = outgoing_handler::handle(request, Some(options))
            .map_err(|e| format!("the events service cannot be reached: {e:?}"))?;
        if let Ok(stream) = outgoing.write() {
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| format!("the payload was not sent: {e:?}"))?;
            }
        }
        OutgoingBody::finish(outgoing, None)
            .map_err(|e| format!("the payload was not sent: {e:?}"))?;
        let ready = future.subscribe();
        if !poll::poll(&[&ready, &deadline]).contains(&0) {
            return Err("the events service did not answer within 10 s".into());
        }
        match future.get() {
            Some(Ok(Ok(response))) => Ok(response.status()),
            Some(Ok(Err(e))) => Err(format!("the events service cannot be reached: {e:?}")),
            _ => Err("the events service's answer was lost".into()),
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
