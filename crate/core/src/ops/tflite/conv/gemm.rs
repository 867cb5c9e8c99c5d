//! The int8 convolutions and fully-connected layers through the shared int8 GEMM (the module
//! docs of [`super`]): weights packed once and cached, the NHWC input (or its im2col) as `Bᵀ`,
//! the requantization on the exact int32 sums.

use super::{Geometry, TflConv};
use crate::ops::quant::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use crate::ops::OpError;
use crate::parallel;
use std::sync::Arc;

impl TflConv {
    /// The weights `[O, K]` packed for the GEMM, cached while the weight tensor is the same.
    fn packed(&self, wv: &[i8], o: usize, k: usize) -> Result<Arc<PackedA>, OpError> {
        let key = (wv.as_ptr() as usize, wv.len());
        let mut cache = self.packed.lock().map_err(|_| OpError::internal("weight cache poisoned"))?;
        if let Some((p, l, packed)) = cache.as_ref() {
            if (*p, *l) == key {
                return Ok(packed.clone());
            }
        }
        let packed = Arc::new(PackedA::new(&QMat::row_major(Bytes::I8(wv), o, k)?)?);
        *cache = Some((key.0, key.1, packed.clone()));
        Ok(packed)
    }

    /// The patches of the NHWC input, one row of `kh · kw · C` per output pixel in the weights'
    /// (ky, kx, c) order; taps outside the image hold the input zero point.
    fn im2col(&self, g: &Geometry, xv: &[i8]) -> Vec<i8> {
        let [n, _, _, c] = g.x;
        let [_, kh, kw, _] = g.w;
        let [_, oh, ow, _] = g.y;
        let k = kh * kw * c;
        let mut col = vec![self.x_zp as i8; n * oh * ow * k];
        let row_len = ow * k;
        let parts = parallel::split(n * oh, parallel::tasks(col.len(), n * oh), 1);
        let mut blocks: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(&mut col, row_len, &parts)).collect();
        parallel::for_each_mut(&mut blocks, |_, (rows, dst)| {
            for (r, out) in rows.clone().zip(dst.chunks_mut(row_len)) {
                let (b, oy) = (r / oh, r % oh);
                for ox in 0..ow {
                    let patch = &mut out[ox * k..][..k];
                    self.taps(g, b, (oy, ox), |tap, px| patch[tap * c..][..c].copy_from_slice(&xv[px..px + c]));
                }
            }
        });
        col
    }

    /// Convolution or fully-connected layer through the int8 GEMM (module docs).
    pub(super) fn gemm(&self, g: &Geometry, xv: &[i8], wv: &[i8], bias: &[i32]) -> Result<Vec<i8>, OpError> {
        let [o, kh, kw, c] = g.w;
        let [n, _, _, _] = g.x;
        let [_, oh, ow, oc_n] = g.y;
        let k = kh * kw * c;
        let pixels = n * oh * ow;
        if pixels == 0 || oc_n == 0 {
            return Ok(Vec::new());
        }
        let a = self.packed(wv, o, k)?;
        let direct = kh == 1 && kw == 1 && self.strides == [1, 1] && self.pads == [0; 4];
        let col;
        let src: &[i8] = if direct {
            xv
        } else {
            col = self.im2col(g, xv);
            &col
        };
        let b = QMat::row_major(Bytes::I8(src), pixels, k)?.t();
        let mut acc = vec![0i32; o * pixels];
        let ep = Epilogue {
            za: PerIndex::All(0),
            zb: PerIndex::All(self.x_zp),
            bias: Some(bias),
            scale: &[1.0],
            scale_per_row: true,
            row_max: None,
            out: Out::I32(&mut acc),
            ldc: pixels,
        };
        qgemm(&a, &b, ep)?;
        // Channel-major sums → NHWC codes, requantized.
        let mut y = vec![0i8; pixels * o];
        let parts = parallel::split(pixels, parallel::tasks(y.len(), pixels), 1);
        let mut blocks: Vec<_> = parts.iter().cloned().zip(parallel::split_parts(&mut y, o, &parts)).collect();
        parallel::for_each_mut(&mut blocks, |_, (ps, dst)| {
            // Tiles of pixels: each channel's sums read in a run, the tile's codes written within
            // a few cache lines.
            const TILE: usize = 64;
            let mut codes = [0i8; TILE];
            for t0 in ps.clone().step_by(TILE) {
                let t1 = (t0 + TILE).min(ps.end);
                let tile = &mut dst[(t0 - ps.start) * o..(t1 - ps.start) * o];
                for oc in 0..o {
                    let codes = &mut codes[..t1 - t0];
                    self.rq(oc).run(&acc[oc * pixels + t0..oc * pixels + t1], codes);
                    for (px, &v) in tile.chunks_exact_mut(o).zip(codes.iter()) {
                        px[oc] = v;
                    }
                }
            }
        });
        Ok(y)
    }
}
