//! Replays the fuzzing inputs kept in the repository through the same entry points the
//! `cargo fuzz` targets use (fuzz/harness.rs): every crash `make fuzz` found
//! (`fuzz/regressions/<target>/`), plus the seed inputs (`fuzz/seeds/<target>/`), so a fixed
//! parser bug stays fixed in `make test` without a nightly toolchain or libFuzzer.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "../fuzz/harness.rs"]
mod harness;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a directory entry").path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "py" || e == "md"))
        .collect();
    files.sort();
    files
}

/// Subdirectories of `dir` (the target each input belongs to).
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.expect("read a directory entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn kept_inputs_replay_cleanly() {
    let began = Instant::now();
    let known: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    // Every kept input belongs to a target that exists (a misspelt directory would be skipped).
    for kind in ["regressions", "seeds"] {
        for dir in subdirs(&fuzz_dir().join(kind)) {
            assert!(
                known.contains(&dir.as_str()),
                "fuzz/{kind}/{dir} names no fuzz target (known: {known:?})"
            );
        }
    }
    let mut failures = Vec::new();
    let mut replayed = 0;
    let mut regressions = 0;
    for (target, entry) in harness::TARGETS {
        let kept = files(&fuzz_dir().join("regressions").join(target));
        regressions += kept.len();
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no seed input");
        for path in kept.iter().chain(&seeds) {
            let data = std::fs::read(path).expect("read a kept input");
            replayed += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", path.display()));
            }
        }
    }
    eprintln!(
        "replayed {replayed} kept inputs ({regressions} crash regressions) in {:.2} s",
        began.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "kept fuzz inputs fail again:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_has_an_entry_point() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = harness::TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "fuzz/fuzz_targets/*.rs and harness::TARGETS disagree"
    );
}
