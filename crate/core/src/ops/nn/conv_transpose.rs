//! `ConvTranspose`: the adjoint of `Conv` (a.k.a. deconvolution), with groups, strides,
//! dilations, pads, `output_padding`, `output_shape` and `auto_pad`.
//!
//! Per image and group it is one GEMM, `cols = Wᵀ · X` (`[M/g · K × H·W]`, the weight read
//! transposed through a strided view), followed by [`col2im`], which scatters each column entry
//! to the output position the corresponding convolution would have read it from. The bias is
//! added per output channel at the end.
//!
//! Backward: `im2col` is `col2im`'s adjoint, so per image and group `dcols = im2col(dY)`, then
//! `dX = W · dcols`, `dW += X · dcolsᵀ`, `dB = Σ dY` (a convolution of dY by W, and its
//! weight gradient with the roles of input and output gradient swapped).

use super::conv::{conv_like_args, conv_like_infer, ConvArgs, Plan};
use super::im2col::{col2im, im2col};
use super::sgemm::{sgemm, Init, MatRef};
use super::spatial::{AutoPad, Window, WindowAttrs};
use super::{checked_numel, f32_input, f32_output};
use crate::model::Node;
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// A built `ConvTranspose` node.
#[derive(Debug, Clone)]
pub struct ConvTranspose {
    window: WindowAttrs,
    group: usize,
    output_padding: Option<Vec<usize>>,
    output_shape: Option<Vec<usize>>,
}

/// Builds `ConvTranspose` from its attributes.
pub fn build(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let group = node.attrs.int("group", 1);
    if group < 1 {
        return Err(OpError::malformed(format!("group must be at least 1, got {group}")));
    }
    let list = |name: &str| -> Result<Option<Vec<usize>>, OpError> {
        node.attrs
            .ints(name)
            .map(|v| {
                v.iter()
                    .map(|&x| {
                        usize::try_from(x)
                            .map_err(|_| OpError::malformed(format!("{name} must be non-negative, got {v:?}")))
                    })
                    .collect()
            })
            .transpose()
    };
    Ok(Box::new(ConvTranspose {
        window: WindowAttrs::from_node(node, false)?,
        group: usize::try_from(group).map_err(|_| OpError::limit(format!("group {group} is too large")))?,
        output_padding: list("output_padding")?,
        output_shape: list("output_shape")?,
    }))
}

// Planned as a [`Plan`] whose `window` describes the *forward* convolution from the output
// back to the input: `window.input` is this op's output spatial shape and `window.output` its
// input spatial shape.

impl ConvTranspose {
    fn plan(&self, x: &[usize], w: &[usize], bias: Option<&[usize]>) -> Result<Plan, OpError> {
        if x.len() < 3 {
            return Err(OpError::mismatch(format!("input X must be [N, C, spatial…] (rank ≥ 3), got shape {x:?}")));
        }
        if w.len() != x.len() {
            return Err(OpError::mismatch(format!(
                "weight W has shape {w:?}: its rank should equal the input's ({})",
                x.len()
            )));
        }
        let g = self.group;
        let (batch, in_channels) = (x[0], x[1]);
        if w[0] != in_channels {
            return Err(OpError::mismatch(format!(
                "W {w:?} expects {} input channels but the input has {in_channels}",
                w[0]
            )));
        }
        if in_channels % g != 0 {
            return Err(OpError::mismatch(format!("{in_channels} input channels are not a multiple of group = {g}")));
        }
        let out_channels = w[1].checked_mul(g).ok_or_else(|| OpError::limit("output channel count overflows"))?;
        if let Some(b) = bias {
            if b != [out_channels] {
                return Err(OpError::mismatch(format!("bias B should have shape [{out_channels}], got {b:?}")));
            }
        }
        let n = x.len() - 2;
        let (input, kernel) = (&x[2..], &w[2..]);
        if let Some(k) = &self.window.kernel {
            if k.as_slice() != kernel {
                return Err(OpError::malformed(format!(
                    "kernel_shape {k:?} does not match the weight's spatial shape {kernel:?}"
                )));
            }
        }
        if kernel.contains(&0) || input.contains(&0) {
            return Err(OpError::mismatch(format!("zero-sized spatial dims: input {input:?}, kernel {kernel:?}")));
        }
        let get = |v: &Option<Vec<usize>>, name: &str, default: usize| -> Result<Vec<usize>, OpError> {
            match v {
                None => Ok(vec![default; n]),
                Some(v) if v.len() == n => Ok(v.clone()),
                Some(v) => Err(OpError::malformed(format!("{name} {v:?} should have {n} values, one per spatial dim"))),
            }
        };
        let strides = get(&self.window.strides, "strides", 1)?;
        let dilations = get(&self.window.dilations, "dilations", 1)?;
        let out_pad = get(&self.output_padding, "output_padding", 0)?;
        let explicit_out = match &self.output_shape {
            None => None,
            Some(s) if s.len() == n => Some(s.clone()),
            Some(s) if s.len() == n + 2 => Some(s[2..].to_vec()),
            Some(s) => return Err(OpError::malformed(format!("output_shape {s:?} should have {n} values"))),
        };
        let pads = match (&self.window.pads, self.window.auto_pad) {
            (Some(p), AutoPad::NotSet) if p.len() != 2 * n => {
                return Err(OpError::malformed(format!("pads {p:?} should have {} values", 2 * n)));
            }
            (Some(p), AutoPad::NotSet) => p.clone(),
            _ => vec![0; 2 * n],
        };
        let mut window = Window {
            input: vec![0; n],
            kernel: kernel.to_vec(),
            strides: strides.clone(),
            dilations: dilations.clone(),
            pad_begin: pads[..n].to_vec(),
            pad_end: pads[n..].to_vec(),
            output: input.to_vec(),
        };
        for i in 0..n {
            if out_pad[i] >= strides[i].max(dilations[i]) {
                return Err(OpError::malformed(format!(
                    "output_padding {} on spatial axis {i} must be smaller than the stride or dilation",
                    out_pad[i]
                )));
            }
            // The full (unpadded) extent the transposed convolution covers.
            let full = (input[i] - 1)
                .checked_mul(strides[i])
                .and_then(|x| x.checked_add(out_pad[i]))
                .and_then(|x| (kernel[i] - 1).checked_mul(dilations[i]).and_then(|k| x.checked_add(k + 1)))
                .ok_or_else(|| OpError::limit(format!("output size along spatial axis {i} overflows")))?;
            let target = match (&explicit_out, self.window.auto_pad) {
                (Some(o), _) => Some(o[i]),
                (None, AutoPad::SameUpper | AutoPad::SameLower) => Some(
                    input[i]
                        .checked_mul(strides[i])
                        .ok_or_else(|| OpError::limit(format!("output size along axis {i} overflows")))?,
                ),
                _ => None,
            };
            if let Some(t) = target.filter(|&t| t > full) {
                // Negative total padding: like onnxruntime, pad nothing and extend the output at
                // the end; the positions past the full extent receive only the bias.
                (window.pad_begin[i], window.pad_end[i]) = (0, 0);
                window.input[i] = t;
                continue;
            }
            if let Some(t) = target {
                let total = full - t;
                let (small, big) = (total / 2, total - total / 2);
                (window.pad_begin[i], window.pad_end[i]) =
                    if self.window.auto_pad == AutoPad::SameUpper { (small, big) } else { (big, small) };
            }
            let trimmed = window.pad_begin[i] + window.pad_end[i];
            if trimmed >= full {
                return Err(OpError::mismatch(format!(
                    "pads ({trimmed} in total) remove the whole output along spatial axis {i}"
                )));
            }
            window.input[i] = full - trimmed;
        }
        let mut out_shape = vec![batch, out_channels];
        out_shape.extend_from_slice(&window.input);
        checked_numel(&out_shape)?;
        Ok(Plan { batch, in_channels, out_channels, window, out_shape })
    }
}

impl Op for ConvTranspose {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        conv_like_infer(inputs, &|x, w, b| self.plan(x, w, b))
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let ConvArgs { x, w, b, plan } = conv_like_args(inputs, &|x, w, b| self.plan(x, w, b))?;
        let win = plan.window.lifted_to_2d();
        let g = self.group;
        let (cg, mg) = (plan.in_channels / g, plan.out_channels / g);
        let in_plane: usize = win.output.iter().product();
        let out_plane: usize = win.input.iter().product();
        let ksize: usize = win.kernel.iter().product();
        let rows = mg * ksize; // one of W's dims products: fits
        let mut out = vec![0.0f32; checked_numel(&plan.out_shape)?];
        let mut cols =
            vec![0.0f32; rows.checked_mul(in_plane).ok_or_else(|| OpError::limit("column buffer size overflows"))?];
        for n in 0..plan.batch {
            for gi in 0..g {
                let xg = &x[(n * plan.in_channels + gi * cg) * in_plane..][..cg * in_plane];
                let wg = &w[gi * cg * rows..][..cg * rows];
                // W_g is [cg × rows]; the product needs its transpose.
                let a = MatRef::row_major(wg, cg, rows)?.t();
                let bm = MatRef::row_major(xg, cg, in_plane)?;
                sgemm(1.0, a, bm, Init::Zero, &mut cols, in_plane)?;
                let og = &mut out[(n * plan.out_channels + gi * mg) * out_plane..][..mg * out_plane];
                col2im(&cols, mg, &win, og);
            }
            if let Some(b) = b {
                let img = &mut out[n * plan.out_channels * out_plane..][..plan.out_channels * out_plane];
                for (plane, &bv) in img.chunks_exact_mut(out_plane).zip(b) {
                    plane.iter_mut().for_each(|v| *v += bv);
                }
            }
        }
        Ok(vec![f32_output(plan.out_shape, out)?])
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = f32_input(inputs, 0, "X")?;
        let w = f32_input(inputs, 1, "W")?;
        let shape = |i: usize| super::input_shape(inputs, i);
        let plan = self.plan(shape(0).unwrap_or_default(), shape(1).unwrap_or_default(), shape(2))?;
        let Some(dy) = out_grad(grads, 0, checked_numel(&plan.out_shape)?)? else {
            return Ok(vec![None; inputs.len()]);
        };
        let win = plan.window.lifted_to_2d();
        let g = self.group;
        let (cg, mg) = (plan.in_channels / g, plan.out_channels / g);
        let in_plane: usize = win.output.iter().product();
        let out_plane: usize = win.input.iter().product();
        let rows = mg * win.kernel.iter().product::<usize>();
        let want_dx = b.needs(0);
        let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
        let mut dw = vec![0.0f32; w.len()];
        let mut db = vec![0.0f32; plan.out_channels];
        let mut dcols =
            vec![0.0f32; rows.checked_mul(in_plane).ok_or_else(|| OpError::limit("column buffer size overflows"))?];
        for n in 0..plan.batch {
            for gi in 0..g {
                let dyg = &dy[(n * plan.out_channels + gi * mg) * out_plane..][..mg * out_plane];
                im2col(dyg, mg, &win, 0..win.output[0], &mut dcols);
                let dc = MatRef::row_major(&dcols, rows, in_plane)?;
                let xg = &x[(n * plan.in_channels + gi * cg) * in_plane..][..cg * in_plane];
                let xm = MatRef::row_major(xg, cg, in_plane)?;
                sgemm(1.0, xm, dc.t(), Init::Accumulate, &mut dw[gi * cg * rows..][..cg * rows], rows)?;
                if want_dx {
                    let wg = MatRef::row_major(&w[gi * cg * rows..][..cg * rows], cg, rows)?;
                    let dxg = &mut dx[(n * plan.in_channels + gi * cg) * in_plane..][..cg * in_plane];
                    sgemm(1.0, wg, dc, Init::Zero, dxg, in_plane)?;
                }
                for (m, plane) in dyg.chunks_exact(out_plane).enumerate() {
                    db[gi * mg + m] += plane.iter().sum::<f32>();
                }
            }
        }
        let mut out: Grads = vec![
            want_dx.then(|| f32_tensor(shape(0).unwrap_or_default().to_vec(), dx)),
            Some(f32_tensor(shape(1).unwrap_or_default().to_vec(), dw)),
        ];
        out.push(inputs.get(2).copied().flatten().map(|b| f32_tensor(b.shape.clone(), db)));
        out.truncate(inputs.len());
        Ok(out)
    }
}
