//! `qplay bench MODEL [--iters N]`: median native CPU latency of one inference (1 thread).

use super::common::{detector, median, read};
use crate::args::Args;
use qplay_core::detect::pipeline::input_shape;
use qplay_core::model::{load_onnx, Plan, Tensor};
use qplay_core::ops::Registry;
use std::path::Path;
use std::time::Instant;

pub const USAGE: &str = "qplay bench MODEL.onnx [--iters 20] [--warmup 3] [--json]";

pub fn run(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(argv, &["iters", "warmup", "profile"], &["json"])?;
    let [model] = a.positional.as_slice() else { return Err("give exactly one model file".into()) };
    let iters: usize = a.opt("iters")?.unwrap_or(20);
    let warmup: usize = a.opt("warmup")?.unwrap_or(3);
    if iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    // The input shape comes from the detector profile when there is one, else from the model.
    let path = Path::new(model);
    let (name, shape) = match detector(path, a.get("profile")) {
        Ok((d, _)) => (d.profile().input.clone(), input_shape(d.profile())),
        Err(_) => {
            let g = load_onnx(&read(path)?).map_err(|e| format!("{model}: {e}"))?;
            let i = g.inputs.first().ok_or("the model has no input")?;
            let shape: Option<Vec<usize>> = i.shape.iter().copied().collect();
            (
                i.name.clone(),
                shape.ok_or_else(|| {
                    format!(
                        "input `{}` has dynamic dimensions and the model has no detector profile: give --profile",
                        i.name
                    )
                })?,
            )
        }
    };
    let graph = load_onnx(&read(path)?).map_err(|e| format!("{model}: {e}"))?;
    let plan = Plan::new(&graph, &Registry::new(), &[(name.clone(), shape.clone())]).map_err(|e| e.to_string())?;
    let n: usize = shape.iter().product();
    let x = Tensor::f32(shape.clone(), (0..n).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect())
        .map_err(|e| e.to_string())?;
    let inputs = [(name, x)];
    for _ in 0..warmup {
        plan.run(&inputs).map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        plan.run(&inputs).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let med = median(times.clone());
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    if a.flag("json") {
        println!(
            "{}",
            serde_json::json!({ "model": model, "shape": shape, "iters": iters, "median_ms": med, "min_ms": min })
        );
    } else {
        println!("{model} {shape:?}: median {med:.2} ms, min {min:.2} ms over {iters} runs (native CPU, 1 thread)");
    }
    Ok(())
}
