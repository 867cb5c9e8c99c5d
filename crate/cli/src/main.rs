//! `qplay`: the quantization playground's command-line tool.

mod args;
mod cmd;

use std::process::ExitCode;

const HELP: &str = "qplay — quantization playground (float32 → int8)

Usage:
  qplay explain --min A --max B [--bits 8] [--signed|--unsigned] --value X [--symmetric]
                [--restricted] [--scale-decimals N] [--json]
      Δ, Z, q, x̂ and the error for one value, with every step of the computation.

  qplay inspect MODEL.onnx [--json]
      inputs/outputs with shapes, op histogram, parameters, unsupported ops.

  qplay infer MODEL.onnx --input x.npy --out DIR
      run the model on a tensor; writes DIR/<k>.npy per graph output and DIR/outputs.json.

  qplay detect MODEL.onnx IMAGE [--profile p.json] [--score T] [--iou T] [--json] [--draw out.png]
      detections in original image pixels. The profile defaults to MODEL.json beside the
      model, else it is inferred from the output shapes (and the assumptions are printed).

  qplay quantize MODEL.onnx --calib DIR [--method minmax|ema|percentile|entropy|mse] [--per-tensor]
                [--int8-activations] [--keep-fp32 NODES] [--auto-mixed K] [--profile p.json] -o OUT.onnx
                [--report r.json]
      post-training quantization to a QDQ ONNX model (int8 weights, per channel by default).
      DIR holds images (pre-processed with the model's profile) or .npy input tensors.

  qplay compare FP32.onnx INT8.onnx --images DIR [--profile p.json] [--json]
      detection agreement (mAP@0.5 of INT8 with FP32 as ground truth), latency and size.

  qplay bench MODEL.onnx [--iters 20] [--warmup 3] [--json]
      median latency of one inference on the native CPU (1 thread).

  qplay help        this text
  qplay --version   the version
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprint!("{HELP}");
        return ExitCode::from(2);
    };
    let (result, usage) = match cmd.as_str() {
        "explain" => (cmd::explain::run(rest), cmd::explain::USAGE),
        "inspect" => (cmd::inspect::run(rest), cmd::inspect::USAGE),
        "infer" => (cmd::infer::run(rest), cmd::infer::USAGE),
        "detect" => (cmd::detect::run(rest), cmd::detect::USAGE),
        "bench" => (cmd::bench::run(rest), cmd::bench::USAGE),
        "quantize" => (cmd::quantize::run(rest), cmd::quantize::USAGE),
        "compare" => (cmd::compare::run(rest), cmd::compare::USAGE),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        "--version" | "-V" => {
            println!("qplay {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("qplay: unknown command {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qplay {cmd}: error: {e}\nusage: {usage}");
            ExitCode::from(2)
        }
    }
}
