//! How tensors live in GPU buffers.
//!
//! - **8-bit tensors** (uint8 / int8 codes, shape `[N, C, spatial…]`, rank ≥ 2): *NHWC4*, the
//!   channels packed four to a `u32`. With `S` the product of the spatial dims (1 for rank 2)
//!   and `C4 = ⌈C/4⌉`, word `(n·S + p)·C4 + c/4` holds channels `4·⌊c/4⌋ … +3` of pixel `p`,
//!   channel `c` in byte `c % 4` (little-endian), as its raw code bits (uint8 as is, int8 two's
//!   complement). A pixel's channels are contiguous words, so a convolution tap reads its input
//!   channels as whole words straight into `dot4`; lanes past `C` in the last word are 0 and
//!   every kernel ignores them.
//! - **8-bit tensors of TFLite plans** (plans with TFLite's integer ops, `qplay.tfl.*`, whose
//!   tensors are NHWC): *Flat8*, the tensor's bytes in row-major order, four to a `u32`
//!   (element `e` in byte `e % 4` of word `e / 4`), the last word's spare bytes 0 on upload and
//!   never read. In NHWC a pixel's channels are contiguous, so with channels a multiple of 4 a
//!   tap's channels are whole words as in NHWC4; reshapes alias the buffer.
//! - **int16 tensors of TFLite plans** (16x8 models' activations): *Flat16*, the tensor's
//!   int16 codes in row-major order, two to a `u32` (element `e` in the low half of word `e / 2`
//!   when `e` is even), the buffer a whole number of four-code groups (the TFLite kernels write
//!   four codes per invocation: two words) and the spare halves never read.
//! - **float32 tensors**: the ONNX layout (NCHW, row-major), so element-wise ops, reshapes
//!   (which alias the buffer) and downloads need no conversion.
//!
//! Other element types stay on the CPU. [`write_tensor`] and [`read_tensor`] convert a CPU
//! tensor into a buffer's layout and back (uploads and downloads).

use crate::GpuError;
use qplay_core::model::{DType, Data, Tensor};

/// A GPU tensor's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 8-bit codes, NHWC4 (see the module docs); `signed`: int8.
    Packed8 {
        /// int8 (else uint8).
        signed: bool,
    },
    /// 8-bit codes, row-major bytes (see the module docs); `signed`: int8.
    Flat8 {
        /// int8 (else uint8).
        signed: bool,
    },
    /// int16 codes, row-major, two to a word (see the module docs).
    Flat16,
    /// float32, NCHW.
    F32,
}

impl Layout {
    /// The layout of a tensor of `dtype` and `shape`, `None` when it cannot live on the GPU;
    /// `flat8`: 8-bit tensors are [`Layout::Flat8`] (TFLite plans), of any rank.
    pub fn of(dtype: DType, shape: &[usize], flat8: bool) -> Option<Layout> {
        match dtype {
            DType::U8 if flat8 => Some(Layout::Flat8 { signed: false }),
            DType::I8 if flat8 => Some(Layout::Flat8 { signed: true }),
            DType::I16 if flat8 => Some(Layout::Flat16),
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
            Layout::Flat8 { .. } => shape.iter().product::<usize>().div_ceil(4),
            Layout::Flat16 => 2 * shape.iter().product::<usize>().div_ceil(4),
            Layout::F32 => shape.iter().product(),
        };
        (words.max(1) * 4) as u64
    }

    /// The codes of a row-major layout of TFLite plans, as the TFLite kernels' uniforms say
    /// them (`signed`): 0 uint8, 1 int8, 2 int16; `None` for the other layouts.
    pub fn flat_codes(self) -> Option<u32> {
        match self {
            Layout::Flat8 { signed } => Some(u32::from(signed)),
            Layout::Flat16 => Some(2),
            _ => None,
        }
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

/// Writes a CPU tensor into its buffer in the buffer's layout.
pub(super) fn write_tensor(
    queue: &wgpu::Queue,
    buf: &wgpu::Buffer,
    layout: Layout,
    t: &Tensor,
) -> Result<(), GpuError> {
    match (&t.data, layout) {
        (Data::F32(v), Layout::F32) => {
            if !v.is_empty() {
                queue.write_buffer(buf, 0, bytemuck::cast_slice(v));
            }
        }
        (Data::U8(v), Layout::Packed8 { signed: false }) => {
            queue.write_buffer(buf, 0, bytemuck::cast_slice(&pack8(v, &t.shape)))
        }
        (Data::I8(v), Layout::Packed8 { signed: true }) => {
            queue.write_buffer(buf, 0, bytemuck::cast_slice(&pack8(bytemuck::cast_slice(v), &t.shape)))
        }
        (Data::U8(v), Layout::Flat8 { signed: false }) => write_flat8(queue, buf, v),
        (Data::I8(v), Layout::Flat8 { signed: true }) => write_flat8(queue, buf, bytemuck::cast_slice(v)),
        (Data::I16(v), Layout::Flat16) => write_flat8(queue, buf, bytemuck::cast_slice(v)),
        _ => return Err(GpuError::Input(format!("a {:?} tensor cannot go into a {:?} buffer", t.dtype(), layout))),
    }
    Ok(())
}

/// Row-major bytes into a [`Layout::Flat8`] or [`Layout::Flat16`] buffer (padded to a whole word, as writes must be).
fn write_flat8(queue: &wgpu::Queue, buf: &wgpu::Buffer, v: &[u8]) {
    if v.is_empty() {
        return;
    }
    if v.len() % 4 == 0 {
        queue.write_buffer(buf, 0, v);
    } else {
        let mut padded = v.to_vec();
        padded.resize(v.len().next_multiple_of(4), 0);
        queue.write_buffer(buf, 0, &padded);
    }
}

/// A staging buffer's bytes → a CPU tensor.
pub(super) fn read_tensor(bytes: &[u8], layout: Layout, dtype: DType, shape: &[usize]) -> Result<Tensor, GpuError> {
    let n: usize = shape.iter().product();
    let data = match (layout, dtype) {
        (Layout::F32, DType::F32) => Data::F32(bytemuck::cast_slice::<u8, f32>(&bytes[..n * 4]).to_vec()),
        (Layout::Packed8 { .. }, DType::U8) => Data::U8(unpack8(bytemuck::cast_slice(bytes), shape)),
        (Layout::Packed8 { .. }, DType::I8) => {
            Data::I8(unpack8(bytemuck::cast_slice(bytes), shape).into_iter().map(|b| b as i8).collect())
        }
        (Layout::Flat8 { .. }, DType::U8) => Data::U8(bytes[..n].to_vec()),
        (Layout::Flat8 { .. }, DType::I8) => Data::I8(bytes[..n].iter().map(|&b| b as i8).collect()),
        (Layout::Flat16, DType::I16) => {
            Data::I16(bytes[..2 * n].chunks_exact(2).map(|h| i16::from_le_bytes([h[0], h[1]])).collect())
        }
        _ => return Err(GpuError::Readback(format!("a {layout:?} buffer cannot hold {dtype:?}"))),
    };
    Ok(Tensor { shape: shape.to_vec(), data })
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
