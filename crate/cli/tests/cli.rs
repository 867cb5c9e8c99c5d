//! The command line itself (clap): help for every command, version, typos with suggestions, bad
//! values with the valid ones listed, shell completions. Exit status 0 for help, 2 for errors.

use std::process::Command;

fn qplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qplay")).args(args).output().expect("run qplay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Every command with every option it has always had (docs/cli.md, README.md): renaming or
/// dropping one breaks scripts and the page's "copy as a qplay command".
const COMMANDS: [(&str, &[&str]); 9] = [
    (
        "explain",
        &[
            "--min <A>",
            "--max <B>",
            "--bits <N>",
            "--signed",
            "--unsigned",
            "--value <X>",
            "--symmetric",
            "--asymmetric",
            "--restricted",
            "--scale-decimals <N>",
            "--json",
        ],
    ),
    ("inspect", &["<MODEL>", "--json"]),
    ("infer", &["<MODEL>", "--input <x.npy>", "--out <DIR>", "--threads <N>"]),
    (
        "detect",
        &[
            "<MODEL>",
            "<IMAGE>",
            "--profile <p.json>",
            "--score <T>",
            "--iou <T>",
            "--json",
            "--draw <out.png>",
            "--gpu",
            "--threads <N>",
        ],
    ),
    (
        "quantize",
        &[
            "<MODEL>",
            "--calib <DIR>",
            "-o, --out <OUT.onnx>",
            "--recipe <RECIPE>",
            "--method <METHOD>",
            "--per-tensor",
            "--int8-activations",
            "--equalize",
            "--no-equalize",
            "--bias-correction",
            "--no-bias-correction",
            "--keep-fp32 <NODE,NODE>",
            "--keep-16bit <NODE,NODE>",
            "--auto-mixed <K>",
            "--mixed-16bit",
            "--profile <p.json>",
            "--report <r.json>",
            "--threads <N>",
        ],
    ),
    ("convert", &["<MODEL>", "-o, --out <OUT.onnx>", "--form <FORM>", "integer"]),
    ("compare", &["<FP32.onnx>", "<INT8.onnx>", "--images <DIR>", "--profile <p.json>", "--json", "--threads <N>"]),
    ("bench", &["<MODEL>", "--iters <N>", "--warmup <N>", "--profile <p.json>", "--gpu", "--json", "--threads <N>"]),
    ("completions", &["<SHELL>", "bash", "zsh", "fish", "powershell", "elvish"]),
];

#[test]
fn every_command_answers_help_with_its_options() {
    let (code, all, _) = qplay(&["help"]);
    assert_eq!(code, 0);
    let (code, long, _) = qplay(&["--help"]);
    assert_eq!((code, &long), (0, &all));
    for (cmd, options) in COMMANDS {
        // `qplay help` lists the command with what it does.
        assert!(all.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))), "qplay help lacks {cmd}:\n{all}");
        for help in [&[cmd, "--help"][..], &[cmd, "-h"], &["help", cmd]] {
            let (code, out, err) = qplay(help);
            assert_eq!(code, 0, "{help:?}: {err}");
            assert!(out.contains(&format!("Usage: qplay {cmd} ")), "{help:?}:\n{out}");
            for o in options {
                assert!(out.contains(o), "{help:?} lacks {o}:\n{out}");
            }
        }
    }
    // Defaults and the lists of valid values are in the help.
    let (_, out, _) = qplay(&["explain", "--help"]);
    assert!(out.contains("[default: 8]") && out.contains("[possible values: 2, 3, 4, 5, 6, 7, 8, 16]"), "{out}");
    let (_, out, _) = qplay(&["quantize", "--help"]);
    assert!(out.contains("[possible values: minmax, ema, percentile, entropy, mse]"), "{out}");
    assert!(out.contains("- auto:") && out.contains("- fixed:"), "{out}");
    let (_, out, _) = qplay(&["bench", "--help"]);
    assert!(out.contains("[default: 20]") && out.contains("[default: 3]"), "{out}");
}

#[test]
fn version_and_no_arguments() {
    let (code, out, _) = qplay(&["--version"]);
    assert_eq!((code, out.trim()), (0, concat!("qplay ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = qplay(&["-V"]);
    assert_eq!((code, out.trim()), (0, concat!("qplay ", env!("CARGO_PKG_VERSION"))));
    // No command: the help, on stderr, and status 2.
    let (code, out, err) = qplay(&[]);
    assert_eq!(code, 2);
    assert!(out.is_empty() && err.contains("Usage: qplay <COMMAND>") && err.contains("quantize"), "{err}");
}

#[test]
fn typos_exit_2_with_a_suggestion() {
    let cases: &[(&[&str], &str)] = &[
        (&["quantise"], "similar subcommands exist: 'qat', 'quantize'"),
        (
            &["explain", "--min", "-2", "--max", "2", "--value", "1", "--symetric"],
            "a similar argument exists: '--symmetric'",
        ),
        (
            &["quantize", "m.onnx", "--calib", "d", "-o", "q.onnx", "--recipee", "auto"],
            "a similar argument exists: '--recipe'",
        ),
        (
            &["quantize", "m.onnx", "--calib", "d", "-o", "q.onnx", "--per-tensr"],
            "a similar argument exists: '--per-tensor'",
        ),
        (&["detect", "m.onnx", "i.png", "--scroe", "0.5"], "a similar argument exists: '--score'"),
        (
            &["quantize", "m.onnx", "--calib", "d", "-o", "q.onnx", "--method", "minmx"],
            "a similar value exists: 'minmax'",
        ),
        (&["completions", "bsh"], "a similar value exists: 'bash'"),
    ];
    for (args, want) in cases {
        let (code, out, err) = qplay(args);
        assert_eq!(code, 2, "{args:?} should fail; stdout {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in stderr:\n{err}");
        assert!(err.contains("--help"), "{args:?}: the error points at --help:\n{err}");
    }
}

#[test]
fn bad_values_exit_2_listing_the_valid_ones() {
    let q = ["quantize", "m.onnx", "--calib", "d", "-o", "q.onnx"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "9"],
            "[possible values: 2, 3, 4, 5, 6, 7, 8, 16]",
        ),
        (
            vec!["explain", "--min", "-2", "--max", "2", "--value", "1", "--bits", "eight"],
            "invalid value 'eight' for '--bits <N>'",
        ),
        ([&q[..], &["--method", "magic"]].concat(), "invalid value 'magic' for '--method <METHOD>'"),
        ([&q[..], &["--method", "magic"]].concat(), "[possible values: minmax, ema, percentile, entropy, mse]"),
        ([&q[..], &["--recipe", "best"]].concat(), "[possible values: auto, fixed]"),
        ([&q[..], &["--auto-mixed", "two"]].concat(), "invalid value 'two' for '--auto-mixed <K>'"),
        ([&q[..], &["--mixed-16bit"]].concat(), "--auto-mixed <K>"),
        (vec!["bench", "m.onnx", "--iters", "0"], "invalid value '0' for '--iters <N>': must be at least 1"),
        (vec!["detect", "m.onnx", "i.png", "--score", "high"], "invalid value 'high' for '--score <T>'"),
        (vec!["completions", "tcsh"], "[possible values: bash, elvish, fish, powershell, zsh]"),
        (vec!["inspect", "a.onnx", "b.onnx"], "unexpected argument 'b.onnx'"),
        (vec!["inspect", "a.onnx", "--json=yes"], "unexpected value 'yes' for '--json'"),
    ];
    for (args, want) in cases {
        let (code, out, err) = qplay(&args);
        assert_eq!(code, 2, "{args:?} should fail; stdout {out}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in stderr:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn values_that_look_like_options_and_repeated_options() {
    // Negative numbers are values, with or without `=`; the last of a repeated option counts.
    let (code, out, err) =
        qplay(&["explain", "--min", "-2", "--max=2", "--value", "-1.3", "--value", "1.3", "--json", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["q"], 83);
}

#[test]
fn completions_print_a_script_for_every_shell() {
    let marks = [
        ("bash", "complete -F _qplay"),
        ("zsh", "#compdef qplay"),
        ("fish", "complete -c qplay"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[qplay]"),
    ];
    for (shell, mark) in marks {
        let (code, out, err) = qplay(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(mark), "{shell}: no {mark:?} in\n{out}");
        // The script knows the commands and the options (fish writes `-l calib`); bash, zsh and
        // fish also complete the values of a fixed list.
        for word in ["quantize", "calib", "keep-fp32"] {
            assert!(out.contains(word), "{shell}: {word} missing");
        }
        if ["bash", "zsh", "fish"].contains(&shell) {
            assert!(out.contains("percentile"), "{shell}: the --method values are missing");
        }
    }
}

fn read_doc(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)).unwrap()
}

#[test]
fn the_docs_show_the_help_as_it_is() {
    // docs/cli.md quotes `qplay help` and `qplay explain -h` verbatim.
    let doc = read_doc("docs/cli.md");
    for args in [&["help"][..], &["explain", "-h"]] {
        let (_, out, _) = qplay(args);
        let quoted = format!("```\n$ qplay {}\n{out}```", args.join(" "));
        assert!(doc.contains(&quoted), "docs/cli.md should quote:\n{quoted}");
    }
    // Every option on README's and docs/cli.md's command lines is one the command takes
    // (tests/state.test.mjs checks the page's "copy as a command" against README's quantize line).
    for file in ["README.md", "docs/cli.md"] {
        for line in read_doc(file).lines().filter(|l| l.starts_with("| `qplay ")) {
            let cmd = line["| `qplay ".len()..].split([' ', '`']).next().unwrap();
            let (code, help, _) = qplay(&[cmd, "--help"]);
            assert_eq!(code, 0, "{file}: unknown command {cmd}");
            let usage = line.split('`').nth(1).unwrap();
            for opt in usage.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| w.starts_with("--")) {
                assert!(
                    help.contains(&format!("{opt} ")) || help.contains(&format!("{opt}\n")),
                    "{file}: {cmd} has no {opt}"
                );
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn a_reader_that_stops_early_ends_qplay_quietly() {
    // `qplay … | head`: stdout's reader is gone before qplay writes. Like `cat`, qplay ends by
    // SIGPIPE with nothing on stderr — not a panic ("failed printing to stdout").
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_qplay"))
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}, stderr: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
