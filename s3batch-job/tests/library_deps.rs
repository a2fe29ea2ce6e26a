//! The libraries compile no command line: the command line's crates (clap, indicatif,
//! tracing-subscriber) belong to `cargo-s3batch` alone, and neither the engine (`s3batch-job`)
//! nor `s3batch-control` depends on them, nor on a crate above it.
//!
//! clap and indicatif must be nowhere in a library's normal dependency graph.
//! tracing-subscriber must not be a direct dependency of either library: it is in their graph
//! anyway, through `s3batch` (`lambda_runtime`'s `tracing` feature brings it in). The same
//! queries find all three in `cargo-s3batch`'s direct dependencies, so the checks can fail.

use std::process::Command;

/// The packages the command line owns.
const CLI: [&str; 3] = ["clap", "indicatif", "tracing-subscriber"];

/// The names of the packages in `package`'s normal (non-dev, non-build) dependency graph (its
/// direct dependencies only with `direct`), `package` itself first.
fn normal_dependencies(package: &str, direct: bool) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "--manifest-path", manifest])
        .args(["-p", package, "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .args(if direct { &["--depth", "1"][..] } else { &[] })
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some(package),
        "{names:?}"
    );
    names
}

#[test]
fn the_libraries_pull_in_no_cli_crates() {
    let binary = normal_dependencies("cargo-s3batch", true);
    for name in CLI {
        assert!(
            binary.iter().any(|p| p == name),
            "{name} missing from cargo-s3batch's direct dependencies: {binary:?}"
        );
    }
    for (library, above) in [
        ("s3batch-job", &["s3batch-control", "cargo-s3batch"][..]),
        ("s3batch-control", &["cargo-s3batch"][..]),
    ] {
        let all = normal_dependencies(library, false);
        assert!(all.iter().any(|p| p == "s3batch"), "{library}: {all:?}");
        for name in ["clap", "indicatif"].iter().chain(above) {
            assert!(
                !all.iter().any(|p| p == name),
                "{name} is in {library}'s build: {all:?}"
            );
        }
        let direct = normal_dependencies(library, true);
        for name in CLI {
            assert!(
                !direct.iter().any(|p| p == name),
                "{name} is a dependency of {library}: {direct:?}"
            );
        }
    }
    // The engine is below s3batch-control, which depends on it.
    assert!(normal_dependencies("s3batch-control", true)
        .iter()
        .any(|p| p == "s3batch-job"));
}
