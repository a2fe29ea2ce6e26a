//! The four published crates package: `cargo package` for s3batch-macros, s3batch-core,
//! s3batch and s3batch-job together (cargo packages unpublished workspace dependencies in
//! dependency order, resolving each against the ones packaged before it), with the metadata
//! crates.io shows and no invented URL.
//!
//! It runs with `--no-verify`: that checks the manifests, the file lists and that each
//! package's dependencies resolve, in under a second. Verification (building each `.crate` from
//! its own sources) compiles the whole AWS SDK again under `target/package`, minutes on two
//! cores; it passes too (`cargo package --offline --locked --allow-dirty -p s3batch-macros
//! -p s3batch-core -p s3batch -p s3batch-job`, see README, "Publishing").

use std::process::Command;

use s3batch_testkit::workspace_root;
use serde_json::Value;

const CRATES: [&str; 4] = ["s3batch-macros", "s3batch-core", "s3batch", "s3batch-job"];

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("running cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap() + &stderr
}

#[test]
fn the_four_crates_package_in_dependency_order() {
    let mut args = vec![
        "package",
        "--offline",
        "--locked",
        "--allow-dirty",
        "--no-verify",
    ];
    for c in CRATES {
        args.extend(["-p", c]);
    }
    let out = cargo(&args);
    let at = |c: &str| {
        out.find(&format!("Packaging {c}"))
            .unwrap_or_else(|| panic!("{c} was not packaged:\n{out}"))
    };
    // s3batch needs the macros and core packaged first, s3batch-job needs s3batch.
    assert!(
        at("s3batch-macros") < at("s3batch ") && at("s3batch-core") < at("s3batch "),
        "s3batch packaged before its dependencies:\n{out}"
    );
    assert!(
        at("s3batch ") < at("s3batch-job"),
        "s3batch-job packaged before s3batch:\n{out}"
    );
}

#[test]
fn each_crate_has_real_metadata_and_its_license_files() {
    let meta: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--no-deps",
        "--offline",
        "--format-version",
        "1",
    ]))
    .or_else(|_| {
        // `cargo` above appends stderr; metadata writes JSON on stdout only.
        let out = Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--no-deps",
                "--offline",
                "--format-version",
                "1",
            ])
            .current_dir(workspace_root())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
    })
    .unwrap();
    for name in CRATES {
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in the workspace"));
        assert_eq!(pkg["license"], "MIT OR Apache-2.0", "{name}");
        for field in ["description", "readme"] {
            assert!(
                pkg[field].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no {field}"
            );
        }
        for field in ["keywords", "categories"] {
            assert!(
                pkg[field].as_array().is_some_and(|a| !a.is_empty()),
                "{name} has no {field}"
            );
        }
        assert!(
            pkg["metadata"]["docs"]["rs"].is_object(),
            "{name} has no [package.metadata.docs.rs]"
        );
        for field in ["repository", "homepage", "documentation"] {
            let v = &pkg[field];
            assert!(
                v.is_null() || !v.as_str().unwrap().contains(".invalid"),
                "{name}: {field} = {v}"
            );
        }

        let files = cargo(&[
            "package",
            "--list",
            "--offline",
            "--allow-dirty",
            "-p",
            name,
        ]);
        for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md", "Cargo.toml"] {
            assert!(
                files.lines().any(|l| l == file),
                "{name}'s package lacks {file}:\n{files}"
            );
        }
    }
}
