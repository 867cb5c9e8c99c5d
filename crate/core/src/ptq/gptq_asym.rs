//! GPTQ's rounding layer after layer against the quantized model's own inputs, aiming at the
//! FP32 model's outputs (asymmetric calibration: GPTAQ, Li et al. 2025). GPTQ rounds a layer so
//! that `Ŵ·X̃` stays near `W·X̃` for its inputs `X̃`; in the quantized model those inputs are
//! what the rounded layers before it compute, not the FP32 model's `X`, and what counts is the
//! FP32 output `W·X`. So the calibration inputs run through the model twice, in lockstep, step
//! by step: once with FP32 weights (`X`) and once with every layer rounded so far (`X̃`). At
//! each layer, the rounding aims at `W* = W + W·ΔX·X̃ᵀ·(X̃·X̃ᵀ + λI)⁻¹` (`ΔX = X − X̃`; the
//! least-squares solution of `W*·X̃ ≈ W·X`, damped as GPTQ damps) with GPTQ's error
//! compensation on `H = X̃·X̃ᵀ`; its rounded weights then run in the second pass. The scales
//! stay those of the weights themselves. Rounding every layer against the FP32 model's inputs
//! at once, or re-rounding all of them against one quantized run, fits each layer to errors
//! the other layers then change: on the person detector at 4 bits both lost 1 to 11 dB.
//!
//! Cost: two runs over the inputs (all held at once, step by step) and, per layer, the sums
//! and one factorisation per group.

use super::calibrate::Prepared;
use super::gptq::{add_upper_gram, each_cols, round_layer, symmetric, Factor, Geometry, Layout, WeightCodes, SMALL_K};
use super::{tell, Progress, PtqOptions};
use crate::model::{Data, ModelError, Node, Plan, Tensor};
use crate::ops::nn::depthwise::dot;
use crate::ops::nn::sgemm::{sgemm, Init, MatRef};
use crate::ops::{OpError, Registry};
use crate::parallel;
use crate::Error;
use std::collections::HashMap;

/// What the two runs of the inputs may hold at once (bytes): the page's wasm memory is at most
/// 4 GiB and shared with the model, the photos and the page's other work. The same natively, so
/// the CLI and the page round alike (the person detector's 28 runs of seven photos take 670 MB).
const MEMORY_BUDGET: usize = 768 << 20;

/// One layer's sums over the inputs, per group: `X̃·X̃ᵀ` (upper triangle) and `ΔX·X̃ᵀ`.
struct Sums {
    h: Vec<Vec<f32>>,
    d: Vec<Vec<f32>>,
}

impl Sums {
    fn new(geo: &Geometry) -> Sums {
        let z = vec![vec![0.0; geo.k * geo.k]; geo.group];
        Sums { h: z.clone(), d: z }
    }

    /// Adds one input: `x` the FP32 model's, `xq` the quantized model's.
    fn add(&mut self, geo: &Geometry, n: &Node, x: &Tensor, xq: &Tensor) -> Result<(), Error> {
        if x.shape != xq.shape {
            let e = OpError::mismatch(format!("inputs of shapes {:?} and {:?}", x.shape, xq.shape));
            return Err(ModelError::at(n, e).into());
        }
        let (a, b) = (x.as_f32()?, xq.as_f32()?);
        let dx = Tensor { shape: x.shape.clone(), data: Data::F32(a.iter().zip(b).map(|(a, b)| a - b).collect()) };
        let mut dcols: Vec<Vec<f32>> = Vec::new();
        each_cols(geo, n, &dx, &mut |_, cols, _| {
            dcols.push(cols.to_vec());
            Ok(())
        })?;
        let (k, h, d) = (geo.k, &mut self.h, &mut self.d);
        let mut call = 0;
        each_cols(geo, n, xq, &mut |g, cols, m| {
            add_upper_gram(cols, k, m, &mut h[g])?;
            add_cross(&dcols[call], cols, k, m, &mut d[g])?;
            call += 1;
            Ok(())
        })
    }

    /// `w` (`rows × k`, one group's) moved to `W* = W + W·D·(H + λI)⁻¹`.
    fn shift(&self, gi: usize, k: usize, factor: &Factor, w: &mut [f32]) {
        let d = &self.d[gi];
        for row in w.chunks_exact_mut(k) {
            let mut v = vec![0f64; k];
            for (i, &wi) in row.iter().enumerate() {
                if wi != 0.0 {
                    for (vj, &dij) in v.iter_mut().zip(&d[i * k..(i + 1) * k]) {
                        *vj += wi as f64 * dij as f64;
                    }
                }
            }
            if let Some(y) = factor.solve_row(&v) {
                for (r, y) in row.iter_mut().zip(y) {
                    *r += y as f32;
                }
            }
        }
    }
}

/// `out += a·bᵀ` for `a`, `b` of `k × n` (row-major), `out` `k × k`.
fn add_cross(a: &[f32], b: &[f32], k: usize, n: usize, out: &mut [f32]) -> Result<(), OpError> {
    if k <= SMALL_K {
        for i in 0..k {
            for j in 0..k {
                out[i * k + j] += dot(&a[i * n..(i + 1) * n], &b[j * n..(j + 1) * n]);
            }
        }
        return Ok(());
    }
    sgemm(1.0, MatRef::new(a, k, n, n, 1)?, MatRef::new(b, n, k, 1, n)?, Init::Accumulate, out, k)
}

/// Rounds the layers `users` (node, geometry; their weight is input 1) in the order the plan
/// runs them, on `samples`; a layer the plan does not run as a step of its own keeps rounding
/// to nearest. Returns the codes by node name.
pub(super) fn solve(
    p: &Prepared,
    opts: &PtqOptions,
    input: &str,
    samples: &[Tensor],
    users: &[(usize, Geometry)],
    progress: &mut Progress<'_>,
) -> Result<WeightCodes, Error> {
    let g = &p.g;
    let mut codes = WeightCodes::new();
    let Some(x0) = samples.first() else { return Ok(codes) };
    let plan = Plan::new(g, &Registry::new(), &[(input.to_string(), x0.shape.clone())])?;
    let by_name: HashMap<&str, usize> =
        users.iter().enumerate().map(|(i, (t, _))| (g.nodes[*t].name.as_str(), i)).collect();
    // Both runs of every input are held at once: as many inputs as fit in MEMORY_BUDGET, by the
    // peak of one run (the first input's, step by step).
    let one = [(input.to_string(), x0.clone())];
    let mut env = plan.bind(&one, None)?;
    let mut peak = 0;
    for i in 0..plan.steps().len() {
        let outs = plan.eval_step(i, &plan.step_args(i, &env)?)?;
        plan.store(i, &mut env, outs, &mut |_, _| {});
        peak = peak.max(env.held_bytes());
        plan.free_after(i, &mut env);
    }
    drop(env);
    let fit = (MEMORY_BUDGET / (2 * peak + 2 * x0.byte_size()).max(1)).clamp(1, samples.len());
    let inputs: Vec<[(String, Tensor); 1]> = samples[..fit].iter().map(|x| [(input.to_string(), x.clone())]).collect();
    let mut fp = inputs.iter().map(|x| plan.bind(x, None)).collect::<Result<Vec<_>, _>>()?;
    let mut q = inputs.iter().map(|x| plan.bind(x, None)).collect::<Result<Vec<_>, _>>()?;
    let steps = plan.steps();
    let mut done = 0;
    for (i, (name, _)) in steps.iter().enumerate() {
        let mut weight: Option<Tensor> = None;
        if let Some(&u) = by_name.get(name) {
            done += 1;
            tell(progress, &format!("error-compensating rounding: layer {done} of {}", by_name.len()))?;
            let (t, geo) = &users[u];
            let n = &g.nodes[*t];
            let mut sums = Sums::new(geo);
            for (f, qe) in fp.iter().zip(&q) {
                let (a, b) = (plan.step_args(i, f)?, plan.step_args(i, qe)?);
                if let (Some(Some(x)), Some(Some(xq))) = (a.first(), b.first()) {
                    sums.add(geo, n, x, xq)?;
                }
            }
            let k = geo.k;
            let factors = parallel::try_map(geo.group, |gi| -> Result<Factor, Error> {
                Ok(Factor::new(&symmetric(&sums.h[gi], k), k))
            })?;
            let shift = |gi: usize, w: &mut [f32]| sums.shift(gi, k, &factors[gi], w);
            let r = round_layer(p, opts, n, geo, &|gi| &factors[gi], &shift)?;
            let row = |j: usize| match geo.layout {
                Layout::RowMajor => j / k,
                Layout::ColMajor => j % geo.rows,
            };
            let shape = g.initializers[&n.inputs[1]].shape.clone();
            let deq = r.codes.iter().enumerate().map(|(j, &c)| r.params[row(j)].dequantize(c)).collect();
            weight = Some(Tensor { shape, data: Data::F32(deq) });
            codes.insert(n.name.clone(), r.codes);
        }
        for env in fp.iter_mut() {
            let outs = plan.eval_step(i, &plan.step_args(i, env)?)?;
            plan.store(i, env, outs, &mut |_, _| {});
            plan.free_after(i, env);
        }
        for env in q.iter_mut() {
            let outs = {
                let mut args = plan.step_args(i, env)?;
                if let (Some(w), Some(slot)) = (&weight, args.get_mut(1)) {
                    *slot = Some(w);
                }
                plan.eval_step(i, &args)?
            };
            plan.store(i, env, outs, &mut |_, _| {});
            plan.free_after(i, env);
        }
    }
    Ok(codes)
}
