//! `Attention` (opsets 23–25): scaled dot-product attention, as PyTorch's dynamo exporter emits
//! it for `scaled_dot_product_attention` and `nn.MultiheadAttention` from opset 23 (vision
//! transformers, DETR-style detectors, YOLO attention blocks).
//!
//! - Q `[B, Hq, S, D]`, K `[B, Hkv, T, D]`, V `[B, Hkv, T, Dv]`, or the 3-D forms `[B, S, H·D]`
//!   with `q_num_heads` and `kv_num_heads`; grouped-query attention (query head `h` reads
//!   key/value head `h / (Hq / Hkv)`).
//! - `past_key` / `past_value` are prepended to K and V (outputs 1 and 2 are the results).
//! - The additive bias: `attn_mask` (bool: `false` masks; float: added), broadcast to
//!   `[B, Hq, S, ·]` and padded with masked keys when it has fewer than `T` columns; `is_causal` (key `j`
//!   seen from query `i` when `j ≤ i + offset`, the offset being the past length, or
//!   `nonpad_kv_seqlen[b] − S` with an external cache); `left_window_size` /
//!   `right_window_size` (opset 25); `nonpad_kv_seqlen` (opset 24) masks the padding keys.
//! - Scores `(Q·√scale)·(K·√scale)ᵀ` (scale defaults to `1/√D`), `softcap·tanh(·/softcap)` when
//!   `softcap > 0`, plus the bias, softmax over keys; a row whose bias masks every key gives
//!   zeros. Output 3 is the scores (modes 0 and 1), with the bias (2) or after softmax (3).
//!
//! The arithmetic follows ONNX's reference implementation step by step; each product is one
//! matrix product per head through [`super::sgemm`], the (batch, head) pairs in parallel (each
//! writes only its own rows, so the results do not depend on the threads).
//! `softmax_precision` is accepted (float32 is the only precision here).

use super::sgemm::{sgemm, Init, MatRef};
use super::{checked_numel, f32_data, f32_fact, f32_input, f32_output, input_shape};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};
use crate::parallel;

/// A built `Attention`.
#[derive(Debug, Clone)]
pub struct Attention {
    causal: bool,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
    qk_mode: i64,
    scale: Option<f32>,
    softcap: f32,
    /// `(left, right)`; negative means unbounded.
    window: (i64, i64),
    /// How many outputs the node names (1–4).
    outputs: usize,
}

/// Builds `Attention`.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let a = &node.attrs;
    let heads = |name: &str| -> Result<Option<usize>, OpError> {
        match a.int_opt(name) {
            None => Ok(None),
            Some(v) if (1..=1 << 16).contains(&v) => Ok(Some(v as usize)),
            Some(v) => Err(OpError::malformed(format!("{name} {v} must be positive"))),
        }
    };
    let qk_mode = a.int("qk_matmul_output_mode", 0);
    if !(0..=3).contains(&qk_mode) {
        return Err(OpError::malformed(format!("qk_matmul_output_mode {qk_mode} is not 0, 1, 2 or 3")));
    }
    let scale = a.float_opt("scale");
    if scale.is_some_and(|s| !s.is_finite()) {
        return Err(OpError::malformed("scale must be finite"));
    }
    let softcap = a.float("softcap", 0.0);
    let outputs = node.outputs.len();
    if !(1..=4).contains(&outputs) {
        return Err(OpError::malformed(format!("Attention has 1 to 4 outputs, the node names {outputs}")));
    }
    Ok(Box::new(Attention {
        causal: a.int("is_causal", 0) != 0,
        q_heads: heads("q_num_heads")?,
        kv_heads: heads("kv_num_heads")?,
        qk_mode,
        scale,
        softcap,
        window: (a.int("left_window_size", -1), a.int("right_window_size", -1)),
        outputs,
    }))
}

/// The sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    hq: usize,
    hkv: usize,
    /// Query length.
    s: usize,
    /// New keys.
    t_new: usize,
    /// Past keys.
    past: usize,
    d: usize,
    dv: usize,
    rank3: bool,
}

impl Dims {
    fn t(&self) -> usize {
        self.past + self.t_new
    }
}

/// Checks how the optional inputs go together: `past_key` with `past_value` (of shape
/// `[B, Hkv, past, Dv]`), and `nonpad_kv_seqlen` (one value per batch) without them.
fn check_optional(
    d: &Dims,
    past_value: Option<&[usize]>,
    has_past_key: bool,
    nonpad: Option<usize>,
) -> Result<(), OpError> {
    match (has_past_key, past_value) {
        (false, None) => {}
        (true, Some(pv)) => {
            let want = [d.b, d.hkv, d.past, d.dv];
            if pv != want {
                return Err(OpError::mismatch(format!("past_value {pv:?} should be {want:?}")));
            }
        }
        _ => return Err(OpError::malformed("past_key and past_value go together")),
    }
    if let Some(n) = nonpad {
        if has_past_key {
            return Err(OpError::malformed("nonpad_kv_seqlen cannot be combined with past_key"));
        }
        if n != d.b {
            return Err(OpError::mismatch(format!("nonpad_kv_seqlen has {n} values for batch {}", d.b)));
        }
    }
    Ok(())
}

impl Attention {
    /// Checks the shapes of Q, K, V and the past caches.
    fn dims(&self, q: &[usize], k: &[usize], v: &[usize], past: Option<&[usize]>) -> Result<Dims, OpError> {
        let bad = || OpError::mismatch(format!("Q {q:?}, K {k:?} and V {v:?} are not an attention's shapes"));
        if q.len() != k.len() || q.len() != v.len() {
            return Err(bad());
        }
        let mut d = match q.len() {
            4 => Dims { b: q[0], hq: q[1], hkv: k[1], s: q[2], t_new: k[2], past: 0, d: q[3], dv: v[3], rank3: false },
            3 => {
                let (Some(hq), Some(hkv)) = (self.q_heads, self.kv_heads) else {
                    return Err(OpError::malformed("3-D inputs need q_num_heads and kv_num_heads"));
                };
                if !q[2].is_multiple_of(hq) || !k[2].is_multiple_of(hkv) || !v[2].is_multiple_of(hkv) {
                    return Err(OpError::mismatch(format!(
                        "Q {q:?}, K {k:?}, V {v:?}: the hidden sizes do not divide into {hq} and {hkv} heads"
                    )));
                }
                Dims { b: q[0], hq, hkv, s: q[1], t_new: k[1], past: 0, d: q[2] / hq, dv: v[2] / hkv, rank3: true }
            }
            _ => return Err(bad()),
        };
        let kd = if d.rank3 { k[2] / d.hkv } else { k[3] };
        let (vb, vt, vh) = if d.rank3 { (v[0], v[1], d.hkv) } else { (v[0], v[2], v[1]) };
        if k[0] != d.b || vb != d.b || kd != d.d || vt != d.t_new || vh != d.hkv {
            return Err(bad());
        }
        if d.hkv == 0 || !d.hq.is_multiple_of(d.hkv) {
            return Err(OpError::mismatch(format!("{} query heads cannot share {} key/value heads", d.hq, d.hkv)));
        }
        if let Some(p) = past {
            if p.len() != 4 || p[0] != d.b || p[1] != d.hkv || p[3] != d.d {
                return Err(OpError::mismatch(format!("past_key {p:?} should be [{}, {}, past, {}]", d.b, d.hkv, d.d)));
            }
            d.past = p[2];
        }
        Ok(d)
    }

    fn shapes(&self, d: &Dims) -> Vec<Vec<usize>> {
        let y = if d.rank3 { vec![d.b, d.s, d.hq * d.dv] } else { vec![d.b, d.hq, d.s, d.dv] };
        let all = vec![y, vec![d.b, d.hkv, d.t(), d.d], vec![d.b, d.hkv, d.t(), d.dv], vec![d.b, d.hq, d.s, d.t()]];
        all.into_iter().take(self.outputs).collect()
    }
}

/// `[B, L, H·E]` → `[B, H, L, E]` (a copy; the same swap of the middle axes takes `[B, H, L, E]`
/// back to `[B, L, H·E]` with `(b, h, l, e)`); 4-D data as is.
fn heads_first(x: &[f32], rank3: bool, (b, l, h, e): (usize, usize, usize, usize)) -> Vec<f32> {
    if !rank3 {
        return x.to_vec();
    }
    let mut out = vec![0f32; x.len()];
    for bi in 0..b {
        for li in 0..l {
            for hi in 0..h {
                let src = ((bi * l + li) * h + hi) * e;
                let dst = ((bi * h + hi) * l + li) * e;
                out[dst..dst + e].copy_from_slice(&x[src..src + e]);
            }
        }
    }
    out
}

/// `past ++ new` along the sequence axis of `[B, H, ·, E]`.
fn concat_seq(past: Option<&[f32]>, new: &[f32], (bh, p, t, e): (usize, usize, usize, usize)) -> Vec<f32> {
    let Some(past) = past else { return new.to_vec() };
    let mut out = Vec::with_capacity(bh * (p + t) * e);
    for i in 0..bh {
        out.extend_from_slice(&past[i * p * e..(i + 1) * p * e]);
        out.extend_from_slice(&new[i * t * e..(i + 1) * t * e]);
    }
    out
}

/// The additive bias of one `(batch, head)`: `[S, T]` values, 0 or −∞ apart from a float mask.
struct Bias<'a> {
    mask: Option<(MaskData<'a>, Vec<usize>, usize)>,
    causal: bool,
    window: (i64, i64),
    /// Per batch: the causal and window offset, and the number of valid keys.
    offsets: Vec<(i64, usize)>,
}

enum MaskData<'a> {
    Bool(&'a [bool]),
    F32(&'a [f32]),
}

impl Bias<'_> {
    /// Fills `row` (length `T`) with the bias of query `i` of batch `b`, head `h`.
    fn row(&self, (b, h, i): (usize, usize, usize), row: &mut [f32]) {
        let (offset, valid) = self.offsets[b];
        for (j, r) in row.iter_mut().enumerate() {
            let mut v = match &self.mask {
                None => 0.0,
                Some((m, strides, cols)) => {
                    if j >= *cols {
                        f32::NEG_INFINITY
                    } else {
                        let at = b * strides[0] + h * strides[1] + i * strides[2] + j * strides[3];
                        match m {
                            MaskData::Bool(m) if m[at] => 0.0,
                            MaskData::Bool(_) => f32::NEG_INFINITY,
                            MaskData::F32(m) => m[at],
                        }
                    }
                }
            };
            let ahead = i as i64 + offset - j as i64; // how far key j lies before query i
            if self.causal && ahead < 0 {
                v += f32::NEG_INFINITY;
            }
            let (left, right) = self.window;
            if (left >= 0 && ahead > left) || (right >= 0 && -ahead > right) {
                v += f32::NEG_INFINITY;
            }
            if j >= valid {
                v += f32::NEG_INFINITY;
            }
            *r = v;
        }
    }
}

impl Attention {
    /// The mask's strides over `[B, Hq, S, T]` (right-aligned broadcasting) and its column count.
    fn mask_layout(shape: &[usize], d: &Dims) -> Result<(Vec<usize>, usize), OpError> {
        let target = [d.b, d.hq, d.s, d.t()];
        let bad = || OpError::mismatch(format!("attn_mask {shape:?} does not broadcast to {target:?}"));
        if shape.is_empty() || shape.len() > 4 {
            return Err(bad());
        }
        let own = crate::model::strides(shape);
        let lead = 4 - shape.len();
        let mut strides = vec![0usize; 4];
        for a in lead..4 {
            let n = shape[a - lead];
            let ok = if a == 3 { n <= target[3] } else { n == target[a] || n == 1 };
            if !ok {
                return Err(bad());
            }
            strides[a] = if n == 1 && a != 3 { 0 } else { own[a - lead] };
        }
        Ok((strides, shape[shape.len() - 1]))
    }
}

impl Op for Attention {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (q, k, v) = (f32_fact(inputs, 0, "Q")?, f32_fact(inputs, 1, "K")?, f32_fact(inputs, 2, "V")?);
        let past = inputs.get(4).copied().flatten().map(|f| f.shape.as_slice());
        let d = self.dims(&q.shape, &k.shape, &v.shape, past)?;
        let fact = |i: usize| inputs.get(i).copied().flatten();
        let nonpad = fact(6).map(|f| f.shape.iter().product());
        check_optional(&d, fact(5).map(|f| f.shape.as_slice()), past.is_some(), nonpad)?;
        if let Some(m) = inputs.get(3).copied().flatten() {
            if !matches!(m.dtype, DType::Bool | DType::F32) {
                return Err(OpError::mismatch(format!("attn_mask has type {:?}; bool or float32 expected", m.dtype)));
            }
            Self::mask_layout(&m.shape, &d)?;
        }
        let shapes = self.shapes(&d);
        shapes.iter().try_for_each(|s| checked_numel(s).map(|_| ()))?;
        Ok(shapes.into_iter().map(|s| Fact::new(DType::F32, s)).collect())
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (q, k, v) = (f32_input(inputs, 0, "Q")?, f32_input(inputs, 1, "K")?, f32_input(inputs, 2, "V")?);
        let shape = |i: usize| input_shape(inputs, i).unwrap_or_default();
        let d = self.dims(shape(0), shape(1), shape(2), input_shape(inputs, 4))?;
        let get = |i: usize| inputs.get(i).copied().flatten();
        let nonpad = match get(6) {
            None => None,
            Some(t) => Some(t.to_i64_vec().map_err(|e| OpError::mismatch(format!("nonpad_kv_seqlen: {e}")))?),
        };
        check_optional(&d, get(5).map(|t| t.shape.as_slice()), get(4).is_some(), nonpad.as_ref().map(Vec::len))?;
        let past_k = get(4).map(|t| f32_data(t, "past_key")).transpose()?;
        let past_v = get(5).map(|t| f32_data(t, "past_value")).transpose()?;
        let q = heads_first(q, d.rank3, (d.b, d.s, d.hq, d.d));
        let k = heads_first(k, d.rank3, (d.b, d.t_new, d.hkv, d.d));
        let v = heads_first(v, d.rank3, (d.b, d.t_new, d.hkv, d.dv));
        let t = d.t();
        let present_k = concat_seq(past_k, &k, (d.b * d.hkv, d.past, d.t_new, d.d));
        let present_v = concat_seq(past_v, &v, (d.b * d.hkv, d.past, d.t_new, d.dv));

        let mask = match get(3) {
            None => None,
            Some(m) => {
                let (strides, cols) = Self::mask_layout(&m.shape, &d)?;
                let data = match &m.data {
                    Data::Bool(b) => MaskData::Bool(b),
                    Data::F32(f) => MaskData::F32(f),
                    _ => return Err(OpError::mismatch("attn_mask must be bool or float32")),
                };
                Some((data, strides, cols))
            }
        };
        let offsets = (0..d.b)
            .map(|b| match &nonpad {
                Some(n) => (n[b] - d.s as i64, n[b].clamp(0, t as i64) as usize),
                None => (d.past as i64, t),
            })
            .collect();
        let bias = Bias { mask, causal: self.causal, window: self.window, offsets };

        // √scale on both sides, rounded to float32 as the reference does.
        let scale = self.scale.map_or(1.0 / (d.d as f64).sqrt(), f64::from);
        let root = scale.sqrt() as f32;
        let qs: Vec<f32> = q.iter().map(|x| x * root).collect();
        let ks: Vec<f32> = present_k.iter().map(|x| x * root).collect();
        let reps = d.hq / d.hkv;
        let mut y = vec![0f32; checked_numel(&[d.b, d.hq, d.s, d.dv])?];
        let want_qk = self.outputs >= 4;
        let mut qk_out = if want_qk { vec![0f32; checked_numel(&[d.b, d.hq, d.s, t])?] } else { Vec::new() };
        // One task per (batch, query head), each writing its own rows of Y (and of output 3):
        // the same products in the same order whatever the threads.
        let mut heads: Vec<(&mut [f32], Option<&mut [f32]>)> = if want_qk {
            y.chunks_mut(d.s * d.dv).zip(qk_out.chunks_mut(d.s * t).map(Some)).collect()
        } else {
            y.chunks_mut(d.s * d.dv).map(|yh| (yh, None)).collect()
        };
        let (qs, ks, vs) = (&qs, &ks, &present_v);
        parallel::try_for_each_mut(&mut heads, |bh, (yh, qk)| -> Result<(), OpError> {
            let (b, h) = (bh / d.hq, bh % d.hq);
            let kv = b * d.hkv + h / reps;
            let qh = &qs[bh * d.s * d.d..][..d.s * d.d];
            let kh = &ks[kv * t * d.d..][..t * d.d];
            let vh = &vs[kv * t * d.dv..][..t * d.dv];
            let mut scores = vec![0f32; d.s * t];
            let mut bias_row = vec![0f32; t];
            sgemm(
                1.0,
                MatRef::row_major(qh, d.s, d.d)?,
                MatRef::row_major(kh, t, d.d)?.t(),
                Init::Zero,
                &mut scores,
                t,
            )?;
            self.probabilities(&bias, (b, h), &mut scores, &mut bias_row, qk.as_deref_mut(), t);
            sgemm(1.0, MatRef::row_major(&scores, d.s, t)?, MatRef::row_major(vh, t, d.dv)?, Init::Zero, yh, d.dv)
        })?;
        drop(heads);
        // [B, Hq, S, Dv] → [B, S, Hq·Dv]: the same swap of the middle axes.
        let y = if d.rank3 { heads_first(&y, true, (d.b, d.hq, d.s, d.dv)) } else { y };
        let shapes = self.shapes(&d);
        let data = [y, present_k, present_v, qk_out];
        shapes.into_iter().zip(data).map(|(s, v)| f32_output(s, v)).collect()
    }
}

impl Attention {
    /// Turns one head's `[S, T]` scores into probabilities in place: softcap, bias, softmax,
    /// rows masked entirely by the bias to zeros; `qk` takes output 3 in the node's mode.
    fn probabilities(
        &self,
        bias: &Bias<'_>,
        (b, h): (usize, usize),
        scores: &mut [f32],
        bias_row: &mut [f32],
        mut qk: Option<&mut [f32]>,
        t: usize,
    ) {
        for (i, row) in scores.chunks_exact_mut(t).enumerate() {
            if self.softcap > 0.0 {
                row.iter_mut().for_each(|x| *x = (*x / self.softcap).tanh() * self.softcap);
            }
            if self.qk_mode <= 1 {
                if let Some(qk) = qk.as_deref_mut() {
                    qk[i * t..(i + 1) * t].copy_from_slice(row);
                }
            }
            bias.row((b, h, i), bias_row);
            row.iter_mut().zip(bias_row.iter()).for_each(|(x, &c)| *x += c);
            if self.qk_mode == 2 {
                if let Some(qk) = qk.as_deref_mut() {
                    qk[i * t..(i + 1) * t].copy_from_slice(row);
                }
            }
            let all_masked = bias_row.iter().all(|&c| c == f32::NEG_INFINITY);
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if all_masked || t == 0 {
                row.fill(0.0);
            } else {
                let safe = if max == f32::NEG_INFINITY { 0.0 } else { max };
                let mut sum = 0.0f32;
                for x in row.iter_mut() {
                    *x = (*x - safe).exp();
                    sum += *x;
                }
                let sum = if sum == 0.0 { 1.0 } else { sum };
                row.iter_mut().for_each(|x| *x /= sum);
            }
            if self.qk_mode == 3 {
                if let Some(qk) = qk.as_deref_mut() {
                    qk[i * t..(i + 1) * t].copy_from_slice(row);
                }
            }
        }
    }
}
