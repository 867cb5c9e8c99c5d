//! Writes the WGSL files of `shaders/` without their comments and indentation into `OUT_DIR`,
//! where `src/kernels.rs` includes them from: the commentary stays in the sources, and the wasm
//! module (which carries every shader as text) is 10 KB of gzip smaller. WGSL has no string
//! literals, so every `//` starts a comment; the files use no block comments (refused here).

use std::fs;
use std::path::Path;

fn main() {
    let src = Path::new("shaders");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("shaders");
    fs::create_dir_all(&out).expect("OUT_DIR/shaders");
    println!("cargo:rerun-if-changed=shaders");
    let mut names: Vec<_> = fs::read_dir(src).expect("shaders/").map(|e| e.expect("shaders/ entry").path()).collect();
    names.sort();
    for path in names {
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path).expect("a WGSL file");
        assert!(!text.contains("/*"), "{}: block comments are not stripped by build.rs; use //", path.display());
        let mut min = String::with_capacity(text.len() / 2);
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("").trim();
            if !code.is_empty() {
                min.push_str(code);
                min.push('\n');
            }
        }
        fs::write(out.join(path.file_name().expect("a file name")), min).expect("write a shader");
    }
}
