//! `com.microsoft::QGemm`: `Y = alpha · A′·B′ + C` on 8-bit `A` and `B` (`A′`, `B′` transposed by
//! `transA`, `transB`) with the exact int32 sums `Σ (a − zA)(b − zB)` and an int32 bias `C`
//! (broadcast to `[M, N]`), as onnxruntime's CPU kernel computes it: with `y_scale`, the 8-bit
//! codes `clamp(round_half_even(f32(acc) · s) + zY)` with `s = alpha · sA · sB[n] / sY` in
//! float32 (MLAS's requantization); without, the float `f32(acc) · alpha · sA · sB[n]`. `A` per
//! tensor; `B` per tensor or per column (`N` scales and zero points). Inputs `A, a_scale,
//! a_zero_point, B, b_scale, b_zero_point[, C][, y_scale, y_zero_point]`. onnxruntime's quantizer
//! writes it for Gemm (classifier and box heads) in its QOperator format.

use super::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use super::{params, qtype_of};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::math::broadcast::broadcast_shapes;
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built QGemm.
#[derive(Debug, Clone)]
pub struct QGemm {
    alpha: f32,
    trans_a: bool,
    trans_b: bool,
}

/// Builds QGemm (`alpha`, `transA`, `transB`; onnxruntime's kernel has no `beta`).
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let n = node.inputs.len();
    if !(6..=9).contains(&n) {
        return Err(OpError::malformed(format!(
            "QGemm takes 6 to 9 inputs (A, a_scale, a_zero_point, B, b_scale, b_zero_point[, C, y_scale, y_zero_point]), got {n}"
        )));
    }
    let alpha = node.attrs.float("alpha", 1.0);
    if !alpha.is_finite() {
        return Err(OpError::malformed(format!("alpha {alpha} is not finite")));
    }
    Ok(Box::new(QGemm { alpha, trans_a: node.attrs.int("transA", 0) != 0, trans_b: node.attrs.int("transB", 0) != 0 }))
}

impl QGemm {
    /// `(M, K, N)` from A's and B's shapes.
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize), OpError> {
        let (&[a0, a1], &[b0, b1]) = (a, b) else {
            return Err(OpError::mismatch(format!("A and B must be 2-D, got {a:?} and {b:?}")));
        };
        let (m, k) = if self.trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if self.trans_b { (b1, b0) } else { (b0, b1) };
        if k != kb {
            return Err(OpError::mismatch(format!(
                "A {a:?} and B {b:?} (transA {}, transB {}): inner dimensions {k} and {kb} differ",
                self.trans_a, self.trans_b
            )));
        }
        Ok((m, k, n))
    }

    fn check_c(c: &[usize], m: usize, n: usize) -> Result<(), OpError> {
        if broadcast_shapes(c, &[m, n]).ok().as_deref() != Some(&[m, n][..]) {
            return Err(OpError::mismatch(format!("C {c:?} does not broadcast to the output [{m}, {n}]")));
        }
        Ok(())
    }
}

fn bytes(t: &Tensor) -> Result<Bytes<'_>, OpError> {
    match &t.data {
        Data::U8(v) => Ok(Bytes::U8(v)),
        Data::I8(v) => Ok(Bytes::I8(v)),
        _ => Err(OpError::mismatch(format!("expected uint8 or int8 data, got {:?}", t.dtype()))),
    }
}

impl Op for QGemm {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (a, b) = (input_fact(inputs, 0)?, input_fact(inputs, 3)?);
        for (t, what) in [(a, "A"), (b, "B")] {
            qtype_of(t.dtype).map_err(|e| e.context(what))?;
        }
        let (m, _, n) = self.dims(&a.shape, &b.shape)?;
        if let Some(c) = inputs.get(6).copied().flatten() {
            if c.dtype != DType::I32 {
                return Err(OpError::mismatch(format!("C must be int32, got {:?}", c.dtype)));
            }
            Self::check_c(&c.shape, m, n)?;
        }
        let dtype = match (inputs.get(7).copied().flatten(), inputs.get(8).copied().flatten()) {
            (None, _) => DType::F32,
            (Some(_), Some(z)) => z.dtype,
            (Some(_), None) => DType::U8,
        };
        if dtype != DType::F32 {
            qtype_of(dtype).map_err(|e| e.context("y_zero_point"))?;
        }
        Ok(vec![Fact::new(dtype, vec![m, n])])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let get = |i: usize| inputs.get(i).copied().flatten();
        let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
        let (m, k, n) = self.dims(&a.shape, &b.shape)?;
        let pa = params(&[1], 0, input(inputs, 1)?, get(2), Some(qtype_of(a.dtype())?))?;
        if pa.per_channel.len() != 1 {
            return Err(OpError::unsupported("a_scale and a_zero_point must be scalars (per tensor)"));
        }
        let b_axis = if self.trans_b { 0 } else { 1 };
        let pb = params(&b.shape, b_axis, input(inputs, 4)?, get(5), Some(qtype_of(b.dtype())?))?;
        let zb: Vec<i32> = pb.per_channel.iter().map(|p| p.zero_point).collect();
        // The exact sums.
        let am = if self.trans_a { QMat::new(bytes(a)?, m, k, 1, m)? } else { QMat::row_major(bytes(a)?, m, k)? };
        let bm = if self.trans_b { QMat::new(bytes(b)?, k, n, 1, k)? } else { QMat::row_major(bytes(b)?, k, n)? };
        let mut acc = vec![0i32; m * n];
        let ep = Epilogue {
            za: PerIndex::All(pa.per_channel[0].zero_point),
            zb: if zb.len() == 1 { PerIndex::All(zb[0]) } else { PerIndex::Each(&zb) },
            bias: None,
            scale: &[1.0],
            scale_per_row: false,
            row_max: None,
            out: Out::I32(&mut acc),
            ldc: n,
        };
        qgemm(&PackedA::new(&am)?, &bm, ep)?;
        // C, broadcast, added in int32 (onnxruntime starts its sums from it).
        if let Some(c) = get(6) {
            Self::check_c(&c.shape, m, n)?;
            let Data::I32(cv) = &c.data else {
                return Err(OpError::mismatch(format!("C must be int32, got {:?}", c.dtype())));
            };
            let (cm, cn) = match c.shape.as_slice() {
                [] => (1, 1),
                [x] => (1, *x),
                [r, x] => (*r, *x),
                _ => (1, 1),
            };
            for (i, row) in acc.chunks_mut(n.max(1)).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = v.wrapping_add(cv[(i % cm) * cn + j % cn]);
                }
            }
        }
        // The output scale per column, as onnxruntime: (alpha · sA · sB[j]) / sY.
        let y_scale = get(7);
        let sy = match y_scale {
            Some(t) => Some(params(&[1], 0, t, get(8), Some(qtype_of(get(8).map_or(DType::U8, |z| z.dtype()))?))?),
            None => None,
        };
        let scale: Vec<f32> = pb
            .per_channel
            .iter()
            .map(|p| {
                let s = self.alpha * pa.per_channel[0].scale * p.scale;
                sy.as_ref().map_or(s, |py| s / py.per_channel[0].scale)
            })
            .collect();
        let col_scale = |j: usize| if scale.len() == 1 { scale[0] } else { scale[j] };
        let data = match sy {
            None => Data::F32(acc.iter().enumerate().map(|(i, &v)| v as f32 * col_scale(i % n.max(1))).collect()),
            Some(py) => {
                let dy = get(8).map_or(DType::U8, |z| z.dtype());
                let qt = qtype_of(dy)?;
                let zy = py.per_channel[0].zero_point;
                let (lo, hi) = ((qt.qmin() - zy) as f32, (qt.qmax() - zy) as f32);
                let q: Vec<i32> = acc
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        crate::quant::round_half_even((v as f32 * col_scale(i % n.max(1))).clamp(lo, hi)) + zy
                    })
                    .collect();
                super::codes_data(q, dy)
            }
        };
        Ok(vec![Tensor { shape: vec![m, n], data }])
    }
}
