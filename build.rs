//! Copies the crate's Lua scripts (`src/**/*.lua`) to `OUT_DIR/lua/` with
//! their full-line comments blanked and their indentation dropped, for
//! `lua!` in `src/lib.rs` to embed. The scripts are in every build (wasm
//! included) and comments and indentation are about half of their bytes;
//! every line stays where it was, so the line numbers of Redis' error
//! messages are the sources'.

use std::fs;
use std::path::Path;

fn main() {
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("lua");
    copy_dir(Path::new("src"), &out);
}

fn copy_dir(dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().expect("an entry has a name");
        if path.is_dir() {
            copy_dir(&path, &out.join(name));
        } else if path.extension().is_some_and(|e| e == "lua") {
            println!("cargo:rerun-if-changed={}", path.display());
            let text = fs::read_to_string(&path).expect("a Lua script is UTF-8");
            let mut stripped = String::with_capacity(text.len());
            for line in text.lines() {
                let code = line.trim_start();
                if !code.starts_with("--") {
                    stripped.push_str(code);
                }
                stripped.push('\n');
            }
            fs::create_dir_all(out).expect("OUT_DIR is writable");
            fs::write(out.join(name), stripped).expect("OUT_DIR is writable");
        }
    }
}
