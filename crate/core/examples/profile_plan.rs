//! Per-step native profile of a model run: `cargo run --release --example profile_plan
//! [MODEL.onnx] [iters] [--unfused] [--simulate] [--threads N] [--steps FILE]` (default: the
//! person detector, 10 runs; `--simulate` runs a QDQ model in float as the quantization report
//! does: Q→DQ pairs as FakeQuant, no int8 kernels; `--threads N`, with `--features threads`:
//! a pool of N threads, the runs inside `parallel::on_pool` as the CLI's; `--steps FILE`
//! writes every step's minimum as `index<TAB>op<TAB>name<TAB>ms` lines, to compare two runs).
//!
//! Times every step of [`Plan::run_profiled`] with `std::time::Instant` and prints the total
//! per op type and the slowest steps, as the per-step minimum over the runs (robust to a busy
//! machine), next to the end-to-end median and minimum.

use qplay_core::model::{load_onnx, Plan, PlanOptions, StepEvent, Tensor};
use qplay_core::ops::Registry;
use std::collections::HashMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let threads: usize = value("--threads").map_or(1, |s| s.parse().expect("--threads N"));
    #[cfg(feature = "threads")]
    qplay_core::parallel::set_threads(threads).expect("thread pool");
    #[cfg(not(feature = "threads"))]
    assert_eq!(threads, 1, "--threads needs `--features threads`");
    qplay_core::parallel::on_pool(|| profile(&args, value("--steps")));
}

fn profile(args: &[String], steps_file: Option<String>) {
    let unfused = args.iter().any(|a| a == "--unfused");
    let simulate = args.iter().any(|a| a == "--simulate");
    let flag_values = ["--threads", "--steps"];
    let pos: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !flag_values.contains(&args[i - 1].as_str())))
        .map(|(_, a)| a)
        .collect();
    let path = pos.first().map_or("www/models/person_ssdlite.onnx", |s| s.as_str());
    let iters: usize = pos.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut graph = load_onnx(&std::fs::read(path).expect("read model")).expect("load model");
    if simulate {
        qplay_core::model::passes::fake_quant_qdq_pairs(&mut graph);
    }
    let input = graph.inputs.first().expect("an input");
    let shape: Vec<usize> = input.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let options = PlanOptions { fuse_activations: !unfused, int8_kernels: !simulate, ..Default::default() };
    let plan =
        Plan::with_options(&graph, &Registry::new(), &[(input.name.clone(), shape.clone())], options).expect("plan");
    let n: usize = shape.iter().product();
    let x = Tensor::f32(shape.clone(), (0..n).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect()).unwrap();
    let inputs = [(input.name.clone(), x)];
    plan.run(&inputs).expect("run");

    let steps = plan.steps();
    let mut best = vec![f64::INFINITY; steps.len()];
    let mut totals = Vec::with_capacity(iters);
    for _ in 0..iters {
        let mut started = Instant::now();
        let t0 = Instant::now();
        plan.run_profiled(&inputs, &mut |i, e| match e {
            StepEvent::Start => started = Instant::now(),
            StepEvent::End => best[i] = best[i].min(started.elapsed().as_secs_f64() * 1e3),
        })
        .expect("run");
        totals.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    totals.sort_by(f64::total_cmp);
    let sum: f64 = best.iter().sum();
    println!(
        "{path} {shape:?}{}: {} steps, median {:.2} ms, min {:.2} ms over {iters} runs; sum of per-step minima {sum:.2} ms",
        if unfused { " (unfused)" } else { "" },
        steps.len(),
        totals[totals.len() / 2],
        totals[0]
    );
    if let Some(file) = steps_file {
        let lines: String = steps
            .iter()
            .zip(&best)
            .enumerate()
            .map(|(i, ((name, op), t))| format!("{i}\t{op}\t{name}\t{t:.4}\n"))
            .collect();
        std::fs::write(&file, lines).expect("write --steps");
    }
    let mut by_op: HashMap<&str, (f64, usize)> = HashMap::new();
    for ((_, op), t) in steps.iter().zip(&best) {
        let e = by_op.entry(op).or_default();
        e.0 += t;
        e.1 += 1;
    }
    let mut by_op: Vec<_> = by_op.into_iter().collect();
    by_op.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!("\nper op type (sum of per-step minima):");
    for (op, (t, count)) in by_op {
        println!("  {op:<20} {count:>4} steps {t:>9.2} ms {:>5.1}%", 100.0 * t / sum);
    }
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by(|&a, &b| best[b].total_cmp(&best[a]));
    println!("\nslowest steps:");
    for &i in order.iter().take(std::env::var("PROFILE_TOP").ok().and_then(|s| s.parse().ok()).unwrap_or(15)) {
        println!("  {:>7.3} ms  {:<12} {}", best[i], steps[i].1, steps[i].0);
    }
}
