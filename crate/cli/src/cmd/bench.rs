//! `qplay bench MODEL [--iters N] [--threads N] [--gpu]`: median native CPU latency of one
//! inference on the thread pool (every core by default, the count printed, and the integer
//! kernels' vector path: `avx2`, or `sse2` with `QPLAY_NO_AVX2=1`); with `--gpu`, the GPU executor (`qplay-gpu`) timed beside it on the same plan and
//! input, runs interleaved, and its outputs compared with the CPU's.

use super::common::{detector, median, read_model};
use crate::choice;
use qplay_core::detect::pipeline::input_shape;
use qplay_core::model::{load_model, Plan, Tensor};
use qplay_core::ops::Registry;
use qplay_core::parallel::on_pool;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// `qplay bench`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model: ONNX or TFLite (.tflite).
    #[arg(value_name = "MODEL")]
    model: String,
    /// Timed runs (at least 1).
    #[arg(long, value_name = "N", default_value = "20", value_parser = choice::at_least_one)]
    iters: usize,
    /// Untimed runs first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    warmup: usize,
    /// Profile giving the input shape (default: MODEL.json beside the model).
    #[arg(long, value_name = "p.json")]
    profile: Option<String>,
    /// Also time the GPU executor (Vulkan), interleaved; compare its outputs.
    #[arg(long)]
    gpu: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    let (model, iters, warmup) = (&a.model, a.iters, a.warmup);
    let threads = qplay_core::parallel::threads();
    // The kernels' vector path: AVX2 (integer) and AVX (float) tiles, or SSE2 (`QPLAY_NO_AVX2=1`).
    let simd = qplay_core::ops::quant::simd::simd_name();
    // The input shape comes from the detector profile when there is one, else from the model.
    let path = Path::new(model);
    let (name, shape) = match detector(path, a.profile.as_deref()) {
        Ok((d, _)) => (d.profile().input.clone(), input_shape(d.profile())),
        Err(_) => {
            let g = load_model(&read_model(path)?).map_err(|e| format!("{model}: {e}"))?;
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
    let graph = load_model(&read_model(path)?).map_err(|e| format!("{model}: {e}"))?;
    let plan = Plan::new(&graph, &Registry::new(), &[(name.clone(), shape.clone())]).map_err(|e| e.to_string())?;
    let plan = Arc::new(plan);
    let n: usize = shape.iter().product();
    let x = Tensor::f32(shape.clone(), (0..n).map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect())
        .map_err(|e| e.to_string())?;
    let inputs = [(name, x)];
    let mut gpu = if a.gpu { Some(GpuBench::new(plan.clone())?) } else { None };
    for _ in 0..warmup {
        on_pool(|| plan.run(&inputs)).map_err(|e| e.to_string())?;
        if let Some(g) = gpu.as_mut() {
            g.exec.run_blocking(&inputs).map_err(|e| e.to_string())?;
        }
    }
    let mut times = Vec::with_capacity(iters);
    let mut gpu_times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        on_pool(|| plan.run(&inputs)).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let Some(g) = gpu.as_mut() {
            let t = Instant::now();
            g.exec.run_blocking(&inputs).map_err(|e| e.to_string())?;
            gpu_times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let med = median(times.clone());
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let gpu_report = match gpu.as_mut() {
        Some(g) => Some(g.report(&plan, &inputs, &gpu_times)?),
        None => None,
    };
    if a.json {
        let mut j = serde_json::json!({ "model": model, "shape": shape, "iters": iters, "threads": threads, "simd": simd, "median_ms": med, "min_ms": min });
        if let Some(r) = &gpu_report {
            j["gpu"] = r.clone();
        }
        println!("{j}");
    } else {
        let t = if threads == 1 { "1 thread".to_string() } else { format!("{threads} threads") };
        println!("{model} {shape:?}: median {med:.2} ms, min {min:.2} ms over {iters} runs (native CPU, {t}), {simd} kernels");
        if let Some(r) = &gpu_report {
            println!(
                "GPU ({}): median {:.2} ms, min {:.2} ms over {iters} runs, interleaved with the CPU's (plan {:.0} ms, first run {:.0} ms); outputs vs CPU: {}",
                r["adapter"].as_str().unwrap_or_default(),
                r["median_ms"].as_f64().unwrap_or_default(),
                r["min_ms"].as_f64().unwrap_or_default(),
                r["plan_ms"].as_f64().unwrap_or_default(),
                r["first_run_ms"].as_f64().unwrap_or_default(),
                r["vs_cpu"].as_str().unwrap_or_default(),
            );
            println!("  {}", r["placement"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// The GPU side of `--gpu`: the device and the executor, with the cost of getting them.
struct GpuBench {
    adapter: String,
    exec: qplay_gpu::GpuPlan,
    plan_ms: f64,
    first_run_ms: f64,
}

impl GpuBench {
    fn new(plan: Arc<Plan>) -> Result<GpuBench, String> {
        let gpu = qplay_gpu::Gpu::new_blocking().map_err(|e| format!("--gpu: {e}"))?;
        let t = Instant::now();
        let exec = qplay_gpu::GpuPlan::new_blocking(&gpu, plan).map_err(|e| format!("--gpu: {e}"))?;
        let plan_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(GpuBench { adapter: gpu.adapter(), exec, plan_ms, first_run_ms: f64::NAN })
    }

    /// Times, placement, and how the GPU's outputs compare with the CPU's (bit for bit, or the
    /// largest difference).
    fn report(&mut self, plan: &Plan, inputs: &[(String, Tensor)], times: &[f64]) -> Result<serde_json::Value, String> {
        let t = Instant::now();
        let got = self.exec.run_blocking(inputs).map_err(|e| e.to_string())?;
        if self.first_run_ms.is_nan() {
            self.first_run_ms = t.elapsed().as_secs_f64() * 1e3;
        }
        let want = plan.run(inputs).map_err(|e| e.to_string())?;
        let (mut differ, mut total, mut worst) = (0usize, 0usize, 0f64);
        for (g, c) in got.iter().zip(&want) {
            let (g, c) = (g.to_f32_vec(), c.to_f32_vec());
            total += c.len();
            for (p, q) in g.iter().zip(&c) {
                if p.to_bits() != q.to_bits() {
                    differ += 1;
                    worst = worst.max((p - q).abs() as f64);
                }
            }
        }
        let vs_cpu = if differ == 0 {
            format!("identical ({total} values)")
        } else {
            format!("{differ} of {total} values differ, max |diff| {worst:e}")
        };
        let (med, min) = if times.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (median(times.to_vec()), times.iter().copied().fold(f64::INFINITY, f64::min))
        };
        Ok(serde_json::json!({
            "adapter": self.adapter,
            "median_ms": med,
            "min_ms": min,
            "plan_ms": self.plan_ms,
            "first_run_ms": self.first_run_ms,
            "placement": self.exec.summary(),
            "vs_cpu": vs_cpu,
            "identical": differ == 0,
        }))
    }
}
