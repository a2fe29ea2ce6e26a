//! The seven published crates package: `cargo package` for s3batch-macros, s3batch-core,
//! s3batch, s3batch-job, s3batch-control, s3batch-map and cargo-s3batch together (cargo packages
//! unpublished workspace dependencies in dependency order, resolving each against the ones
//! packaged before it), with the metadata crates.io shows and no invented URL, and they
//! compile from what would be uploaded.
//!
//! `cargo package` runs with `--no-verify`: that checks the manifests, the file lists and that
//! each package's dependencies resolve, in under a second. Cargo's verification (building each
//! `.crate` from its own sources) compiles the whole AWS SDK again under `target/package`,
//! minutes on two cores. Instead, the packaged crates are unpacked into a workspace of their
//! own (the overlay: `[patch.crates-io]` points each at its unpacked sources, as the registry
//! would once they are published) and `cargo check`ed into the shared target directory with
//! the workspace's `Cargo.lock`: their dependencies resolve to the same versions with the same
//! features as `scripts/check-features.sh`'s `cargo-s3batch` check (which compiles the other
//! six with it), so when that ran first, as in `scripts/test.sh`, little more than the seven
//! crates themselves is compiled again (seconds; on a cold target directory the AWS SDK is
//! checked first).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use s3batch_testkit::{target_dir, workspace_root};
use serde_json::Value;

const CRATES: [&str; 7] = [
    "s3batch-macros",
    "s3batch-core",
    "s3batch",
    "s3batch-job",
    "s3batch-control",
    "s3batch-map",
    "cargo-s3batch",
];

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
fn the_crates_package_in_dependency_order() {
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
    // s3batch needs the macros and core packaged first, s3batch-job needs s3batch,
    // s3batch-control and s3batch-map need s3batch-job, and cargo-s3batch needs both.
    assert!(
        at("s3batch-macros") < at("s3batch ") && at("s3batch-core") < at("s3batch "),
        "s3batch packaged before its dependencies:\n{out}"
    );
    for (before, after) in [
        ("s3batch ", "s3batch-job"),
        ("s3batch-job", "s3batch-control"),
        ("s3batch-job", "s3batch-map"),
        ("s3batch-control", "cargo-s3batch"),
        ("s3batch-map", "cargo-s3batch"),
    ] {
        assert!(
            at(before) < at(after),
            "{after} packaged before {before}:\n{out}"
        );
    }
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

/// The `(name, version)` of each package a `Cargo.lock` holds.
fn locked_packages(lock: &Path) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lock).unwrap();
    let lock: toml::Table = toml::from_str(&text).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_packaged_crates_compile_from_their_own_sources() {
    let version = env!("CARGO_PKG_VERSION");
    let work = target_dir().join("packaged-sources");
    if work.exists() {
        std::fs::remove_dir_all(&work).unwrap();
    }
    let overlay = work.join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();

    // Packaged into a target directory of its own, so that the other tests' `cargo package`
    // runs do not write the same files at the same time.
    let packages = work.join("package-target");
    let mut args = vec![
        "package",
        "--offline",
        "--locked",
        "--allow-dirty",
        "--no-verify",
        "--target-dir",
        packages.to_str().unwrap(),
    ];
    for c in CRATES {
        args.extend(["-p", c]);
    }
    cargo(&args);
    let mut members = Vec::new();
    let mut patches = String::new();
    for c in CRATES {
        let krate = packages.join(format!("package/{c}-{version}.crate"));
        // `-m`: the files dated now, not as packaged, so that cargo never takes an earlier
        // run's build of them for fresh.
        let out = Command::new("tar")
            .arg("-xzmf")
            .arg(&krate)
            .arg("-C")
            .arg(&overlay)
            .output()
            .expect("running tar");
        assert!(
            out.status.success(),
            "unpacking {}: {}",
            krate.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = format!("{c}-{version}");
        assert!(
            overlay.join(&dir).join("Cargo.toml").is_file(),
            "{} holds no {dir}/Cargo.toml",
            krate.display()
        );
        members.push(format!("{dir:?}"));
        patches.push_str(&format!("{c} = {{ path = {dir:?} }}\n"));
    }
    std::fs::write(
        overlay.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n\n[patch.crates-io]\n{patches}",
            members.join(", ")
        ),
    )
    .unwrap();
    let workspace_lock = workspace_root().join("Cargo.lock");
    std::fs::copy(&workspace_lock, overlay.join("Cargo.lock")).unwrap();

    // Not `--locked`: cargo drops the entries of the workspace's other members from the copied
    // lock file; what it keeps is compared below.
    let out = Command::new(env!("CARGO"))
        .args([
            "check",
            "--offline",
            "--workspace",
            "--message-format",
            "short",
        ])
        .current_dir(&overlay)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("running cargo check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the packaged crates do not compile from their own sources:\n{stderr}"
    );
    // Each crate was compiled from its unpacked package, not from the workspace (the macros
    // crate is built, as the compiler loads it, the others only checked).
    for c in CRATES {
        let crate_at = format!(
            "{c} v{version} ({})",
            overlay.join(format!("{c}-{version}")).display()
        );
        assert!(
            stderr.lines().any(|l| {
                let l = l.trim_start();
                l.strip_prefix("Checking ")
                    .or_else(|| l.strip_prefix("Compiling "))
                    == Some(crate_at.as_str())
            }),
            "{crate_at} was not compiled:\n{stderr}"
        );
    }
    // And against the versions the workspace tests: nothing resolved anew.
    let resolved = locked_packages(&overlay.join("Cargo.lock"));
    let locked = locked_packages(&workspace_lock);
    let new: Vec<_> = resolved.difference(&locked).collect();
    assert!(new.is_empty(), "resolved outside Cargo.lock: {new:?}");
    for c in CRATES {
        assert!(
            resolved.contains(&(c.to_owned(), version.to_owned())),
            "{c} {version} is not in the packaged workspace's lock file"
        );
    }
}
