//! QuantizeLinear: `y = clamp(round_half_even(x / scale) + zero_point)`, per tensor or per axis;
//! the output type is the zero-point's (uint8 when it is omitted).

use super::{params, qdq_qtype_of as qtype_of};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};
use crate::parallel;
use crate::quant::{QParams, QType};

/// QuantizeLinear with its `axis` (default 1).
#[derive(Debug, Clone)]
pub struct QuantizeLinear {
    axis: i64,
}

/// Builds QuantizeLinear; blocked quantization (opset 21 `block_size`) is rejected.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    if node.attrs.int("block_size", 0) != 0 {
        return Err(OpError::unsupported("blocked quantization (block_size) is not supported"));
    }
    Ok(Box::new(QuantizeLinear { axis: node.attrs.int("axis", 1) }))
}

fn out_type(zp: Option<&Fact>) -> Result<DType, OpError> {
    let d = zp.map_or(DType::U8, |f| f.dtype);
    qtype_of(d)?;
    Ok(d)
}

impl Op for QuantizeLinear {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.dtype != DType::F32 {
            return Err(OpError::mismatch(format!("input must be float32, got {:?}", x.dtype)));
        }
        Ok(vec![Fact::new(out_type(inputs.get(2).copied().flatten())?, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let data = x.as_f32().map_err(OpError::internal)?;
        let zp = inputs.get(2).copied().flatten();
        let dtype = zp.map_or(DType::U8, |z| z.dtype());
        let qt = qtype_of(dtype)?;
        let p = params(&x.shape, self.axis, input(inputs, 1)?, zp, Some(qt))?;
        #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
        if vector_codes() {
            let data = match dtype {
                DType::U8 => Some(Data::U8(codes8(data, p.split, &p.per_channel, qt))),
                DType::I8 => Some(Data::I8(codes8(data, p.split, &p.per_channel, qt))),
                _ => None,
            };
            if let Some(data) = data {
                return Ok(vec![Tensor { shape: x.shape.clone(), data }]);
            }
        }
        let q = codes(data, p.split, &p.per_channel, qt);
        let data = match dtype {
            DType::U8 => Data::U8(q.into_iter().map(|v| v as u8).collect()),
            DType::U16 => Data::U16(q.into_iter().map(|v| v as u16).collect()),
            DType::I16 => Data::I16(q.into_iter().map(|v| v as i16).collect()),
            DType::U4 => Data::U4(q.into_iter().map(|v| v as u8).collect()),
            DType::I4 => Data::I4(q.into_iter().map(|v| v as i8).collect()),
            _ => Data::I8(q.into_iter().map(|v| v as i8).collect()),
        };
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}

/// The codes of `data` (`split` = outer × channels × inner; channel `c` quantized with
/// `per_channel[c]`), in runs of elements, one task each.
pub(super) fn codes(data: &[f32], split: (usize, usize, usize), per_channel: &[QParams], qt: QType) -> Vec<i32> {
    let (outer, ch, inner) = split;
    let n = data.len().min(outer * ch * inner);
    let mut q = vec![0i32; n];
    let parts = parallel::split(n, parallel::tasks(n * 4, usize::MAX), 1024);
    let mut pieces: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(&mut q, 1, &parts)).collect();
    parallel::for_each_mut(&mut pieces, |_, (r, out)| {
        let mut i = r.start;
        while i < r.end {
            // The run of one channel's block that holds element i.
            let block = i / inner;
            let end = ((block + 1) * inner).min(r.end);
            let Some(pc) = per_channel.get(block % ch) else { return };
            for (o, &v) in out[i - r.start..end - r.start].iter_mut().zip(&data[i..end]) {
                *o = pc.quantize(v, qt);
            }
            i = end;
        }
    });
    q
}

/// Whether [`codes8`] has vector lanes here: AVX2 on x86-64 (where the CPU has it), SIMD128 in
/// the browser build.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
fn vector_codes() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::simd::use_avx2();
    #[cfg(target_arch = "wasm32")]
    return true;
}

/// [`codes`] for 8-bit types straight into `T`, one channel's run at a time through the AVX2
/// or SIMD128 lanes (the same codes).
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
fn codes8<T: super::qgemm::Widen>(
    data: &[f32],
    split: (usize, usize, usize),
    per_channel: &[QParams],
    qt: QType,
) -> Vec<T> {
    let (outer, ch, inner) = split;
    let n = data.len().min(outer * ch * inner);
    let mut q = vec![T::from_i32(0); n];
    let parts = parallel::split(n, parallel::tasks(n * 4, usize::MAX), 1024);
    let mut pieces: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(&mut q, 1, &parts)).collect();
    let (lo, hi) = (qt.qmin(), qt.qmax());
    parallel::for_each_mut(&mut pieces, |_, (r, out)| {
        let mut i = r.start;
        while i < r.end {
            let block = i / inner;
            let end = ((block + 1) * inner).min(r.end);
            let Some(pc) = per_channel.get(block % ch) else { return };
            let dst = &mut out[i - r.start..end - r.start];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `codes8` runs only where `use_avx2` said the CPU has AVX2.
            unsafe {
                super::simd::avx2::quantize_run(&data[i..end], pc.scale, pc.zero_point, lo, hi, dst)
            };
            #[cfg(target_arch = "wasm32")]
            super::simd::wasm128::quantize_run(&data[i..end], pc.scale, pc.zero_point, lo, hi, dst);
            i = end;
        }
    });
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OpKind;
    use crate::ops::quant::dequantize_linear;

    #[test]
    fn four_bit_codes_saturate_at_the_nibble_range() {
        let x = Tensor::f32(vec![4], vec![-1.0, 0.26, 0.7, 3.0]).unwrap();
        let scale = Tensor::scalar_f32(0.1);
        let q = QuantizeLinear { axis: 1 }
            .eval(&[Some(&x), Some(&scale), Some(&Tensor::i4(vec![], vec![0]).unwrap())])
            .unwrap()
            .remove(0);
        assert_eq!(q.data, Data::I4(vec![-8, 3, 7, 7]));
        let q = QuantizeLinear { axis: 1 }
            .eval(&[Some(&x), Some(&scale), Some(&Tensor::u4(vec![], vec![8]).unwrap())])
            .unwrap()
            .remove(0);
        assert_eq!(q.data, Data::U4(vec![0, 11, 15, 15]));
        let dq = dequantize_op();
        let y = dq.eval(&[Some(&q), Some(&scale), Some(&Tensor::u4(vec![], vec![8]).unwrap())]).unwrap().remove(0);
        assert_eq!(y.as_f32().unwrap(), &[-0.8, 0.3, 0.7, 0.7].map(|v: f32| (v / 0.1).round() * 0.1));
    }

    /// A DequantizeLinear at opset 21 (4- and 16-bit codes).
    fn dequantize_op() -> Box<dyn crate::ops::Op> {
        let node = Node {
            name: "dq".into(),
            op_type: OpKind::DequantizeLinear.into(),
            inputs: vec![],
            outputs: vec![],
            attrs: Default::default(),
            fused: Default::default(),
        };
        dequantize_linear::build(&node, &BuildCtx { opset: 21 }).unwrap()
    }

    #[test]
    fn sixteen_bit_codes_round_trip_within_half_a_step() {
        let x = Tensor::f32(vec![5], vec![-1.0, -0.3, 0.0, 0.7, 3.0]).unwrap();
        let scale = Tensor::scalar_f32(2.0 / 65535.0);
        for zp in [Tensor::u16(vec![], vec![32768]).unwrap(), Tensor::i16(vec![], vec![0]).unwrap()] {
            let q = QuantizeLinear { axis: 1 }.eval(&[Some(&x), Some(&scale), Some(&zp)]).unwrap().remove(0);
            assert_eq!(q.dtype(), zp.dtype());
            // 3.0 is past the range: saturates at the type's maximum.
            assert_eq!(q.to_i64_vec().unwrap()[4], if zp.dtype() == DType::U16 { 65535 } else { 32767 });
            let dq = dequantize_op();
            let y = dq.eval(&[Some(&q), Some(&scale), Some(&zp)]).unwrap().remove(0);
            for (a, b) in y.as_f32().unwrap().iter().zip([-1.0, -0.3, 0.0, 0.7]) {
                assert!((a - b).abs() <= 1.0 / 65535.0 + 1e-7, "{a} vs {b}");
            }
        }
    }
}
