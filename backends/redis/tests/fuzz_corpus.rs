//! Replays every committed fuzz input of this crate's targets
//! (`fuzz/corpus/<target>/*`, `fuzz/regressions/<target>/*` at the
//! workspace root) through `rampart_redis::fuzzing`, on the stable
//! toolchain. A target without a corpus fails; so does one the core's
//! list of external targets does not name (the core's replay test checks
//! that every corpus folder has a body). `RAMPART_WRITE_SEEDS=1` rewrites
//! the seed files.

use std::fs;
use std::path::{Path, PathBuf};

use rampart_redis::fuzzing::{seeds, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn committed_inputs_replay_without_panics() {
    for (name, body) in TARGETS {
        assert!(
            rampart::fuzzing::EXTERNAL_TARGETS.contains(name),
            "rampart::fuzzing::EXTERNAL_TARGETS does not list {name}"
        );
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
        let regressions = fuzz_dir().join("regressions").join(name);
        let regressions = if regressions.exists() {
            files(&regressions)
        } else {
            Vec::new()
        };
        for file in corpus.iter().chain(&regressions) {
            let data = fs::read(file).expect("readable input");
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(run.is_ok(), "{} panicked", file.display());
        }
    }
}

#[test]
fn seeds_pass() {
    let write = std::env::var_os("RAMPART_WRITE_SEEDS").is_some();
    for (target, name, data) in seeds() {
        let body = TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("seed for unknown target {target}"));
        body(&data);
        if write {
            let path = fuzz_dir().join("corpus").join(target).join(name);
            fs::create_dir_all(path.parent().expect("a folder")).expect("writable corpus");
            fs::write(&path, &data).expect("writable corpus");
        }
    }
}
