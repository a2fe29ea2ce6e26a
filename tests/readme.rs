//! The README is the way in, and these tests keep it true:
//!
//! - it stays short (at most 200 lines) and in the order a newcomer needs it;
//! - every shell command in it is run: [`QUICK_START`] lists the quick start's, with where
//!   each runs, and
//!   [`readme_commands_work_as_written`] runs them, as written and in the README's order, in
//!   a fresh home folder, from the install of `cargo s3batch` to the local job. A command in
//!   a README shell block that is not in that list fails [`every_readme_command_is_run`],
//!   naming it; the two commands it ends with are [`TWO_COMMANDS`]: the test suite is what
//!   `.ci/run` runs, and [`the_demo_runs_end_to_end`] runs the demo;
//! - `CONTRIBUTING.md`'s layout table names every top-level folder and workspace member, and
//!   only paths that exist;
//! - every relative link (and `#anchor`) in `README.md`, `CONTRIBUTING.md` and `docs/*.md`
//!   points at a file (and a heading) that exists.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use s3batch_testkit::{descendants, free_port};

/// This checkout: the root package's folder. (Not the testkit's `workspace_root`, which is
/// fixed when the testkit is compiled, and so wrong for a second checkout sharing a target
/// directory.)
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory cargo builds into: `CARGO_TARGET_DIR` (relative to this checkout) or
/// `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// One line of the script [`readme_commands_work_as_written`] runs.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A command of the README, exactly as a ```` ```sh ```` block has it (continuation lines
    /// joined, the trailing comment left out).
    Readme(&'static str),
    /// What the test does between the README's commands, for the machine it runs on, never
    /// something a reader has to do: see each one's comment.
    Harness(&'static str),
}

use Step::{Harness, Readme};

/// The README's shell commands, in its order, and the test's own lines between them. Each
/// README command runs in [`readme_commands_work_as_written`], in one bash session started in
/// this checkout (the clone the README speaks of), with `HOME` a fresh folder.
///
/// When the README's commands change, change this list the same way:
/// [`every_readme_command_is_run`] compares the two.
const QUICK_START: &[Step] = &[
    // Quick start: the tools, PATH, `cargo s3batch`.
    Readme("scripts/setup.sh"),
    Readme(r#"export PATH="$PWD/.venv/bin:$PATH""#),
    // The install's release build without the optimizer: what is tested is that the command
    // installs a working `cargo s3batch`, and the release build of the AWS SDK at opt-level 3
    // was the longest step of the whole suite (7 to 12 minutes on 2 cores). Its artifacts
    // share nothing with the other tests' builds either way.
    Harness("export CARGO_PROFILE_RELEASE_OPT_LEVEL=0"),
    Readme("cargo install --path cargo-s3batch --locked"),
    Harness(
        r#"unset CARGO_PROFILE_RELEASE_OPT_LEVEL; test -x "$CARGO_INSTALL_ROOT/bin/cargo-s3batch""#,
    ),
    // Quick start: a task crate from the template, outside the clone.
    Readme(r#"s3batch_dir="$PWD""#),
    Readme(
        r#"cd ~ && cargo lambda new my-task --no-interactive --template "$s3batch_dir/templates/task" --render-var s3batch_path="$s3batch_dir""#,
    ),
    Readme("cd my-task"),
    // The workspace's lock file, so that cargo resolves offline (`CARGO_NET_OFFLINE`) to the
    // versions this checkout has built; a reader's first build resolves from crates.io.
    Harness(r#"cp "$S3BATCH_README_ROOT/Cargo.lock" Cargo.lock"#),
    // Testing a task.
    Readme("cargo test"),
    // watch runs on in the background: its output goes to a file of its own, and its pid is
    // kept so that the test can stop it and the function processes it starts.
    Harness(r#"exec 4>&1 >"$S3BATCH_README_TMP/watch.log" 2>&1"#),
    Readme("cargo lambda watch --concurrency 4 &"),
    Harness(
        r#"echo $! >"$S3BATCH_README_TMP/watch.pid"; exec >&4 2>&1 4>&-; wait_port 9000 "cargo lambda watch""#,
    ),
    Readme("cargo lambda invoke --data-file events/v2.json my-task"),
    // Build and deploy.
    Readme("cargo lambda build --release"),
    // No AWS account here: the deploy goes to moto, which implements Lambda's CreateFunction
    // (and IAM, where the role the README names is created first), in the README's account.
    Harness(
        r#"MOTO_ACCOUNT_ID=111122223333 moto_server -H 127.0.0.1 -p "$S3BATCH_README_MOTO_PORT" >"$S3BATCH_README_TMP/moto.log" 2>&1 &"#,
    ),
    Harness(
        r#"wait_port "$S3BATCH_README_MOTO_PORT" moto_server; export AWS_ENDPOINT_URL="http://127.0.0.1:$S3BATCH_README_MOTO_PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true"#,
    ),
    Harness(
        r#"aws iam create-role --role-name my-task-lambda --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null"#,
    ),
    Readme("cargo lambda deploy my-task --iam-role arn:aws:iam::111122223333:role/my-task-lambda"),
    Harness(
        "unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION AWS_EC2_METADATA_DISABLED",
    ),
    // A local job, against the function watch serves.
    Readme(r"printf 'example-bucket,photos/a+b.jpg\nexample-bucket,reports/\n' > manifest.csv"),
    Readme(
        "cargo s3batch run --manifest manifest.csv --function my-task --endpoint-url http://127.0.0.1:9000 --schema 2.0 --user-arg greeting=hi --job-id first --report ./report",
    ),
    Readme("cargo s3batch report ./report/job-first"),
];

/// The README's sections, in the order a newcomer needs them (what it is and the example
/// come first, before any section).
const SECTIONS: [&str; 6] = [
    "Why",
    "Quick start",
    "Testing a task",
    "Build and deploy",
    "A local job",
    "Where the rest is",
];

fn read(path: &str) -> String {
    let path = workspace_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether a fenced block's info string makes it a shell block. An untagged block counts too:
/// a command cannot leave the checks by losing its tag.
fn is_shell(info: &str) -> bool {
    let lang = info.split([' ', ',', '{']).next().unwrap_or("");
    matches!(lang, "" | "sh" | "bash" | "shell" | "console" | "zsh")
}

/// `line` without a trailing shell comment: a `#` outside quotes, at the start or after
/// whitespace.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// The commands of a Markdown text's shell blocks, in order: continuation lines (`\`) joined
/// with one space, trailing comments left out, blank lines skipped.
fn shell_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut fence: Option<bool> = None; // Some(is shell) inside a fenced block
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                None => Some(is_shell(info.trim())),
                Some(_) => None,
            };
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        let code = strip_comment(line).trim();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim());
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let command = std::mem::take(&mut pending).trim().to_owned();
        if !command.is_empty() {
            commands.push(command);
        }
    }
    commands
}

/// The two commands the README ends with, for working on s3batch itself, and what runs each:
/// `scripts/test.sh` is what CI runs (`.ci/run` execs it, checked by
/// [`every_readme_command_is_run`]), and [`the_demo_runs_end_to_end`] runs `scripts/demo.sh`.
const TWO_COMMANDS: [&str; 2] = ["scripts/demo.sh", "scripts/test.sh"];

/// The README's commands in [`QUICK_START`], in its order.
fn quick_start_commands() -> Vec<&'static str> {
    QUICK_START
        .iter()
        .filter_map(|step| match step {
            Readme(c) => Some(*c),
            Harness(_) => None,
        })
        .collect()
}

#[test]
fn readme_is_at_most_200_lines() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; it is the way in and keeps to at most 200: move the \
         detail to docs/ and link it"
    );
}

#[test]
fn readme_sections_are_in_the_newcomers_order() {
    let readme = read("README.md");
    let sections: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    assert_eq!(sections, SECTIONS, "README.md's sections");
    let before = readme.split("\n## ").next().unwrap();
    assert!(
        before.contains("```rust\n") && before.contains("#[s3batch::task]"),
        "README.md opens with the example, before any section:\n{before}"
    );
}

/// Every command of the README's shell blocks is one [`readme_commands_work_as_written`]
/// runs, and the list it runs holds no command the README has not.
#[test]
fn every_readme_command_is_run() {
    let mut readme = shell_commands(&read("README.md"));
    // The two commands close the README, after the quick start's.
    let two = readme.split_off(readme.len().saturating_sub(TWO_COMMANDS.len()));
    assert_eq!(
        two, TWO_COMMANDS,
        "README.md ends with the two commands (the demo, then the test suite)"
    );
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "exec scripts/test.sh"),
        ".ci/run runs exactly the README's test command, `scripts/test.sh`:\n{ci}"
    );
    let run = quick_start_commands();
    for command in &readme {
        assert!(
            run.contains(&command.as_str()),
            "README.md has the command `{command}` in a shell block, and no test runs it: add \
             it to QUICK_START in tests/readme.rs, where the README has it (the test then runs \
             it as written), or take it out of the README"
        );
    }
    for command in &run {
        assert!(
            readme.iter().any(|c| c == command),
            "tests/readme.rs runs `{command}`, which README.md no longer has: take it out of \
             QUICK_START"
        );
    }
    assert_eq!(
        readme, run,
        "README.md's commands and the ones tests/readme.rs runs are in another order"
    );
}

#[test]
fn shell_commands_are_read_as_a_shell_reads_them() {
    let markdown = "text `not code`\n```sh\nfirst --a   # a comment\nsecond \\\n    --b \"x # y\" \\\n  --c\n\n# only a comment\n```\n```rust\nlet a = 1;\n```\n```\nuntagged\n```\n";
    assert_eq!(
        shell_commands(markdown),
        ["first --a", "second --b \"x # y\" --c", "untagged"]
    );
}

/// The paths in the first column of the table under `## Layout`, without a trailing `/`.
fn layout_paths(contributing: &str) -> Vec<String> {
    let section = contributing
        .split("\n## ")
        .find(|s| s.starts_with("Layout\n"))
        .expect("CONTRIBUTING.md has a `## Layout` section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| {
            l.split('`')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect()
}

#[test]
fn the_layout_table_names_every_folder_and_member() {
    let root = workspace_root();
    let listed = layout_paths(&read("CONTRIBUTING.md"));
    assert!(
        !listed.is_empty(),
        "CONTRIBUTING.md's layout table is empty"
    );

    let mut missing = Vec::new();
    let mut folders = BTreeSet::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() && !name.starts_with('.') && name != "target" {
            folders.insert(name);
        }
    }
    for folder in &folders {
        if !listed.contains(folder) {
            missing.push(format!("the folder {folder}/"));
        }
    }
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    for member in members {
        let member = member.as_str().unwrap();
        // The root package is the facade; its row is its sources'.
        let path = if member == "." { "src" } else { member };
        if !listed.iter().any(|l| l == path) {
            missing.push(format!("the workspace member {path}/"));
        }
    }
    assert!(
        missing.is_empty(),
        "CONTRIBUTING.md's layout table misses {}",
        missing.join(", ")
    );
    for path in &listed {
        assert!(
            root.join(path).exists(),
            "CONTRIBUTING.md's layout table names {path}, which does not exist"
        );
    }
    // The check reads what is there: the folders it found are the ones a reader sees.
    assert!(
        folders.contains("src") && folders.contains("docs"),
        "{folders:?}"
    );
}

/// GitHub's anchor for a heading: lower case; letters, digits, `-` and `_` kept, spaces made
/// `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks), with GitHub's `-1`, `-2`
/// for repeats.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `line` with its code spans (`` `…` ``, ``` `` … `` ```) blanked out.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[start..start + ticks];
        match rest[start + ticks..].find(fence) {
            Some(end) => rest = &rest[start + ticks + end + ticks..],
            None => {
                rest = &rest[start + ticks..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of a Markdown text's inline links (`[text](target)`), outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    let mut text = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            text.push_str(&without_code_spans(line));
            text.push('\n');
        }
    }
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find([')', ' ', '\n']).unwrap_or(after.len());
        targets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    targets
}

#[test]
fn relative_links_and_anchors_resolve() {
    let root = workspace_root();
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(
        docs.iter().any(|d| d.ends_with("troubleshooting.md")),
        "{docs:?}"
    );
    files.extend(docs);

    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{name}: `{target}`: no such file"));
                continue;
            }
            if !anchor.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&resolved).unwrap());
                if !headings.contains(anchor) {
                    broken.push(format!(
                        "{name}: `{target}`: no heading with the anchor #{anchor} (there are: {})",
                        headings.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} relative links found");
}

#[test]
fn anchors_and_links_are_read_as_github_reads_them() {
    assert_eq!(
        slug(" Retry only the failures (`report`)"),
        "retry-only-the-failures-report"
    );
    assert_eq!(
        slug(" Why a report writes a space as `+`"),
        "why-a-report-writes-a-space-as-"
    );
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n#nope\n"),
        BTreeSet::from(["a".to_owned(), "a-1".to_owned()])
    );
    assert_eq!(
        link_targets("[a](x.md) `[b](code.md)` [c](y.md#z \"title\")\n```\n[d](e.md)\n```\n"),
        ["x.md", "y.md#z"]
    );
}

fn kill(targets: &[String]) {
    if targets.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(targets)
        .stderr(Stdio::null())
        .status();
}

/// Stops what the script left running: `cargo lambda watch` with the function processes it
/// started (each in a process group of its own), and the script's process group (moto).
struct Cleanup {
    group: u32,
    watch_pid: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.watch_pid)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            let tree: Vec<String> = std::iter::once(pid)
                .chain(descendants(pid))
                .map(|pid| pid.to_string())
                .collect();
            kill(&tree);
        }
        kill(&[format!("-{}", self.group)]);
    }
}

/// Where cargo and rustup keep their state for the user running the tests, so that they are
/// still found once `HOME` is a fresh folder.
fn tool_homes() -> Vec<(&'static str, String)> {
    let home = std::env::var("HOME").expect("HOME is set");
    let from_env = |name: &str, default: &str| {
        std::env::var(name).unwrap_or_else(|_| format!("{home}/{default}"))
    };
    let mut homes = vec![
        ("CARGO_HOME", from_env("CARGO_HOME", ".cargo")),
        ("RUSTUP_HOME", from_env("RUSTUP_HOME", ".rustup")),
        // cargo-lambda's and zig's caches: shared, so that a build here links as the other
        // tests' builds do (and reuses what they compiled).
        ("XDG_CACHE_HOME", from_env("XDG_CACHE_HOME", ".cache")),
    ];
    if let Ok(root) = std::env::var("PYENV_ROOT") {
        homes.push(("PYENV_ROOT", root));
    } else if Path::new(&format!("{home}/.pyenv")).exists() {
        homes.push(("PYENV_ROOT", format!("{home}/.pyenv")));
    }
    homes
}

/// The bash script: a helper, then each step after a marker line naming it, written to the
/// log.
fn script() -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         exec 2>&1\n\
         wait_port() { # port, what: up to 5 minutes\n\
           for _ in $(seq 1 3000); do\n\
             if (exec 3<>\"/dev/tcp/127.0.0.1/$1\") 2>/dev/null; then return 0; fi\n\
             sleep 0.1\n\
           done\n\
           echo \"$2 did not listen on port $1\"; return 1\n\
         }\n",
    );
    for (i, step) in QUICK_START.iter().enumerate() {
        let line = match step {
            Readme(c) | Harness(c) => c,
        };
        // Into the log itself: a step may have sent stdout elsewhere.
        script.push_str(&format!(
            "printf '\\n{MARKER}{i}\\n' >>\"$S3BATCH_README_LOG\"\n{line}\n"
        ));
    }
    script
}

const MARKER: &str = "::s3batch-readme-step ";

/// The output of each step, by its index in [`QUICK_START`].
fn outputs(log: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for line in log.lines() {
        if let Some(i) = line.strip_prefix(MARKER).and_then(|i| i.parse().ok()) {
            out.push((i, String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// The output of the README command that starts with `command`.
fn output_of(outputs: &[(usize, String)], command: &str) -> String {
    let i = QUICK_START
        .iter()
        .position(|s| matches!(s, Readme(c) if c.starts_with(command)))
        .unwrap_or_else(|| panic!("no README command starts with `{command}`"));
    outputs[i].1.clone()
}

/// The README's commands, run as written by a user on a fresh machine: the clone is this
/// checkout, `HOME` an empty folder, PATH without the project's venv, nothing of AWS in the
/// environment. What the test changes of that machine, and why:
///
/// - `cargo install` installs into a folder of the test (`CARGO_INSTALL_ROOT`), put first on
///   PATH, not into the user's `~/.cargo/bin`;
/// - every build goes to this workspace's target directory (`CARGO_TARGET_DIR`), offline
///   (`CARGO_NET_OFFLINE`) and with this checkout's lock file, so that nothing already built
///   is built again;
/// - the [`Harness`] steps of [`QUICK_START`].
///
/// Each command's output is checked for what the README says it does. `cargo lambda watch`
/// listens on the README's port, 9000, which must be free.
#[test]
fn readme_commands_work_as_written() {
    let root = workspace_root();
    let tmp = std::env::temp_dir().join(format!("s3batch-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let home = tmp.join("home");
    let install_root = tmp.join("cargo-install");
    std::fs::create_dir_all(&home).unwrap();
    assert!(
        TcpListener::bind("127.0.0.1:9000").is_ok()
            && TcpStream::connect("127.0.0.1:9000").is_err(),
        "port 9000, where the README's `cargo lambda watch` listens, is in use: stop what \
         listens there (another run of this test?)"
    );
    let script_path = tmp.join("readme.sh");
    std::fs::write(&script_path, script()).unwrap();
    let log_path = tmp.join("readme.log");
    let started = SystemTime::now();

    let path: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.ends_with(".venv/bin"))
        .map(str::to_owned)
        .collect();
    let path = format!("{}:{}", install_root.join("bin").display(), path.join(":"));
    let mut cmd = Command::new("bash");
    cmd.arg(&script_path)
        .current_dir(&root)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("CARGO_INSTALL_ROOT", &install_root)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .env("S3BATCH_README_ROOT", &root)
        .env("S3BATCH_README_TMP", &tmp)
        .env("S3BATCH_README_LOG", &log_path)
        .env("S3BATCH_README_MOTO_PORT", free_port().to_string())
        .envs(tool_homes());
    for passed in ["RUSTUP_TOOLCHAIN", "RUSTFLAGS", "LANG", "TERM"] {
        if let Ok(value) = std::env::var(passed) {
            cmd.env(passed, value);
        }
    }
    // Appended to by every writer (bash, the markers, what runs in the background), so that
    // none overwrites another.
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("running bash");
    let cleanup = Cleanup {
        group: child.id(),
        watch_pid: tmp.join("watch.pid"),
    };

    // Generous: on a cold machine the install and the release build each compile the AWS
    // SDK (minutes each on 2 cores, more when other builds share them).
    let limit = Duration::from_secs(2 * 60 * 60);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    let outputs = outputs(&log);
    let describe = |i: usize| match QUICK_START[i] {
        Readme(c) => format!("the README's `{c}`"),
        Harness(c) => format!("the test's own `{c}`"),
    };
    let watch_log = || std::fs::read_to_string(tmp.join("watch.log")).unwrap_or_default();
    let (last, last_output) = outputs.last().cloned().unwrap_or((0, log.clone()));
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "{} failed ({s}):\n{last_output}\n--- cargo lambda watch:\n{}",
            describe(last),
            watch_log()
        ),
        None => panic!(
            "{} was still running after {limit:?}:\n{last_output}\n--- cargo lambda watch:\n{}",
            describe(last),
            watch_log()
        ),
    }
    assert_eq!(
        outputs.iter().map(|o| o.0).collect::<Vec<_>>(),
        (0..QUICK_START.len()).collect::<Vec<_>>(),
        "every step ran, in order:\n{log}"
    );
    let output_of = |command: &str| output_of(&outputs, command);

    // The install put `cargo s3batch` where cargo finds it.
    let installed = output_of("cargo install");
    assert!(
        installed.contains("Installed package `cargo-s3batch"),
        "{installed}"
    );
    // The crate is the template's, on this checkout.
    let krate = home.join("my-task");
    let manifest: toml::Table = std::fs::read_to_string(krate.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        manifest["dependencies"]["s3batch"]["path"].as_str(),
        Some(root.to_str().unwrap()),
        "{manifest}"
    );
    let tested = output_of("cargo test");
    assert!(
        tested.contains("test tests::answers_each_task ... ok")
            && tested.contains("test result: ok. 1 passed"),
        "{tested}"
    );
    // Both tasks of events/v2.json answered: the job's greeting, the decoded key.
    let invoked = output_of("cargo lambda invoke");
    assert!(
        invoked.contains("hi s3://example-bucket/reports/2024 Q1+Q2.csv")
            && invoked.contains("reports/ is a folder marker"),
        "{invoked}"
    );
    let bootstrap = target_dir().join("lambda/my-task/bootstrap");
    let built = std::fs::metadata(&bootstrap)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
    assert!(
        built >= started,
        "{} was not built by this run",
        bootstrap.display()
    );
    let deployed = output_of("cargo lambda deploy");
    assert!(
        deployed.contains("function deployed successfully")
            && deployed.contains("arn:aws:lambda:us-east-1:111122223333:function:my-task"),
        "{deployed}"
    );
    let ran = output_of("cargo s3batch run");
    assert!(
        ran.contains("job first: Complete")
            && ran.contains("tasks: 2 total, 1 succeeded, 1 failed"),
        "{ran}"
    );
    let mut rows: Vec<String> = std::fs::read_dir(krate.join("report/job-first/results"))
        .unwrap()
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "example-bucket,photos/a+b.jpg,,succeeded,,200,hi s3://example-bucket/photos/a b.jpg",
            "example-bucket,reports/,,failed,PermanentFailure,200,reports/ is a folder marker",
        ]
    );
    let reported = output_of("cargo s3batch report");
    assert!(
        reported.contains("rows: 2 (1 succeeded, 1 failed)")
            && reported.contains("reports/ is a folder marker"),
        "{reported}"
    );
    drop(cleanup);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The README's main-job command, `scripts/demo.sh`, runs as written (with 26 objects instead
/// of 300: two of each awkward key): every object is copied and the job's summary says so.
#[test]
fn the_demo_runs_end_to_end() {
    let out = Command::new("scripts/demo.sh")
        .arg("26")
        .current_dir(workspace_root())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo.sh 26 failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let all = format!("{stdout}\n{stderr}");
    assert!(
        all.contains("demo: uploaded 26 objects with awkward keys"),
        "the demo's objects:\n{all}"
    );
    assert!(
        all.contains("now holds 26 copies"),
        "every object copied by examples/copy_rename:\n{all}"
    );
    assert!(
        all.contains("26 succeeded"),
        "the job's summary counts 26 succeeded tasks:\n{all}"
    );
}
