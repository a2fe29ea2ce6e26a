//! The handler end to end, through [`crate::testing`]: result codes, deadlines, concurrency,
//! panics, logs and the response limit.

use super::*;
#[cfg(feature = "s3")]
use crate::envelope::Job;
use crate::envelope::Object;
use crate::error::TaskError;
use crate::response::{Response, ResultCode};
use crate::testing::{invoke, invoke_with, EventBuilder};
use crate::ErrorKind;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, SystemTime};

async fn echo(obj: Object) -> Result<String, TaskError> {
    Ok(format!(
        "{}|{}|{}",
        obj.bucket,
        obj.key,
        obj.version_id.unwrap_or_default()
    ))
}

/// aws-sdk-s3 refuses a key that is only whitespace before sending ("key was missing"):
/// the task's message says the key is only whitespace. Offline: the SDK fails while
/// building the request, so the mock HTTP client is never reached.
#[cfg(feature = "s3")]
#[tokio::test]
async fn a_whitespace_only_key_says_so() {
    async fn s3_calls(obj: Object, s3: aws_sdk_s3::Client) -> Result<String, TaskError> {
        let (b, k) = (&obj.bucket, &obj.key);
        match obj.version_id.as_deref() {
            Some("get") => drop(s3.get_object().bucket(b).key(k).send().await?),
            Some("put") => drop(s3.put_object().bucket(b).key(k).send().await?),
            Some("copy") => drop(
                s3.copy_object()
                    .copy_source("src/x")
                    .bucket(b)
                    .key(k)
                    .send()
                    .await?,
            ),
            Some("other") => return Err(TaskError::permanent("unrelated")),
            _ => drop(s3.head_object().bucket(b).key(k).send().await?),
        }
        Ok("sent".into())
    }
    let keys = [" ", "\t\u{3000}\n"];
    let mut event = EventBuilder::v2();
    for key in keys {
        for op in ["head", "get", "put", "copy"] {
            event = event.object_version("b", key, op);
        }
    }
    let event = event.object_version("b", " ", "other");
    let client = aws_sdk_s3::Client::from_conf(
        crate::testing::client_config()
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .build(),
    );
    let r = crate::testing::invoke_with_client(s3_calls, event, client)
        .await
        .unwrap();
    assert_eq!(r.results.len(), 9);
    for (i, key) in keys.iter().enumerate() {
        for res in &r.results[i * 4..i * 4 + 4] {
            assert_eq!(res.result_code, ResultCode::PermanentFailure);
            let expect = format!(
                "the key is only whitespace ({key:?}): aws-sdk-s3 cannot send requests for such keys (it reported: "
            );
            assert!(
                res.result_string.starts_with(&expect)
                    && res.result_string.contains("key was missing"),
                "{}",
                res.result_string
            );
        }
    }
    assert_eq!(r.results[8].result_string, "unrelated");
}

#[tokio::test]
async fn outcomes_map_to_result_codes() {
    async fn by_key(obj: Object) -> Result<String, TaskError> {
        match obj.key.as_str() {
            "ok" => Ok("fine".into()),
            "temp" => Err(TaskError::temporary("busy")),
            "perm" => Err(TaskError::permanent("gone")),
            _ => panic!("boom {}", obj.key),
        }
    }
    let event = EventBuilder::v1()
        .object("b", "ok")
        .object("b", "temp")
        .object("b", "perm")
        .object("b", "x");
    let r = invoke(by_key, event).await.unwrap();
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("task-0", ResultCode::Succeeded, "fine"),
            ("task-1", ResultCode::TemporaryFailure, "busy"),
            ("task-2", ResultCode::PermanentFailure, "gone"),
            (
                "task-3",
                ResultCode::PermanentFailure,
                "task panicked: boom x"
            ),
        ]
    );
}

#[tokio::test]
async fn echoes_ids_and_schema() {
    let event = EventBuilder::v2()
        .invocation_id("inv-9")
        .object_version("b", "a b", "v")
        .user_argument("k", "v");
    let r = invoke(echo, event).await.unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.invocation_schema_version, "2.0");
    assert_eq!(r.invocation_id, "inv-9");
    assert_eq!(r.treat_missing_keys_as, ResultCode::PermanentFailure);
    assert_eq!(r.results[0].result_string, "b|a b|v");
}

#[tokio::test]
async fn panics_do_not_stop_the_handler() {
    async fn maybe_panic(obj: Object) -> Result<String, TaskError> {
        if obj.key == "bad" {
            panic!("no {}", obj.key)
        }
        Ok("ok".into())
    }
    let handler = Handler::new(maybe_panic, Options::new()).await.unwrap();
    for _ in 0..3 {
        let r = handler
            .handle_bytes(
                &EventBuilder::v1()
                    .object("b", "bad")
                    .object("b", "good")
                    .to_bytes(),
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].result_code, ResultCode::PermanentFailure);
        assert!(r.results[0].result_string.contains("no bad"));
        assert_eq!(r.results[1].result_code, ResultCode::Succeeded);
    }
}

#[tokio::test(start_paused = true)]
async fn deadline_turns_slow_tasks_into_temporary_failures() {
    async fn slow(obj: Object) -> Result<String, TaskError> {
        if obj.key == "slow" {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok("quick".into())
    }
    let deadline = SystemTime::now() + Duration::from_secs(5);
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let event = EventBuilder::v1().object("b", "slow").object("b", "fast");
    let r = invoke_with(slow, Options::new(), event, ctx).await.unwrap();
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
    assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
    assert_eq!(r.results[0].task_id, "task-0");
    assert_eq!(r.results[1].result_code, ResultCode::Succeeded);
}

fn context_with_deadline(at: SystemTime) -> lambda_runtime::Context {
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    ctx
}

/// `deadline_margin` moves the moment tasks are given up: with a deadline 10 s away,
/// tasks that sleep 1, 6, 8 and 9 s, and a margin of 3 s (given up at 7 s) or 1.5 s
/// (8.5 s), exactly those still running then are `TemporaryFailure`; the others finish.
#[tokio::test(start_paused = true)]
async fn deadline_margin_sets_when_unfinished_tasks_are_given_up() {
    async fn nap(obj: Object) -> Result<String, TaskError> {
        let secs: u64 = obj.key.parse().unwrap();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(format!("slept {secs}"))
    }
    let codes = |r: &Response| -> Vec<(String, ResultCode)> {
        r.results
            .iter()
            .map(|r| (r.result_string.clone(), r.result_code))
            .collect()
    };
    use ResultCode::{Succeeded as Ok_, TemporaryFailure as Temp};
    let late = || DEADLINE_MESSAGE.to_owned();
    for (margin_ms, expect) in [
        (
            3000,
            vec![
                ("slept 1".to_owned(), Ok_),
                ("slept 6".to_owned(), Ok_),
                (late(), Temp),
                (late(), Temp),
            ],
        ),
        (
            1500,
            vec![
                ("slept 1".to_owned(), Ok_),
                ("slept 6".to_owned(), Ok_),
                ("slept 8".to_owned(), Ok_),
                (late(), Temp),
            ],
        ),
    ] {
        let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(10));
        let event = ["1", "6", "8", "9"]
            .into_iter()
            .fold(EventBuilder::v1(), |e, k| e.object("b", k));
        let options = Options::builder()
            .deadline_margin(Duration::from_millis(margin_ms))
            .build();
        let r = invoke_with(nap, options.clone(), event, ctx.clone())
            .await
            .unwrap();
        assert_eq!(codes(&r), expect, "margin {margin_ms} ms");
        // One task alone takes another path (awaited directly): 8 s is late at a
        // 3 s margin, in time at 1.5 s.
        let r = invoke_with(nap, options, EventBuilder::v1().object("b", "8"), ctx)
            .await
            .unwrap();
        assert_eq!(codes(&r), expect[2..3], "margin {margin_ms} ms, one task");
    }
}

#[tokio::test]
async fn past_deadline_fails_everything_temporarily() {
    let ctx = context_with_deadline(SystemTime::now() - Duration::from_secs(2));
    async fn never(_: Object) -> Result<String, TaskError> {
        std::future::pending().await
    }
    let r = invoke_with(
        never,
        Options::new(),
        EventBuilder::v1().object("b", "k"),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
}

/// At the deadline, a task still running and the tasks never started (concurrency 1)
/// are each answered with their own id; one task alone keeps its id too.
#[tokio::test]
async fn tasks_never_started_keep_their_ids_at_the_deadline() {
    async fn never(_: Object) -> Result<String, TaskError> {
        std::future::pending().await
    }
    let soon = || context_with_deadline(SystemTime::now() + Duration::from_millis(1500));
    let one = Options::builder().concurrency(1).build();
    let event = EventBuilder::v2()
        .object("b", "a")
        .object("b", "b")
        .object("b", "c");
    let r = invoke_with(never, one.clone(), event, soon())
        .await
        .unwrap();
    let ids: Vec<_> = r.results.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(ids, ["task-0", "task-1", "task-2"]);
    for r in &r.results {
        assert_eq!(r.result_code, ResultCode::TemporaryFailure);
        assert_eq!(r.result_string, DEADLINE_MESSAGE);
    }
    let r = invoke_with(never, one, EventBuilder::v2().object("b", "a"), soon())
        .await
        .unwrap();
    assert_eq!(r.results[0].task_id, "task-0");
    assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_order_kept() {
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    async fn track(obj: Object) -> Result<String, TaskError> {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        // Later tasks finish first, so completion order differs from input order.
        let n: u64 = obj.key.parse().unwrap();
        tokio::time::sleep(Duration::from_millis(100 - n)).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        Ok(obj.key)
    }
    let mut event = EventBuilder::v1();
    for i in 0..40 {
        event = event.object("b", &i.to_string());
    }
    let r = invoke_with(
        track,
        Options::builder().concurrency(7).build(),
        event,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(PEAK.load(Ordering::SeqCst), 7);
    let keys: Vec<String> = r.results.iter().map(|r| r.result_string.clone()).collect();
    let expect: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(keys, expect);
}

#[tokio::test]
async fn bad_tasks_fail_alone() {
    let event = EventBuilder::v1().object("b", "good").raw_task(
        serde_json::json!({"taskId": "t-bad", "s3Key": "%FF", "s3BucketArn": "arn:aws:s3:::b"}),
    );
    let r = invoke(echo, event).await.unwrap();
    assert_eq!(r.results.len(), 2);
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    assert_eq!(r.results[1].task_id, "t-bad");
    assert_eq!(r.results[1].result_code, ResultCode::PermanentFailure);
    assert!(r.results[1].result_string.contains("s3Key \"%FF\""));
}

#[tokio::test]
async fn options_apply() {
    async fn long(_: Object) -> Result<String, TaskError> {
        Ok("x".repeat(5000))
    }
    let options = Options::builder()
        .max_result_len(100)
        .treat_missing_keys_as(ResultCode::TemporaryFailure)
        .build();
    let r = invoke_with(
        long,
        options,
        EventBuilder::v1().object("b", "k"),
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(r.treat_missing_keys_as, ResultCode::TemporaryFailure);
    assert!(r.results[0].result_string.len() <= 100);
    assert!(r.results[0].result_string.ends_with("bytes]"));
    let default = invoke(long, EventBuilder::v1().object("b", "k"))
        .await
        .unwrap();
    assert!(default.results[0].result_string.len() <= Options::DEFAULT_MAX_RESULT_LEN);
}

#[tokio::test]
async fn extractor_errors_fail_the_task() {
    #[derive(serde::Deserialize)]
    struct Args {
        #[allow(dead_code)]
        dest: String,
    }
    async fn needs_args(_: Object, _: crate::UserArgs<Args>) -> Result<(), TaskError> {
        Ok(())
    }
    let r = invoke(
        needs_args,
        EventBuilder::v2().object("b", "k").object("b", "l"),
    )
    .await
    .unwrap();
    // The loop below must not pass by running zero times.
    assert_eq!(r.results.len(), 2);
    for res in &r.results {
        assert_eq!(res.result_code, ResultCode::PermanentFailure);
        assert_eq!(res.result_string, "userArguments: missing field `dest`");
    }
    let ok = invoke(
        needs_args,
        EventBuilder::v2()
            .object("b", "k")
            .user_argument("dest", "d"),
    )
    .await
    .unwrap();
    assert_eq!(ok.results[0].result_code, ResultCode::Succeeded);
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn every_extractor_in_any_order() {
    async fn all(
        obj: Object,
        ctx: lambda_runtime::Context,
        job: Job,
        s3: aws_sdk_s3::Client,
    ) -> Result<String, TaskError> {
        let _ = s3.config();
        Ok(format!(
            "{}:{}:{}:{}",
            job.id, job.schema_version, ctx.request_id, obj.key
        ))
    }
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = "req".into();
    let r = invoke_with(
        all,
        Options::new(),
        EventBuilder::v1().job_id("J").object("b", "k"),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(r.results[0].result_string, "J:1.0:req:k");
}

#[tokio::test]
async fn invocation_errors_surface() {
    let handler = Handler::new(echo, Options::new()).await.unwrap();
    let err = handler
        .handle_bytes(br#"{"tasks":[]}"#, &Default::default())
        .await
        .unwrap_err();
    assert!(err.message().contains("invocationId"));
    let empty = handler
        .handle_bytes(br#"{"invocationId":"i","tasks":[]}"#, &Default::default())
        .await
        .unwrap();
    assert!(empty.results.is_empty());
}

#[test]
fn task_error_kinds_map() {
    assert_eq!(
        ResultCode::from(ErrorKind::Temporary),
        ResultCode::TemporaryFailure
    );
    assert_eq!(
        ResultCode::from(ErrorKind::Permanent),
        ResultCode::PermanentFailure
    );
}

#[tokio::test(start_paused = true)]
async fn placeholder_deadlines_are_not_deadlines() {
    async fn nap(_: Object) -> Result<String, TaskError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok("woke".into())
    }
    // What `cargo lambda watch` sends: 600000 ms after the epoch.
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = 600_000;
    let event = EventBuilder::v1().object("b", "k");
    let r = invoke_with(nap, Options::new(), event.clone(), ctx.clone())
        .await
        .unwrap();
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
    // With a fallback timeout, that placeholder becomes now + timeout.
    let options = Options::builder()
        .fallback_timeout(Duration::from_secs(5))
        .build();
    let r = invoke_with(nap, options, event, ctx).await.unwrap();
    assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
}

/// Panics when dropped: stands for a guard or value whose destructor panics.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{} panicked in its destructor", self.0);
    }
}

#[tokio::test(start_paused = true)]
async fn destructor_panics_at_the_deadline_fail_only_that_task() {
    async fn guarded(obj: Object) -> Result<String, TaskError> {
        if obj.key.starts_with("hang") {
            let _guard = PanicOnDrop("guard");
            std::future::pending::<()>().await;
        }
        Ok(format!("done {}", obj.key))
    }
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
    let event = EventBuilder::v1()
        .object("b", "quick")
        .object("b", "hang-1")
        .object("b", "later")
        .object("b", "hang-2");
    let r = invoke_with(guarded, Options::new(), event, ctx.clone())
        .await
        .unwrap();
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("task-0", ResultCode::Succeeded, "done quick"),
            ("task-1", ResultCode::TemporaryFailure, DEADLINE_MESSAGE),
            ("task-2", ResultCode::Succeeded, "done later"),
            ("task-3", ResultCode::TemporaryFailure, DEADLINE_MESSAGE),
        ]
    );
    // One task alone takes another path (awaited directly).
    let r = invoke_with(
        guarded,
        Options::new(),
        EventBuilder::v1().object("b", "hang"),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].result_code, ResultCode::TemporaryFailure);
    assert_eq!(r.results[0].result_string, DEADLINE_MESSAGE);
}

/// The line that reports a destructor's panic at the deadline is logged inside the task's
/// span, so it names the task: under lambda_runtime's subscriber (span made as the task
/// starts) and under `init_tracing`'s (span made then, for the line).
#[tokio::test(start_paused = true)]
async fn a_destructor_panic_at_the_deadline_is_logged_in_its_task() {
    use crate::logging::tests::{plain, Captured};
    async fn hang(obj: Object) -> Result<String, TaskError> {
        let _guard = PanicOnDrop("guard");
        std::future::pending::<()>().await;
        Ok(obj.key)
    }
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(5));
    for deferred in [false, true] {
        let captured = Captured::default();
        let w = captured.clone();
        let dispatch = if deferred {
            crate::logging::subscriber(false, None, "", move || w.clone())
        } else {
            lambda_runtime::tracing::subscriber::fmt()
                .with_target(false)
                .without_time()
                .with_writer(move || w.clone())
                .into()
        };
        let _default = tracing::dispatcher::set_default(&dispatch);
        // One task alone is awaited directly; two go through the tasks in flight.
        for event in [
            EventBuilder::v1().job_id("j").object("b", "k1"),
            EventBuilder::v1()
                .job_id("j")
                .object("b", "k2")
                .object("b", "k3"),
        ] {
            let r = invoke_with(hang, Options::new(), event, ctx.clone())
                .await
                .unwrap();
            assert!(
                r.results
                    .iter()
                    .all(|r| r.result_string == DEADLINE_MESSAGE),
                "{r:?}"
            );
        }
        let text = plain(&captured.text());
        let reported: Vec<_> = text
            .lines()
            .filter(|l| {
                l.ends_with(
                    "a task panicked while it was being dropped at the deadline: \
                     guard panicked in its destructor",
                )
            })
            .collect();
        // The tasks in flight are dropped in no set order: compare the keys as a set.
        let mut keys: Vec<_> = reported
            .iter()
            .map(|line| {
                assert!(line.contains(r#"task{job_id="j" "#), "{deferred}: {line}");
                line.split_once(r#" key=""#)
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map_or("", |(key, _)| key)
            })
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["k1", "k2", "k3"], "deferred: {deferred}: {text}");
    }
}

#[tokio::test]
async fn panicking_destructors_of_values_and_payloads_stay_in_their_task() {
    #[derive(serde::Serialize)]
    struct Output {
        #[serde(skip)]
        _guard: Option<PanicOnDrop>,
    }
    struct Failure(#[allow(dead_code)] PanicOnDrop);
    impl From<Failure> for TaskError {
        fn from(_: Failure) -> TaskError {
            TaskError::temporary("failed")
        }
    }
    /// A hand-written future, with a guard that panics when the future is dropped.
    struct Ready(
        Option<Result<Output, Failure>>,
        #[allow(dead_code)] Option<PanicOnDrop>,
    );
    impl Future for Ready {
        type Output = Result<Output, Failure>;
        fn poll(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(self.0.take().expect("polled once"))
        }
    }
    fn task(obj: Object) -> Ready {
        let guard = |name| Some(PanicOnDrop(name));
        match obj.key.as_str() {
            "output" => Ready(
                Some(Ok(Output {
                    _guard: guard("output"),
                })),
                None,
            ),
            "error" => Ready(Some(Err(Failure(PanicOnDrop("error")))), None),
            "payload" => std::panic::panic_any(PanicOnDrop("payload")),
            _ => Ready(Some(Ok(Output { _guard: None })), guard("future")),
        }
    }
    let event = EventBuilder::v1()
        .object("b", "output")
        .object("b", "error")
        .object("b", "payload")
        .object("b", "future");
    let r = invoke(task, event).await.unwrap();
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ResultCode::PermanentFailure,
                "task panicked: output panicked in its destructor"
            ),
            (
                ResultCode::PermanentFailure,
                "task panicked: error panicked in its destructor"
            ),
            (
                ResultCode::PermanentFailure,
                "task panicked: (panic payload is not a string)"
            ),
            (
                ResultCode::PermanentFailure,
                "task panicked: future panicked in its destructor"
            ),
        ]
    );
}

#[tokio::test]
async fn unformattable_panic_messages_say_so() {
    struct Broken;
    impl fmt::Display for Broken {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }
    async fn task(obj: Object) -> Result<String, TaskError> {
        if obj.key == "broken" {
            panic!("{}", Broken);
        }
        Ok("fine".into())
    }
    let r = invoke(
        task,
        EventBuilder::v1().object("b", "broken").object("b", "ok"),
    )
    .await
    .unwrap();
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.result_code, r.result_string.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (ResultCode::PermanentFailure, PANIC_WITHOUT_MESSAGE),
            (ResultCode::Succeeded, "fine"),
        ]
    );
}

#[tokio::test]
async fn user_text_cannot_forge_text_log_lines() {
    use lambda_runtime::tracing::subscriber;
    async fn task(obj: Object) -> Result<String, TaskError> {
        match obj.key.split_once('/').map(|(kind, _)| kind) {
            Some("fail") => Err(TaskError::permanent(format!("cannot copy {}", obj.key))),
            Some("panic") => panic!("no {}", obj.key),
            _ => Ok(obj.key),
        }
    }
    let forged =
        "\nERROR forged: all tasks failed\r\x1b[31mred\x1b[0m\u{2028}sep\u{202e}rtl\u{85}nel";
    let captured = crate::logging::tests::Captured::default();
    let writer = captured.clone();
    // As lambda_runtime's default text subscriber, without colours (as in CloudWatch).
    let logs = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(logs);
    let event = EventBuilder::v2()
        .job_id(&format!("job{forged}"))
        .object(&format!("bucket{forged}"), &format!("fail/{forged}"))
        .object("b", &format!("panic/{forged}"))
        .object("b", &format!("ok/{forged}"))
        .raw_task(
            serde_json::json!({"taskId": format!("t{forged}"), "s3Key": "%FF", "s3Bucket": "b"}),
        );
    let r = invoke(task, event).await.unwrap();
    assert_eq!(r.results.len(), 4);
    let text = captured.text();
    // Every user-controlled value was logged…
    for needle in [
        "job\\nERROR forged",
        "bucket\\nERROR",
        "fail/\\nERROR",
        "panic/\\nERROR",
        "t\\nERROR",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    // …escaped: no line of its own, no raw control character, separator or override.
    // One line per event logged (the bad task, the failure, the panic, the success).
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("ERROR forged")),
        "{text}"
    );
    assert_eq!(
        text.matches("ERROR forged").count(),
        text.matches("\\nERROR forged").count()
    );
    for c in ['\r', '\x1b', '\u{2028}', '\u{202e}', '\u{85}'] {
        assert!(!text.contains(c), "raw {c:?} in:\n{text}");
    }
    assert!(text.contains("\\u{1b}[31mred"), "{text}");
}

#[tokio::test]
async fn responses_fit_lambdas_limit_whatever_the_results_hold() {
    // 1,100 tasks whose results are control characters, 6 bytes each in JSON: what a
    // 3.4 MB event turned into a 6.7 MB response. Every tenth result is short.
    async fn control(obj: Object) -> Result<String, TaskError> {
        let n: usize = obj.key.parse().unwrap();
        Ok(match n % 10 {
            0 => format!("short {n}"),
            5 => "\u{1}".repeat(300),
            _ => "\u{1}".repeat(2000),
        })
    }
    let mut event = EventBuilder::v1();
    for i in 0..1100 {
        event = event.object("b", &i.to_string());
    }
    let options = Options::builder().max_result_len(10_000).build();
    let r = invoke_with(control, options, event, Default::default())
        .await
        .unwrap();
    let json = serde_json::to_vec(&r).unwrap();
    assert!(
        json.len() <= crate::response::RESPONSE_BUDGET,
        "{}",
        json.len()
    );
    assert!(
        json.len() > crate::response::RESPONSE_BUDGET - 20_000,
        "{}",
        json.len()
    );
    assert_eq!(r.results.len(), 1100);
    let mut cut = None;
    for (i, res) in r.results.iter().enumerate() {
        assert_eq!(res.task_id, format!("task-{i}"));
        assert_eq!(res.result_code, ResultCode::Succeeded);
        match i % 10 {
            0 => assert_eq!(res.result_string, format!("short {i}")),
            5 => assert_eq!(res.result_string, "\u{1}".repeat(300)),
            _ => {
                // The longest are cut, all to the same length, marked.
                assert!(res.result_string.ends_with(" bytes]"), "{i}");
                let len = res.result_string.len();
                assert!(len < 2000);
                assert_eq!(*cut.get_or_insert(len), len);
            }
        }
    }
    // The same results again: the same cut.
    let mut event = EventBuilder::v1();
    for i in 0..1100 {
        event = event.object("b", &i.to_string());
    }
    let again = invoke_with(
        control,
        Options::builder().max_result_len(10_000).build(),
        event,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(again, r);
}

#[tokio::test]
async fn too_many_tasks_to_answer_is_refused_before_any_runs() {
    static RAN: AtomicUsize = AtomicUsize::new(0);
    async fn count(_: Object) -> Result<String, TaskError> {
        RAN.fetch_add(1, Ordering::SeqCst);
        Ok(String::new())
    }
    let handler = Handler::new(count, Options::new()).await.unwrap();
    // Each well-formed task of this event takes about 60 bytes, its result about 70:
    // 100,000 of them would need a 7 MB response.
    let mut event = br#"{"invocationId":"i","tasks":["#.to_vec();
    for i in 0..100_000 {
        if i > 0 {
            event.push(b',');
        }
        event.extend_from_slice(
            format!(r#"{{"taskId":"{i}","s3Key":"k","s3Bucket":"b"}}"#).as_bytes(),
        );
    }
    event.extend_from_slice(b"]}");
    assert!(event.len() < crate::response::LAMBDA_RESPONSE_LIMIT);
    let err = match handler.handle_bytes(&event, &Default::default()).await {
        Ok(r) => panic!("{} results instead of an invocation error", r.results.len()),
        Err(err) => err,
    };
    assert!(
        err.message()
            .starts_with("event has too many tasks to answer: 100000 results"),
        "{err}"
    );
    assert_eq!(RAN.load(Ordering::SeqCst), 0);
    // 10,000 fit.
    let end = event
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'}')
        .nth(9_999)
        .unwrap()
        .0;
    let mut smaller = event[..=end].to_vec();
    smaller.extend_from_slice(b"]}");
    let r = handler
        .handle_bytes(&smaller, &Default::default())
        .await
        .unwrap();
    assert_eq!(r.results.len(), 10_000);
    assert_eq!(RAN.load(Ordering::SeqCst), 10_000);
}

#[tokio::test]
async fn unreadable_fields_fail_only_their_task_through_handle_bytes() {
    let handler = Handler::new(echo, Options::new()).await.unwrap();
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let mut event = format!(
        r#"{{"invocationSchemaVersion":"2.0","invocationId":"inv","job":{{"id":"j","userArguments":{{"deep":{deep}}}}},"tasks":[
              {{"taskId":"good","s3Key":"a+b","s3Bucket":"b"}},
              {{"taskId":"bad-key","s3Key":"BAD","s3Bucket":"b"}},
              {{"taskId":"id\ud800","s3Key":"k","s3Bucket":"b"}}]}}"#
    )
    .into_bytes();
    let at = event.windows(3).position(|w| w == b"BAD").unwrap();
    event.splice(at..at + 3, [0xFF, 0xFE]);
    let r = handler
        .handle_bytes(&event, &Default::default())
        .await
        .unwrap();
    assert_eq!(r.invocation_id, "inv");
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.task_id.as_str(), r.result_code))
        .collect();
    assert_eq!(
        got,
        [
            ("good", ResultCode::Succeeded),
            ("bad-key", ResultCode::PermanentFailure),
            ("id\u{fffd}", ResultCode::PermanentFailure),
        ]
    );
    assert_eq!(r.results[0].result_string, "b|a b|");
    assert!(r.results[1]
        .result_string
        .contains("`s3Key` is not valid Unicode"));
    assert!(r.results[2]
        .result_string
        .contains("`taskId` is not valid Unicode"));
}

#[tokio::test(start_paused = true)]
async fn real_deadlines_win_over_the_fallback() {
    async fn nap(_: Object) -> Result<String, TaskError> {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok("woke".into())
    }
    let ctx = context_with_deadline(SystemTime::now() + Duration::from_secs(60));
    let options = Options::builder()
        .fallback_timeout(Duration::from_secs(1))
        .build();
    let r = invoke_with(nap, options, EventBuilder::v1().object("b", "k"), ctx)
        .await
        .unwrap();
    assert_eq!(r.results[0].result_code, ResultCode::Succeeded);
}
