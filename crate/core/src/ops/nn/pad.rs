//! `Pad`: pads (or, with negative pads, crops) every axis of a tensor of any element type.
//!
//! Opsets < 11 take `pads` and `value` as attributes; 11+ take `pads` and an optional
//! `constant_value` as inputs, and 18+ an optional `axes` input restricting which axes the pads
//! apply to. Modes: `constant`, `reflect` (mirror without repeating the edge), `edge` (repeat
//! the edge) and, from opset 19, `wrap` (periodic).
//!
//! Each output axis gets an index map (output index → input index, or "constant"), and the
//! output is gathered through the maps, so every mode shares one code path.

use super::checked_numel;
use crate::model::{DType, Data, Node};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// Padding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

/// A built `Pad` node.
#[derive(Debug, Clone)]
pub struct Pad {
    mode: Mode,
    /// Opset < 11: the `pads` attribute and the `value` attribute.
    attr_pads: Option<(Vec<i64>, f32)>,
}

/// Builds `Pad` (`mode`; before opset 11 also `pads` and `value`).
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mode = match node.attrs.string("mode", "constant") {
        "constant" => Mode::Constant,
        "reflect" => Mode::Reflect,
        "edge" => Mode::Edge,
        "wrap" => Mode::Wrap,
        other => return Err(OpError::malformed(format!("mode `{other}` is not one of constant, reflect, edge, wrap"))),
    };
    let attr_pads = if ctx.opset < 11 {
        let pads = node
            .attrs
            .ints("pads")
            .ok_or_else(|| OpError::malformed("the pads attribute is required before opset 11"))?;
        Some((pads.to_vec(), node.attrs.float("value", 0.0)))
    } else {
        None
    };
    Ok(Box::new(Pad { mode, attr_pads }))
}

impl Pad {
    /// Whether the mode is `constant`.
    pub fn is_constant_mode(&self) -> bool {
        self.mode == Mode::Constant
    }

    /// The `value` attribute before opset 11 (`None`: the value is input 2, if given).
    pub fn attr_value(&self) -> Option<f32> {
        self.attr_pads.as_ref().map(|p| p.1)
    }

    /// Per-axis `(begin, end)` pads for a rank-`rank` input, from the attribute or the `pads`
    /// and `axes` values.
    pub fn pads(&self, rank: usize, pads: Option<&[i64]>, axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>, OpError> {
        let pads = match (&self.attr_pads, pads) {
            (Some((p, _)), _) => p.as_slice(),
            (None, Some(p)) => p,
            (None, None) => return Err(OpError::malformed("input 1 (pads) is missing")),
        };
        let axes: Vec<usize> = match axes {
            None => (0..rank).collect(),
            Some(a) => a.iter().map(|&x| super::normalize_axis(x, rank, "axes value")).collect::<Result<_, _>>()?,
        };
        if pads.len() != 2 * axes.len() {
            return Err(OpError::malformed(format!(
                "pads {pads:?} should have {} values (begin and end per axis)",
                2 * axes.len()
            )));
        }
        let mut out = vec![(0, 0); rank];
        for (i, &a) in axes.iter().enumerate() {
            out[a] = (pads[i], pads[i + axes.len()]);
        }
        Ok(out)
    }

    /// Output shape, checking that no axis shrinks below zero and that non-constant modes have
    /// something to copy from.
    fn out_shape(&self, shape: &[usize], pads: &[(i64, i64)]) -> Result<Vec<usize>, OpError> {
        let out = shape
            .iter()
            .zip(pads)
            .enumerate()
            .map(|(axis, (&d, &(b, e)))| {
                let n = (d as i64).checked_add(b).and_then(|x| x.checked_add(e)).filter(|&n| n >= 0);
                let n = n.ok_or_else(|| {
                    OpError::mismatch(format!("pads ({b}, {e}) on axis {axis} of size {d} leave a negative size"))
                })?;
                if self.mode != Mode::Constant && d == 0 && n > 0 {
                    return Err(OpError::mismatch(format!(
                        "axis {axis} is empty, so {:?} padding has nothing to copy",
                        self.mode
                    )));
                }
                usize::try_from(n).map_err(|_| OpError::limit(format!("padded size {n} is too large")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        checked_numel(&out)?;
        Ok(out)
    }

    /// Input index for output index `o` along an axis of size `n` with begin pad `b`; `None`
    /// for the constant value.
    fn source(&self, o: usize, n: usize, b: i64) -> Option<usize> {
        let i = o as i64 - b;
        let n = n as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self.mode {
            Mode::Constant => return None,
            Mode::Edge => i.clamp(0, n - 1),
            Mode::Wrap => i.rem_euclid(n),
            Mode::Reflect if n == 1 => 0,
            Mode::Reflect => {
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                if m < n {
                    m
                } else {
                    period - m
                }
            }
        };
        Some(j as usize)
    }
}

/// Per-axis `(begin, end)` pads and the output shape.
type Resolved = (Vec<(i64, i64)>, Vec<usize>);

impl Pad {
    /// Per axis, the input index each output index reads (`None`: the constant value).
    fn maps(&self, shape: &[usize], out_shape: &[usize], pads: &[(i64, i64)]) -> Vec<Vec<Option<usize>>> {
        out_shape
            .iter()
            .zip(shape)
            .zip(pads)
            .map(|((&o, &n), &(b, _))| (0..o).map(|i| self.source(i, n, b)).collect())
            .collect()
    }

    /// The data's pads and the output shape, from the inputs' values.
    fn resolve(&self, inputs: &[Option<&Tensor>], x: &Tensor) -> Result<Resolved, OpError> {
        let get = |i: usize| inputs.get(i).copied().flatten();
        let pads = int_values(if self.attr_pads.is_some() { None } else { get(1) }, "pads")?;
        let axes = int_values(get(3), "axes")?;
        let pads = self.pads(x.shape.len(), pads.as_deref(), axes.as_deref())?;
        let out_shape = self.out_shape(&x.shape, &pads)?;
        Ok((pads, out_shape))
    }
}

/// Checks that `constant_value` is one value of the data's type.
fn check_value(dtype: DType, shape: &[usize], data: DType) -> Result<(), OpError> {
    if shape.iter().product::<usize>() != 1 {
        return Err(OpError::malformed(format!("constant_value must hold one value, got shape {shape:?}")));
    }
    if dtype != data {
        return Err(OpError::mismatch(format!("constant_value is {dtype:?} but data is {data:?}")));
    }
    Ok(())
}

/// The integer values of an optional `pads` or `axes` tensor.
fn int_values(t: Option<&Tensor>, what: &str) -> Result<Option<Vec<i64>>, OpError> {
    t.map(|t| t.to_i64_vec().map_err(|e| OpError::mismatch(format!("{what}: {e}")))).transpose()
}

/// A constant fact's value, or an error explaining that it must be known when planning.
fn const_value<'a>(inputs: &[Option<&'a Fact>], i: usize, what: &str) -> Result<Option<&'a Tensor>, OpError> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(f) => f.value.as_deref().map(Some).ok_or_else(|| {
            OpError::unsupported(format!(
                "{what} must be a constant (computed from initializers) to plan the output shape"
            ))
        }),
    }
}

impl Op for Pad {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = crate::ops::input_fact(inputs, 0)?;
        let pads = int_values(const_value(inputs, 1, "pads")?, "pads")?;
        let axes = int_values(const_value(inputs, 3, "axes")?, "axes")?;
        let pads = self.pads(x.shape.len(), pads.as_deref(), axes.as_deref())?;
        if let (None, Some(v)) = (&self.attr_pads, inputs.get(2).copied().flatten()) {
            check_value(v.dtype, &v.shape, x.dtype)?;
        }
        Ok(vec![Fact::new(x.dtype, self.out_shape(&x.shape, &pads)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = crate::ops::input(inputs, 0)?;
        checked_numel(&x.shape).and_then(|n| {
            if n == x.len() {
                Ok(())
            } else {
                Err(OpError::internal(format!(
                    "data: shape {:?} needs {n} elements but the tensor holds {}",
                    x.shape,
                    x.len()
                )))
            }
        })?;
        let get = |i: usize| inputs.get(i).copied().flatten();
        let (pads, out_shape) = self.resolve(inputs, x)?;
        let value = match (&self.attr_pads, get(2)) {
            (Some((_, v)), _) => Some(Tensor::scalar_f32(*v)),
            (None, Some(v)) => Some(v.clone()),
            (None, None) => None,
        };
        if let Some(v) = &value {
            check_value(v.dtype(), &v.shape, x.dtype())?;
            if v.len() != 1 {
                return Err(OpError::malformed(format!("constant_value must hold one value, got {}", v.len())));
            }
        }
        let maps = self.maps(&x.shape, &out_shape, &pads);
        macro_rules! gather {
            ($($variant:ident),*) => {
                match (&x.data, value.as_ref().map(|v| &v.data)) {
                    $(
                        (Data::$variant(d), v) => {
                            let fill = match v { Some(Data::$variant(v)) => v[0], _ => Default::default() };
                            Data::$variant(gather(d, &x.shape, &out_shape, &maps, fill))
                        }
                    )*
                }
            };
        }
        let data = gather!(F32, U8, I8, U16, I16, I32, I64, Bool, U4, I4);
        Ok(vec![Tensor { shape: out_shape, data }])
    }

    /// The data's gradient: each output element's gradient added to the input element it was
    /// read from (reflected, edge and wrapped elements collect several); the constant padding
    /// and the pads, value and axes inputs take none. Integer data takes none either.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let Backward { inputs, grads, .. } = *b;
        let x = crate::ops::input(inputs, 0)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Data::F32(xv) = &x.data else { return Ok(out) };
        if checked_numel(&x.shape)? != xv.len() {
            return Err(
                OpError::internal(format!("data: shape {:?} does not match its {} values", x.shape, xv.len())).into()
            );
        }
        let (pads, out_shape) = self.resolve(inputs, x)?;
        let Some(g) = out_grad(grads, 0, checked_numel(&out_shape)?)? else { return Ok(out) };
        let maps = self.maps(&x.shape, &out_shape, &pads);
        out[0] = Some(f32_tensor(x.shape.clone(), scatter(g, &x.shape, &out_shape, &maps)));
        Ok(out)
    }
}

/// Calls `f(row, base)` for each row (last axis) of the output `out_shape` in order, with the
/// offset in the input (shape `shape`) that the row's per-axis index maps lead to, or `None`
/// when the row lies in padding. `shape` has at least one axis.
fn for_each_row(
    shape: &[usize],
    out_shape: &[usize],
    maps: &[Vec<Option<usize>>],
    mut f: impl FnMut(usize, Option<usize>),
) {
    let rank = shape.len();
    let rows: usize = out_shape[..rank - 1].iter().product();
    if rows == 0 || out_shape[rank - 1] == 0 {
        return;
    }
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank - 1).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let mut idx = vec![0usize; rank - 1];
    for row in 0..rows {
        f(row, idx.iter().enumerate().try_fold(0usize, |acc, (d, &i)| maps[d][i].map(|s| acc + s * in_strides[d])));
        // Advance the odometer over the outer axes.
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// The gradient of [`gather`]: each output gradient `g` (shape `out_shape`) added back to
/// the input element (shape `shape`) it was read from; padding takes none.
fn scatter(g: &[f32], shape: &[usize], out_shape: &[usize], maps: &[Vec<Option<usize>>]) -> Vec<f32> {
    if shape.is_empty() {
        return g.to_vec();
    }
    let mut dx = vec![0.0f32; shape.iter().product()];
    let (last, n) = (&maps[shape.len() - 1], out_shape[shape.len() - 1]);
    for_each_row(shape, out_shape, maps, |row, base| {
        if let Some(base) = base {
            for (s, &v) in last.iter().zip(&g[row * n..(row + 1) * n]) {
                if let Some(s) = s {
                    dx[base + s] += v;
                }
            }
        }
    });
    dx
}

/// Builds the output by reading `src` (shape `shape`) through per-axis index maps.
fn gather<T: Copy>(src: &[T], shape: &[usize], out_shape: &[usize], maps: &[Vec<Option<usize>>], fill: T) -> Vec<T> {
    if shape.is_empty() {
        return src.to_vec();
    }
    let mut out = Vec::with_capacity(out_shape.iter().product());
    let (last, n) = (&maps[shape.len() - 1], out_shape[shape.len() - 1]);
    for_each_row(shape, out_shape, maps, |_, base| match base {
        None => out.extend(std::iter::repeat_n(fill, n)),
        Some(base) => out.extend(last.iter().map(|s| s.map_or(fill, |s| src[base + s]))),
    });
    out
}
