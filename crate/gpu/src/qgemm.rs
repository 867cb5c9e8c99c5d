//! The int8 GEMM kernel (`shaders/qgemm.wgsl`): packing on the CPU, dispatch, readback.

use crate::uniforms::{QgemmUniform, Uniform};
use crate::{Gpu, GpuError};
use qplay_core::ops::quant::qgemm::Bytes;

/// One requantized int8 matrix product, `out = clamp(round((Σ w·(x − zx) + bias) · scale) + zp,
/// lo, hi)`, with the same arguments the CPU epilogue takes.
#[derive(Debug, Clone, Copy)]
pub struct QGemm<'a> {
    /// Rows of the weights (output channels).
    pub m: usize,
    /// Reduction length.
    pub k: usize,
    /// Columns of the activations (output positions).
    pub n: usize,
    /// Weights `M × K`, row-major, symmetric (zero-point 0).
    pub w: &'a [i8],
    /// Activations `K × N`, row-major, uint8 or int8.
    pub x: Bytes<'a>,
    /// Zero-point of the activations.
    pub zx: i32,
    /// Int32 bias per row, optional.
    pub bias: Option<&'a [i32]>,
    /// Requantization multiplier per row.
    pub scale: &'a [f32],
    /// Output zero-point and clamp bounds (in the output's integer domain).
    pub zp: i32,
    /// Lower clamp.
    pub lo: i32,
    /// Upper clamp.
    pub hi: i32,
}

/// Packs four int8 values (little-endian) into one word.
fn pack4(v: [i8; 4]) -> u32 {
    u32::from_le_bytes(v.map(|b| b as u8))
}

impl Gpu {
    /// Runs one int8 GEMM on the GPU and returns the `M × N` output codes (as `i32`).
    pub async fn qgemm(&self, q: &QGemm<'_>) -> Result<Vec<i32>, GpuError> {
        let (m, k, n) = (q.m, q.k, q.n);
        if q.w.len() != m * k || q.x.len() != k * n || q.scale.len() != m || q.bias.is_some_and(|b| b.len() != m) {
            return Err(GpuError::Input(format!(
                "qgemm {m}×{k}×{n}: weights {}, activations {}, scales {}, bias {:?} values",
                q.w.len(),
                q.x.len(),
                q.scale.len(),
                q.bias.map(|b| b.len())
            )));
        }
        if m == 0 || n == 0 {
            return Ok(vec![0; m * n]);
        }
        let k4 = k.div_ceil(4).max(1);
        // Limits: storage bindings and the dispatch grid (8×8 workgroups).
        let limits = self.device.limits();
        let biggest = (m.max(n) * k4 * 4).max(m * n * 4) as u64;
        if biggest > limits.max_storage_buffer_binding_size {
            return Err(GpuError::Limits(format!(
                "a {m}×{k}×{n} product needs a {biggest}-byte buffer; this adapter binds at most {} bytes (split the layer)",
                limits.max_storage_buffer_binding_size
            )));
        }
        // One invocation per output loops over K/4 words: llvmpipe stops an invocation's loops
        // after 65,535 iterations ([`crate::MAX_SERIAL`]).
        if k4 > crate::MAX_SERIAL {
            return Err(GpuError::Limits(format!(
                "a sum over K = {k} is longer than one invocation may loop (split K into parts of at most {})",
                4 * crate::MAX_SERIAL
            )));
        }
        let (gx, gy) = (n.div_ceil(8) as u32, m.div_ceil(8) as u32);
        if gx.max(gy) > limits.max_compute_workgroups_per_dimension {
            return Err(GpuError::Limits(format!(
                "a {m}×{n} output needs {gx}×{gy} workgroups; this adapter dispatches at most {} per dimension",
                limits.max_compute_workgroups_per_dimension
            )));
        }

        // Weights [m][k4]; activations shifted to int8 and transposed to [n][k4]; the shift
        // (128 for uint8) and the zero-point fold into one per-row term with the bias:
        // Σ w·(x − zx) = Σ w·(x − s) + (s − zx)·Σw.
        let mut a = vec![0u32; m * k4];
        let mut add = vec![0i32; m];
        let shift = if matches!(q.x, Bytes::U8(_)) { 128 } else { 0 };
        for i in 0..m {
            let row = &q.w[i * k..(i + 1) * k];
            for (j, word) in a[i * k4..(i + 1) * k4].iter_mut().enumerate() {
                let mut v = [0i8; 4];
                for (t, b) in v.iter_mut().enumerate() {
                    *b = row.get(4 * j + t).copied().unwrap_or(0);
                }
                *word = pack4(v);
            }
            let sum: i32 = row.iter().map(|&w| w as i32).sum();
            add[i] = q.bias.map_or(0, |b| b[i]).wrapping_add((shift - q.zx).wrapping_mul(sum));
        }
        let xs = |kk: usize, j: usize| -> i8 {
            match q.x {
                Bytes::U8(v) => (v[kk * n + j] as i32 - 128) as i8,
                Bytes::I8(v) => v[kk * n + j],
            }
        };
        let mut b = vec![0u32; n * k4];
        for j in 0..n {
            for w4 in 0..k4 {
                let mut v = [0i8; 4];
                for (t, e) in v.iter_mut().enumerate() {
                    let kk = 4 * w4 + t;
                    if kk < k {
                        *e = xs(kk, j);
                    }
                }
                b[j * k4 + w4] = pack4(v);
            }
        }
        let dims = QgemmUniform { m: m as u32, n: n as u32, k4: k4 as u32, zp: q.zp, lo: q.lo, hi: q.hi, _pad: [0; 2] };

        let pipeline = self.cached_pipeline(QgemmUniform::KERNEL).await?;
        let dev = &self.device;
        let storage = |label: &str, bytes: &[u8]| {
            self.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let uniform = self.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("qgemm dims"),
            contents: bytemuck::bytes_of(&dims),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let (ab, bb) = (storage("qgemm a", bytemuck::cast_slice(&a)), storage("qgemm b", bytemuck::cast_slice(&b)));
        let (addb, scaleb) =
            (storage("qgemm add", bytemuck::cast_slice(&add)), storage("qgemm scale", bytemuck::cast_slice(q.scale)));
        let out = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("qgemm out"),
            size: (m * n * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("qgemm"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: ab.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: bb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: addb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: scaleb.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 5, resource: out.as_entire_binding() },
            ],
        });
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("qgemm") });
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("qgemm"), timestamp_writes: None });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        self.queue.submit([enc.finish()]);
        self.read_i32(&out, m * n).await
    }
}
