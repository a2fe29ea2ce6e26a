//! A fault-injecting HTTP proxy for S3: forwards every request to an upstream server (moto)
//! unless a rule matches it, in which case it answers with that rule's fault instead.
//!
//! A function under test gets the proxy's [`FaultProxy::env`] (its `AWS_ENDPOINT_URL` points
//! at the proxy), so one running instance can see a different fault per task: a rule matches
//! when its needle occurs in the request target (path and query, as sent) or in the
//! `x-amz-copy-source` header. Put the needle in the object key (`fault-503/a.txt`).
//!
//! ```no_run
//! use s3batch_testkit::{Fault, FaultProxy, Moto};
//! let moto = Moto::start();
//! let proxy = FaultProxy::start(&moto.endpoint(), [("slow-down/", Fault::slow_down())]);
//! // ... run a function with proxy.env() ...
//! assert!(proxy.hits("slow-down/") >= 1);
//! ```

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Body = BoxBody<Bytes, hyper::Error>;

/// What the proxy does instead of forwarding a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An S3 error response: this status, and an XML body with this code and message.
    Error {
        /// The HTTP status.
        status: u16,
        /// `<Code>`.
        code: String,
        /// `<Message>`.
        message: String,
    },
    /// Close the connection without answering.
    Drop,
    /// Answer nothing for this long, then close the connection.
    Stall(Duration),
}

impl Fault {
    /// An S3 error response.
    pub fn error(status: u16, code: &str, message: &str) -> Fault {
        Fault::Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 503 SlowDown, S3's throttling answer.
    pub fn slow_down() -> Fault {
        Fault::error(503, "SlowDown", "Please reduce your request rate.")
    }

    /// 500 InternalError.
    pub fn internal_error() -> Fault {
        Fault::error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// 400 RequestTimeout.
    pub fn request_timeout() -> Fault {
        Fault::error(
            400,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    }

    /// 400 with a throttling code other than SlowDown (`Throttling`).
    pub fn throttling() -> Fault {
        Fault::error(400, "Throttling", "Rate exceeded")
    }

    /// 403 AccessDenied.
    pub fn access_denied() -> Fault {
        Fault::error(403, "AccessDenied", "Access Denied")
    }

    /// 404 NoSuchKey.
    pub fn no_such_key() -> Fault {
        Fault::error(404, "NoSuchKey", "The specified key does not exist.")
    }
}

struct Rules {
    rules: Vec<(String, Fault)>,
    hits: Mutex<HashMap<String, usize>>,
    forwarded: Mutex<usize>,
}

impl Rules {
    fn find(&self, target: &str, copy_source: &str) -> Option<(&str, &Fault)> {
        self.rules
            .iter()
            .find(|(needle, _)| {
                target.contains(needle.as_str()) || copy_source.contains(needle.as_str())
            })
            .map(|(n, f)| (n.as_str(), f))
    }
}

/// The proxy, on a free loopback port; stopped when dropped.
pub struct FaultProxy {
    port: u16,
    rules: Arc<Rules>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`) with rules of
    /// `(needle, fault)`; the first rule whose needle matches a request applies.
    pub fn start<N: Into<String>>(
        upstream: &str,
        rules: impl IntoIterator<Item = (N, Fault)>,
    ) -> FaultProxy {
        let rules = Arc::new(Rules {
            rules: rules.into_iter().map(|(n, f)| (n.into(), f)).collect(),
            hits: Mutex::new(HashMap::new()),
            forwarded: Mutex::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the fault proxy");
        // Bound without block_on, so the proxy can start inside an async test too.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fault proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        let upstream: hyper::Uri = upstream.parse().expect("upstream is a URL");
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        let shared = Arc::clone(&rules);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let rules = Arc::clone(&shared);
                let client = client.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, Arc::clone(&rules), client.clone(), upstream.clone())
                    });
                    // A dropped or stalled connection ends here with an error: expected.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            port,
            rules,
            runtime: Some(runtime),
        }
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a function needs to reach S3 through this proxy.
    pub fn env(&self) -> Vec<(String, String)> {
        crate::s3_env(&self.endpoint())
    }

    /// How many requests the rule with this needle has answered so far (the SDK's retries
    /// count separately).
    pub fn hits(&self, needle: &str) -> usize {
        self.rules
            .hits
            .lock()
            .unwrap()
            .get(needle)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests went through to the upstream server unchanged.
    pub fn forwarded(&self) -> usize {
        *self.rules.forwarded.lock().unwrap()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Why the proxy closed a connection without answering: hyper then drops the socket.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy dropped the connection")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    req: Request<Incoming>,
    rules: Arc<Rules>,
    client: Client<HttpConnector, Incoming>,
    upstream: hyper::Uri,
) -> Result<Response<Body>, Dropped> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let copy_source = req
        .headers()
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Some((needle, fault)) = rules.find(&target, &copy_source) {
        *rules
            .hits
            .lock()
            .unwrap()
            .entry(needle.to_owned())
            .or_default() += 1;
        return match fault {
            Fault::Error {
                status,
                code,
                message,
            } => Ok(error_response(*status, code, message, &target)),
            Fault::Drop => Err(Dropped),
            Fault::Stall(d) => {
                tokio::time::sleep(*d).await;
                Err(Dropped)
            }
        };
    }
    *rules.forwarded.lock().unwrap() += 1;
    let (mut parts, body) = req.into_parts();
    let mut uri = hyper::Uri::builder()
        .scheme(
            upstream
                .scheme()
                .cloned()
                .unwrap_or(hyper::http::uri::Scheme::HTTP),
        )
        .authority(upstream.authority().cloned().expect("upstream has a host"));
    if let Some(pq) = parts.uri.path_and_query() {
        uri = uri.path_and_query(pq.clone());
    }
    parts.uri = uri.build().expect("a valid upstream URI");
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(e) => Ok(error_response(
            502,
            "BadGateway",
            &format!("fault proxy could not reach upstream: {e}"),
            &target,
        )),
    }
}

fn error_response(status: u16, code: &str, message: &str, resource: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>fault-proxy</RequestId></Error>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(resource)
    );
    Response::builder()
        .status(StatusCode::from_u16(status).expect("a valid status"))
        .header("content-type", "application/xml")
        .header("x-amz-request-id", "fault-proxy")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
