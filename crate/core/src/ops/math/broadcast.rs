//! Numpy multidirectional broadcasting, and the strided walker every element-wise op, reduction
//! and view-like shape op (Transpose, Slice, Expand) iterates with.
//!
//! Shapes are aligned at their last dimension; each pair of dimensions must be equal or one of
//! them 1 (`[2,1,3] ⊕ [4,1] = [2,4,3]`). A broadcast input is read through strides that are 0 on
//! its stretched dimensions, so nothing is materialised.

use crate::ops::shape::args::checked_numel;
use crate::ops::OpError;

/// The broadcast shape of two shapes, or an error naming the dimensions that clash. The result
/// is checked against [`MAX_ELEMENTS`](crate::ops::shape::args::MAX_ELEMENTS).
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let (da, db) = (at(a, i), at(b, i));
        out.push(match (da, db) {
            _ if da == db => da,
            (1, _) => db,
            (_, 1) => da,
            _ => {
                return Err(OpError::mismatch(format!(
                    "shapes {a:?} and {b:?} cannot be broadcast together: dimension {i} of the aligned shapes is {da} in one and {db} in the other"
                )))
            }
        });
    }
    checked_numel(&out)?;
    Ok(out)
}

/// The broadcast shape of several shapes.
pub fn broadcast_all(shapes: &[&[usize]]) -> Result<Vec<usize>, OpError> {
    shapes.iter().try_fold(Vec::new(), |acc, s| broadcast_shapes(&acc, s))
}

/// Strides for reading a tensor of `shape` as if it had the (broadcast) shape `out`: row-major
/// strides, right-aligned, 0 on dimensions that are stretched or missing.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<isize> {
    debug_assert!(shape.len() <= out.len());
    let own = crate::model::strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len()).map(|i| if i < lead || shape[i - lead] == 1 { 0 } else { own[i - lead] as isize }).collect()
}

/// Calls `f` with the offsets into `N` strided views for every element of `out`, in row-major
/// order: for multi-index `i` the `k`-th offset is `base[k] + Σ i[d]·strides[k][d]`. Stops at the
/// first error `f` returns. The offsets must be non-negative (the caller's strides guarantee it).
pub fn for_each_offset<const N: usize>(
    out: &[usize],
    strides: [&[isize]; N],
    base: [isize; N],
    mut f: impl FnMut([usize; N]) -> Result<(), OpError>,
) -> Result<(), OpError> {
    if out.contains(&0) {
        return Ok(());
    }
    let Some(last) = out.len().checked_sub(1) else {
        return f(base.map(|o| o as usize));
    };
    let inner_step: [isize; N] = std::array::from_fn(|k| strides[k][last]);
    let mut idx = vec![0usize; last];
    let mut row = base;
    loop {
        let mut off = row;
        for _ in 0..out[last] {
            f(off.map(|o| o as usize))?;
            for (o, s) in off.iter_mut().zip(inner_step) {
                *o += s;
            }
        }
        // Advance the odometer over the outer dimensions.
        let mut d = last;
        loop {
            if d == 0 {
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            for (r, s) in row.iter_mut().zip(strides) {
                *r += s[d];
            }
            if idx[d] < out[d] {
                break;
            }
            for (r, s) in row.iter_mut().zip(strides) {
                *r -= s[d] * out[d] as isize;
            }
            idx[d] = 0;
        }
    }
}

/// `f` applied element-wise to two broadcast operands; `out` is their broadcast shape. `f` is
/// infallible so that the common paths compile to plain loops; kernels that can fail (integer
/// division) record the failure themselves and report it afterwards.
pub fn map2<A: Copy, B: Copy, O>(
    (a, sa): (&[A], &[usize]),
    (b, sb): (&[B], &[usize]),
    out: &[usize],
    mut f: impl FnMut(A, B) -> O,
) -> Result<Vec<O>, OpError> {
    // Fast paths: equal shapes, and a scalar on either side (bias adds, scale multiplies).
    if sa == out && sb == out {
        return Ok(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect());
    }
    if sa == out && b.len() == 1 {
        return Ok(a.iter().map(|&x| f(x, b[0])).collect());
    }
    if sb == out && a.len() == 1 {
        return Ok(b.iter().map(|&y| f(a[0], y)).collect());
    }
    let mut res = Vec::with_capacity(checked_numel(out)?);
    let (ta, tb) = (broadcast_strides(sa, out), broadcast_strides(sb, out));
    for_each_offset(out, [&ta, &tb], [0, 0], |[i, j]| {
        res.push(f(a[i], b[j]));
        Ok(())
    })?;
    Ok(res)
}

/// `f` applied element-wise to three broadcast operands (Where); `out` is their broadcast shape.
pub fn map3<A: Copy, B: Copy, C: Copy, O>(
    (a, sa): (&[A], &[usize]),
    (b, sb): (&[B], &[usize]),
    (c, sc): (&[C], &[usize]),
    out: &[usize],
    mut f: impl FnMut(A, B, C) -> O,
) -> Result<Vec<O>, OpError> {
    let mut res = Vec::with_capacity(checked_numel(out)?);
    let (ta, tb, tc) = (broadcast_strides(sa, out), broadcast_strides(sb, out), broadcast_strides(sc, out));
    for_each_offset(out, [&ta, &tb, &tc], [0, 0, 0], |[i, j, k]| {
        res.push(f(a[i], b[j], c[k]));
        Ok(())
    })?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap(), vec![2, 4, 3]);
        assert_eq!(broadcast_shapes(&[], &[5]).unwrap(), vec![5]);
        assert_eq!(broadcast_shapes(&[0, 1], &[1, 3]).unwrap(), vec![0, 3]);
        assert!(broadcast_shapes(&[2, 3], &[4]).unwrap_err().to_string().contains("cannot be broadcast"));
        assert!(broadcast_shapes(&[1 << 20, 1], &[1, 1 << 20]).unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn walker_reversed_and_broadcast() {
        let mut seen = Vec::new();
        // A 2×3 view, rows reversed (stride −3 from base 3), columns broadcast (stride 0).
        for_each_offset(&[2, 3], [&[-3, 0]], [3], |[o]| {
            seen.push(o);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![3, 3, 3, 0, 0, 0]);
    }
}
