//! Deterministic sample tensors for the explorer and for tests.

use serde::{Deserialize, Serialize};

/// A small, fast, seeded PRNG (xorshift64*). Deterministic across platforms, so the page, the CLI
/// and the tests see the same "random" tensors.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped, xorshift cannot start from 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The kinds of sample tensor the explorer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// Uniform on [−1, 1].
    Uniform,
    /// Normal, mean 0, standard deviation 1.
    Gaussian,
    /// Normal(0, 1) plus 0.5 % outliers of magnitude 8–12: what activations often look like.
    Outliers,
    /// ReLU of a normal: non-negative, half the mass at 0.
    Relu,
}

impl SampleKind {
    /// Parses `uniform`, `gaussian`, `outliers`, `relu`.
    pub fn parse(s: &str) -> Option<SampleKind> {
        Some(match s {
            "uniform" => SampleKind::Uniform,
            "gaussian" | "normal" => SampleKind::Gaussian,
            "outliers" => SampleKind::Outliers,
            "relu" => SampleKind::Relu,
            _ => return None,
        })
    }
}

/// `n` values of the given kind from `seed`.
pub fn sample_tensor(kind: SampleKind, n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| match kind {
            SampleKind::Uniform => (r.uniform() * 2.0 - 1.0) as f32,
            SampleKind::Gaussian => r.normal() as f32,
            SampleKind::Outliers => {
                if r.uniform() < 0.005 {
                    let m = 8.0 + 4.0 * r.uniform();
                    (if r.uniform() < 0.5 { -m } else { m }) as f32
                } else {
                    r.normal() as f32
                }
            }
            SampleKind::Relu => r.normal().max(0.0) as f32,
        })
        .collect()
}
