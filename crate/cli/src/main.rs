//! `qplay`: the quantization playground's command-line tool.

mod args;
mod cmd;

use std::process::ExitCode;

const HELP: &str = "qplay — quantization playground (float32 → int8)

Usage:
  qplay explain --min A --max B [--bits 8] [--signed|--unsigned] --value X [--symmetric]
                [--restricted] [--scale-decimals N] [--json]
      Δ, Z, q, x̂ and the error for one value, with every step of the computation.

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
