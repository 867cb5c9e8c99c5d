//! `--threads N`, on the commands that compute: the size of the thread pool the core's kernels,
//! calibration and report run on (rayon's global pool, built once before the command runs).

/// The most `--threads` takes: more than any machine this runs on has cores, few enough that a
/// slip (an extra zero) is refused rather than starting thousands of threads.
pub const MAX_THREADS: usize = 1024;

/// `--threads`, flattened into each computing command's arguments.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ThreadArgs {
    /// Threads to compute on, 1 to 1024 (default: every core of this machine). Results are
    /// identical whatever the count.
    #[arg(long, value_name = "N", value_parser = parse, allow_negative_numbers = true)]
    pub threads: Option<usize>,
}

/// The machine's hardware threads (1 when it cannot tell).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count from 1 to [`MAX_THREADS`]; the error says what to give instead.
fn parse(s: &str) -> Result<usize, String> {
    let hint = || {
        format!(
            "give a number of threads from 1 to {MAX_THREADS}, or leave --threads out to use every core ({} here)",
            available()
        )
    };
    match s.trim().parse::<i128>() {
        Ok(n) if n < 1 => Err(format!("{n} threads cannot compute anything: {}", hint())),
        Ok(n) => match usize::try_from(n) {
            Ok(n) if n <= MAX_THREADS => Ok(n),
            _ => Err(format!("{n} threads is more than qplay starts: {}", hint())),
        },
        Err(_) => Err(format!("not a whole number: {}", hint())),
    }
}

impl ThreadArgs {
    /// Starts the pool with the count given, or one thread per core; returns the count.
    pub fn start(&self) -> Result<usize, String> {
        let n = self.threads.unwrap_or_else(available);
        qplay_core::parallel::set_threads(n).map_err(|e| format!("--threads {n}: {e}"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_1_to_the_maximum() {
        assert_eq!(parse("1"), Ok(1));
        assert_eq!(parse(" 8 "), Ok(8));
        assert_eq!(parse("1024"), Ok(MAX_THREADS));
        for bad in ["0", "1025", "100000000000000000000", "-1", "two", ""] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("from 1 to 1024") && e.contains("every core"), "{bad}: {e}");
        }
    }
}
