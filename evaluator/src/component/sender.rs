//! The POST of an events payload over `wasi:http/outgoing-handler`, with a
//! time limit on the whole exchange; the retry's wait on the monotonic clock.

use super::wasi::clocks::monotonic_clock;
use super::wasi::http::outgoing_handler;
use super::wasi::http::types::{
    Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use super::wasi::io::poll;

use crate::events::delivery::{Endpoint, Transport, EVENT_SCHEMA};

/// The events service at `endpoint`, with the SDK key.
pub struct Http<'a> {
    pub endpoint: &'a Endpoint,
    pub sdk_key: &'a str,
    pub timeout_ms: u64,
}

const USER_AGENT: &str = concat!("LDDynamoDBEvaluator/", env!("CARGO_PKG_VERSION"));

impl Transport for Http<'_> {
    fn post(&mut self, body: &[u8], payload_id: &str) -> Result<u16, String> {
        let headers = Fields::from_list(&[
            ("authorization".into(), self.sdk_key.as_bytes().to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
            ("content-length".into(), body.len().to_string().into_bytes()),
            ("user-agent".into(), USER_AGENT.as_bytes().to_vec()),
            (
                "x-launchdarkly-event-schema".into(),
                EVENT_SCHEMA.as_bytes().to_vec(),
            ),
            (
                "x-launchdarkly-payload-id".into(),
                payload_id.as_bytes().to_vec(),
            ),
        ])
        // The error names no header value: the key stays out of it.
        .map_err(|_| "a header of the events request was refused".to_string())?;
        let request = OutgoingRequest::new(headers);
        let scheme = if self.endpoint.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let refused = |what: &str| format!("the events request's {what} was refused");
        request
            .set_method(&Method::Post)
            .map_err(|()| refused("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(&self.endpoint.authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(&self.endpoint.bulk_path))
            .map_err(|()| refused("path"))?;
        let outgoing = request.body().map_err(|()| refused("body"))?;
        let timeout = self.timeout_ms * 1_000_000;
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(timeout));
        let _ = options.set_first_byte_timeout(Some(timeout));
        let deadline = monotonic_clock::subscribe_duration(timeout);
        let future = outgoing_handler::handle(request, Some(options))
            .map_err(|e| format!("the events request failed: {e:?}"))?;
        {
            let stream = outgoing.write().map_err(|()| refused("body stream"))?;
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| format!("the events request's body was not sent: {e:?}"))?;
            }
        }
        OutgoingBody::finish(outgoing, None)
            .map_err(|e| format!("the events request failed: {e:?}"))?;
        let ready = future.subscribe();
        if !poll::poll(&[&ready, &deadline]).contains(&0) {
            return Err(format!("no answer within {} ms", self.timeout_ms));
        }
        match future.get() {
            Some(Ok(Ok(response))) => Ok(response.status()),
            Some(Ok(Err(e))) => Err(format!("the events request failed: {e:?}")),
            _ => Err("the events request's answer was lost".into()),
        }
    }

    fn sleep(&mut self, ms: u64) {
        monotonic_clock::subscribe_duration(ms * 1_000_000).block();
    }
}
