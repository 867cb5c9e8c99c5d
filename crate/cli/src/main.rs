//! `qplay`: the quantization playground's command-line tool.
//!
//! The arguments are parsed by clap from the `Args` struct of each command module; `qplay help`,
//! `qplay COMMAND --help`, the usage line of every error and the shell completions are made
//! from the same definitions, so they cannot disagree with the parser.

mod choice;
mod cmd;
mod threads;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// qplay — quantization playground (float32 → int8)
#[derive(Parser, Debug)]
#[command(
    name = "qplay",
    version,
    arg_required_else_help = true,
    // An option given twice: the last one counts (as `--key value` parsers usually do).
    args_override_self = true,
    after_help = "qplay COMMAND --help: that command's options. Documentation: docs/cli.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Δ, Z, q, x̂ and the error for one value, with every step of the computation.
    Explain(cmd::explain::Args),
    /// Inputs/outputs with shapes, op histogram, parameters, unsupported ops.
    Inspect(cmd::inspect::Args),
    /// Run the model on a tensor; writes DIR/<k>.npy per graph output and DIR/outputs.json.
    Infer(cmd::infer::Args),
    /// Detections in original image pixels.
    #[command(long_about = "Detections in original image pixels. The profile defaults to MODEL.json beside the\n\
        model, else it is inferred (from the file's metadata, then the output shapes; the pixel scaling\n\
        probed on the image) and the assumptions are printed. --gpu runs the model on the GPU (Vulkan).")]
    Detect(cmd::detect::Args),
    /// Post-training quantization to a QDQ ONNX model (int8 weights, per channel by default).
    #[command(long_about = "Post-training quantization to a QDQ ONNX model (int8 weights, per channel by default).\n\
        The recipe is chosen per model on held-out calibration inputs (--recipe auto, the default unless\n\
        --method, --equalize or --bias-correction options are given). DIR holds images (pre-processed with\n\
        the model's profile) or .npy input tensors (used as they are). --keep-16bit (and --auto-mixed K\n\
        --mixed-16bit) quantize the named (the K most sensitive) layers' input activations to 16 bits, a\n\
        step between int8 and FP32.")]
    Quantize(cmd::quantize::Args),
    /// Quantization-aware fine-tuning: PTQ, then training against the FP32 model (best step kept).
    #[command(long_about = "Quantization-aware fine-tuning. Quantizes MODEL as `quantize` does on the same inputs\n\
        (step 0 is that PTQ model), then trains the QDQ model's weights, biases and quantization scales (LSQ,\n\
        straight-through rounding) to match the FP32 model's raw outputs on the calibration inputs, with\n\
        no labels. Every fourth input is held out; the step with the best held-out SQNR is written, so\n\
        the result is never worse there than PTQ. Runs on the CPU.")]
    Qat(cmd::qat::Args),
    /// Write a model (ONNX or TFLite) as ONNX, checked by loading it back and running it.
    Convert(cmd::convert::Args),
    /// Detection agreement (mAP@0.5 of INT8 with FP32 as ground truth), latency and size.
    Compare(cmd::compare::Args),
    /// Median latency of one inference on the native CPU (every core by default), and the GPU with --gpu.
    Bench(cmd::bench::Args),
    /// Print a shell completion script.
    #[command(long_about = "Print a shell completion script, e.g.\n  \
        qplay completions bash > ~/.local/share/bash-completion/completions/qplay\n  \
        qplay completions zsh > ~/.zfunc/_qplay   (with fpath+=~/.zfunc in ~/.zshrc)\n  \
        qplay completions fish > ~/.config/fish/completions/qplay.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Explain(_) => "explain",
            Command::Inspect(_) => "inspect",
            Command::Infer(_) => "infer",
            Command::Detect(_) => "detect",
            Command::Quantize(_) => "quantize",
            Command::Qat(_) => "qat",
            Command::Convert(_) => "convert",
            Command::Compare(_) => "compare",
            Command::Bench(_) => "bench",
            Command::Completions { .. } => "completions",
        }
    }

    /// `--threads`, on the commands that compute.
    fn threads(&self) -> Option<&threads::ThreadArgs> {
        match self {
            Command::Infer(a) => Some(&a.threads),
            Command::Detect(a) => Some(&a.threads),
            Command::Quantize(a) => Some(&a.threads),
            Command::Qat(a) => Some(&a.threads),
            Command::Compare(a) => Some(&a.threads),
            Command::Bench(a) => Some(&a.threads),
            Command::Explain(_) | Command::Inspect(_) | Command::Convert(_) | Command::Completions { .. } => None,
        }
    }

    fn run(self) -> Result<(), String> {
        // The thread pool, once, before any work.
        if let Some(t) = self.threads() {
            t.start()?;
        }
        match self {
            Command::Explain(a) => cmd::explain::run(a),
            Command::Inspect(a) => cmd::inspect::run(a),
            Command::Infer(a) => cmd::infer::run(a),
            Command::Detect(a) => cmd::detect::run(a),
            Command::Quantize(a) => cmd::quantize::run(a),
            Command::Qat(a) => cmd::qat::run(a),
            Command::Convert(a) => cmd::convert::run(a),
            Command::Compare(a) => cmd::compare::run(a),
            Command::Bench(a) => cmd::bench::run(a),
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "qplay", &mut std::io::stdout());
                Ok(())
            }
        }
    }
}

/// A subcommand's usage line, as clap prints it with its own errors.
fn usage(name: &str) -> String {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand_mut(name).map(|c| c.render_usage().to_string()).unwrap_or_default()
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    keep_freed_memory();
    // Usage errors (unknown option, bad or missing value, …) print clap's message, the usage
    // line and a pointer to --help, and exit with status 2; --help and --version exit 0.
    let cli = Cli::parse();
    let name = cli.command.name();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "qplay {name}: error: {e}\n\n{}\n\nFor more information, try 'qplay {name} --help'.",
                usage(name)
            );
            ExitCode::from(2)
        }
    }
}

/// A reader that stops early (`qplay inspect … | head`) ends qplay as it ends `cat`: the Rust
/// runtime ignores SIGPIPE, so every later print would panic with "Broken pipe"; with the
/// default action back, the process just stops (status 141 in the shell, nothing printed).
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with SIG_DFL changes no memory; it runs first in `main`, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Freed memory stays with the process for the next tensor of its size. By default glibc maps
/// every large block (a layer's output) afresh and unmaps it when freed, and gives the top of its
/// heap back past 128 KiB, so each run of the model pays again for the kernel to zero its pages:
/// `quantize` runs the model some 30 times, and its report keeps every layer's output of two runs
/// at once. Blocks below 1 GiB now come from the heap and stay there, which took `qplay quantize`
/// on the person detector from 2.13 to 1.99 s (median of 6 interleaved runs, 2 threads), with
/// the same peak memory (226 MB): the process ends soon after its largest moment anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets two of the allocator's thresholds; it runs first in `main`,
    // before any thread or allocation that depends on them.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks on every command and argument (names, conflicts, defaults).
    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
