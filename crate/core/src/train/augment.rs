//! Label-free augmentation for fine-tuning: the student and the teacher see the same changed
//! input, so any change that keeps the input a plausible picture is fair — no boxes to move.
//! Each draw is a horizontal flip (half the time), a shift of up to an eighth of the picture
//! (edges repeated), and a contrast and brightness change around the picture's own mean (so
//! it works whatever the model's input range: 0..255, 0..1 or −1..1). Seeded: the same seed
//! gives the same inputs.

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
    let max_dy = (h / 8) as f32;
    let max_dx = (w / 8) as f32;
    let dy = ((rng.unit() * 2.0 - 1.0) * max_dy).round() as isize;
    let dx = ((rng.unit() * 2.0 - 1.0) * max_dx).round() as isize;
    let contrast = 0.8 + 0.4 * rng.unit();
    let brightness = (rng.unit() * 2.0 - 1.0) * 0.1;
    let mean = v.iter().map(|&a| f64::from(a)).sum::<f64>() as f32 / v.len().max(1) as f32;
    let spread = (v.iter().map(|&a| (f64::from(a) - f64::from(mean)).abs()).sum::<f64>() as f32
        / v.len().max(1) as f32)
        .max(f32::MIN_POSITIVE);
    let mut out = vec![0.0f32; v.len()];
    let clampi = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;
    for plane in 0..n * c {
        let src = &v[plane * h * w..(plane + 1) * h * w];
        let dst = &mut out[plane * h * w..(plane + 1) * h * w];
        for y in 0..h {
            let sy = clampi(y as isize - dy, h);
            for xx in 0..w {
                let fx = if flip { w - 1 - xx } else { xx };
                let sx = clampi(fx as isize - dx, w);
                let a = src[sy * w + sx];
                dst[y * w + xx] = mean + (a - mean) * contrast + brightness * 2.0 * spread;
            }
        }
    }
    Tensor { shape: x.shape.clone(), data: Data::F32(out) }
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
        let ids = Tensor::vec_i64(vec![1, 2]);
        assert_eq!(augment(&ids, &mut Rng::new(1)), ids, "non-images pass through");
    }
}
