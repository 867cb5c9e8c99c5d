//! A seeded xorshift generator for the property tests, shared by the CPU's `int8.rs`, `gradients.rs`,
//! `train.rs` and the GPU crate's tests (through `#[path]`): the same seeds give the same cases everywhere.

/// A seeded xorshift64 generator.
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[-1, 1)` (24 random bits).
    pub fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Uniform in `0..n` (from [`Rng::unit`]).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit() + 1.0) * 0.5 * n as f32).min(n as f32 - 1.0) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}
