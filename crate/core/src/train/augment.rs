//! Label-free augmentation for fine-tuning: the student and the teacher see the same changed
//! input, so any change that keeps the input a plausible picture is fair — no boxes to move.
//! Each draw is a horizontal flip (half the time), a crop of 80–100 % of the picture's width and
//! height scaled back to full size (bilinear, a random part of the picture), a shift of up to an
//! eighth of the picture (edges repeated), and a colour change around the picture's own mean: one
//! contrast and brightness for all channels and a gain per channel (colour jitter), so it works
//! whatever the model's input range (0..255, 0..1 or −1..1). Seeded: the same seed gives the same
//! inputs.

use crate::model::{Data, Tensor};

/// A small seeded generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is allowed).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// An augmented copy of an NCHW float image `x` (other tensors are returned unchanged).
pub fn augment(x: &Tensor, rng: &mut Rng) -> Tensor {
    let (Data::F32(v), [n, c, h, w]) = (&x.data, x.shape.as_slice()) else { return x.clone() };
    let (n, c, h, w) = (*n, *c, *h, *w);
    let flip = rng.unit() < 0.5;
    // The crop: `1/zoom` of each side, at a random place; sampled back to h × w.
    let zoom = 1.0 / (0.8 + 0.2 * rng.unit());
    let (oy, ox) = (rng.unit() * h as f32 * (1.0 - 1.0 / zoom), rng.unit() * w as f32 * (1.0 - 1.0 / zoom));
    let dy = ((rng.unit() * 2.0 - 1.0) * (h / 8) as f32).round();
    let dx = ((rng.unit() * 2.0 - 1.0) * (w / 8) as f32).round();
    let contrast = 0.8 + 0.4 * rng.unit();
    let brightness = (rng.unit() * 2.0 - 1.0) * 0.1;
    let gains: Vec<f32> = (0..c).map(|_| 0.9 + 0.2 * rng.unit()).collect();
    let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() as f32 / v.len().max(1) as f32;
    let spread = (v.iter().map(|&a| (f64::from(a) - f64::from(mean)).abs()).sum::<f64>() as f32
        / v.len().max(1) as f32)
        .max(f32::MIN_POSITIVE);
    // Source taps along one axis: the two neighbours and the weight of the second, edges repeated.
    let taps = |len: usize, offset: f32, shift: f32, flipped: bool| -> Vec<(usize, usize, f32)> {
        (0..len)
            .map(|i| {
                let i = if flipped { len - 1 - i } else { i };
                let s = (offset + (i as f32 - shift) / zoom).clamp(0.0, (len - 1) as f32);
                let lo = s.floor() as usize;
                (lo, (lo + 1).min(len - 1), s - lo as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(h, oy, dy, false), taps(w, ox, dx, flip));
    let mut out = vec![0.0f32; v.len()];
    for plane in 0..n * c {
        let src = &v[plane * h * w..(plane + 1) * h * w];
        let dst = &mut out[plane * h * w..(plane + 1) * h * w];
        let gain = contrast * gains[plane % c];
        for (y, &(y0, y1, fy)) in ty.iter().enumerate() {
            for (xx, &(x0, x1, fx)) in tx.iter().enumerate() {
                let top = src[y0 * w + x0] + (src[y0 * w + x1] - src[y0 * w + x0]) * fx;
                let bottom = src[y1 * w + x0] + (src[y1 * w + x1] - src[y1 * w + x0]) * fx;
                let a = top + (bottom - top) * fy;
                dst[y * w + xx] = mean + (a - mean) * gain + brightness * 2.0 * spread;
            }
        }
    }
    Tensor { shape: x.shape.clone(), data: Data::F32(out) }
}

/// `a ← λ·a + (1 − λ)·b` for float tensors of one shape (mixup of two inputs); anything else
/// is left as it is.
pub fn blend(a: &mut Tensor, b: &Tensor, lam: f32) {
    if a.shape != b.shape {
        return;
    }
    if let (Data::F32(av), Data::F32(bv)) = (&mut a.data, &b.data) {
        for (p, &q) in av.iter_mut().zip(bv) {
            *p = lam * *p + (1.0 - lam) * q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_is_seeded_and_keeps_the_shape() {
        let x = Tensor { shape: vec![1, 3, 16, 16], data: Data::F32((0..768).map(|i| (i % 97) as f32).collect()) };
        let (a, b) = (augment(&x, &mut Rng::new(7)), augment(&x, &mut Rng::new(7)));
        assert_eq!(a, b);
        assert_eq!(a.shape, x.shape);
        assert_ne!(a, x);
        // Values stay within the picture's range widened by the colour change (no overshoot from
        // the resampling), and a different seed gives a different picture.
        let Data::F32(av) = &a.data else { unreachable!() };
        let (lo, hi) = av.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(lo > -60.0 && hi < 160.0, "{lo}..{hi}");
        assert_ne!(augment(&x, &mut Rng::new(8)), a);
        let ids = Tensor::vec_i64(vec![1, 2]);
        assert_eq!(augment(&ids, &mut Rng::new(1)), ids, "non-images pass through");
    }

    #[test]
    fn blend_mixes_two_pictures_and_leaves_other_tensors() {
        let mut a = Tensor { shape: vec![1, 1, 2, 2], data: Data::F32(vec![0.0, 1.0, 2.0, 3.0]) };
        let b = Tensor { shape: vec![1, 1, 2, 2], data: Data::F32(vec![4.0, 4.0, 4.0, 4.0]) };
        blend(&mut a, &b, 0.25);
        assert_eq!(a.data, Data::F32(vec![3.0, 3.25, 3.5, 3.75]));
        let before = a.clone();
        blend(&mut a, &Tensor { shape: vec![1, 1, 4], data: Data::F32(vec![0.0; 4]) }, 0.5);
        assert_eq!(a, before, "another shape: unchanged");
        let mut ids = Tensor::vec_i64(vec![1, 2]);
        blend(&mut ids, &Tensor::vec_i64(vec![5, 6]), 0.5);
        assert_eq!(ids, Tensor::vec_i64(vec![1, 2]), "not float: unchanged");
    }
}
