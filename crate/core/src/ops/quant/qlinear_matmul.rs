//! `QLinearMatMul` and `MatMulInteger`: matrix products of 8-bit tensors with exact `i32`
//! accumulation, on the packed int8 GEMM ([`super::qgemm`]).
//!
//! - `QLinearMatMul` (opset 10): `y = saturate(round(Σ (a − za)(b − zb) · sa·sb/sy) + zy)`.
//! - `MatMulInteger` (opset 10): the exact `i32` sums.
//!
//! `A` is `[…, M, K]` and `B` is `[K, N]` or `[…, K, N]` with the same leading dims (numpy
//! broadcasting of distinct batch shapes is not supported and says so). `a`'s scale and
//! zero-point are per tensor; `b`'s per tensor or per column (`N` values).

use super::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use super::{params, qtype_of};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built `QLinearMatMul` (`integer == false`) or `MatMulInteger` node.
#[derive(Debug, Clone)]
pub struct QMatMul {
    integer: bool,
}

/// Builds `QLinearMatMul`.
pub fn build_qlinear(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(QMatMul { integer: false }))
}

/// Builds `MatMulInteger`.
pub fn build_integer(_node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(QMatMul { integer: true }))
}

/// A product resolved against shapes.
struct Geometry {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    out: Vec<usize>,
    /// Whether B has the batch dims (else it is 2-D and shared).
    b_batched: bool,
}

/// The geometry for A and B shapes.
fn geometry(a: &[usize], b: &[usize]) -> Result<Geometry, OpError> {
    if a.len() < 2 || b.len() < 2 {
        return Err(OpError::mismatch(format!("A and B must have rank ≥ 2, got {a:?} and {b:?}")));
    }
    let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
    let (kb, n) = (b[b.len() - 2], b[b.len() - 1]);
    if k != kb {
        return Err(OpError::mismatch(format!("A {a:?} and B {b:?}: inner dimensions {k} and {kb} differ")));
    }
    let lead = &a[..a.len() - 2];
    let b_batched = b.len() > 2;
    if b_batched && &b[..b.len() - 2] != lead {
        return Err(OpError::unsupported(format!(
            "B {b:?} must be 2-D or have A's leading dimensions {lead:?} (other broadcasting is not supported)"
        )));
    }
    let batch = lead.iter().product();
    let mut out = lead.to_vec();
    out.extend([m, n]);
    Ok(Geometry { batch, m, k, n, out, b_batched })
}

fn bytes_at(t: &Tensor, off: usize, len: usize) -> Result<Bytes<'_>, OpError> {
    match &t.data {
        Data::U8(v) => Ok(Bytes::U8(&v[off..off + len])),
        Data::I8(v) => Ok(Bytes::I8(&v[off..off + len])),
        _ => Err(OpError::mismatch(format!("expected uint8 or int8 data, got {:?}", t.dtype()))),
    }
}

impl QMatMul {
    /// Input positions of (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp).
    fn slots(&self) -> [Option<usize>; 8] {
        if self.integer {
            [Some(0), None, Some(2), Some(1), None, Some(3), None, None]
        } else {
            [Some(0), Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), Some(7)]
        }
    }
}

impl Op for QMatMul {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let s = self.slots();
        let a = input_fact(inputs, s[0].unwrap_or(0))?;
        let b = input_fact(inputs, s[3].unwrap_or(1))?;
        for (t, what) in [(a, "A"), (b, "B")] {
            qtype_of(t.dtype).map_err(|e| e.context(what))?;
        }
        let out = geometry(&a.shape, &b.shape)?.out;
        let dtype = if self.integer {
            DType::I32
        } else {
            let d = s[7].and_then(|i| inputs.get(i).copied().flatten()).map_or(DType::U8, |f| f.dtype);
            qtype_of(d).map_err(|e| e.context("y_zero_point"))?;
            d
        };
        Ok(vec![Fact::new(dtype, out)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let s = self.slots();
        let get = |i: Option<usize>| i.and_then(|i| inputs.get(i).copied().flatten());
        let a = input(inputs, s[0].unwrap_or(0))?;
        let b = input(inputs, s[3].unwrap_or(1))?;
        let Geometry { batch, m, k, n, out: out_shape, b_batched } = geometry(&a.shape, &b.shape)?;
        let one = Tensor::scalar_f32(1.0);
        let typed_zp = |i: Option<usize>, want: DType, what: &str| -> Result<Option<&Tensor>, OpError> {
            match get(i) {
                Some(z) if z.dtype() != want => {
                    Err(OpError::mismatch(format!("{what} is {:?} but its data is {want:?}", z.dtype())))
                }
                z => Ok(z),
            }
        };
        let pa = params(
            &[1],
            0,
            get(s[1]).unwrap_or(&one),
            typed_zp(s[2], a.dtype(), "a_zero_point")?,
            Some(qtype_of(a.dtype())?),
        )
        .map_err(|e| e.map_message(|m| format!("a: {m} (a must be quantized per tensor)")))?;
        if pa.per_channel.len() != 1 {
            return Err(OpError::unsupported("a_scale and a_zero_point must be scalars (per tensor)"));
        }
        // b: per tensor, or per column (the last axis).
        let b_axis = b.shape.len() as i64 - 1;
        let pb = params(
            &b.shape,
            b_axis,
            get(s[4]).unwrap_or(&one),
            typed_zp(s[5], b.dtype(), "b_zero_point")?,
            Some(qtype_of(b.dtype())?),
        )?;
        let zb: Vec<i32> = pb.per_channel.iter().map(|p| p.zero_point).collect();
        let sa = pa.per_channel[0].scale;
        let n_out = out_shape.iter().product::<usize>();
        let (mut data, scale, zy, lo, hi) = if self.integer {
            (Data::I32(vec![0; n_out]), vec![1.0], 0, 0, 0)
        } else {
            let zy_t = get(s[7]);
            let dy = zy_t.map_or(DType::U8, |z| z.dtype());
            let py = params(&[1], 0, input(inputs, 6)?, zy_t, Some(qtype_of(dy)?))?;
            if py.per_channel.len() != 1 {
                return Err(OpError::malformed("y_scale and y_zero_point must be scalars (per tensor)"));
            }
            let sy = py.per_channel[0].scale;
            let scale: Vec<f32> = pb.per_channel.iter().map(|p| sa * p.scale / sy).collect();
            let (d, lo, hi) = match dy {
                DType::U8 => (Data::U8(vec![0; n_out]), 0, 255),
                _ => (Data::I8(vec![0; n_out]), -128, 127),
            };
            (d, scale, py.per_channel[0].zero_point, lo, hi)
        };
        for bi in 0..batch {
            let am = QMat::row_major(bytes_at(a, bi * m * k, m * k)?, m, k)?;
            let packed = PackedA::new(&am)?;
            let boff = if b_batched { bi * k * n } else { 0 };
            let bm = QMat::row_major(bytes_at(b, boff, k * n)?, k, n)?;
            let at = bi * m * n;
            let out = match &mut data {
                Data::I32(v) => Out::I32(&mut v[at..]),
                Data::U8(v) => Out::U8 { out: &mut v[at..], zero_point: zy, lo, hi },
                Data::I8(v) => Out::I8 { out: &mut v[at..], zero_point: zy, lo, hi },
                _ => unreachable!("created above as one of three types"),
            };
            let ep = Epilogue {
                za: PerIndex::All(pa.per_channel[0].zero_point),
                zb: if zb.len() == 1 { PerIndex::All(zb[0]) } else { PerIndex::Each(&zb) },
                bias: None,
                scale: &scale,
                scale_per_row: false,
                row_max: None,
                out,
                ldc: n,
            };
            qgemm(&packed, &bm, ep)?;
        }
        Ok(vec![Tensor { shape: out_shape, data }])
    }
}
