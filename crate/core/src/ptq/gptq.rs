//! Error-compensating weight rounding (GPTQ: Frantar, Ashkboos, Hoefler and Alistarh, ICLR
//! 2023, after Optimal Brain Quantization): a layer's weights are rounded one input column at a
//! time, and what each column's rounding changes in the layer's output is pushed onto the
//! columns not rounded yet, through the inverse of the layer's input Gram matrix `H = Σ x·xᵀ`
//! (over every calibration input and output position). Round-to-nearest minimises each
//! weight's own error; this minimises the error of the layer's *output* on the calibration
//! data, which is what counts below 8 bits, where a step is large.
//!
//! The per-channel scales stay those of round-to-nearest (each channel's largest weight), only
//! the codes change, so the file's format and size are the same. Columns go in decreasing order
//! of `H`'s diagonal (the inputs with the most energy first, GPTQ's "act order"), `H` is damped
//! by 1 % of its mean diagonal (more when it is not positive definite), and inputs that are
//! always zero leave their weights rounded to nearest. The layers are rounded in the order the
//! model runs them, each against the inputs the rounded layers before it give and aiming at the
//! FP32 model's output ([`super::gptq_asym`]: two passes over the calibration inputs, in
//! lockstep).
//!
//! Conv (1-D and 2-D, any groups, strides, pads, dilations), Gemm (`transA = 0`) and MatMul
//! with a 2-D weight; other layers keep round-to-nearest.

use super::calibrate::Prepared;
use super::{Progress, PtqOptions};
use crate::model::{DType, ModelError, Node, OpKind, Tensor};
use crate::ops::nn::depthwise::dot;
use crate::ops::nn::im2col::im2col;
use crate::ops::nn::sgemm::{sgemm, Init, MatRef};
use crate::ops::nn::spatial::{Window, WindowAttrs};
use crate::ops::OpError;
use crate::quant::{per_channel_params, QParams, QType, Scheme};
use crate::Error;
use std::collections::HashMap;

/// Weight codes chosen by [`solve`], by node name, in the weight's own layout; a layer not in
/// the map is rounded to nearest.
pub type WeightCodes = HashMap<String, Vec<i32>>;

/// Per layer (by node name), the mean output shift of its rounded weights on the inputs the
/// quantized model gives it, per output channel: what bias correction subtracts from its bias.
pub type BiasShifts = HashMap<String, Vec<f32>>;

/// Where the weight of output row `r`, input column `c` lives.
#[derive(Clone, Copy)]
pub(super) enum Layout {
    /// `w[r·k + c]`: Conv (`[O, C/g, taps…]`) and Gemm with `transB`.
    RowMajor,
    /// `w[c·rows + r]`: MatMul and Gemm without `transB` (`[K, N]`).
    ColMajor,
}

/// How a layer's weight and input are laid out.
#[derive(Clone)]
pub(super) struct Geometry {
    pub(super) layout: Layout,
    /// Output rows and input columns per group.
    pub(super) rows: usize,
    pub(super) k: usize,
    pub(super) group: usize,
    /// Conv geometry and kernel; `None` for Gemm / MatMul.
    pub(super) window: Option<(WindowAttrs, Vec<usize>)>,
}

impl Geometry {
    /// The geometry of node `n` with weight `w`; `None` for layers GPTQ leaves to nearest rounding.
    pub(super) fn of(n: &Node, w: &Tensor) -> Result<Option<Geometry>, Error> {
        let s = &w.shape;
        let bad = |e: OpError| -> Error { ModelError::at(n, e).into() };
        let (layout, rows, k, group, window) = match n.kind() {
            Some(OpKind::Conv) if s.len() == 3 || s.len() == 4 => {
                let group = n.attrs.int("group", 1).max(1) as usize;
                if !s[0].is_multiple_of(group) {
                    return Ok(None);
                }
                let k = s[1..].iter().product();
                let attrs = WindowAttrs::from_node(n, false).map_err(bad)?;
                (Layout::RowMajor, s[0], k, group, Some((attrs, s[2..].to_vec())))
            }
            Some(OpKind::Gemm) if s.len() == 2 && n.attrs.int("transA", 0) == 0 => {
                if n.attrs.int("transB", 0) != 0 {
                    (Layout::RowMajor, s[0], s[1], 1, None)
                } else {
                    (Layout::ColMajor, s[1], s[0], 1, None)
                }
            }
            Some(OpKind::MatMul) if s.len() == 2 => (Layout::ColMajor, s[1], s[0], 1, None),
            _ => return Ok(None),
        };
        Ok(Some(Geometry { layout, rows, k, group, window }))
    }

    /// Where the weight of output row `r`, input column `c` lives in the weight tensor.
    pub(super) fn index(&self, r: usize, c: usize) -> usize {
        match self.layout {
            Layout::RowMajor => r * self.k + c,
            Layout::ColMajor => c * self.rows + r,
        }
    }

    /// The output row of the weight tensor's element `j`.
    pub(super) fn row_of(&self, j: usize) -> usize {
        match self.layout {
            Layout::RowMajor => j / self.k.max(1),
            Layout::ColMajor => j % self.rows.max(1),
        }
    }
}

/// What [`each_cols`] calls with each image's and group's columns.
pub(super) type ColsFn<'a> = dyn FnMut(usize, &[f32], usize) -> Result<(), OpError> + 'a;

/// Calls `f(group, cols, n)` with the columns a layer of geometry `geo` (node `n`) multiplies
/// its weights by on input `x`: `cols` is `k × n`, row-major, one call per image and group (a
/// Gemm / MatMul input's rows, transposed, as group 0).
pub(super) fn each_cols(geo: &Geometry, n: &Node, x: &Tensor, f: &mut ColsFn<'_>) -> Result<(), Error> {
    let data = x.as_f32()?;
    let bad = |e: OpError| -> Error { ModelError::at(n, e).into() };
    let (k, group) = (geo.k, geo.group);
    let Some((attrs, kernel)) = &geo.window else {
        let m = data.len() / k.max(1);
        if m * k != data.len() {
            return Err(bad(OpError::mismatch(format!("an input of shape {:?} for {k} columns", x.shape))));
        }
        let mut t = vec![0f32; k * m];
        for (r, row) in data.chunks_exact(k).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                t[c * m + r] = v;
            }
        }
        return f(0, &t, m).map_err(bad);
    };
    let xs = &x.shape;
    if xs.len() != kernel.len() + 2 || xs[1] != group * (k / kernel.iter().product::<usize>().max(1)) {
        return Err(bad(OpError::mismatch(format!("a convolution's input of shape {xs:?}"))));
    }
    let win: Window = attrs.resolve(&xs[2..], kernel).map_err(bad)?.lifted_to_2d();
    let (batch, c) = (xs[0], xs[1]);
    let cg = c / group;
    let plane = win.input[0] * win.input[1];
    let cols_n = win.output[0] * win.output[1];
    // A 1×1 window at stride 1 without padding reads the input as it is.
    let direct = k == cg && cols_n == plane && win.pad_begin.iter().chain(&win.pad_end).all(|&p| p == 0);
    let mut cols = if direct { Vec::new() } else { vec![0f32; k * cols_n] };
    for b in 0..batch {
        for g in 0..group {
            let src = &data[(b * c + g * cg) * plane..][..cg * plane];
            if direct {
                f(g, src, cols_n).map_err(bad)?;
            } else {
                im2col(src, cg, &win, 0..win.output[0], &mut cols);
                f(g, &cols, cols_n).map_err(bad)?;
            }
        }
    }
    Ok(())
}

/// Windows of at most this many inputs get their Gram matrix from dot products.
pub(super) const SMALL_K: usize = 32;

/// `gram += cols · colsᵀ` for `cols` of `k × n`, in its upper triangle (blocks of rows: about
/// half the multiply-adds of the whole product; [`symmetric`] fills the rest).
pub(super) fn add_upper_gram(cols: &[f32], k: usize, n: usize, gram: &mut [f32]) -> Result<(), OpError> {
    const BLOCK: usize = 64;
    if k <= SMALL_K {
        // Small windows (depthwise 3×3: k = 9, one call per channel): a dot product per entry,
        // with none of the SGEMM's packing.
        for i in 0..k {
            let ci = &cols[i * n..(i + 1) * n];
            for j in i..k {
                gram[i * k + j] += dot(ci, &cols[j * n..(j + 1) * n]);
            }
        }
        return Ok(());
    }
    for i0 in (0..k).step_by(BLOCK) {
        let rows = BLOCK.min(k - i0);
        let a = MatRef::new(&cols[i0 * n..], rows, n, n, 1)?;
        let b = MatRef::new(&cols[i0 * n..], n, k - i0, 1, n)?;
        sgemm(1.0, a, b, Init::Accumulate, &mut gram[i0 * k + i0..], k)?;
    }
    Ok(())
}

/// The whole symmetric matrix (f64) from the upper triangle of `gram` (`k × k`).
pub(super) fn symmetric(gram: &[f32], k: usize) -> Vec<f64> {
    let mut h = vec![0f64; k * k];
    for i in 0..k {
        for j in i..k {
            let v = gram[i * k + j] as f64;
            h[i * k + j] = v;
            h[j * k + i] = v;
        }
    }
    h
}

/// Random copies of each calibration input (crops, shifts, colour: `train::augment`, seeded)
/// besides the input and its mirror image, below 8-bit weights.
const AUGMENTED_COPIES: usize = 2;

/// The inputs the Gram matrices are measured on, and how many of them lead that are the
/// calibration inputs or their mirror images (the ones whose statistics are the photos'). At 8
/// bits the calibration inputs. Below 8 bits also each one's mirror image and
/// [`AUGMENTED_COPIES`] augmented copies (seeded, so a run is reproducible): the deep layers see
/// few positions per image (10 × 10 for 1280 inputs on the person detector), so with six photos
/// their `H` is singular and the damping decides. On the person detector's folds
/// (docs/measurements.md) the copies added about 0.5 dB (boxes) and 2 dB (scores) of held-out
/// SQNR at 4 bits, and cost 0.8 / 2.9 dB at 8 bits, where the weights' error is small and
/// fitting the photos' own statistics counts more. Inputs, mirror images, then copies: what
/// memory cannot hold ([`super::gptq_asym::solve`]) is left out from the end.
fn samples_of(calib: &[Tensor], bits: u8) -> (Vec<Tensor>, usize) {
    let mirror = |x: &Tensor| match (&x.data, x.shape.as_slice()) {
        (crate::model::Data::F32(v), [_, _, _, w]) => {
            let mut f = v.clone();
            for row in f.chunks_exact_mut((*w).max(1)) {
                row.reverse();
            }
            Some(Tensor { shape: x.shape.clone(), data: crate::model::Data::F32(f) })
        }
        _ => None,
    };
    let mirrors: Vec<Tensor> = if bits >= 8 { Vec::new() } else { calib.iter().filter_map(mirror).collect() };
    if mirrors.is_empty() {
        return (calib.to_vec(), calib.len());
    }
    let mut rng = crate::train::augment::Rng::new(1);
    let copies: Vec<Tensor> = calib
        .iter()
        .flat_map(|x| (0..AUGMENTED_COPIES).map(|_| crate::train::augment::augment(x, &mut rng)).collect::<Vec<_>>())
        .collect();
    let natural = calib.len() + mirrors.len();
    let mut out: Vec<Tensor> = calib.iter().cloned().chain(mirrors).collect();
    for round in 0..AUGMENTED_COPIES {
        out.extend(copies.iter().skip(round).step_by(AUGMENTED_COPIES).cloned());
    }
    (out, natural)
}

/// With `opts.gptq`, chooses the weight codes of `p`'s layers ([`solve`]) and says so in its
/// notes; nothing otherwise.
pub(super) fn apply(
    p: &mut Prepared,
    opts: &PtqOptions,
    input: &str,
    calib: &[Tensor],
    progress: &mut Progress<'_>,
) -> Result<(), Error> {
    if !opts.gptq {
        return Ok(());
    }
    (p.codes, p.shifts) = solve(p, opts, input, calib, progress)?;
    p.notes.push(format!(
        "error-compensating weight rounding (GPTQ) in {} layers, from their inputs on {} calibration input(s)",
        p.codes.len(),
        calib.len()
    ));
    p.phases.lap("error-compensating rounding (GPTQ)");
    Ok(())
}

/// Rounds every quantized layer's weights ([`Factor::round`]) layer after layer, each against
/// the inputs the rounded layers before it give ([`super::gptq_asym`]). Returns the codes by
/// node name.
pub(super) fn solve(
    p: &Prepared,
    opts: &PtqOptions,
    input: &str,
    calib: &[Tensor],
    progress: &mut Progress<'_>,
) -> Result<(WeightCodes, BiasShifts), Error> {
    let g = &p.g;
    let mut users: Vec<(usize, Geometry)> = Vec::new();
    for &t in &p.targets {
        let n = &g.nodes[t];
        let Some(w) = n.inputs.get(1).and_then(|w| g.initializers.get(w)) else { continue };
        if w.dtype() != DType::F32 {
            continue;
        }
        if let Some(geo) = Geometry::of(n, w)? {
            users.push((t, geo));
        }
    }
    super::calibrate::check_inputs(calib)?;
    let (samples, natural) =
        samples_of(calib, opts.lowest_weight_bits(users.iter().map(|u| g.nodes[u.0].name.as_str())));
    super::gptq_asym::solve(p, opts, input, &samples, natural, &users, progress)
}

/// A layer's codes and the per-row parameters they are codes of.
pub(super) struct Rounded {
    pub(super) codes: Vec<i32>,
    pub(super) params: Vec<QParams>,
}

/// Rounds node `n`'s weight (geometry `l`) group by group through `factor(gi)`; `shift(gi, w)`
/// first moves each group's weights (`rows × k`, row-major) to the values the
/// rounding aims at. The scales are round-to-nearest's, of the weight itself.
pub(super) fn round_layer<'f>(
    p: &Prepared,
    opts: &PtqOptions,
    n: &Node,
    l: &Geometry,
    factor: &dyn Fn(usize) -> &'f Factor,
    shift: &dyn Fn(usize, &mut [f32]),
) -> Result<Rounded, Error> {
    let wt = opts.weight_of(&n.name);
    let w = &p.g.initializers[&n.inputs[1]];
    let data = w.as_f32()?;
    let axis = super::qdq::weight_axis(n, w)?;
    let params: Vec<QParams> = if p.per_channel {
        per_channel_params(data, &w.shape, axis, wt, Scheme::Symmetric)?
    } else {
        let (lo, hi) = crate::quant::min_max(data)?;
        vec![crate::quant::params_or_unit(lo as f64, hi as f64, wt, Scheme::Symmetric)?; l.rows]
    };
    let mut out = vec![0i32; data.len()];
    let rows_per_group = l.rows / l.group;
    for gi in 0..l.group {
        let rows: Vec<usize> = (gi * rows_per_group..(gi + 1) * rows_per_group).collect();
        let mut w: Vec<f32> = rows.iter().flat_map(|&r| (0..l.k).map(move |c| data[l.index(r, c)])).collect();
        shift(gi, &mut w);
        let rp: Vec<QParams> = rows.iter().map(|&r| params[r]).collect();
        let q = factor(gi).round(&w, rows.len(), &rp, wt);
        for (j, &r) in rows.iter().enumerate() {
            for c in 0..l.k {
                out[l.index(r, c)] = q[j * l.k + c];
            }
        }
    }
    Ok(Rounded { codes: out, params })
}

/// Rounds `w` (`rows × k`, row-major, one [`QParams`] per row, symmetric) to codes of `qt`
/// column by column, each column's rounding error spread over the columns after it through the
/// inverse of `h` (`k × k`, the Gram matrix of the inputs the columns multiply), so that
/// `‖(W − Ŵ)·X‖²` is small rather than `‖W − Ŵ‖²`: [`Factor::new`] then [`Factor::round`].
pub fn gptq_round(w: &[f32], rows: usize, k: usize, h: &[f64], params: &[QParams], qt: QType) -> Vec<i32> {
    Factor::new(h, k).round(w, rows, params, qt)
}

/// What GPTQ needs of a Gram matrix `H` (`k × k`): the column order (decreasing diagonal), the
/// inputs that are always zero, and `U` with `Uᵀ·U = (H + λI)⁻¹` in that order; `None` when no
/// damping made `H` positive definite (the layer is then rounded to nearest).
pub struct Factor {
    k: usize,
    perm: Vec<usize>,
    dead: Vec<bool>,
    u: Option<Vec<f64>>,
}

impl Factor {
    /// Factorises `h` (damped by 1 % of its mean diagonal, ten times more up to five times
    /// while it is not positive definite).
    pub fn new(h: &[f64], k: usize) -> Factor {
        let mut h = h[..k * k].to_vec();
        let mut dead = vec![false; k];
        for (i, d) in dead.iter_mut().enumerate() {
            if !(h[i * k + i].is_finite() && h[i * k + i] > 0.0) {
                // This input is always 0 (or broken): its weights do not reach the output.
                *d = true;
                for j in 0..k {
                    h[i * k + j] = 0.0;
                    h[j * k + i] = 0.0;
                }
                h[i * k + i] = 1.0;
            }
        }
        let mut perm: Vec<usize> = (0..k).collect();
        if k == 0 || h.iter().any(|v| !v.is_finite()) {
            return Factor { k, perm, dead, u: None };
        }
        // Act order: the columns with the most input energy first.
        perm.sort_by(|&a, &b| h[b * k + b].total_cmp(&h[a * k + a]));
        let mean_diag = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
        let hp: Vec<f64> = (0..k * k).map(|ij| h[perm[ij / k] * k + perm[ij % k]]).collect();
        let mut damp = 0.01 * mean_diag;
        let mut u = None;
        for _ in 0..6 {
            let mut hd = hp.clone();
            for i in 0..k {
                hd[i * k + i] += damp;
            }
            if let Some(v) = inverse_upper_factor(&hd, k) {
                u = Some(v);
                break;
            }
            damp *= 10.0;
        }
        Factor { k, perm, dead, u }
    }

    /// `v·(H + λI)⁻¹` for a row `v` in the inputs' order, with [`Factor::new`]'s damping (0 for
    /// the inputs that are always zero); `None` where no damping made `H` positive definite.
    pub(super) fn solve_row(&self, v: &[f64]) -> Option<Vec<f64>> {
        let (u, k) = (self.u.as_ref()?, self.k);
        let vp: Vec<f64> = self.perm.iter().map(|&c| if self.dead[c] { 0.0 } else { v[c] }).collect();
        // (H + λI)⁻¹ = Uᵀ·U in the permuted order: a = U·v, then Uᵀ·a.
        let a: Vec<f64> = (0..k).map(|i| dot64(&u[i * k + i..(i + 1) * k], &vp[i..])).collect();
        let mut y = vec![0f64; k];
        for (i, &ai) in a.iter().enumerate() {
            for (yj, &uij) in y[i..].iter_mut().zip(&u[i * k + i..(i + 1) * k]) {
                *yj += uij * ai;
            }
        }
        let mut out = vec![0f64; k];
        for (i, &c) in self.perm.iter().enumerate() {
            out[c] = if self.dead[c] { 0.0 } else { y[i] };
        }
        Some(out)
    }

    /// The codes of `w` (`rows × k`, row-major, one [`QParams`] per row).
    pub fn round(&self, w: &[f32], rows: usize, params: &[QParams], qt: QType) -> Vec<i32> {
        let k = self.k;
        let Some(u) = &self.u else {
            return (0..rows * k).map(|i| params[i / k].quantize(w[i], qt)).collect();
        };
        let mut codes = vec![0i32; rows * k];
        let mut row = vec![0f64; k];
        for r in 0..rows {
            let p = params[r];
            for (i, v) in row.iter_mut().enumerate() {
                *v = w[r * k + self.perm[i]] as f64;
            }
            for i in 0..k {
                let c = self.perm[i];
                let q = p.quantize(row[i] as f32, qt);
                codes[r * k + c] = if self.dead[c] { p.quantize(w[r * k + c], qt) } else { q };
                let e = (row[i] - p.dequantize(q) as f64) / u[i * k + i];
                if e != 0.0 {
                    let ui = &u[i * k..(i + 1) * k];
                    for (v, &uij) in row[i + 1..].iter_mut().zip(&ui[i + 1..]) {
                        *v -= e * uij;
                    }
                }
            }
        }
        codes
    }
}

/// `U` upper triangular with `Uᵀ·U = H⁻¹`, row-major: the inverse of the upper factor `R` of
/// `H = R·Rᵀ` (a Cholesky factorisation from the last index). `None` when `H` is not
/// positive definite.
fn inverse_upper_factor(h: &[f64], k: usize) -> Option<Vec<f64>> {
    // Lr = chol(J·H·J) (lower), J the reversal; R = J·Lr·J is upper and H = R·Rᵀ.
    let rev = |i: usize| k - 1 - i;
    let mut l = vec![0f64; k * k];
    for j in 0..k {
        let d = h[rev(j) * k + rev(j)] - dot64(&l[j * k..j * k + j], &l[j * k..j * k + j]);
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        let d = d.sqrt();
        l[j * k + j] = d;
        for i in j + 1..k {
            l[i * k + j] = (h[rev(i) * k + rev(j)] - dot64(&l[i * k..i * k + j], &l[j * k..j * k + j])) / d;
        }
    }
    // R[i][j] = Lr[rev i][rev j]; its transpose row by row: rt[j][m] = R[m][j].
    let r = |i: usize, j: usize| l[rev(i) * k + rev(j)];
    let mut rt = vec![0f64; k * k];
    for m in 0..k {
        for j in m..k {
            rt[j * k + m] = r(m, j);
        }
    }
    // U = R⁻¹, row by row: U[i][i] = 1/R[i][i]; U[i][j] = −Σ_{m=i}^{j−1} U[i][m]·R[m][j] / R[j][j].
    let mut u = vec![0f64; k * k];
    for i in 0..k {
        u[i * k + i] = 1.0 / rt[i * k + i];
        for j in i + 1..k {
            u[i * k + j] = -dot64(&u[i * k + i..i * k + j], &rt[j * k + i..j * k + j]) / rt[j * k + j];
        }
    }
    Some(u)
}

/// `Σ a·b` in eight running sums (vectorised; the same order on every machine and thread count).
#[inline]
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_upper_factor_gives_h_inverse() {
        let k = 5;
        // H = A·Aᵀ + I for a fixed A.
        let a: Vec<f64> = (0..k * k).map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0).collect();
        let mut h = vec![0f64; k * k];
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] =
                    (0..k).map(|m| a[i * k + m] * a[j * k + m]).sum::<f64>() + if i == j { 1.0 } else { 0.0 };
            }
        }
        let u = inverse_upper_factor(&h, k).expect("positive definite");
        // Uᵀ·U·H = I.
        for i in 0..k {
            for j in 0..k {
                let uu = |a: usize, b: usize| (0..k).map(|m| u[m * k + a] * u[m * k + b]).sum::<f64>();
                let v: f64 = (0..k).map(|m| uu(i, m) * h[m * k + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9, "({i},{j}) = {v}");
            }
            for j in 0..i {
                assert_eq!(u[i * k + j], 0.0);
            }
        }
        assert!(inverse_upper_factor(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
        // solve_row: y·(H + λI) = v, λ the damping (1 % of the mean diagonal), in act order.
        let f = Factor::new(&h, k);
        let lambda = 0.01 * (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
        let v: Vec<f64> = (0..k).map(|i| i as f64 - 1.5).collect();
        let y = f.solve_row(&v).unwrap();
        for j in 0..k {
            let back: f64 = (0..k).map(|i| y[i] * (h[i * k + j] + if i == j { lambda } else { 0.0 })).sum();
            assert!((back - v[j]).abs() < 1e-9, "{j}: {back} vs {}", v[j]);
        }
    }

    /// `Σ_positions ((W − Ŵ)·x)²` for codes `q` of `w` (`rows × k`) over inputs `x` (`n × k`).
    fn output_error(w: &[f32], q: &[i32], p: &[QParams], x: &[f64], rows: usize, k: usize) -> f64 {
        let n = x.len() / k;
        (0..n)
            .map(|t| {
                (0..rows)
                    .map(|r| {
                        let d: f64 = (0..k)
                            .map(|c| (w[r * k + c] as f64 - p[r].dequantize(q[r * k + c]) as f64) * x[t * k + c])
                            .sum();
                        d * d
                    })
                    .sum::<f64>()
            })
            .sum()
    }

    #[test]
    fn gptq_lowers_the_output_error_below_rounding_to_nearest() {
        // Correlated inputs (a shared factor plus noise), one input always zero.
        let (rows, k, n) = (6, 12, 400);
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let mut x = vec![0f64; n * k];
        for t in 0..n {
            let f = rnd() * 3.0;
            for c in 0..k {
                x[t * k + c] = if c == 5 { 0.0 } else { f * (1.0 + c as f64 / 4.0) + rnd() };
            }
        }
        let w: Vec<f32> = (0..rows * k).map(|_| rnd() as f32).collect();
        let mut h = vec![0f64; k * k];
        for t in 0..n {
            for i in 0..k {
                for j in 0..k {
                    h[i * k + j] += x[t * k + i] * x[t * k + j];
                }
            }
        }
        for bits in [4u8, 8] {
            let qt = crate::ptq::PtqOptions::weight_bits(bits).unwrap();
            let p = per_channel_params(&w, &[rows, k], 0, qt, Scheme::Symmetric).unwrap();
            let nearest: Vec<i32> = (0..rows * k).map(|i| p[i / k].quantize(w[i], qt)).collect();
            let q = gptq_round(&w, rows, k, &h, &p, qt);
            assert!(q.iter().all(|&v| (qt.qmin()..=qt.qmax()).contains(&v)), "codes on the grid");
            let (e_near, e_gptq) = (output_error(&w, &nearest, &p, &x, rows, k), output_error(&w, &q, &p, &x, rows, k));
            assert!(e_gptq < 0.8 * e_near, "{bits} bits: GPTQ {e_gptq} vs nearest {e_near}");
            // The input that is always zero keeps its weights rounded to nearest.
            for r in 0..rows {
                assert_eq!(q[r * k + 5], nearest[r * k + 5]);
            }
            assert_eq!(q, gptq_round(&w, rows, k, &h, &p, qt), "deterministic");
        }
        // A Gram matrix that no damping fixes (non-finite) falls back to nearest.
        let qt = crate::ptq::PtqOptions::weight_bits(4).unwrap();
        let p = per_channel_params(&w, &[rows, k], 0, qt, Scheme::Symmetric).unwrap();
        let mut bad = h.clone();
        bad[1] = f64::NAN;
        let nearest: Vec<i32> = (0..rows * k).map(|i| p[i / k].quantize(w[i], qt)).collect();
        assert_eq!(gptq_round(&w, rows, k, &bad, &p, qt), nearest);
    }
}
