//! How tensors live in GPU buffers.
//!
//! - **8-bit tensors** (uint8 / int8 codes, shape `[N, C, spatial…]`, rank ≥ 2): *NHWC4*, the
//!   channels packed four to a `u32`. With `S` the product of the spatial dims (1 for rank 2)
//!   and `C4 = ⌈C/4⌉`, word `(n·S + p)·C4 + c/4` holds channels `4·⌊c/4⌋ … +3` of pixel `p`,
//!   channel `c` in byte `c % 4` (little-endian), as its raw code bits (uint8 as is, int8 two's
//!   complement). A pixel's channels are contiguous words, so a convolution tap reads its input
//!   channels as whole words straight into `dot4`; lanes past `C` in the last word are 0 and
//!   every kernel ignores them.
//! - **float32 tensors**: the ONNX layout (NCHW, row-major), so element-wise ops, reshapes
//!   (which alias the buffer) and downloads need no conversion.
//!
//! Other element types stay on the CPU.

use qplay_core::model::DType;

/// A GPU tensor's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 8-bit codes, NHWC4 (see the module docs); `signed`: int8.
    Packed8 {
        /// int8 (else uint8).
        signed: bool,
    },
    /// float32, NCHW.
    F32,
}

impl Layout {
    /// The layout of a tensor of `dtype` and `shape`, `None` when it cannot live on the GPU.
    pub fn of(dtype: DType, shape: &[usize]) -> Option<Layout> {
        match dtype {
            DType::U8 if shape.len() >= 2 => Some(Layout::Packed8 { signed: false }),
            DType::I8 if shape.len() >= 2 => Some(Layout::Packed8 { signed: true }),
            DType::F32 => Some(Layout::F32),
            _ => None,
        }
    }

    /// Bytes of the buffer (at least 4).
    pub fn bytes(self, shape: &[usize]) -> u64 {
        let words = match self {
            Layout::Packed8 { .. } => {
                let (n, c, s) = ncs(shape);
                n * s * c.div_ceil(4)
            }
            Layout::F32 => shape.iter().product(),
        };
        (words.max(1) * 4) as u64
    }
}

/// `(N, C, S)` of a tensor of rank ≥ 2: batch, channels, pixels per image.
pub fn ncs(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2..].iter().product())
}

/// NCHW bytes → NHWC4 words.
pub fn pack8(data: &[u8], shape: &[usize]) -> Vec<u32> {
    let (n, c, s) = ncs(shape);
    let c4 = c.div_ceil(4);
    let mut out = vec![0u32; (n * s * c4).max(1)];
    for b in 0..n {
        for ch in 0..c {
            let src = &data[(b * c + ch) * s..][..s];
            let shift = 8 * (ch % 4);
            for (p, &v) in src.iter().enumerate() {
                out[(b * s + p) * c4 + ch / 4] |= (v as u32) << shift;
            }
        }
    }
    out
}

/// NHWC4 words → NCHW bytes.
pub fn unpack8(words: &[u32], shape: &[usize]) -> Vec<u8> {
    let (n, c, s) = ncs(shape);
    let c4 = c.div_ceil(4);
    let mut out = vec![0u8; n * c * s];
    for b in 0..n {
        for ch in 0..c {
            let dst = &mut out[(b * c + ch) * s..][..s];
            let shift = 8 * (ch % 4);
            for (p, d) in dst.iter_mut().enumerate() {
                *d = (words[(b * s + p) * c4 + ch / 4] >> shift) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip() {
        for shape in [vec![1, 1], vec![2, 5, 3], vec![1, 3, 2, 2], vec![2, 8, 1, 3]] {
            let n: usize = shape.iter().product();
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let words = pack8(&data, &shape);
            assert_eq!(words.len() as u64 * 4, Layout::Packed8 { signed: false }.bytes(&shape));
            assert_eq!(unpack8(&words, &shape), data, "{shape:?}");
        }
        // Channel 5 of pixel 1 of [1, 6, 2]: word (0·2 + 1)·2 + 1, byte 1.
        let mut data = vec![0u8; 12];
        data[5 * 2 + 1] = 0xab;
        assert_eq!(pack8(&data, &[1, 6, 2])[3], 0xab00);
    }
}
