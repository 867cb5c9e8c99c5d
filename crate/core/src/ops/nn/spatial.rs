//! Sliding-window geometry shared by convolution and pooling: kernel size, strides, dilations,
//! explicit pads or `auto_pad`, and `ceil_mode`, resolved against an input's spatial shape into
//! output sizes and concrete begin/end pads.
//!
//! Attributes are read and range-checked once when the op is built ([`WindowAttrs`]); the
//! input-dependent part ([`WindowAttrs::resolve`]) runs in both `infer` and `eval`, with checked
//! arithmetic, so a malformed model fails with a message instead of overflowing or panicking.

use crate::model::Node;
use crate::ops::OpError;

/// ONNX `auto_pad`: how padding is chosen when the node does not give `pads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPad {
    /// Use the explicit `pads` attribute (zero when absent).
    NotSet,
    /// Output size `ceil(in / stride)`, the odd padding element at the end.
    SameUpper,
    /// Output size `ceil(in / stride)`, the odd padding element at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// Parses the attribute's string value.
    pub fn parse(s: &str) -> Result<AutoPad, OpError> {
        match s {
            "" | "NOTSET" => Ok(AutoPad::NotSet),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            "VALID" => Ok(AutoPad::Valid),
            other => Err(OpError::malformed(format!(
                "auto_pad `{other}` is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
            ))),
        }
    }
}

/// A node's window attributes, validated but not yet tied to an input shape.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAttrs {
    /// `kernel_shape`; `None` when the kernel comes from the weight tensor (Conv).
    pub kernel: Option<Vec<usize>>,
    /// `strides` (default all 1).
    pub strides: Option<Vec<usize>>,
    /// `dilations` (default all 1).
    pub dilations: Option<Vec<usize>>,
    /// `pads` as `[begin_0, begin_1, …, end_0, end_1, …]` (default all 0).
    pub pads: Option<Vec<usize>>,
    /// `auto_pad`.
    pub auto_pad: AutoPad,
    /// `ceil_mode` (pooling only): round the output size up instead of down.
    pub ceil_mode: bool,
}

/// Reads a list of non-negative (or strictly positive) ints.
fn usize_list(node: &Node, name: &str, min: i64) -> Result<Option<Vec<usize>>, OpError> {
    let Some(v) = node.attrs.ints(name) else { return Ok(None) };
    v.iter()
        .map(|&x| {
            if x < min {
                let what = if min > 0 { "positive" } else { "non-negative" };
                Err(OpError::malformed(format!("{name} must be {what}, got {v:?}")))
            } else {
                usize::try_from(x).map_err(|_| OpError::limit(format!("{name} value {x} is too large")))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

impl WindowAttrs {
    /// Reads `kernel_shape`, `strides`, `dilations`, `pads`, `auto_pad` and (when `ceil_allowed`)
    /// `ceil_mode` from a node, rejecting zero strides/dilations/kernel sizes and negative pads.
    pub fn from_node(node: &Node, ceil_allowed: bool) -> Result<WindowAttrs, OpError> {
        let w = WindowAttrs {
            kernel: usize_list(node, "kernel_shape", 1)?,
            strides: usize_list(node, "strides", 1)?,
            dilations: usize_list(node, "dilations", 1)?,
            pads: usize_list(node, "pads", 0)?,
            auto_pad: AutoPad::parse(node.attrs.string("auto_pad", "NOTSET"))?,
            ceil_mode: ceil_allowed && node.attrs.int("ceil_mode", 0) != 0,
        };
        if let (Some(k), Some(s)) = (&w.kernel, &w.strides) {
            if k.len() != s.len() {
                return Err(OpError::malformed(format!("kernel_shape {k:?} and strides {s:?} have different lengths")));
            }
        }
        Ok(w)
    }

    /// Resolves the geometry for an input with spatial dims `input` and a kernel of spatial
    /// size `kernel` (from `kernel_shape`, or the weight's shape for Conv when it is absent).
    pub fn resolve(&self, input: &[usize], kernel: &[usize]) -> Result<Window, OpError> {
        let n = input.len();
        if n == 0 {
            return Err(OpError::mismatch("the input has no spatial dimensions"));
        }
        if kernel.len() != n {
            return Err(OpError::mismatch(format!(
                "the kernel {kernel:?} has {} spatial dims but the input has {n}",
                kernel.len()
            )));
        }
        if let Some(k) = &self.kernel {
            if k.as_slice() != kernel {
                return Err(OpError::malformed(format!(
                    "kernel_shape {k:?} does not match the weight's spatial shape {kernel:?}"
                )));
            }
        }
        if kernel.contains(&0) {
            return Err(OpError::mismatch(format!("kernel {kernel:?} has a zero-sized dimension")));
        }
        if input.contains(&0) {
            return Err(OpError::mismatch(format!("spatial input shape {input:?} has a zero-sized dimension")));
        }
        let ones = vec![1; n];
        let strides = self.strides.clone().unwrap_or_else(|| ones.clone());
        let dilations = self.dilations.clone().unwrap_or_else(|| ones.clone());
        if strides.len() != n {
            return Err(OpError::malformed(format!("strides {strides:?} should have {n} values, one per spatial dim")));
        }
        if dilations.len() != n {
            return Err(OpError::malformed(format!(
                "dilations {dilations:?} should have {n} values, one per spatial dim"
            )));
        }
        let mut pad_begin = vec![0; n];
        let mut pad_end = vec![0; n];
        if self.auto_pad == AutoPad::NotSet {
            if let Some(p) = &self.pads {
                if p.len() != 2 * n {
                    return Err(OpError::malformed(format!(
                        "pads {p:?} should have {} values (begin and end per spatial dim)",
                        2 * n
                    )));
                }
                pad_begin.copy_from_slice(&p[..n]);
                pad_end.copy_from_slice(&p[n..]);
            }
        }
        let mut effective = Vec::with_capacity(n);
        let mut output = Vec::with_capacity(n);
        for i in 0..n {
            let (inp, s) = (input[i], strides[i]);
            let eff = (kernel[i] - 1)
                .checked_mul(dilations[i])
                .and_then(|x| x.checked_add(1))
                .ok_or_else(|| OpError::limit(format!("dilated kernel along spatial axis {i} is too large")))?;
            let out = match self.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = inp.div_ceil(s);
                    let total = ((out - 1) * s + eff).saturating_sub(inp);
                    let (small, big) = (total / 2, total - total / 2);
                    (pad_begin[i], pad_end[i]) =
                        if self.auto_pad == AutoPad::SameUpper { (small, big) } else { (big, small) };
                    out
                }
                AutoPad::NotSet | AutoPad::Valid => {
                    let padded = inp
                        .checked_add(pad_begin[i])
                        .and_then(|x| x.checked_add(pad_end[i]))
                        .ok_or_else(|| OpError::limit(format!("pads along spatial axis {i} are too large")))?;
                    if padded < eff {
                        return Err(OpError::mismatch(format!(
                            "the kernel ({eff} with dilation) is larger than the padded input ({padded}) along \
                             spatial axis {i}"
                        )));
                    }
                    let span = padded - eff;
                    let mut out = if self.ceil_mode { span.div_ceil(s) + 1 } else { span / s + 1 };
                    // With ceil_mode the last window must still start inside the input or the
                    // begin padding (PyTorch's rule, which onnxruntime follows).
                    if self.ceil_mode && (out - 1) * s >= inp + pad_begin[i] {
                        out -= 1;
                    }
                    out
                }
            };
            effective.push(eff);
            output.push(out);
        }
        Ok(Window { input: input.to_vec(), kernel: kernel.to_vec(), strides, dilations, pad_begin, pad_end, output })
    }
}

/// A window geometry resolved against one input shape. All vectors have one entry per spatial
/// dim; every window position `o * stride - pad_begin + j * dilation` is an input coordinate
/// (negative or past the end where it falls into padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Spatial input size.
    pub input: Vec<usize>,
    /// Kernel size (undilated).
    pub kernel: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Dilations.
    pub dilations: Vec<usize>,
    /// Padding before each dim.
    pub pad_begin: Vec<usize>,
    /// Padding after each dim.
    pub pad_end: Vec<usize>,
    /// Spatial output size.
    pub output: Vec<usize>,
}

impl Window {
    /// For output index `o` along spatial dim `d`: the range of kernel taps `j` whose input
    /// coordinate lies inside the input, and the input coordinate of tap 0 (may be negative).
    pub fn valid_taps(&self, d: usize, o: usize) -> (std::ops::Range<usize>, isize) {
        let start = (o * self.strides[d]) as isize - self.pad_begin[d] as isize;
        let dil = self.dilations[d] as isize;
        let k = self.kernel[d] as isize;
        let n = self.input[d] as isize;
        // First j with start + j*dil >= 0, and first j with start + j*dil >= n.
        let lo = if start >= 0 { 0 } else { (-start + dil - 1) / dil };
        let hi = if start >= n { 0 } else { (n - start + dil - 1) / dil };
        let (lo, hi) = (lo.min(k), hi.min(k));
        (lo as usize..hi.max(lo) as usize, start)
    }

    /// What a pool's pass along spatial dim `d` divides output `o` by: the taps inside the input
    /// ([`PoolKind::MeanExcludePad`]), or inside the input or its padding
    /// ([`PoolKind::MeanIncludePad`]); 1 for [`PoolKind::Max`].
    pub fn pool_count(&self, d: usize, o: usize, kind: PoolKind) -> usize {
        let (taps, start) = self.valid_taps(d, o);
        match kind {
            PoolKind::Max => 1,
            PoolKind::MeanExcludePad => taps.len(),
            PoolKind::MeanIncludePad => {
                // Taps before the end padding runs out (the window never starts before the
                // begin padding).
                let limit = (self.input[d] + self.pad_end[d]) as isize;
                (0..self.kernel[d]).filter(|&j| start + ((j * self.dilations[d]) as isize) < limit).count()
            }
        }
    }

    /// The same geometry with a leading unit spatial dim when it is 1-D, so 1-D convolutions
    /// and pools run on the 2-D kernels (a `[1 × W]` plane has the same memory layout as `[W]`).
    pub fn lifted_to_2d(&self) -> Window {
        if self.input.len() != 1 {
            return self.clone();
        }
        let lift = |v: &[usize], unit: usize| [unit, v[0]].to_vec();
        Window {
            input: lift(&self.input, 1),
            kernel: lift(&self.kernel, 1),
            strides: lift(&self.strides, 1),
            dilations: lift(&self.dilations, 1),
            pad_begin: lift(&self.pad_begin, 0),
            pad_end: lift(&self.pad_end, 0),
            output: lift(&self.output, 1),
        }
    }

    /// Whether padding is needed anywhere (some window tap falls outside the input).
    pub fn has_padding(&self) -> bool {
        self.pad_begin.iter().chain(&self.pad_end).any(|&p| p > 0)
            || (0..self.input.len()).any(|d| {
                let last = (self.output[d] - 1) * self.strides[d] + (self.kernel[d] - 1) * self.dilations[d];
                last >= self.input[d]
            })
    }
}

/// The window and output shape of a pool (MaxPool, AveragePool) over `x` (`[N, C, spatial…]`),
/// checking that padding stays smaller than the window, as onnxruntime requires, so that
/// windows (without dilation gaps) always see some input.
pub fn pool_geometry(window: &WindowAttrs, x: &[usize]) -> Result<(Window, Vec<usize>), OpError> {
    if x.len() < 3 {
        return Err(OpError::mismatch(format!("input X must be [N, C, spatial…] (rank ≥ 3), got shape {x:?}")));
    }
    let kernel = window.kernel.as_deref().unwrap_or_default();
    let w = window.resolve(&x[2..], kernel)?;
    for d in 0..kernel.len() {
        let eff = (w.kernel[d] - 1) * w.dilations[d] + 1;
        if w.pad_begin[d] >= eff || w.pad_end[d] >= eff {
            return Err(OpError::malformed(format!(
                "pads ({}, {}) along spatial axis {d} must be smaller than the (dilated) kernel {eff}",
                w.pad_begin[d], w.pad_end[d]
            )));
        }
    }
    let mut out = x[..2].to_vec();
    out.extend_from_slice(&w.output);
    crate::model::numel(&out).map_err(OpError::limit)?;
    Ok((w, out))
}

/// How [`pool`] combines the values of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the taps inside the input (padding never wins).
    Max,
    /// Mean, dividing by the taps inside the input.
    MeanExcludePad,
    /// Mean, dividing by the taps inside the input or its padding (`count_include_pad`).
    MeanIncludePad,
}

/// Pools `planes` consecutive planes of spatial shape `w.input` into planes of shape
/// `w.output`. Both max and mean over a box are separable, so this runs one 1-D pass per
/// spatial dim (the innermost loop runs over the contiguous trailing dims and vectorises) instead
/// of visiting `∏ kernel` taps per output. The mean's divisor factorises too: the taps inside
/// the (padded) input form a box, so dividing in each pass by that dim's count gives the
/// box mean. Sizes must have been validated through [`WindowAttrs::resolve`].
pub fn pool(x: &[f32], planes: usize, w: &Window, kind: PoolKind) -> Vec<f32> {
    let nd = w.input.len();
    let mut shape = w.input.clone();
    let mut cur: std::borrow::Cow<'_, [f32]> = std::borrow::Cow::Borrowed(x);
    for d in 0..nd {
        let outer = planes * shape[..d].iter().product::<usize>();
        let inner: usize = shape[d + 1..].iter().product();
        let (len_in, len_out) = (shape[d], w.output[d]);
        let mut next = vec![0.0f32; outer * len_out * inner];
        let dil = w.dilations[d];
        for (src, dst_block) in cur.chunks_exact(len_in * inner).zip(next.chunks_exact_mut(len_out * inner)) {
            for (o, dst) in dst_block.chunks_exact_mut(inner).enumerate() {
                let (taps, start) = w.valid_taps(d, o);
                let count = w.pool_count(d, o, kind);
                dst.fill(if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 });
                for j in taps {
                    let row = (start + (j * dil) as isize) as usize;
                    let s = &src[row * inner..(row + 1) * inner];
                    if kind == PoolKind::Max {
                        dst.iter_mut().zip(s).for_each(|(a, &b)| *a = a.max(b));
                    } else {
                        dst.iter_mut().zip(s).for_each(|(a, &b)| *a += b);
                    }
                }
                if kind != PoolKind::Max && count > 0 {
                    let inv = 1.0 / count as f32;
                    dst.iter_mut().for_each(|a| *a *= inv);
                }
            }
        }
        shape[d] = len_out;
        cur = std::borrow::Cow::Owned(next);
    }
    cur.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pads: Option<Vec<usize>>, auto_pad: AutoPad, ceil_mode: bool) -> WindowAttrs {
        WindowAttrs { kernel: None, strides: Some(vec![2]), dilations: None, pads, auto_pad, ceil_mode }
    }

    #[test]
    fn output_sizes() {
        let w = attrs(None, AutoPad::NotSet, false).resolve(&[5], &[3]).unwrap();
        assert_eq!(w.output, vec![2]);
        let w = attrs(None, AutoPad::NotSet, true).resolve(&[4], &[3]).unwrap();
        assert_eq!(w.output, vec![2]);
        // ceil_mode may not start a window in the end padding.
        let w = attrs(Some(vec![1, 1]), AutoPad::NotSet, true).resolve(&[4], &[2]).unwrap();
        assert_eq!(w.output, vec![3]);
        let w = attrs(None, AutoPad::SameUpper, false).resolve(&[5], &[4]).unwrap();
        assert_eq!((w.output[0], w.pad_begin[0], w.pad_end[0]), (3, 1, 2));
        let w = attrs(None, AutoPad::SameLower, false).resolve(&[5], &[4]).unwrap();
        assert_eq!((w.output[0], w.pad_begin[0], w.pad_end[0]), (3, 2, 1));
        assert!(attrs(None, AutoPad::Valid, false).resolve(&[2], &[3]).unwrap_err().to_string().contains("larger"));
    }

    #[test]
    fn taps() {
        let w = WindowAttrs {
            kernel: None,
            strides: Some(vec![1]),
            dilations: Some(vec![2]),
            pads: Some(vec![3, 3]),
            auto_pad: AutoPad::NotSet,
            ceil_mode: false,
        }
        .resolve(&[4], &[3])
        .unwrap();
        // o = 0: taps at -3, -1, 1 → only j = 2 is inside.
        assert_eq!(w.valid_taps(0, 0), (2..3, -3));
        // o = 3: taps at 0, 2, 4 → j = 0, 1.
        assert_eq!(w.valid_taps(0, 3), (0..2, 0));
    }
}
