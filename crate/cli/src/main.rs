//! `qplay`: the quantization playground's command-line tool.

mod args;
mod cmd;

use std::process::ExitCode;

/// One subcommand: its name, usage line (each command module's `USAGE`, the one the error
/// messages print), what it does, and its entry point. `qplay help` and `qplay CMD --help` are
/// made from this table, so they cannot disagree with the parsers.
struct Command {
    name: &'static str,
    usage: &'static str,
    about: &'static str,
    run: fn(&[String]) -> Result<(), String>,
}

const COMMANDS: [Command; 7] = [
    Command {
        name: "explain",
        usage: cmd::explain::USAGE,
        about: "Δ, Z, q, x̂ and the error for one value, with every step of the computation.",
        run: cmd::explain::run,
    },
    Command {
        name: "inspect",
        usage: cmd::inspect::USAGE,
        about: "inputs/outputs with shapes, op histogram, parameters, unsupported ops.",
        run: cmd::inspect::run,
    },
    Command {
        name: "infer",
        usage: cmd::infer::USAGE,
        about: "run the model on a tensor; writes DIR/<k>.npy per graph output and DIR/outputs.json.",
        run: cmd::infer::run,
    },
    Command {
        name: "detect",
        usage: cmd::detect::USAGE,
        about: "detections in original image pixels. The profile defaults to MODEL.json beside the model, else it is \
                inferred (from the file's metadata, then the output shapes; the pixel scaling probed on the image) and \
                the assumptions are printed. --gpu runs the model on the GPU (Vulkan).",
        run: cmd::detect::run,
    },
    Command {
        name: "quantize",
        usage: cmd::quantize::USAGE,
        about: "post-training quantization to a QDQ ONNX model (int8 weights, per channel by default). The recipe is \
                chosen per model on held-out calibration inputs (--recipe auto, the default unless --method, \
                --equalize or --bias-correction options are given). DIR holds images (pre-processed with the model's \
                profile) or .npy input tensors. --keep-16bit (and --auto-mixed K --mixed-16bit) quantize the named \
                (the K most sensitive) layers' input activations to 16 bits, a step between int8 and FP32.",
        run: cmd::quantize::run,
    },
    Command {
        name: "compare",
        usage: cmd::compare::USAGE,
        about: "detection agreement (mAP@0.5 of INT8 with FP32 as ground truth), latency and size.",
        run: cmd::compare::run,
    },
    Command {
        name: "bench",
        usage: cmd::bench::USAGE,
        about: "median latency of one inference on the native CPU (1 thread), or the GPU with --gpu.",
        run: cmd::bench::run,
    },
];

/// `qplay help`: every command's usage and what it does.
fn help() -> String {
    let mut s = String::from("qplay — quantization playground (float32 → int8)\n\nUsage:\n");
    for c in &COMMANDS {
        s.push_str(&format!("  {}\n      {}\n\n", c.usage, c.about));
    }
    s.push_str("  qplay help            this text; qplay COMMAND --help: that command's\n");
    s.push_str("  qplay --version       the version\n");
    s
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprint!("{}", help());
        return ExitCode::from(2);
    };
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        "--version" | "-V" => {
            println!("qplay {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let Some(c) = COMMANDS.iter().find(|c| c.name == cmd) else {
        eprintln!("qplay: unknown command {cmd:?}\n\n{}", help());
        return ExitCode::from(2);
    };
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: {}\n\n{}", c.usage, c.about);
        return ExitCode::SUCCESS;
    }
    match (c.run)(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qplay {cmd}: error: {e}\nusage: {}\n(qplay {cmd} --help for more)", c.usage);
            ExitCode::from(2)
        }
    }
}
