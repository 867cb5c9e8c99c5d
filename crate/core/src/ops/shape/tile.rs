//! Tile: repeats the input `repeats[d]` times along each dimension d (repeats is input 1).

use super::args::{checked_numel, dim, known_ints, Inputs};
use super::elem::{dispatch, typed, Elem};
use crate::model::{Node, Tensor};
use crate::ops::{input, BuildCtx, Fact, Op, OpError};

/// Tile.
#[derive(Debug, Clone)]
pub struct Tile;

/// Builds Tile.
pub fn build(_: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    Ok(Box::new(Tile))
}

/// The repeats and the output shape.
fn plan<I: Inputs + ?Sized>(x: &I) -> Result<(Vec<usize>, Vec<usize>), OpError> {
    let shape = x.shape(0)?;
    let spec = known_ints(x, 1, "repeats")?.ok_or_else(|| OpError::malformed("Tile needs repeats (input 1)"))?;
    if spec.len() != shape.len() {
        return Err(OpError::mismatch(format!(
            "repeats {spec:?} needs one entry per dimension of the input {shape:?}"
        )));
    }
    let reps = spec.iter().map(|&r| dim(r, "repeats")).collect::<Result<Vec<_>, _>>()?;
    let out = shape
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| {
            d.checked_mul(r).ok_or_else(|| OpError::limit(format!("tiling {shape:?} by {spec:?} overflows")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    checked_numel(&out)?;
    Ok((reps, out))
}

/// Repeats, innermost axis first, each block `[a..]` of the current data `r` times in place of
/// itself; every intermediate is at most the output's size.
fn tile<T: Copy>(src: &[T], shape: &[usize], reps: &[usize]) -> Vec<T> {
    let mut data = src.to_vec();
    let mut cur = shape.to_vec();
    for a in (0..shape.len()).rev() {
        if reps[a] == 1 {
            continue;
        }
        let block: usize = cur[a..].iter().product();
        let outer: usize = cur[..a].iter().product();
        let mut next = Vec::with_capacity(outer * block * reps[a]);
        for o in 0..outer {
            for _ in 0..reps[a] {
                next.extend_from_slice(&data[o * block..(o + 1) * block]);
            }
        }
        cur[a] *= reps[a];
        data = next;
    }
    data
}

impl Op for Tile {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(vec![Fact::new(inputs.dtype(0)?, plan(inputs)?.1)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let (reps, shape) = plan(inputs)?;
        let data = dispatch!(x.dtype(), T => T::wrap(tile(typed::<T>(x)?, &x.shape, &reps)));
        Ok(vec![Tensor { shape, data }])
    }
}
