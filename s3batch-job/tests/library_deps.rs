//! The library without its `cli` feature compiles no CLI: what `cargo` resolves for
//! `s3batch-job` with `default-features = false` holds neither clap nor indicatif (and with
//! the default features it does, so the check can fail). tracing-subscriber, the CLI's
//! third crate, stays: `lambda_runtime`'s `tracing` feature brings it in through `s3batch`.

use std::process::Command;

/// The names of the packages `s3batch-job`'s normal (non-dev, non-build) dependency graph
/// holds, with `features` as the extra cargo flags.
fn normal_dependencies(features: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "--manifest-path", manifest])
        .args(["-p", "s3batch-job", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .args(features)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_library_alone_pulls_in_no_cli_crates() {
    const CLI: [&str; 2] = ["clap", "indicatif"];
    let with_cli = normal_dependencies(&[]);
    for name in CLI {
        assert!(
            with_cli.iter().any(|p| p == name),
            "{name} missing from the default build: {with_cli:?}"
        );
    }
    let library = normal_dependencies(&["--no-default-features"]);
    assert!(library.iter().any(|p| p == "s3batch"), "{library:?}");
    for name in CLI {
        assert!(
            !library.iter().any(|p| p == name),
            "{name} is in s3batch-job's build without the cli feature: {library:?}"
        );
    }
}
