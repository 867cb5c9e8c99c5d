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

use super::bias_correction::{correctable, corrected_bias};
use super::calibrate::Prepared;
use super::gptq::{
    add_upper_gram, each_cols, round_layer, symmetric, BiasShifts, Factor, Geometry, WeightCodes, SMALL_K,
};
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

/// One layer's sums over the inputs, per group: `X̃·X̃ᵀ` (upper triangle) and `ΔX·X̃ᵀ`; and
/// the column sums of `X̃` and `ΔX` with how many columns (positions) went into them, for the
/// bias that gives the rounded layer the FP32 layer's mean output.
struct Sums {
    h: Vec<Vec<f32>>,
    d: Vec<Vec<f32>>,
    sum_q: Vec<Vec<f64>>,
    sum_d: Vec<Vec<f64>>,
    positions: usize,
}

/// Adds each row's sum of `cols` (`k × n`) to `out`.
fn add_row_sums(cols: &[f32], n: usize, out: &mut [f64]) {
    for (o, row) in out.iter_mut().zip(cols.chunks_exact(n.max(1))) {
        *o += row.iter().map(|&v| v as f64).sum::<f64>();
    }
}

impl Sums {
    fn new(geo: &Geometry) -> Sums {
        let z = vec![vec![0.0; geo.k * geo.k]; geo.group];
        let s = vec![vec![0.0; geo.k]; geo.group];
        Sums { h: z.clone(), d: z, sum_q: s.clone(), sum_d: s, positions: 0 }
    }

    /// Adds one input: `x` the FP32 model's, `xq` the quantized model's.
    fn add(&mut self, geo: &Geometry, n: &Node, x: &Tensor, xq: &Tensor, mean: bool) -> Result<(), Error> {
        if x.shape != xq.shape {
            let e = OpError::mismatch(format!("inputs of shapes {:?} and {:?}", x.shape, xq.shape));
            return Err(ModelError::at(n, e).into());
        }
        let (a, b) = (x.as_f32()?, xq.as_f32()?);
        let dx = Tensor { shape: x.shape.clone(), data: Data::F32(a.iter().zip(b).map(|(a, b)| a - b).collect()) };
        let mut dcols: Vec<Vec<f32>> = Vec::new();
        let sum_d = &mut self.sum_d;
        each_cols(geo, n, &dx, &mut |g, cols, m| {
            if mean {
                add_row_sums(cols, m, &mut sum_d[g]);
            }
            dcols.push(cols.to_vec());
            Ok(())
        })?;
        let (k, h, d, sum_q, positions) = (geo.k, &mut self.h, &mut self.d, &mut self.sum_q, &mut self.positions);
        let mut call = 0;
        each_cols(geo, n, xq, &mut |g, cols, m| {
            add_upper_gram(cols, k, m, &mut h[g])?;
            add_cross(&dcols[call], cols, k, m, &mut d[g])?;
            if mean {
                add_row_sums(cols, m, &mut sum_q[g]);
            }
            if mean && g == 0 {
                *positions += m;
            }
            call += 1;
            Ok(())
        })
    }

    /// Per output row `r` of the weights (`w` the FP32 ones, `wq` the rounded ones, laid out
    /// by `geo`), the mean output shift `E[Ŵ·x̃] − E[W·x]` over every input and position.
    fn mean_shift(&self, geo: &Geometry, w: &[f32], wq: &[f32]) -> Vec<f32> {
        let rows_per_group = (geo.rows / geo.group.max(1)).max(1);
        let n = self.positions.max(1) as f64;
        (0..geo.rows)
            .map(|r| {
                let g = r / rows_per_group;
                let (sq, sd) = (&self.sum_q[g], &self.sum_d[g]);
                let mut s = 0f64;
                for c in 0..geo.k {
                    let j = geo.index(r, c);
                    s += wq[j] as f64 * sq[c] - w[j] as f64 * (sq[c] + sd[c]);
                }
                (s / n) as f32
            })
            .collect()
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
/// to nearest. Returns the codes and, for the layers bias correction can correct, the mean
/// output shift of their rounding (to subtract from the bias), by node name.
pub(super) fn solve(
    p: &Prepared,
    opts: &PtqOptions,
    input: &str,
    samples: &[Tensor],
    natural: usize,
    users: &[(usize, Geometry)],
    progress: &mut Progress<'_>,
) -> Result<(WeightCodes, BiasShifts), Error> {
    let g = &p.g;
    let (mut codes, mut shifts) = (WeightCodes::new(), BiasShifts::new());
    let Some(x0) = samples.first() else { return Ok((codes, shifts)) };
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
        let (mut weight, mut bias): (Option<Tensor>, Option<Tensor>) = (None, None);
        if let Some(&u) = by_name.get(name) {
            done += 1;
            tell(progress, &format!("error-compensating rounding: layer {done} of {}", by_name.len()))?;
            let (t, geo) = &users[u];
            let n = &g.nodes[*t];
            let mut sums = Sums::new(geo);
            for (si, (f, qe)) in fp.iter().zip(&q).enumerate() {
                let (a, b) = (plan.step_args(i, f)?, plan.step_args(i, qe)?);
                if let (Some(Some(x)), Some(Some(xq))) = (a.first(), b.first()) {
                    sums.add(geo, n, x, xq, si < natural)?;
                }
            }
            let k = geo.k;
            let factors = parallel::try_map(geo.group, |gi| -> Result<Factor, Error> {
                Ok(Factor::new(&symmetric(&sums.h[gi], k), k))
            })?;
            let shift = |gi: usize, w: &mut [f32]| sums.shift(gi, k, &factors[gi], w);
            let r = round_layer(p, opts, n, geo, &|gi| &factors[gi], &shift)?;
            let w = &g.initializers[&n.inputs[1]];
            let deq: Vec<f32> =
                r.codes.iter().enumerate().map(|(j, &c)| r.params[geo.row_of(j)].dequantize(c)).collect();
            // With bias correction, below 8 bits: the bias that gives the rounded layer, on its
            // own inputs, the FP32 layer's mean output (empirical bias correction, measured on
            // the runs at hand, the photos and their mirror images). The second pass runs with
            // it, so the layers after it are fitted to what the quantized model computes, and
            // the file gets it. Without bias correction the codes are fitted to uncorrected
            // biases, as the file will have them. At 8 bits bias correction measures on the
            // FP32 runs, as without GPTQ: measured there, this lost 0.3 / 2.2 dB on the person
            // detector (docs/measurements.md).
            if opts.bias_correction && correctable(g, n) && opts.weight_of(&n.name).bits < 8 {
                let shift = sums.mean_shift(geo, w.as_f32()?, &deq);
                if let Some(b) = corrected_bias(g, n, &shift) {
                    bias = Some(Tensor { shape: vec![b.len()], data: Data::F32(b) });
                    shifts.insert(n.name.clone(), shift);
                }
            }
            weight = Some(Tensor { shape: w.shape.clone(), data: Data::F32(deq) });
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
                if let Some(b) = &bias {
                    args.resize(args.len().max(3), None);
                    args[2] = Some(b);
                }
                plan.eval_step(i, &args)?
            };
            plan.store(i, env, outs, &mut |_, _| {});
            plan.free_after(i, env);
        }
    }
    Ok((codes, shifts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, Attrs, OpKind};
    use crate::ptq::bias_correction::one_node_plan;
    use crate::quant::{sample_tensor, SampleKind};

    /// A layer's op, weight shape and attributes.
    type Layer = (OpKind, Vec<usize>, Attrs);

    fn tensor(shape: &[usize], kind: SampleKind, seed: u64) -> Tensor {
        Tensor { shape: shape.to_vec(), data: Data::F32(sample_tensor(kind, shape.iter().product(), seed)) }
    }

    /// Per output channel, the mean over every batch item and position of `a − b` (`[N, C, …]`
    /// or `[N, C]`).
    fn channel_means(a: &Tensor, b: &Tensor) -> Vec<f64> {
        let (s, a, b) = (&a.shape, a.as_f32().unwrap(), b.as_f32().unwrap());
        let inner: usize = s[2..].iter().product();
        let mut m = vec![0f64; s[1]];
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            m[(j / inner) % s[1]] += (*x as f64 - *y as f64) / (s[0] * inner) as f64;
        }
        m
    }

    /// The shift from the column sums equals the layer run twice: the mean over every input
    /// and position of `Ŵ·x̃ − W·x`, per output channel, for convolutions (groups, strides,
    /// pads, 1-D) and Gemm (both layouts), the columns counted over two inputs.
    #[test]
    fn mean_shift_equals_the_layer_run_twice() {
        let registry = Registry::new();
        let conv = |w: &[usize], group: i64, strides: &[i64], pads: &[i64]| {
            let attrs = [
                ("group".to_string(), Attr::Int(group)),
                ("strides".into(), Attr::Ints(strides.to_vec())),
                ("pads".into(), Attr::Ints(pads.to_vec())),
            ];
            (OpKind::Conv, w.to_vec(), Attrs(attrs.into_iter().collect()))
        };
        let gemm = |w: &[usize], trans_b: i64| {
            (OpKind::Gemm, w.to_vec(), Attrs([("transB".to_string(), Attr::Int(trans_b))].into_iter().collect()))
        };
        let cases: [(Vec<usize>, Layer); 5] = [
            (vec![2, 3, 9, 11], conv(&[4, 3, 3, 3], 1, &[1, 1], &[1, 1, 1, 1])),
            (vec![1, 4, 10, 7], conv(&[6, 2, 3, 2], 2, &[2, 3], &[0, 1, 2, 0])),
            (vec![1, 6, 8, 8], conv(&[6, 1, 3, 3], 6, &[2, 2], &[1, 1, 1, 1])),
            (vec![1, 3, 13], conv(&[5, 3, 4], 1, &[3], &[2, 1])),
            (vec![3, 7], gemm(&[5, 7], 1)),
        ];
        let cases = cases.into_iter().chain([(vec![4, 6], gemm(&[6, 3], 0))]);
        for (k, (xs, (kind, ws, attrs))) in cases.enumerate() {
            let node = Node {
                name: format!("layer{k}"),
                op_type: kind.into(),
                inputs: vec!["x".into(), "w".into()],
                outputs: vec!["y".into()],
                attrs,
                fused: Default::default(),
            };
            let s = 10 * k as u64;
            let w = tensor(&ws, SampleKind::Gaussian, s + 1);
            let wq = tensor(&ws, SampleKind::Gaussian, s + 2);
            let geo = Geometry::of(&node, &w).unwrap().unwrap();
            let mut sums = Sums::new(&geo);
            let mut want = vec![0f64; geo.rows];
            for i in 0..2 {
                let x = tensor(&xs, SampleKind::Relu, s + 3 + i);
                let xq = tensor(&xs, SampleKind::Relu, s + 5 + i);
                sums.add(&geo, &node, &x, &xq, true).unwrap();
                // A third input that is left out of the means.
                sums.add(&geo, &node, &xq, &x, false).unwrap();
                let run = |w: &Tensor, x: &Tensor| {
                    one_node_plan(&node, w, &xs, &registry).unwrap().run(&[("x".to_string(), x.clone())]).unwrap()
                };
                let (a, b) = (run(&wq, &xq), run(&w, &x));
                for (m, d) in want.iter_mut().zip(channel_means(&a[0], &b[0])) {
                    *m += d / 2.0;
                }
            }
            let got = sums.mean_shift(&geo, w.as_f32().unwrap(), wq.as_f32().unwrap());
            assert_eq!(got.len(), want.len(), "case {k}");
            for (o, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()), "case {k} channel {o}: {a} vs {b}");
            }
        }
    }
}
