//! GridSample (opsets 16 and 20): samples `X [N, C, D1…Dk]` at the points of
//! `grid [N, O1…Om, k]`, whose last axis holds normalised coordinates in `[-1, 1]` in reverse
//! axis order (`x` = the last spatial axis first, as PyTorch's `grid_sample`). Output
//! `[N, C, O1…Om]`. Used by deformable attention (RT-DETR, D-FINE, DINO) and spatial transformers.
//!
//! Semantics follow ONNX's reference implementation (itself PyTorch's `GridSampler.h`):
//! a coordinate `n` becomes `(n + 1)/2 · (d − 1)` with `align_corners`, else `((n + 1)·d − 1)/2`;
//! one outside the borders (`[0, d − 1]` with `align_corners`, else `[−0.5, d − 0.5]`) is clamped
//! (`border`) or reflected (`reflection`) before sampling; `zeros` padding reads 0 for every tap
//! outside the input, `border` clamps the tap and `reflection` reflects it. `nearest` rounds half
//! to even; `linear` (`bilinear`) weights the 2^k corners; `cubic` (`bicubic`) the 4^k taps of
//! Keys' kernel with a = −0.75.

use super::{checked_numel, f32_fact, f32_input, f32_output};
use crate::model::{strides, Node, Tensor};
use crate::ops::grad::{f32_tensor, out_grad, Backward, GradError, Grads};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// Interpolation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

/// What a tap outside the input reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// GridSample.
#[derive(Debug, Clone)]
pub struct GridSample {
    mode: Mode,
    padding: Padding,
    align_corners: bool,
}

/// Builds GridSample (`bilinear`/`bicubic` are opset 16's names for `linear`/`cubic`).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mode = match node.attrs.string("mode", "linear") {
        "bilinear" | "linear" => Mode::Linear,
        "nearest" => Mode::Nearest,
        "bicubic" | "cubic" => Mode::Cubic,
        m => {
            return Err(OpError::malformed(format!(
                "GridSample mode `{m}` is not one of linear (bilinear), nearest, cubic (bicubic)"
            )))
        }
    };
    let padding = match node.attrs.string("padding_mode", "zeros") {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        p => {
            return Err(OpError::malformed(format!(
                "GridSample padding_mode `{p}` is not one of zeros, border, reflection"
            )))
        }
    };
    Ok(Box::new(GridSample { mode, padding, align_corners: node.attrs.int("align_corners", 0) != 0 }))
}

/// Most spatial axes sampled (4^k cubic taps per point).
const MAX_SPATIAL: usize = 3;

impl GridSample {
    /// Output shape, checking the two inputs agree.
    fn out_shape(x: &[usize], grid: &[usize]) -> Result<Vec<usize>, OpError> {
        let k = x.len().wrapping_sub(2);
        if x.len() < 3 || x.len() - 2 > MAX_SPATIAL {
            return Err(OpError::mismatch(format!(
                "GridSample input X has shape {x:?}: expected [N, C, D1…Dk] with 1 to 3 spatial axes"
            )));
        }
        if grid.len() != x.len() || grid[0] != x[0] || grid[grid.len() - 1] != k {
            return Err(OpError::mismatch(format!(
                "GridSample grid has shape {grid:?} for X of shape {x:?}: expected [{}, O1…O{k}, {k}]",
                x[0]
            )));
        }
        let mut out = vec![x[0], x[1]];
        out.extend_from_slice(&grid[1..grid.len() - 1]);
        checked_numel(&out)?;
        Ok(out)
    }

    /// The unnormalised coordinate of `n` along an axis of length `d`, clamped or reflected
    /// into the borders as the padding mode says.
    fn coordinate(&self, n: f32, d: usize) -> f32 {
        let df = d as f32;
        let mut x = if self.align_corners { (n + 1.0) / 2.0 * (df - 1.0) } else { ((n + 1.0) * df - 1.0) / 2.0 };
        if self.mode == Mode::Nearest {
            x = x.round_ties_even();
        }
        let (lo, hi) = self.borders(d);
        if x < lo || x > hi {
            match self.padding {
                Padding::Zeros => {}
                Padding::Border => x = x.clamp(0.0, df - 1.0),
                Padding::Reflection => x = reflect(x, lo, hi),
            }
        }
        x
    }

    fn borders(&self, d: usize) -> (f32, f32) {
        if self.align_corners {
            (0.0, d as f32 - 1.0)
        } else {
            (-0.5, d as f32 - 0.5)
        }
    }

    /// The index a tap at integer position `i` reads along an axis of length `d`; `None` reads 0.
    fn tap(&self, i: i64, d: usize) -> Option<usize> {
        if (0..d as i64).contains(&i) {
            return Some(i as usize);
        }
        match self.padding {
            Padding::Zeros => None,
            Padding::Border => Some(i.clamp(0, d as i64 - 1) as usize),
            Padding::Reflection => {
                let (lo, hi) = self.borders(d);
                // Truncation toward zero, as the reference's int().
                Some((reflect(i as f32, lo, hi) as i64).clamp(0, d as i64 - 1) as usize)
            }
        }
    }

    /// Per-axis taps `(index, weight)` for one coordinate.
    fn axis_taps(&self, x: f32, d: usize, out: &mut Vec<(Option<usize>, f32)>) {
        out.clear();
        match self.mode {
            Mode::Nearest => {
                // Already rounded (and clamped or reflected): the reference truncates.
                out.push((self.tap(x as i64, d), 1.0));
            }
            Mode::Linear => {
                let x0 = x.floor();
                let t = x - x0;
                out.push((self.tap(x0 as i64, d), 1.0 - t));
                out.push((self.tap(x0 as i64 + 1, d), t));
            }
            Mode::Cubic => {
                let x0 = x.floor();
                let c = cubic_coeffs(x - x0);
                for (j, w) in c.into_iter().enumerate() {
                    out.push((self.tap(x0 as i64 - 1 + j as i64, d), w));
                }
            }
        }
    }
}

/// The shapes GridSample's loops walk: batch, channels, the spatial dims (`k` of them), a
/// plane's size and strides, and the points sampled per batch entry.
struct Geometry<'a> {
    n: usize,
    c: usize,
    dims: &'a [usize],
    k: usize,
    plane: usize,
    dstr: Vec<usize>,
    points: usize,
}

impl<'a> Geometry<'a> {
    /// From X's and the grid's shapes (checked by [`GridSample::out_shape`] first).
    fn of(xs: &'a [usize], gs: &[usize]) -> Geometry<'a> {
        let dims = &xs[2..];
        Geometry {
            n: xs[0],
            c: xs[1],
            dims,
            k: dims.len(),
            plane: dims.iter().product(),
            dstr: strides(dims),
            points: gs[1..gs.len() - 1].iter().product(),
        }
    }
}

impl GridSample {
    /// The flattened taps `(offset in a plane, weight)` of the point `gp` (its coordinates,
    /// last axis first), each axis's own taps left in `axis`; zeros-padded taps dropped.
    fn point_taps(
        &self,
        gp: &[f32],
        dims: &[usize],
        dstr: &[usize],
        axis: &mut [Vec<(Option<usize>, f32)>],
        taps: &mut Vec<(usize, f32)>,
    ) {
        let k = dims.len();
        for a in 0..k {
            let coord = self.coordinate(gp[k - 1 - a], dims[a]);
            self.axis_taps(coord, dims[a], &mut axis[a]);
        }
        taps.clear();
        combine(axis, dstr, 0, 0, 1.0, taps);
    }
}

/// Reflects `x` by the nearer border until it lies within `[lo, hi]`.
fn reflect(x: f32, lo: f32, hi: f32) -> f32 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let (dx, from_lo) = if x < lo {
        (lo - x, true)
    } else if x > hi {
        (x - hi, false)
    } else {
        return x;
    };
    let n = (dx / range).trunc();
    let r = dx - n * range;
    let even = (n as i64) % 2 == 0;
    if from_lo == even {
        lo + r
    } else {
        hi - r
    }
}

/// Keys' cubic convolution weights (a = −0.75) for fractional offset `t` in `[0, 1)`.
fn cubic_coeffs(t: f32) -> [f32; 4] {
    let a = -0.75f32;
    let x = t.abs();
    [
        ((a * (x + 1.0) - 5.0 * a) * (x + 1.0) + 8.0 * a) * (x + 1.0) - 4.0 * a,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        ((a + 2.0) * (1.0 - x) - (a + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0,
        ((a * (2.0 - x) - 5.0 * a) * (2.0 - x) + 8.0 * a) * (2.0 - x) - 4.0 * a,
    ]
}

impl Op for GridSample {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = f32_fact(inputs, 0, "GridSample X")?;
        let g = f32_fact(inputs, 1, "GridSample grid")?;
        Ok(vec![Fact::new(x.dtype, Self::out_shape(&x.shape, &g.shape)?)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let (x, grid) = (f32_input(inputs, 0, "GridSample X")?, f32_input(inputs, 1, "GridSample grid")?);
        let (xs, gs) = (&inputs[0].unwrap().shape, &inputs[1].unwrap().shape);
        let shape = Self::out_shape(xs, gs)?;
        let Geometry { n, c, dims, k, plane, dstr, points } = Geometry::of(xs, gs);
        let mut out = vec![0f32; checked_numel(&shape)?];
        // Per point: the flattened taps (offset in a plane, weight); zeros-padded taps dropped.
        let mut taps: Vec<(usize, f32)> = Vec::new();
        let mut axis: Vec<Vec<(Option<usize>, f32)>> = vec![Vec::new(); k];
        for b in 0..n {
            for p in 0..points {
                self.point_taps(&grid[(b * points + p) * k..][..k], dims, &dstr, &mut axis, &mut taps);
                for ch in 0..c {
                    let src = &x[(b * c + ch) * plane..][..plane];
                    out[(b * c + ch) * points + p] = taps.iter().map(|&(o, w)| src[o] * w).sum();
                }
            }
        }
        Ok(vec![f32_output(shape, out)?])
    }

    /// `X`'s gradient: each output's gradient back to its taps, at their weights (every mode and
    /// padding). The grid's, for `linear` with `zeros` or `border` padding (deformable
    /// attention's): per axis the interpolation's slope, `Σ ±w_other · x_tap`, times the
    /// coordinate's scale (`(d − 1)/2` with `align_corners`, else `d/2`), 0 where `border`
    /// clamps the coordinate; `nearest` gives it 0. Others have no backward for the grid.
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let inputs = b.inputs;
        let (x, grid) = (f32_input(inputs, 0, "GridSample X")?, f32_input(inputs, 1, "GridSample grid")?);
        let (xs, gs) = (&inputs[0].unwrap().shape, &inputs[1].unwrap().shape);
        let shape = Self::out_shape(xs, gs)?;
        let mut out: Grads = vec![None; inputs.len()];
        let Some(g) = out_grad(b.grads, 0, shape.iter().product())? else { return Ok(out) };
        let cubic_or_reflected = self.mode == Mode::Cubic || self.padding == Padding::Reflection;
        if b.needs(1) && self.mode != Mode::Nearest && cubic_or_reflected {
            return Err(GradError::NoBackward);
        }
        let want_grid = b.needs(1) && self.mode == Mode::Linear;
        let Geometry { n, c, dims, k, plane, dstr, points } = Geometry::of(xs, gs);
        let mut dx = vec![0f32; x.len()];
        let mut dgrid = vec![0f32; if b.needs(1) { grid.len() } else { 0 }];
        let mut taps: Vec<(usize, f32)> = Vec::new();
        let mut axis: Vec<Vec<(Option<usize>, f32)>> = vec![Vec::new(); k];
        let mut slope = axis.clone();
        for bi in 0..n {
            for p in 0..points {
                let gp = &grid[(bi * points + p) * k..][..k];
                self.point_taps(gp, dims, &dstr, &mut axis, &mut taps);
                for ch in 0..c {
                    let gv = g[(bi * c + ch) * points + p];
                    let dst = &mut dx[(bi * c + ch) * plane..][..plane];
                    for &(o, w) in &taps {
                        dst[o] += gv * w;
                    }
                }
                if !want_grid {
                    continue;
                }
                for a in 0..k {
                    let d = dims[a] as f32;
                    let raw = if self.align_corners {
                        (gp[k - 1 - a] + 1.0) / 2.0 * (d - 1.0)
                    } else {
                        ((gp[k - 1 - a] + 1.0) * d - 1.0) / 2.0
                    };
                    let (lo, hi) = self.borders(dims[a]);
                    if self.padding == Padding::Border && (raw < lo || raw > hi) {
                        continue;
                    }
                    // This axis's taps weighted −1 and +1: the slope along it.
                    slope.clone_from(&axis);
                    slope[a][0].1 = -1.0;
                    slope[a][1].1 = 1.0;
                    taps.clear();
                    combine(&slope, &dstr, 0, 0, 1.0, &mut taps);
                    let mut sum = 0f32;
                    for ch in 0..c {
                        let src = &x[(bi * c + ch) * plane..][..plane];
                        let s: f32 = taps.iter().map(|&(o, w)| src[o] * w).sum();
                        sum += g[(bi * c + ch) * points + p] * s;
                    }
                    let scale = if self.align_corners { (d - 1.0) / 2.0 } else { d / 2.0 };
                    dgrid[(bi * points + p) * k + (k - 1 - a)] = sum * scale;
                }
            }
        }
        out[0] = Some(f32_tensor(xs.clone(), dx));
        if b.needs(1) {
            out[1] = Some(f32_tensor(gs.clone(), dgrid));
        }
        Ok(out)
    }
}

/// Every combination of one tap per axis: its offset in the plane and product weight; a
/// combination touching a zeros-padded tap reads 0 and is left out.
fn combine(
    axis: &[Vec<(Option<usize>, f32)>],
    strides: &[usize],
    a: usize,
    offset: usize,
    weight: f32,
    out: &mut Vec<(usize, f32)>,
) {
    if a == axis.len() {
        out.push((offset, weight));
        return;
    }
    for &(i, w) in &axis[a] {
        if let Some(i) = i {
            combine(axis, strides, a + 1, offset + i * strides[a], weight * w, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gs(mode: Mode, padding: Padding, align_corners: bool) -> GridSample {
        GridSample { mode, padding, align_corners }
    }

    fn run(op: &GridSample, x: Tensor, grid: Tensor) -> Vec<f32> {
        op.eval(&[Some(&x), Some(&grid)]).unwrap().remove(0).as_f32().unwrap().to_vec()
    }

    #[test]
    fn corners_and_centre_bilinear() {
        // 2×2 image [[1, 2], [3, 4]]; with align_corners the grid's corners hit the pixels.
        let x = Tensor::f32(vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let grid = Tensor::f32(vec![1, 1, 3, 2], vec![-1.0, -1.0, 1.0, 1.0, 0.0, 0.0]).unwrap();
        assert_eq!(run(&gs(Mode::Linear, Padding::Zeros, true), x.clone(), grid.clone()), vec![1.0, 4.0, 2.5]);
        // Without, the corners are half a pixel outside: zeros padding reads a quarter.
        assert_eq!(run(&gs(Mode::Linear, Padding::Zeros, false), x.clone(), grid.clone()), vec![0.25, 1.0, 2.5]);
        assert_eq!(run(&gs(Mode::Linear, Padding::Border, false), x, grid), vec![1.0, 4.0, 2.5]);
    }

    #[test]
    fn reflection_folds_back_inside() {
        assert_eq!(reflect(-1.0, -0.5, 3.5), 0.0);
        assert_eq!(reflect(4.0, -0.5, 3.5), 3.0);
        assert_eq!(reflect(9.0, 0.0, 3.0), 3.0);
        assert_eq!(reflect(1.5, 0.0, 3.0), 1.5);
    }

    #[test]
    fn bad_shapes_say_what_is_expected() {
        let x = Tensor::f32(vec![1, 1, 2, 2], vec![0.0; 4]).unwrap();
        let grid = Tensor::f32(vec![1, 1, 1, 3], vec![0.0; 3]).unwrap();
        let e = gs(Mode::Linear, Padding::Zeros, false).eval(&[Some(&x), Some(&grid)]).unwrap_err();
        assert!(e.to_string().contains("expected [1, O1…O2, 2]"), "{e}");
    }
}
