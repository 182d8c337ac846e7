//! Replays every committed fuzz input (`fuzz/corpus/<target>/*` and
//! `fuzz/regressions/<target>/*`) through the same target bodies the
//! cargo-fuzz targets run (`rampart::fuzzing`), on the stable toolchain.
//!
//! Nothing is skipped silently: a corpus folder without a body, a body
//! without a corpus, or a cargo-fuzz target without either fails the test.
//! `RAMPART_WRITE_SEEDS=1 cargo test --test fuzz_corpus` (re)writes the
//! seed files that `rampart::fuzzing::seeds` builds with the real encoders.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rampart::fuzzing::{seeds, EXTERNAL_TARGETS, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The names of the sub-folders (or file stems, for `fuzz_targets`) of `dir`.
fn names(dir: &Path, files: bool) -> BTreeSet<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| e.expect("readable folder").path())
        .filter(|p| if files { p.is_file() } else { p.is_dir() })
        .filter_map(|p| {
            let name = if files { p.file_stem() } else { p.file_name() };
            name.map(|n| n.to_string_lossy().into_owned())
        })
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .expect("readable folder")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_has_a_body_and_a_corpus() {
    let bodies: BTreeSet<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    let all: BTreeSet<String> = bodies
        .iter()
        .cloned()
        .chain(EXTERNAL_TARGETS.iter().map(|n| n.to_string()))
        .collect();
    let dir = fuzz_dir();
    let corpora = names(&dir.join("corpus"), false);
    let regressions = names(&dir.join("regressions"), false);
    let targets = names(&dir.join("fuzz_targets"), true);
    assert_eq!(corpora, all, "fuzz/corpus/* and the target bodies differ");
    assert_eq!(
        targets, all,
        "fuzz/fuzz_targets/*.rs and the target bodies differ"
    );
    for r in &regressions {
        assert!(all.contains(r), "fuzz/regressions/{r} has no target body");
    }
    for t in &all {
        let n = files(&dir.join("corpus").join(t)).len();
        assert!(n > 0, "fuzz/corpus/{t} is empty");
    }
}

#[test]
fn committed_inputs_replay_without_panics() {
    let dir = fuzz_dir();
    let mut replayed = 0;
    for (name, body) in TARGETS {
        for sub in ["corpus", "regressions"] {
            let folder = dir.join(sub).join(name);
            if sub == "regressions" && !folder.exists() {
                continue;
            }
            for file in files(&folder) {
                let data = fs::read(&file).expect("readable input");
                let run = std::panic::catch_unwind(|| body(&data));
                assert!(run.is_ok(), "{} panicked", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
}

#[test]
fn seeds_from_the_real_encoders_pass() {
    let write = std::env::var_os("RAMPART_WRITE_SEEDS").is_some();
    let seeds = seeds();
    for (target, name, data) in &seeds {
        let body = TARGETS
            .iter()
            .find(|(n, _)| n == target)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("seed for unknown target {target}"));
        body(data);
        let path = fuzz_dir().join("corpus").join(target).join(name);
        if write {
            fs::create_dir_all(path.parent().expect("a folder")).expect("writable corpus");
            fs::write(&path, data).expect("writable corpus");
        }
    }
    for (name, _) in TARGETS {
        assert!(
            seeds.iter().any(|(t, _, _)| t == name),
            "no seed for target {name}"
        );
    }
}
