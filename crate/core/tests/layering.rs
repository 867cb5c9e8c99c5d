//! The layering rules the code relies on, checked on the source text:
//!
//! - executors and bindings (the GPU backend, the wasm facade, the CLI) never look at ONNX op
//!   names or attributes: they get a planned step's typed op (`op.downcast_ref::<Conv>()`) and
//!   read its resolved fields, so a default changed in a core op cannot silently disagree;
//! - inside the core's ops, attributes are read only where an op is built from its node (a
//!   function taking the `&Node`, or the closures of a family's `register`);
//! - the core's ops return typed errors (`OpError`), never `Result<…, String>`: each error
//!   site picks its kind, which callers read as a code instead of parsing the text;
//! - no source file is over 600 lines (up to its `#[cfg(test)]` module).
//!
//! - after loading, nothing matches op names as text: graph passes (`model/`, `ptq/`, the
//!   detector's recognisers) ask a node `is(OpKind::Conv)`, so each name a pass depends on is
//!   written once (`model/kind.rs`); fusions are typed fields (`Node::fused`), not attributes.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Lines of code (comments dropped), up to the file's `#[cfg(test)]` module.
fn code_lines(p: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("").to_string();
        if !code.trim().is_empty() {
            out.push((n + 1, code));
        }
    }
    out
}

#[test]
fn executors_and_bindings_never_read_op_names_or_attributes() {
    let mut files = Vec::new();
    for dir in ["gpu/src", "wasm/src", "cli/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        for (n, line) in code_lines(f) {
            let name_match = matches_op_name(&line) || line.contains("OpKind");
            let attrs = line.contains(".attrs") || line.contains("Node {");
            if name_match || attrs {
                bad.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "use the step's typed op (`step.op.downcast_ref::<T>()`) instead:\n{}", bad.join("\n"));
}

/// Whether a line compares or matches an op type as text.
fn matches_op_name(line: &str) -> bool {
    let op = line.contains("op_type.as_str()");
    line.contains("op_type ==")
        || line.contains("op_type !=")
        || (op && (line.contains("match ") || line.contains("matches!(") || line.contains(".contains(&")))
        || line.contains("FUSED_")
        || line.contains("qplay.fused")
}

#[test]
fn passes_ask_op_kinds_not_op_names() {
    let mut files = Vec::new();
    rust_files(&root().join("core/src"), &mut files);
    // Loading turns the file's text into nodes; the kind list is where names are written.
    let exempt = ["model/load.rs", "model/kind.rs", "model/proto.rs"];
    let mut bad = Vec::new();
    for f in files.iter().filter(|f| !exempt.iter().any(|e| f.ends_with(e))) {
        for (n, line) in code_lines(f) {
            if matches_op_name(&line) {
                bad.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "ask the node its kind (`node.is(OpKind::Conv)`, `node.kind()`; add the name to model/kind.rs) \
         and keep fusions in `Node::fused`:\n{}",
        bad.join("\n")
    );
    // The check itself must be able to fail.
    assert!(matches_op_name(r#"if n.op_type == "Conv" {"#) && matches_op_name("match n.op_type.as_str() {"));
}

#[test]
fn core_ops_read_attributes_only_when_built() {
    let mut files = Vec::new();
    rust_files(&root().join("core/src/ops"), &mut files);
    let mut bad = Vec::new();
    let mut reads = 0;
    for f in &files {
        // The signature of the function each line is in (the last `fn` line seen).
        let mut sig = String::new();
        for (n, line) in code_lines(f) {
            if line.contains("fn ") {
                sig = line.clone();
            }
            if line.contains("attrs.") {
                reads += 1;
                let builder = sig.contains("&Node") || sig.contains("fn register");
                if !builder {
                    bad.push(format!("{}:{n}: {} (in `{}`)", f.display(), line.trim(), sig.trim()));
                }
            }
        }
    }
    assert!(reads > 40, "found only {reads} attribute reads: is the scan looking at the ops?");
    assert!(bad.is_empty(), "read attributes in the op's builder and keep the value in a field:\n{}", bad.join("\n"));
}

/// The `Result<…, String>` types in `code` (a file's code lines joined), as the line each starts
/// on: types whose last argument, at the top level of the brackets, is `String`.
fn string_results(code: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (start, _) in code.match_indices("Result<") {
        let body = &code[start + "Result<".len()..];
        // Where each top-level argument starts (after its comma).
        let (mut depth, mut parens, mut starts, mut end) = (1usize, 0usize, vec![0usize], None);
        let bytes = body.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'(' | b'[' => parens += 1,
                b')' | b']' => parens = parens.saturating_sub(1),
                b'<' => depth += 1,
                b'>' if i > 0 && bytes[i - 1] == b'-' => {} // a `->` in a fn type
                b'>' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                b',' if depth == 1 && parens == 0 => starts.push(i + 1),
                _ => {}
            }
        }
        let Some(end) = end else { continue };
        // The error type: the last argument, or the one before a trailing comma.
        let mut args: Vec<&str> = starts.windows(2).map(|w| &body[w[0]..w[1] - 1]).collect();
        args.push(&body[starts[starts.len() - 1]..end]);
        if args.last().is_some_and(|a| a.trim().is_empty()) {
            args.pop();
        }
        if args.len() == 2 && args[1].trim() == "String" {
            found.push(code[..start].matches('\n').count());
        }
    }
    found
}

#[test]
fn core_ops_return_typed_errors_not_strings() {
    let mut files = Vec::new();
    rust_files(&root().join("core/src/ops"), &mut files);
    assert!(files.len() > 40, "found only {} files: is the scan looking at the ops?", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let lines = code_lines(f);
        let code: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        for i in string_results(&code.join("\n")) {
            bad.push(format!("{}:{}: {}", f.display(), lines[i].0, lines[i].1.trim()));
        }
    }
    assert!(
        bad.is_empty(),
        "return `Result<_, OpError>` and pick the kind at each error site (`OpError::unsupported`, \
         `malformed`, `mismatch`, `limit`, `internal`):\n{}",
        bad.join("\n")
    );
    // The check itself must be able to fail, on one line or across several.
    assert_eq!(string_results("fn f() -> Result<Vec<u8>, String> {"), [0]);
    assert_eq!(string_results("fn f(\n) -> Result<\n    Vec<Option<u8>>,\n    String,\n> {"), [1]);
    assert_eq!(string_results("type F = Result<fn(i64) -> i64, String>;"), [0]);
    assert!(string_results("fn f() -> Result<Vec<String>, OpError> {").is_empty());
    assert!(string_results("fn f() -> Result<(String, u8), crate::Error> {").is_empty());
    assert!(string_results("fn f() -> Result<u8, (u8, String)> {").is_empty());
}

#[test]
fn no_source_file_over_600_lines() {
    // Rust sources (up to their #[cfg(test)] module) and the page's own JavaScript; generated
    // bindings (www/pkg, www/pkg-threads and their -relaxed twins) are not ours, nor is the TFLite schema's reader that
    // planus generates from TFLite's schema.fbs (model/tflite/schema_generated.rs, ~47,000 lines;
    // regenerated, never edited by hand).
    let mut files = Vec::new();
    for dir in ["core/src", "gpu/src", "wasm/src", "cli/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    files.retain(|f| !f.ends_with("model/tflite/schema_generated.rs"));
    let www = root().join("../www");
    let mut js = Vec::new();
    fn js_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let generated = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pkg"));
            if p.is_dir() && !generated {
                js_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "js") {
                out.push(p);
            }
        }
    }
    js_files(&www, &mut js);
    assert!(js.len() > 10, "found only {} page scripts", js.len());
    files.extend(js);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let n = text.lines().take_while(|l| !l.trim_start().starts_with("#[cfg(test)]")).count();
            (n > 600).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by responsibility (≤ 600 lines each):\n{}", long.join("\n"));
}
