//! `qplay.tfl.TransposeConv`: TFLite's int8 TRANSPOSE_CONV on NHWC codes, as LiteRT's reference
//! kernel computes it (`reference_integer_ops::TransposeConv`): every input code, less the input
//! zero point, times every tap of the OHWI weights (zero points 0) is added into an int32 sum at
//! `out = in · stride − pad + tap` (those outside the output are dropped); then the int32 bias,
//! the fixed-point multiplier and shift of `x_scale · w_scale / y_scale` per output channel (in
//! double, as `PopulateConvolutionQuantizationParams`), the output zero point and the fused
//! activation's range. Integer sums are the same in any order, so the scatter is computed as a
//! gather per output here, bit for bit the reference's.

use super::conv::{conv_quant, ConvQuant};
use super::fixed::mbqm;
use super::{attr_i32, i8_data};
use crate::model::{DType, Data, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// The op type.
pub const TRANSPOSE_CONV: &str = "qplay.tfl.TransposeConv";

/// A built int8 transposed convolution.
#[derive(Debug)]
pub struct TflTransposeConv {
    /// `[N, H, W, C]` of the output (TRANSPOSE_CONV's `output_shape`).
    pub out_shape: [usize; 4],
    /// `[stride_h, stride_w]`.
    pub strides: [usize; 2],
    /// `[top, left]`: TFLite's begin padding.
    pub pads: [usize; 2],
    /// Input zero point.
    pub x_zp: i32,
    /// Output zero point.
    pub y_zp: i32,
    /// Per output channel (or one): `(multiplier, shift)`.
    pub requant: Vec<(i32, i32)>,
    /// The fused activation's range.
    pub act: (i32, i32),
}

/// Builds `qplay.tfl.TransposeConv` (`output_shape`, `strides`, `pads` [top, left], `x_scale`,
/// `x_zp`, `w_scales`, `y_scale`, `y_zp`, `act_min`, `act_max`); inputs: NHWC int8 codes, OHWI
/// int8 weights, an optional int32 bias.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let get = |name: &str, n: usize, min: i64| -> Result<Vec<usize>, OpError> {
        match node.attrs.ints(name) {
            Some(v) if v.len() == n && v.iter().all(|&x| (min..1 << 20).contains(&x)) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            v => Err(OpError::malformed(format!("{name} {v:?} must be {n} small values of at least {min}"))),
        }
    };
    let (o, s, p) = (get("output_shape", 4, 1)?, get("strides", 2, 1)?, get("pads", 2, 0)?);
    let ConvQuant { requant, act, .. } = conv_quant(node, false)?;
    Ok(Box::new(TflTransposeConv {
        out_shape: [o[0], o[1], o[2], o[3]],
        strides: [s[0], s[1]],
        pads: [p[0], p[1]],
        x_zp: attr_i32(node, "x_zp")?,
        y_zp: attr_i32(node, "y_zp")?,
        requant,
        act,
    }))
}

impl TflTransposeConv {
    /// Checks the input and weight shapes against the output: `(x [N,H,W,I], w [O,kh,kw,I])`.
    fn check(&self, x: &[usize], w: &[usize], bias: Option<&[usize]>) -> Result<(), OpError> {
        let [n, _, _, i] =
            <[usize; 4]>::try_from(x).map_err(|_| OpError::mismatch(format!("input {x:?} must be NHWC")))?;
        let [o, _, _, wi] =
            <[usize; 4]>::try_from(w).map_err(|_| OpError::mismatch(format!("weights {w:?} must be OHWI")))?;
        if wi != i || o != self.out_shape[3] || n != self.out_shape[0] {
            return Err(OpError::mismatch(format!(
                "input {x:?} and weights {w:?} do not give the output {:?}",
                self.out_shape
            )));
        }
        if self.requant.len() != 1 && self.requant.len() != o {
            return Err(OpError::mismatch(format!("{} weight scales for {o} output channels", self.requant.len())));
        }
        if let Some(b) = bias {
            if b.iter().product::<usize>() != o {
                return Err(OpError::mismatch(format!("bias {b:?} for {o} output channels")));
            }
        }
        Ok(())
    }
}

impl Op for TflTransposeConv {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let (x, w) = (input_fact(inputs, 0)?, input_fact(inputs, 1)?);
        if x.dtype != DType::I8 || w.dtype != DType::I8 {
            return Err(OpError::mismatch("TRANSPOSE_CONV takes int8 codes and int8 weights"));
        }
        let bias = inputs.get(2).copied().flatten();
        if bias.is_some_and(|b| b.dtype != DType::I32) {
            return Err(OpError::mismatch("the bias must be int32"));
        }
        self.check(&x.shape, &w.shape, bias.map(|b| b.shape.as_slice()))?;
        Ok(vec![Fact::new(DType::I8, self.out_shape.to_vec())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let bias = inputs.get(2).copied().flatten();
        self.check(&x.shape, &w.shape, bias.map(|b| b.shape.as_slice()))?;
        let (xv, wv) = (i8_data(x, "the input")?, i8_data(w, "the weights")?);
        let bv: Option<&[i32]> = match bias.map(|b| &b.data) {
            Some(Data::I32(v)) => Some(v),
            Some(_) => return Err(OpError::mismatch("the bias must be int32")),
            None => None,
        };
        let [n, oh, ow, oc] = self.out_shape;
        let [_, h, wid, ic] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
        let [kh, kw] = [w.shape[1], w.shape[2]];
        let [sh, sw] = self.strides;
        let [pt, pl] = self.pads;
        // The taps of one output row / column: (input index, tap index) with
        // in · stride − pad + tap = out.
        let taps = |out: usize, len: usize, k: usize, s: usize, p: usize| -> Vec<(usize, usize)> {
            (0..k)
                .filter_map(|t| {
                    let v = (out + p).checked_sub(t)?;
                    (v % s == 0 && v / s < len).then_some((v / s, t))
                })
                .collect()
        };
        let mut y = vec![0i8; n * oh * ow * oc];
        let mut acc = vec![0i32; oc];
        for b in 0..n {
            for oy in 0..oh {
                let ty = taps(oy, h, kh, sh, pt);
                for ox in 0..ow {
                    let tx = taps(ox, wid, kw, sw, pl);
                    acc.iter_mut().for_each(|a| *a = 0);
                    for &(iy, ky) in &ty {
                        for &(ix, kx) in &tx {
                            let xs = &xv[((b * h + iy) * wid + ix) * ic..][..ic];
                            for (o, a) in acc.iter_mut().enumerate() {
                                let ws = &wv[((o * kh + ky) * kw + kx) * ic..][..ic];
                                let dot = xs.iter().zip(ws).fold(0i32, |s, (&xq, &wq)| {
                                    s.wrapping_add((xq as i32 - self.x_zp).wrapping_mul(wq as i32))
                                });
                                *a = a.wrapping_add(dot);
                            }
                        }
                    }
                    let at = ((b * oh + oy) * ow + ox) * oc;
                    for (o, &a) in acc.iter().enumerate() {
                        let a = a.wrapping_add(bv.map_or(0, |v| v[o]));
                        let (m, shift) = self.requant[if self.requant.len() == 1 { 0 } else { o }];
                        let v = mbqm(a, m, shift).saturating_add(self.y_zp);
                        y[at + o] = v.clamp(self.act.0, self.act.1).clamp(-128, 127) as i8;
                    }
                }
            }
        }
        Ok(vec![Tensor { shape: self.out_shape.to_vec(), data: Data::I8(y) }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, Attrs};

    fn node(out: [i64; 4]) -> Node {
        let attrs = [
            ("output_shape", Attr::Ints(out.to_vec())),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![0, 0])),
            ("x_scale", Attr::Float(0.5)),
            ("x_zp", Attr::Int(1)),
            ("w_scales", Attr::Floats(vec![1.0])),
            ("y_scale", Attr::Float(0.5)),
            ("y_zp", Attr::Int(-3)),
            ("act_min", Attr::Int(-128)),
            ("act_max", Attr::Int(127)),
        ];
        Node {
            name: "t".into(),
            op_type: TRANSPOSE_CONV.into(),
            inputs: vec![],
            outputs: vec![],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
            fused: Default::default(),
        }
    }

    fn t(shape: &[usize], v: Vec<i8>) -> Tensor {
        Tensor { shape: shape.to_vec(), data: Data::I8(v) }
    }

    /// A 2×2 kernel at stride 2 tiles the output: each output is one input times one tap
    /// (multiplier 1: `x_scale · w_scale / y_scale = 1`), plus the bias and the zero point.
    #[test]
    fn stride_two_tiles_each_input_over_the_kernel() {
        let op = build(&node([1, 4, 4, 1]), &BuildCtx { opset: 17 }).unwrap();
        let x = t(&[1, 2, 2, 1], vec![2, 3, 4, 5]); // x − zp = 1, 2, 3, 4
        let w = t(&[1, 2, 2, 1], vec![1, -1, 2, 0]);
        let bias = Tensor { shape: vec![1], data: Data::I32(vec![10]) };
        let y = op.eval(&[Some(&x), Some(&w), Some(&bias)]).unwrap().remove(0);
        let Data::I8(v) = &y.data else { panic!() };
        // Output (oy, ox) = x[oy/2][ox/2] · w[oy%2][ox%2] + 10 − 3.
        let want: Vec<i8> = (0..16)
            .map(|i| {
                let (oy, ox) = (i / 4, i % 4);
                let xv = [1, 2, 3, 4][(oy / 2) * 2 + ox / 2];
                let wv = [1, -1, 2, 0][(oy % 2) * 2 + ox % 2];
                (xv * wv + 10 - 3) as i8
            })
            .collect();
        assert_eq!(v, &want);
    }

    #[test]
    fn mismatched_shapes_are_errors_not_panics() {
        let op = build(&node([1, 4, 4, 1]), &BuildCtx { opset: 17 }).unwrap();
        let x = t(&[1, 2, 2, 2], vec![0; 8]);
        let w = t(&[1, 2, 2, 1], vec![0; 4]);
        assert!(op.eval(&[Some(&x), Some(&w)]).is_err(), "input channels differ");
        let x = t(&[1, 2, 2, 1], vec![0; 4]);
        let bias = Tensor { shape: vec![3], data: Data::I32(vec![0; 3]) };
        assert!(op.eval(&[Some(&x), Some(&w), Some(&bias)]).is_err(), "bias of 3 for 1 channel");
        let mut bad = node([1, 4, 4, 1]);
        bad.attrs.0.remove("output_shape");
        assert!(build(&bad, &BuildCtx { opset: 17 }).is_err());
    }
}
