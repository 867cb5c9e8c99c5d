//! `qplay.tfl.AveragePool2D` and `qplay.tfl.MaxPool2D`: TFLite's int8 pools on NHWC
//! (`reference_integer_ops::AveragePool` / `MaxPool`). Both read only the taps inside the
//! image; the average sums the raw codes and divides by their count rounding half away from
//! zero (`(acc ± count/2) / count`), then clamps to the fused activation's range — input and
//! output share their quantization, as TFLite requires.

use super::{attr_i32, codes_of, eval_codes, infer_codes, Code, PerCode};
use crate::model::{Node, Tensor};
use crate::ops::{BuildCtx, Fact, Op, OpError};

/// The op types.
pub const AVERAGE_POOL: &str = "qplay.tfl.AveragePool2D";
/// Max pooling.
pub const MAX_POOL: &str = "qplay.tfl.MaxPool2D";

/// A built int8 pool.
#[derive(Debug, Clone)]
pub struct TflPool {
    /// Average (`false`: max).
    pub average: bool,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// The fused activation's range.
    pub act: (i32, i32),
}

fn build(node: &Node, average: bool) -> Result<Box<dyn Op>, OpError> {
    let get = |name: &str, n: usize| -> Result<Vec<usize>, OpError> {
        match node.attrs.ints(name) {
            Some(v) if v.len() == n && v.iter().all(|&x| (0..1 << 20).contains(&x)) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            v => Err(OpError::malformed(format!("{name} {v:?} must be {n} small non-negative values"))),
        }
    };
    let (k, s, p) = (get("kernel_shape", 2)?, get("strides", 2)?, get("pads", 4)?);
    if k.contains(&0) || s.contains(&0) {
        return Err(OpError::malformed("the window and strides must be positive"));
    }
    Ok(Box::new(TflPool {
        average,
        kernel: [k[0], k[1]],
        strides: [s[0], s[1]],
        pads: [p[0], p[1], p[2], p[3]],
        act: (attr_i32(node, "act_min")?, attr_i32(node, "act_max")?),
    }))
}

/// Builds `qplay.tfl.AveragePool2D` (`kernel_shape`, `strides`, `pads`, `act_min`, `act_max`).
pub fn build_average(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, true)
}

/// Builds `qplay.tfl.MaxPool2D`.
pub fn build_max(node: &Node, _ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build(node, false)
}

impl TflPool {
    fn out_shape(&self, x: &[usize]) -> Result<[usize; 4], OpError> {
        let [n, h, w, c] =
            <[usize; 4]>::try_from(x).map_err(|_| OpError::mismatch(format!("input {x:?} must be NHWC")))?;
        let size = |len: usize, k: usize, s: usize, p: usize| {
            (len + p)
                .checked_sub(k)
                .map(|v| v / s + 1)
                .ok_or_else(|| OpError::mismatch("the window is larger than the input"))
        };
        let oh = size(h, self.kernel[0], self.strides[0], self.pads[0] + self.pads[2])?;
        let ow = size(w, self.kernel[1], self.strides[1], self.pads[1] + self.pads[3])?;
        Ok([n, oh, ow, c])
    }
}

impl Op for TflPool {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        infer_codes(self, inputs)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        eval_codes(self, inputs)
    }
}

impl PerCode for TflPool {
    fn shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError> {
        Ok(self.out_shape(x)?.to_vec())
    }

    fn run<T: Code>(&self, x: &Tensor) -> Result<Tensor, OpError> {
        let xv = codes_of::<T>(x, "the input")?;
        let [n, oh, ow, c] = self.out_shape(&x.shape)?;
        let (h, w) = (x.shape[1], x.shape[2]);
        let mut y = vec![T::default(); n * oh * ow * c];
        for b in 0..n {
            for oy in 0..oh {
                let y0 = (oy * self.strides[0]) as isize - self.pads[0] as isize;
                let ys = (y0.max(0) as usize)..((y0 + self.kernel[0] as isize).min(h as isize).max(0) as usize);
                for ox in 0..ow {
                    let x0 = (ox * self.strides[1]) as isize - self.pads[1] as isize;
                    let xs = (x0.max(0) as usize)..((x0 + self.kernel[1] as isize).min(w as isize).max(0) as usize);
                    let count = (ys.len() * xs.len()) as i32;
                    let at = ((b * oh + oy) * ow + ox) * c;
                    for ch in 0..c {
                        let mut acc = if self.average { 0i32 } else { T::MIN };
                        for iy in ys.clone() {
                            for ix in xs.clone() {
                                let v = xv[((b * h + iy) * w + ix) * c + ch].get();
                                acc = if self.average { acc.wrapping_add(v) } else { acc.max(v) };
                            }
                        }
                        if self.average {
                            if count == 0 {
                                return Err(OpError::mismatch("a pooling window covers no input"));
                            }
                            acc = if acc > 0 { (acc + count / 2) / count } else { (acc - count / 2) / count };
                        }
                        y[at + ch] = T::put(acc.clamp(self.act.0, self.act.1).clamp(T::MIN, T::MAX));
                    }
                }
            }
        }
        Ok(Tensor { shape: vec![n, oh, ow, c], data: T::data(y) })
    }
}
