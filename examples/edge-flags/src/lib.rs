//! An edge flag server: LaunchDarkly's server-side polling API
//! (`/sdk/latest-all`, `/sdk/latest-flags[/{key}]`, `/sdk/latest-segments[/{key}]`,
//! `/status`) served from the ld-dynamodb data store. The logic is in [`api`],
//! plain Rust; `component` maps `wasi:http`, `wasi:config` (settings),
//! `wasi:cli/environment` (secrets), `wasi:cli/stderr` (the log) and the
//! store's WIT onto it (compiled for wasm only).

pub mod api;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "wit",
        world: "edge-flags",
        generate_all,
    });

    use exports::wasi::http::incoming_handler::Guest;
    use ld_dynamodb::store::data_store::Store;
    use ld_dynamodb::store::types::{Config, Credentials, StoreError};
    use wasi::cli::{environment, stderr};
    use wasi::config::store as config;
    use wasi::http::types::{
        ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };

    use crate::api::{self, Auth, FlagSource, Item, Settings, Snapshot};

    struct App;

    /// The data store as the API's flag source.
    struct StoreSource(Store);

    fn describe(e: StoreError) -> String {
        match e {
            StoreError::InvalidConfig(m) => format!("invalid configuration: {m}"),
            StoreError::InvalidInput(m) => format!("invalid input: {m}"),
            StoreError::Transport(t) => format!("transport error: {}", t.code),
            StoreError::Service(s) => format!("DynamoDB error {}: {}", s.code, s.message),
            StoreError::MalformedResponse(m) => format!("malformed response: {m}"),
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
        fn is_initialized(&mut self) -> Result<bool, String> {
            self.0.is_initialized().map_err(describe)
        }

        fn snapshot(&mut self, kinds: &[&str]) -> Result<Snapshot, String> {
            let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            self.0
                .snapshot(&kinds)
                .map(|snapshot| Snapshot {
                    initialized: snapshot.initialized,
                    kinds: snapshot
                        .kinds
                        .into_iter()
                        .map(|items| items.into_iter().map(|k| (k.key, item(k.item))).collect())
                        .collect(),
                })
                .map_err(describe)
        }
    }

    fn open(settings: Settings) -> Result<StoreSource, String> {
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
            retry: None,
            timeouts: None,
            init_concurrency: None,
            init_no_progress_ms: None,
        };
        Store::open(&config).map(StoreSource).map_err(describe)
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
            Method::Other(other) => other,
        }
    }

    impl Guest for App {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let headers = request.headers();
            let first = |name: &str| headers.get(name).into_iter().next();
            let path_with_query = request.path_with_query().unwrap_or_default();
            let req = api::Request {
                method: method(request.method()),
                path: path_with_query
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                authorization: first("authorization"),
                if_none_match: first("if-none-match")
                    .map(|v| String::from_utf8_lossy(&v).into_owned()),
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
            if let Ok(Settings {
                auth: Auth::None, ..
            }) = &settings
            {
                // `wasmtime serve` makes an instance per request, so this is
                // the start of this instance.
                log("edge-flags: auth=none: every route is served without a key");
            }
            let response = api::handle(
                &req,
                settings.as_ref().map_err(String::as_str),
                || open(settings.clone()?),
                &mut log,
            );
            send(out, response);
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
