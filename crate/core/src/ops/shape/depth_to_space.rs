//! DepthToSpace and SpaceToDepth: NCHW rearrangements of channel blocks into `block × block`
//! pixel tiles and back (pixel shuffles: super-resolution heads, YOLOv2's reorg layer,
//! TensorFlow's `space_to_depth`). Each is a 6-D strided view of its input, copied out.
//!
//! - DepthToSpace `DCR` (the default): `[b, bs, bs, c, h, w]` → transposed `[0, 3, 4, 1, 5, 2]`;
//!   `CRD` (PyTorch's `pixel_shuffle`): `[b, c, bs, bs, h, w]` → `[0, 1, 4, 2, 5, 3]`; then
//!   `[b, c, h·bs, w·bs]`.
//! - SpaceToDepth: `[b, c, h, bs, w, bs]` → `[0, 3, 5, 1, 2, 4]` (`DCR`, the default) or
//!   `[0, 1, 3, 5, 2, 4]` (`CRD`, opset 25+), then `[b, c·bs², h, w]`.

use super::elem::strided_view;
use crate::model::{strides, Data, Node, Tensor};
use crate::ops::grad::{f32_in, f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// Which rearrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// DepthToSpace, depth-column-row order (ONNX's default).
    Dcr,
    /// DepthToSpace, column-row-depth order (PyTorch's pixel shuffle).
    Crd,
    /// SpaceToDepth, depth-column-row order (the default).
    SpaceToDepth,
    /// SpaceToDepth, column-row-depth order (PyTorch's `pixel_unshuffle`; opset 25+).
    SpaceToDepthCrd,
}

/// A built DepthToSpace or SpaceToDepth node.
#[derive(Debug, Clone)]
pub struct DepthToSpace {
    /// The tile's side.
    pub block: usize,
    /// Which rearrangement.
    pub mode: Mode,
}

fn block(node: &Node) -> Result<usize, OpError> {
    match node.attrs.int_opt("blocksize") {
        Some(b) if (1..=4096).contains(&b) => Ok(b as usize),
        Some(b) => Err(OpError::malformed(format!("blocksize {b} must be between 1 and 4096"))),
        None => Err(OpError::malformed("the blocksize attribute is missing")),
    }
}

/// Whether `mode` is CRD (else DCR, the default).
fn crd(node: &Node) -> Result<bool, OpError> {
    match node.attrs.string("mode", "DCR") {
        "DCR" => Ok(false),
        "CRD" => Ok(true),
        m => Err(OpError::malformed(format!("{} mode `{m}` is not DCR or CRD", node.op_type))),
    }
}

/// Builds DepthToSpace (`blocksize`, `mode` DCR or CRD).
pub fn build_depth_to_space(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mode = if crd(node)? { Mode::Crd } else { Mode::Dcr };
    Ok(Box::new(DepthToSpace { block: block(node)?, mode }))
}

/// Builds SpaceToDepth (`blocksize`, `mode` DCR or CRD).
pub fn build_space_to_depth(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mode = if crd(node)? { Mode::SpaceToDepthCrd } else { Mode::SpaceToDepth };
    Ok(Box::new(DepthToSpace { block: block(node)?, mode }))
}

/// The input read as a 6-D view — its shape and element strides, in output order — and the
/// output shape.
type View = (Vec<usize>, Vec<isize>, Vec<usize>);

impl DepthToSpace {
    /// The view of an input of `shape` that is the output.
    fn plan(&self, shape: &[usize]) -> Result<View, OpError> {
        let &[n, c, h, w] = shape else {
            return Err(OpError::mismatch(format!("input must be 4-D NCHW, got shape {shape:?}")));
        };
        let bs = self.block;
        let (six, perm, out) = match self.mode {
            Mode::Dcr | Mode::Crd => {
                if c % (bs * bs) != 0 {
                    return Err(OpError::mismatch(format!(
                        "{c} channels do not divide into blocks of {bs}×{bs} = {}",
                        bs * bs
                    )));
                }
                let c2 = c / (bs * bs);
                let out = vec![n, c2, h * bs, w * bs];
                if self.mode == Mode::Dcr {
                    (vec![n, bs, bs, c2, h, w], [0, 3, 4, 1, 5, 2], out)
                } else {
                    (vec![n, c2, bs, bs, h, w], [0, 1, 4, 2, 5, 3], out)
                }
            }
            Mode::SpaceToDepth | Mode::SpaceToDepthCrd => {
                if h % bs != 0 || w % bs != 0 {
                    return Err(OpError::mismatch(format!("height {h} and width {w} must be multiples of {bs}")));
                }
                let perm = if self.mode == Mode::SpaceToDepth { [0, 3, 5, 1, 2, 4] } else { [0, 1, 3, 5, 2, 4] };
                (vec![n, c, h / bs, bs, w / bs, bs], perm, vec![n, c * bs * bs, h / bs, w / bs])
            }
        };
        let st = strides(&six);
        Ok((perm.iter().map(|&a| six[a]).collect(), perm.iter().map(|&a| st[a] as isize).collect(), out))
    }
}

impl Op for DepthToSpace {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        Ok(vec![Fact::new(x.dtype, self.plan(&x.shape)?.2)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (view, st, out) = self.plan(&x.shape)?;
        let mut y = strided_view(x, view, &st, 0)?;
        y.shape = out;
        Ok(vec![y])
    }

    /// A permutation: each output element's gradient goes back to the element it came from.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let x = f32_in(b.inputs, 0)?;
        let Some(g) = out_grad(b.grads, 0, x.len())? else { return Ok(vec![None]) };
        let (view, st, _) = self.plan(&x.shape)?;
        let index = Tensor { shape: x.shape.clone(), data: Data::I64((0..x.len() as i64).collect()) };
        let from = strided_view(&index, view, &st, 0)?;
        let Data::I64(from) = from.data else { return Err(OpError::internal("index view is not int64").into()) };
        let mut gx = vec![0.0f32; x.len()];
        for (&i, &d) in from.iter().zip(g) {
            gx[i as usize] = d;
        }
        Ok(vec![Some(f32_tensor(x.shape.clone(), gx))])
    }
}
