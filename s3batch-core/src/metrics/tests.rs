//! The document builder, its limits and splitting, configuration, and the extractor.

use super::collect::{task_finished, task_started, RunEnd};
use super::*;
use crate::response::{Response, ResultCode, TaskResult};
use serde_json::Value;

fn config() -> MetricsConfig {
    MetricsConfig::new("Jobs", Some("copy-fn"), Some("billing")).unwrap()
}

fn docs(m: &InvocationMetrics, config: &MetricsConfig) -> Vec<Value> {
    let text = m
        .documents(config, Some("req-1"), 1_700_000_000_123)
        .unwrap();
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
        .collect()
}

/// The names of a document's metric definitions.
fn names(doc: &Value) -> Vec<&str> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect()
}

/// An invocation run through `collect` with the given task outcomes.
async fn invocation(config: &MetricsConfig, ends: Vec<RunEnd<'static>>) -> InvocationMetrics {
    let ((), metrics) = config
        .collect(async {
            for end in ends {
                let started = task_started();
                assert!(started.is_some(), "collecting: the start is timed");
                task_finished(started, end);
            }
        })
        .await;
    metrics
}

/// What the handler reports with its response: the job and the tasks' result codes.
fn answer(m: &mut InvocationMetrics, codes: &[ResultCode]) {
    m.collected.answered("job-1", &response(codes));
}

fn response(codes: &[ResultCode]) -> Response {
    Response {
        invocation_schema_version: "1.0".into(),
        treat_missing_keys_as: ResultCode::PermanentFailure,
        invocation_id: "inv-1".into(),
        results: codes.iter().map(|c| TaskResult::new("t", *c, "")).collect(),
    }
}

/// An invocation without tasks, answered for this job and invocation.
fn answered_by(job_id: &str, invocation_id: &str) -> InvocationMetrics {
    let mut collected = Box::<Collected>::default();
    let mut response = response(&[]);
    response.invocation_id = invocation_id.into();
    collected.answered(job_id, &response);
    InvocationMetrics { collected }
}

#[tokio::test]
async fn one_document_with_counts_codes_and_ids() {
    let config = config();
    let mut m = invocation(
        &config,
        vec![
            RunEnd::Succeeded,
            RunEnd::Failed(ResultCode::TemporaryFailure, "SlowDown: reduce (HTTP 503)"),
            RunEnd::Failed(ResultCode::PermanentFailure, "AccessDenied: no (HTTP 403)"),
            RunEnd::Failed(
                ResultCode::PermanentFailure,
                "x: NoSuchKey: gone (HTTP 404)",
            ),
            RunEnd::Failed(ResultCode::PermanentFailure, "bad input"),
            RunEnd::Panicked,
        ],
    )
    .await;
    // Six runs, and one more task given up at the deadline (a TemporaryFailure no run made).
    answer(
        &mut m,
        &[
            ResultCode::Succeeded,
            ResultCode::TemporaryFailure,
            ResultCode::PermanentFailure,
            ResultCode::PermanentFailure,
            ResultCode::PermanentFailure,
            ResultCode::PermanentFailure,
            ResultCode::TemporaryFailure,
        ],
    );
    let docs = docs(&m, &config);
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_123u64);
    let directive = &d["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Jobs");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["FunctionName", "Service"]])
    );
    assert_eq!(
        names(d),
        [
            "Tasks",
            "TasksSucceeded",
            "TasksTemporaryFailure",
            "TasksPermanentFailure",
            "TasksAtDeadline",
            "TaskPanics",
            "ErrorsThrottling",
            "ErrorsAccessDenied",
            "ErrorsMissingKey",
            "ErrorsOther",
            "TaskDuration",
        ]
    );
    for (name, value) in [
        ("Tasks", 7),
        ("TasksSucceeded", 1),
        ("TasksTemporaryFailure", 2),
        ("TasksPermanentFailure", 4),
        ("TasksAtDeadline", 1),
        ("TaskPanics", 1),
        ("ErrorsThrottling", 1),
        ("ErrorsAccessDenied", 1),
        ("ErrorsMissingKey", 1),
        ("ErrorsOther", 1),
    ] {
        assert_eq!(d[name], value, "{name}");
    }
    // Every run's duration, in milliseconds.
    let durations = d["TaskDuration"].as_array().unwrap();
    assert_eq!(durations.len(), 6);
    assert!(durations.iter().all(|v| v.as_f64().unwrap() >= 0.0));
    assert_eq!(d["FunctionName"], "copy-fn");
    assert_eq!(d["Service"], "billing");
    assert_eq!(d["JobId"], "job-1");
    assert_eq!(d["InvocationId"], "inv-1");
    assert_eq!(d["RequestId"], "req-1");
    // No cold start outside `write`, and nothing else at the top level.
    assert!(d.get("ColdStart").is_none());
    assert_eq!(d.as_object().unwrap().len(), 1 + 5 + 11);
}

#[tokio::test]
async fn a_single_duration_is_a_number_in_milliseconds() {
    let config = config();
    let mut m = invocation(&config, vec![RunEnd::Succeeded]).await;
    m.collected.durations.first = Some(12_345);
    answer(&mut m, &[ResultCode::Succeeded]);
    let d = &docs(&m, &config)[0];
    assert_eq!(d["TaskDuration"], 12.345);
    // Counts of zero are left out (alarms fill them with `FILL(m, 0)`); `Tasks` never is.
    assert_eq!(names(d), ["Tasks", "TasksSucceeded", "TaskDuration"]);
    assert_eq!((&d["Tasks"], &d["TasksSucceeded"]), (&1.into(), &1.into()));
    assert!(d.get("TasksAtDeadline").is_none() && d.get("ErrorsOther").is_none());
}

#[test]
fn the_cold_start_is_in_the_first_document_only() {
    let config = config();
    let m = InvocationMetrics {
        collected: Box::default(),
    };
    let mut out = Vec::new();
    m.write_with(&mut out, &config, None, 1, true).unwrap();
    let d: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(d["ColdStart"], 1);
    assert!(names(&d).contains(&"ColdStart"));
    // No request id, no job: those members are left out.
    assert!(d.get("RequestId").is_none() && d.get("JobId").is_none());
}

#[tokio::test]
async fn job_id_is_a_dimension_only_when_asked() {
    let config = config().with_job_dimension(true);
    let mut m = invocation(&config, vec![]).await;
    answer(&mut m, &[]);
    let d = &docs(&m, &config)[0];
    assert_eq!(
        d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["FunctionName", "Service", "JobId"]])
    );
    assert_eq!(d["JobId"], "job-1");
    let plain = MetricsConfig::new("N", None, None).unwrap();
    let d = &docs(&m, &plain)[0];
    assert_eq!(
        d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([[]])
    );
}

#[tokio::test]
async fn values_past_100_go_on_in_further_documents() {
    let config = config();
    let ((), m) = config
        .collect(async {
            let metrics = Metrics {
                enabled: CURRENT.try_with(|_| ()).is_ok(),
            };
            for i in 0..250 {
                metrics.add("Bytes", Unit::Bytes, f64::from(i)).unwrap();
            }
        })
        .await;
    let docs = docs(&m, &config);
    assert_eq!(docs.len(), 3);
    let mut all = Vec::new();
    for d in &docs {
        let values = d["Bytes"].as_array().unwrap();
        assert!(values.len() <= MAX_VALUES_PER_METRIC);
        all.extend(values.iter().map(|v| v.as_f64().unwrap()));
        assert!(names(d).contains(&"Bytes"));
        assert_eq!(d["FunctionName"], "copy-fn");
    }
    // Every value, once, in order.
    assert_eq!(all, (0..250).map(f64::from).collect::<Vec<_>>());
    // s3batch's counts are in the first document only.
    assert_eq!(docs[0]["Tasks"], 0);
    assert!(docs[1].get("Tasks").is_none());
}

#[tokio::test]
async fn metrics_past_100_go_on_in_further_documents() {
    let config = config();
    let ((), m) = config
        .collect(async {
            let metrics = Metrics { enabled: true };
            for i in 0..150 {
                metrics
                    .add(&format!("M{i:03}"), Unit::Count, f64::from(i))
                    .unwrap();
            }
        })
        .await;
    let docs = docs(&m, &config);
    assert_eq!(docs.len(), 2);
    assert_eq!(names(&docs[0]).len(), MAX_METRICS_PER_DOCUMENT);
    // 150 user metrics and s3batch's `Tasks` (no task ran: no duration, every count zero).
    assert_eq!(names(&docs[1]).len(), 151 - MAX_METRICS_PER_DOCUMENT);
    let mut seen: Vec<&str> = docs.iter().flat_map(names).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 151, "each metric exactly once");
    for d in &docs {
        for n in names(d) {
            assert!(d.get(n).is_some(), "{n} has its value in its document");
        }
    }
    assert_eq!(docs[1]["M149"], 149.0);
}

#[test]
fn a_document_over_1_mb_is_an_error_not_a_cut() {
    let config = config();
    let m = answered_by(&"j".repeat(MAX_DOCUMENT_BYTES), "i");
    let err = m.documents(&config, None, 1).unwrap_err();
    assert!(matches!(err, MetricsError::DocumentTooLarge { bytes } if bytes > MAX_DOCUMENT_BYTES));
}

#[tokio::test]
async fn bad_user_metrics_are_refused_with_the_reason() {
    let config = config();
    let ((), m) = config
        .collect(async {
            let metrics = Metrics { enabled: true };
            assert!(matches!(
                metrics.add("", Unit::Count, 1.0),
                Err(MetricsError::InvalidName { .. })
            ));
            assert!(matches!(
                metrics.add(&"x".repeat(256), Unit::Count, 1.0),
                Err(MetricsError::InvalidName { .. })
            ));
            assert!(matches!(
                metrics.add("TasksSucceeded", Unit::Count, 1.0),
                Err(MetricsError::ReservedName { .. })
            ));
            assert!(matches!(
                metrics.add("JobId", Unit::Count, 1.0),
                Err(MetricsError::ReservedName { .. })
            ));
            assert!(matches!(
                metrics.add("Nan", Unit::Count, f64::NAN),
                Err(MetricsError::NotFinite { .. })
            ));
            metrics.add("Copied", Unit::Bytes, 1.0).unwrap();
            let err = metrics.add("Copied", Unit::Count, 1.0).unwrap_err();
            assert_eq!(
                err.to_string(),
                "metric \"Copied\" was given unit Bytes first and now Count"
            );
            // From a spawned task: refused, not lost.
            let spawned = tokio::spawn(async move { metrics.add("Late", Unit::Count, 1.0) });
            assert!(matches!(
                spawned.await.unwrap(),
                Err(MetricsError::OutsideInvocation { .. })
            ));
        })
        .await;
    let d = &docs(&m, &config)[0];
    assert_eq!(d["Copied"], 1.0);
    assert!(d.get("Late").is_none() && d.get("Nan").is_none());
}

#[test]
fn off_there_is_nothing_to_collect() {
    assert_eq!(task_started(), None);
    // A task run outside any collection records nothing and does not panic.
    task_finished(None, RunEnd::Panicked);
    super::answered("j", &response(&[ResultCode::Succeeded]));
    let off = Metrics { enabled: false };
    assert!(!off.is_enabled());
    assert_eq!(off.add("Copied", Unit::Count, 1.0), Ok(()));
    // Still checked, so a mistake shows before metrics are turned on.
    assert!(off.add("", Unit::Count, 1.0).is_err());
}

#[test]
fn names_and_ids_are_escaped() {
    let config = MetricsConfig::new("N s", Some("f\"\\n"), None).unwrap();
    let m = answered_by("j\"1\n", "ünï");
    let d = &docs(&m, &config)[0];
    assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "N s");
    assert_eq!(d["FunctionName"], "f\"\\n");
    assert_eq!(d["JobId"], "j\"1\n");
    assert_eq!(d["InvocationId"], "ünï");
}

#[test]
fn configuration_is_checked() {
    assert!(matches!(
        MetricsConfig::new("", None, None),
        Err(MetricsError::InvalidConfig {
            what: "namespace",
            ..
        })
    ));
    assert!(matches!(
        MetricsConfig::new(&"n".repeat(256), None, None),
        Err(MetricsError::InvalidConfig {
            what: "namespace",
            ..
        })
    ));
    for bad in ["AWS/Lambda", "   ", "a\"b", "naïve"] {
        assert!(
            matches!(
                MetricsConfig::new(bad, None, None),
                Err(MetricsError::InvalidNamespace { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(MetricsConfig::new("My.App/jobs-1_#: x", None, None).is_ok());
    assert!(matches!(
        MetricsConfig::new("n", None, Some("")),
        Err(MetricsError::InvalidConfig {
            what: "service",
            ..
        })
    ));
}

#[test]
fn the_environment_turns_metrics_on() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let fixed = |c: Option<MetricsConfig>| c.map(|c| (c.fixed.directive, c.fixed.dimension_values));
    // No namespace anywhere (or an empty one): off.
    assert!(MetricsConfig::from_lookup(None, None, false, env(&[]))
        .unwrap()
        .is_none());
    assert!(MetricsConfig::from_lookup(
        None,
        None,
        false,
        env(&[("S3BATCH_METRICS_NAMESPACE", "")])
    )
    .unwrap()
    .is_none());
    // s3batch's variable before Powertools'; the attribute before both.
    let vars: &[(&str, &str)] = &[
        ("S3BATCH_METRICS_NAMESPACE", "Mine"),
        ("POWERTOOLS_METRICS_NAMESPACE", "Theirs"),
        ("POWERTOOLS_SERVICE_NAME", "svc"),
        ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
    ];
    let (directive, values) =
        fixed(MetricsConfig::from_lookup(None, None, false, env(vars)).unwrap()).unwrap();
    assert_eq!(
        directive,
        r#""Namespace":"Mine","Dimensions":[["FunctionName","Service"]]"#
    );
    assert_eq!(values, r#","FunctionName":"fn","Service":"svc""#);
    let (directive, values) = fixed(
        MetricsConfig::from_lookup(Some("Attr"), Some("attr-svc"), false, env(vars)).unwrap(),
    )
    .unwrap();
    assert!(directive.starts_with(r#""Namespace":"Attr""#));
    assert_eq!(values, r#","FunctionName":"fn","Service":"attr-svc""#);
    let (directive, _) = fixed(
        MetricsConfig::from_lookup(
            None,
            None,
            false,
            env(&[("POWERTOOLS_METRICS_NAMESPACE", "P")]),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(directive, r#""Namespace":"P","Dimensions":[[]]"#);
}

/// The hot path's constant definitions give the same document as the general writer.
#[tokio::test]
async fn the_fast_path_writes_what_the_general_one_does() {
    for job_dimension in [false, true] {
        let config = config().with_job_dimension(job_dimension);
        for (ends, cold) in [
            (vec![], false),
            (vec![RunEnd::Succeeded], true),
            (
                vec![
                    RunEnd::Panicked,
                    RunEnd::Failed(ResultCode::TemporaryFailure, "SlowDown: x"),
                ],
                false,
            ),
        ] {
            let mut m = invocation(&config, ends).await;
            answer(
                &mut m,
                &[ResultCode::PermanentFailure, ResultCode::TemporaryFailure],
            );
            let ctx = super::document::Context {
                fixed: &config.fixed,
                job_dimension,
                request_id: Some("r\"1"),
                cold_start: cold,
                timestamp_ms: 42,
            };
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            super::document::write(&mut fast, &ctx, &m.collected).unwrap();
            super::document::write_split(&mut general, &ctx, &m.collected).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(general).unwrap()
            );
        }
    }
}

/// A collection reused for the next invocation starts empty: nothing of the last one leaks
/// into the next document.
#[tokio::test]
async fn a_reused_collection_starts_empty() {
    let config = config();
    let ((), mut m) = config
        .collect(async {
            let started = task_started();
            task_finished(started, RunEnd::Panicked);
            Metrics { enabled: true }
                .add("Copied", Unit::Bytes, 3.0)
                .unwrap();
        })
        .await;
    answer(&mut m, &[ResultCode::PermanentFailure]);
    m.collected.reset();
    let fresh = InvocationMetrics {
        collected: Box::default(),
    };
    assert_eq!(
        m.documents(&config, None, 1).unwrap(),
        fresh.documents(&config, None, 1).unwrap()
    );
}

/// The kept buffer's head is reused only for an invocation of the same shape: whatever the
/// order of shapes, each write is the document `write` makes from nothing.
#[tokio::test]
async fn a_kept_head_is_written_again_when_the_shape_changes() {
    let config = config().with_job_dimension(true);
    let one = |codes: &'static [ResultCode], ends: Vec<RunEnd<'static>>| {
        let config = &config;
        async move {
            let mut m = invocation(config, ends).await;
            answer(&mut m, codes);
            m
        }
    };
    let ok = one(&[ResultCode::Succeeded], vec![RunEnd::Succeeded]).await;
    let slow = one(
        &[ResultCode::TemporaryFailure],
        vec![RunEnd::Failed(ResultCode::TemporaryFailure, "SlowDown: x")],
    )
    .await;
    let denied = one(
        &[ResultCode::PermanentFailure],
        vec![RunEnd::Failed(
            ResultCode::PermanentFailure,
            "AccessDenied: x",
        )],
    )
    .await;
    let unanswered = invocation(&config, vec![RunEnd::Succeeded]).await;
    let (mut buffer, mut head) = (Vec::new(), None);
    for (m, cold) in [
        (&ok, true),
        (&ok, false),
        (&slow, false),
        (&denied, false),
        (&ok, false),
        (&unanswered, false),
        (&ok, false),
        (&ok, false),
    ] {
        let ctx = m.context(&config, Some("req-1"), 7, cold);
        super::document::write_reusing(&mut buffer, &mut head, &ctx, &m.collected).unwrap();
        let mut fresh = Vec::new();
        super::document::write(&mut fresh, &ctx, &m.collected).unwrap();
        assert_eq!(
            String::from_utf8(buffer.clone()).unwrap(),
            String::from_utf8(fresh).unwrap()
        );
    }
}

/// The eight-bytes-at-a-time check finds every byte JSON escapes, wherever it is.
#[test]
fn ids_needing_escapes_are_found_at_every_position() {
    // Short ids byte by byte; longer ones in blocks of 32 and an overlapping last block.
    for len in (1..=19).chain([31, 32, 33, 40, 58, 63, 64, 65, 100]) {
        for at in 0..len {
            for bad in (0u8..0x20).chain([b'"', b'\\']) {
                let mut id = vec![b'a'; len];
                id[at] = bad;
                let id = String::from_utf8(id).unwrap();
                assert!(!super::document::is_plain(id.as_bytes()), "{id:?}");
                let mut out = Vec::new();
                super::document::push_json_str(&mut out, &id);
                assert_eq!(out, serde_json::to_vec(&id).unwrap(), "{id:?}");
            }
            // Bytes next to the escaped ones (and beyond ASCII) are copied as they are.
            for good in [b' ', b'!', b'#', b'[', b']', b'~', 0x7f] {
                let mut id = vec![b'a'; len];
                id[at] = good;
                assert!(super::document::is_plain(&id), "{id:?}");
            }
        }
    }
    assert!(super::document::is_plain("ünïcödé-ids-😀".as_bytes()));
}

/// The kept head is reused only for the same job and a timestamp of as many digits: its
/// timestamp is written over, and a new job or a longer timestamp writes it again.
#[tokio::test]
async fn a_kept_head_follows_the_job_and_the_timestamp() {
    let config = config();
    let of_job = |job: &'static str| {
        let config = &config;
        async move {
            let mut m = invocation(config, vec![RunEnd::Succeeded]).await;
            let mut response = response(&[ResultCode::Succeeded]);
            response.invocation_id = format!("inv-of-{job}");
            m.collected.answered(job, &response);
            m
        }
    };
    let (a, b) = (of_job("job-a").await, of_job("job-b").await);
    let (mut buffer, mut head) = (Vec::new(), None);
    for (m, timestamp) in [
        (&a, 1_700_000_000_000),
        (&a, 1_700_000_000_999),
        (&b, 1_700_000_000_999),
        (&a, 1_700_000_001_000),
        (&a, 7),
        (&a, 10),
        (&b, 99_999_999_999_999),
    ] {
        let ctx = m.context(&config, Some("req-1"), timestamp, false);
        super::document::write_reusing(&mut buffer, &mut head, &ctx, &m.collected).unwrap();
        let mut fresh = Vec::new();
        super::document::write(&mut fresh, &ctx, &m.collected).unwrap();
        assert_eq!(
            String::from_utf8(buffer.clone()).unwrap(),
            String::from_utf8(fresh).unwrap()
        );
    }
}

/// A collection is in place only while its own future is polled: a panic in the future puts
/// back what was there, and a collection inside another keeps its own metrics.
#[tokio::test]
async fn a_collection_is_in_place_only_while_its_future_is_polled() {
    use futures_util::FutureExt;
    let config = config();
    let panicked = std::panic::AssertUnwindSafe(config.collect(async {
        let started = task_started();
        assert!(started.is_some());
        panic!("in the task");
    }))
    .catch_unwind()
    .await;
    assert!(panicked.is_err());
    assert_eq!(
        task_started(),
        None,
        "no collection left behind by the panic"
    );

    let ((inner, ()), outer) = config
        .collect(async {
            let ((), inner) = config
                .collect(async { task_finished(task_started(), RunEnd::Panicked) })
                .await;
            task_finished(task_started(), RunEnd::Succeeded);
            (inner, ())
        })
        .await;
    assert_eq!(
        (
            inner.collected.counts.panics,
            inner.collected.durations.len()
        ),
        (1, 1)
    );
    assert_eq!(
        (
            outer.collected.counts.panics,
            outer.collected.durations.len()
        ),
        (0, 1)
    );
    assert_eq!(task_started(), None);
}

/// A task run's duration and the document's timestamp come from the system clock
/// (`collect::now_nanos`): the duration covers what the run took, and the timestamp is the
/// run's end, in milliseconds since the Unix epoch.
#[tokio::test]
async fn durations_and_the_timestamp_are_read_on_the_system_clock() {
    let epoch_ms = || {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        d.as_secs() * 1000 + u64::from(d.subsec_millis())
    };
    let config = config();
    let before = epoch_ms();
    let ((), m) = config
        .collect(async {
            let started = task_started();
            std::thread::sleep(std::time::Duration::from_millis(3));
            task_finished(started, RunEnd::Succeeded);
        })
        .await;
    let after = epoch_ms();
    let micros = m.collected.durations.first.expect("the run is timed");
    assert!(micros >= 3_000, "{micros} µs for a 3 ms sleep");
    assert!(
        micros <= (after - before + 1) * 1000,
        "{micros} µs within {before}..={after}"
    );
    let at = m.collected.timestamp_ms();
    assert!(
        (before..=after).contains(&at),
        "{at} not in {before}..={after}"
    );
}
