//! The same S3 failure gets the same result code whatever error type the task returns.
//!
//! Every failure is produced for real: service responses come from aws-smithy-mocks as raw HTTP
//! and go through aws-sdk-s3's own deserializers and standard retries; a refused connection is
//! a closed loopback port; an operation timeout is a loopback listener that never answers. Each
//! failure is then returned by a task in every supported shape (`TaskError`, the `SdkError`
//! itself, `aws_sdk_s3::Error`, a boxed error, a user's error with the SDK error as its
//! `source()`, `anyhow::Error` with and without `.context(…)`), and run through the real
//! handler path (`s3batch::testing::invoke`).

use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
use s3batch::aws_sdk_s3::config::http::HttpResponse;
use s3batch::aws_sdk_s3::config::retry::{RetryConfig, RetryPartition};
use s3batch::aws_sdk_s3::config::timeout::TimeoutConfig;
use s3batch::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3batch::aws_sdk_s3::primitives::SdkBody;
use s3batch::aws_sdk_s3::{self, Client};
use s3batch::testing::{invoke, EventBuilder};
use s3batch::{Object, ResultCode, TaskError};
use std::error::Error as StdError;
use std::fmt;
use std::net::TcpListener;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Call {
    Head,
    Get,
}

fn retries(attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(2))
}

/// What the framework's `Client` extractor adds to a client's configuration.
fn framework(builder: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
    builder.interceptor(s3batch::error::FillErrorCodes)
}

fn base_config() -> aws_sdk_s3::config::Builder {
    // Each client gets its own retry quota: the default one is shared by every client in the
    // process, and this test retries far more than a task would.
    static CLIENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    aws_sdk_s3::Config::builder()
        .retry_partition(RetryPartition::new(format!("classification-{n}")))
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
}

/// A client whose every request of `call` is answered with this raw HTTP response.
fn mocked(call: Call, status: u16, body: &'static str) -> (Client, Rule) {
    let respond = move || {
        HttpResponse::new(
            status.try_into().unwrap(),
            if body.is_empty() {
                SdkBody::empty()
            } else {
                SdkBody::from(body)
            },
        )
    };
    let rule = match call {
        Call::Head => mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_response(respond)
            .repeatedly()
            .build(),
        Call::Get => mock!(aws_sdk_s3::Client::get_object)
            .sequence()
            .http_response(respond)
            .repeatedly()
            .build(),
    };
    let config = framework(base_config())
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&rule),
        )
        .retry_config(retries(3))
        .build();
    (Client::from_conf(config), rule)
}

/// A client for a real endpoint on loopback.
fn endpoint(port: u16, timeout: Option<Duration>) -> Client {
    let mut config = framework(base_config())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .retry_config(retries(2));
    if let Some(t) = timeout {
        config = config.timeout_config(TimeoutConfig::builder().operation_timeout(t).build());
    }
    Client::from_conf(config.build())
}

fn error_document(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>req-1</RequestId></Error>"
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A user's own error type with the SDK error as its `source()`.
#[derive(Debug)]
struct Probe(Box<dyn StdError + Send + Sync>);

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe failed")
    }
}

impl StdError for Probe {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Sends `call` and returns its error as `$ty`, converted with `?` after `$conv`.
macro_rules! send_as {
    ($client:expr, $call:expr, $ty:ty, |$e:ident| $conv:expr) => {{
        async fn head(c: Client) -> Result<(), $ty> {
            c.head_object()
                .bucket("b")
                .key("k")
                .send()
                .await
                .map_err(|$e| $conv)?;
            Ok(())
        }
        async fn get(c: Client) -> Result<(), $ty> {
            c.get_object()
                .bucket("b")
                .key("k")
                .send()
                .await
                .map_err(|$e| $conv)?;
            Ok(())
        }
        run($client, $call, head, get).await
    }};
}

/// Runs a task returning `Result<(), E>` through the real handler path; its result.
async fn run<E, FH, FG, H, G>(client: Client, call: Call, head: H, get: G) -> (ResultCode, String)
where
    E: Into<TaskError> + Send + 'static,
    H: Fn(Client) -> FH + Send + Sync + 'static,
    G: Fn(Client) -> FG + Send + Sync + 'static,
    FH: std::future::Future<Output = Result<(), E>> + Send + 'static,
    FG: std::future::Future<Output = Result<(), E>> + Send + 'static,
{
    let task = move |_obj: Object| {
        let c = client.clone();
        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), E>> + Send>> =
            match call {
                Call::Head => Box::pin(head(c)),
                Call::Get => Box::pin(get(c)),
            };
        fut
    };
    let r = invoke(task, EventBuilder::v1().object("b", "k"))
        .await
        .unwrap();
    assert_eq!(r.results.len(), 1);
    let result = &r.results[0];
    (result.result_code, result.result_string.clone())
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// Every wrapper a task can return; the result each one gives for `client`'s failure.
async fn every_wrapper(client: &Client, call: Call) -> Vec<(&'static str, ResultCode, String)> {
    let c = || client.clone();
    vec![
        ("TaskError", {
            let (code, msg) = send_as!(c(), call, TaskError, |e| e);
            (code, msg)
        }),
        ("SdkError", {
            // The task's error type is the operation's own `SdkError`.
            match call {
                Call::Head => {
                    async fn head(
                        c: Client,
                    ) -> Result<
                        (),
                        aws_sdk_s3::error::SdkError<
                            aws_sdk_s3::operation::head_object::HeadObjectError,
                            HttpResponse,
                        >,
                    > {
                        c.head_object().bucket("b").key("k").send().await?;
                        Ok(())
                    }
                    run(c(), call, head, head).await
                }
                Call::Get => {
                    async fn get(
                        c: Client,
                    ) -> Result<
                        (),
                        aws_sdk_s3::error::SdkError<
                            aws_sdk_s3::operation::get_object::GetObjectError,
                            HttpResponse,
                        >,
                    > {
                        c.get_object().bucket("b").key("k").send().await?;
                        Ok(())
                    }
                    run(c(), call, get, get).await
                }
            }
        }),
        (
            "aws_sdk_s3::Error",
            send_as!(c(), call, aws_sdk_s3::Error, |e| e),
        ),
        ("Box<dyn Error>", send_as!(c(), call, BoxError, |e| e)),
        (
            "Box<dyn Error> of aws_sdk_s3::Error",
            send_as!(c(), call, BoxError, |e| aws_sdk_s3::Error::from(e)),
        ),
        (
            "Box<dyn Error> of a user error with source()",
            send_as!(c(), call, BoxError, |e| Probe(Box::new(e))),
        ),
        ("anyhow::Error", send_as!(c(), call, anyhow::Error, |e| e)),
        (
            "anyhow::Error with .context()",
            send_as!(c(), call, anyhow::Error, |e| anyhow::Error::new(e)
                .context("probing k")),
        ),
        (
            "anyhow::Error of aws_sdk_s3::Error with .context()",
            send_as!(c(), call, anyhow::Error, |e| anyhow::Error::new(
                aws_sdk_s3::Error::from(e)
            )
            .context("probing k")),
        ),
        (
            "anyhow::Error of a user error",
            send_as!(c(), call, anyhow::Error, |e| Probe(Box::new(e))),
        ),
    ]
    .into_iter()
    .map(|(name, (code, msg))| (name, code, msg))
    .collect()
}

struct Failure {
    name: &'static str,
    client: Client,
    call: Call,
    expect: ResultCode,
    /// Every wrapper's message contains each of these.
    message: &'static [&'static str],
}

fn service_failures() -> Vec<(Failure, Rule)> {
    use ResultCode::{PermanentFailure as P, TemporaryFailure as T};
    let row = |name, call, status, body: &'static str, expect, message| {
        let (client, rule) = mocked(call, status, body);
        (
            Failure {
                name,
                client,
                call,
                expect,
                message,
            },
            rule,
        )
    };
    let doc = |code: &str, message: &str| leak(error_document(code, message));
    vec![
        row(
            "HeadObject 503 without a body",
            Call::Head,
            503,
            "",
            T,
            &["ServiceUnavailable", "HTTP 503"],
        ),
        row(
            "GetObject 500 without a body",
            Call::Get,
            500,
            "",
            T,
            &["InternalError", "HTTP 500"],
        ),
        row(
            "GetObject 502 without a body",
            Call::Get,
            502,
            "",
            T,
            &["BadGateway", "HTTP 502"],
        ),
        row(
            "GetObject 504 without a body",
            Call::Get,
            504,
            "",
            T,
            &["GatewayTimeout", "HTTP 504"],
        ),
        row(
            "GetObject 502 with a proxy's HTML page",
            Call::Get,
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            T,
            &["BadGateway", "HTTP 502"],
        ),
        row(
            "GetObject 503 SlowDown",
            Call::Get,
            503,
            doc("SlowDown", "Please reduce your request rate."),
            T,
            &["SlowDown: Please reduce your request rate."],
        ),
        row(
            "GetObject 503 ServiceUnavailable",
            Call::Get,
            503,
            doc("ServiceUnavailable", "Service is unable to handle request."),
            T,
            &["ServiceUnavailable: Service is unable to handle request."],
        ),
        row(
            "GetObject 500 InternalError",
            Call::Get,
            500,
            doc("InternalError", "We encountered an internal error."),
            T,
            &["InternalError: We encountered an internal error."],
        ),
        row(
            "GetObject 400 RequestTimeout",
            Call::Get,
            400,
            doc("RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period."),
            T,
            &["RequestTimeout: Your socket connection"],
        ),
        row(
            "HeadObject 404 without a body",
            Call::Head,
            404,
            "",
            P,
            &["NotFound"],
        ),
        row(
            "HeadObject 403 without a body",
            Call::Head,
            403,
            "",
            P,
            &["Forbidden", "HTTP 403"],
        ),
        row(
            "GetObject 404 NoSuchKey",
            Call::Get,
            404,
            doc("NoSuchKey", "The specified key does not exist."),
            P,
            &["NoSuchKey: The specified key does not exist."],
        ),
        row(
            "GetObject 403 AccessDenied",
            Call::Get,
            403,
            doc("AccessDenied", "Access Denied"),
            P,
            &["AccessDenied: Access Denied"],
        ),
        row(
            "GetObject 501 without a body",
            Call::Get,
            501,
            "",
            P,
            &["NotImplemented", "HTTP 501"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_failure_gets_the_same_code_from_every_wrapper() {
    // A closed loopback port: connections are refused.
    let refused_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A listener that accepts (the kernel completes the handshake) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    let mut failures: Vec<Failure> = Vec::new();
    let mut rules = Vec::new();
    for (f, rule) in service_failures() {
        failures.push(f);
        rules.push(rule);
    }
    for call in [Call::Head, Call::Get] {
        failures.push(Failure {
            name: leak(format!("{call:?}Object: connection refused")),
            client: endpoint(refused_port, None),
            call,
            expect: ResultCode::TemporaryFailure,
            message: &["S3 request failed to send"],
        });
        failures.push(Failure {
            name: leak(format!("{call:?}Object: operation timeout")),
            // Generous for what it tests: the listener never answers at all.
            client: endpoint(silent_port, Some(Duration::from_millis(300))),
            call,
            expect: ResultCode::TemporaryFailure,
            message: &["S3 request timed out", "operation timeout"],
        });
    }

    // A real proxy's answer, streamed over a connection: 502 with an HTML page.
    let (proxy_port, proxy) = serve_forever(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 50\r\n\r\n<html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    for call in [Call::Head, Call::Get] {
        failures.push(Failure {
            name: leak(format!(
                "{call:?}Object: a proxy's 502 page over a connection"
            )),
            client: endpoint(proxy_port, None),
            call,
            expect: ResultCode::TemporaryFailure,
            message: &["BadGateway", "HTTP 502"],
        });
    }

    let mut wrong = Vec::new();
    let mut cells = 0;
    let mut wrappers = 0;
    for f in &failures {
        let results = every_wrapper(&f.client, f.call).await;
        wrappers = results.len();
        for (wrapper, code, message) in results {
            cells += 1;
            eprintln!("{:<40} {:<45} {code:?} {message}", f.name, wrapper);
            if code != f.expect {
                wrong.push(format!(
                    "{} × {wrapper}: {code:?}, expected {:?} ({message})",
                    f.name, f.expect
                ));
                continue;
            }
            for part in f.message {
                if !message.contains(part) {
                    wrong.push(format!(
                        "{} × {wrapper}: {message:?} lacks {part:?}",
                        f.name
                    ));
                }
            }
        }
    }
    drop(silent);
    proxy.stop();
    assert_eq!(cells, failures.len() * wrappers);
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The SDK's own retries are unchanged: every transient service failure was tried 3 times,
    // every permanent one once, for each wrapper.
    // (`zip` stops at the mocked failures, the ones with a rule.)
    for (f, rule) in failures.iter().zip(&rules) {
        let per_wrapper = if f.expect == ResultCode::TemporaryFailure {
            3
        } else {
            1
        };
        assert_eq!(rule.num_calls(), per_wrapper * wrappers, "{}", f.name);
    }
}

/// A loopback server that answers every GetObject with a 200 whose body stops after 10 of
/// its 100 bytes: reading the body fails mid-stream (a `ByteStreamError`).
fn cut_off_bodies(connections: usize) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            // Dropping the stream closes the connection 90 bytes short.
        }
    });
    (port, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_cut_off_mid_stream_is_temporary_in_every_wrapper() {
    macro_rules! read_body_as {
        ($client:expr, $ty:ty, |$e:ident| $conv:expr) => {{
            async fn read(c: Client) -> Result<(), $ty> {
                let out = c.get_object().bucket("b").key("k").send().await.unwrap();
                out.body.collect().await.map_err(|$e| $conv)?;
                Ok(())
            }
            run($client, Call::Get, read, read).await
        }};
    }
    let (port, server) = cut_off_bodies(5);
    let client = endpoint(port, None);
    let c = || client.clone();
    let results = vec![
        ("TaskError", read_body_as!(c(), TaskError, |e| e)),
        ("Box<dyn Error>", read_body_as!(c(), BoxError, |e| e)),
        (
            "Box<dyn Error> of a user error with source()",
            read_body_as!(c(), BoxError, |e| Probe(Box::new(e))),
        ),
        ("anyhow::Error", read_body_as!(c(), anyhow::Error, |e| e)),
        (
            "anyhow::Error with .context()",
            read_body_as!(c(), anyhow::Error, |e| anyhow::Error::new(e)
                .context("reading k")),
        ),
    ];
    server.join().unwrap();
    for (wrapper, (code, message)) in results {
        eprintln!("{wrapper:<45} {code:?} {message}");
        assert_eq!(code, ResultCode::TemporaryFailure, "{wrapper}: {message}");
        assert!(
            message.contains("reading the object body failed"),
            "{wrapper}: {message}"
        );
    }
}

/// A loopback server answering every request on every connection with `response`, until
/// stopped.
struct Server {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

fn serve_forever(response: &'static [u8]) -> (u16, Server) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    std::thread::spawn(move || {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 4096];
                        loop {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                            while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n")
                            {
                                request.drain(..end + 4);
                                if stream.write_all(response).is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, Server { stop, thread })
}
