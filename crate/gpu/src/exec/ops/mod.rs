//! One builder per op the GPU runs, a file per op family mirroring the core's (`conv`, `quant`,
//! `elementwise`, `data`, `pool`, `resize`). Each builder gets the step's typed core op (never
//! its ONNX attributes), checks that the step fits its kernel (else `Ok(None)`: the step stays
//! on the CPU), packs constants, writes the uniform and binds the buffers. [`build_step`] is the
//! one list of GPU ops.
//!
//! On the GPU: `QLinearConv` (2-D and 1-D, 8-bit or float output; `qconv.wgsl`, or
//! `dwconv.wgsl` when groups = input = output channels), float `Conv` (`fconv.wgsl`, equal to
//! the CPU's to rounding), `QuantizeLinear` and `DequantizeLinear` (per tensor), float
//! `Add`/`Sub`/`Mul` with broadcasting, `Clip` with constant bounds, `Relu`,
//! `BatchNormalization` (a multiply then an add), constant-mode `Pad` and 1-D/2-D `MaxPool` of
//! float tensors, `Neg`/`Abs`/`LeakyRelu`, `Transpose`, `Concat`, `Split`, `Slice`, and — only
//! in plans without 8-bit tensors, since they agree with the CPU to rounding — `Div`,
//! `Sigmoid`, `Tanh`, `Exp`, `HardSigmoid`, `HardSwish`, `Elu`, `Sqrt`, `Softmax`, the global
//! pools and linear `Resize`; and `Reshape`/`Flatten`/`Squeeze`/`Unsqueeze`/`Identity` of float
//! tensors (aliases, no dispatch).

mod conv;
mod data;
mod data8;
mod elementwise;
mod pool;
mod quant;
mod resize;
mod tflite;

use super::layout::Layout;
use super::{Builder, Dispatch, SlotBuf};
use crate::uniforms::{CopyUniform, Uniform, Window};
use crate::{GpuError, Kernel};
use qplay_core::model::{DType, Data, StepInput};
use qplay_core::ops::math::binary::Binary;
use qplay_core::ops::math::clip::Clip;
use qplay_core::ops::math::unary::Unary;
use qplay_core::ops::nn::batchnorm::BatchNorm;
use qplay_core::ops::nn::conv::Conv;
use qplay_core::ops::nn::global_pool::GlobalPool;
use qplay_core::ops::nn::maxpool::MaxPool;
use qplay_core::ops::nn::pad::Pad;
use qplay_core::ops::nn::resize::Resize;
use qplay_core::ops::nn::softmax::Softmax;
use qplay_core::ops::nn::spatial;
use qplay_core::ops::quant::dequantize_linear::DequantizeLinear;
use qplay_core::ops::quant::lookup::Lookup;
use qplay_core::ops::quant::qlinear_conv::QConv;
use qplay_core::ops::quant::quantize_linear::QuantizeLinear;
use qplay_core::ops::shape::concat::Concat;
use qplay_core::ops::shape::slice::Slice;
use qplay_core::ops::shape::split::Split;
use qplay_core::ops::shape::transpose::Transpose;
use qplay_core::ops::tflite::binary::TflBinary;
use qplay_core::ops::tflite::conv::TflConv;
use qplay_core::ops::tflite::mean::TflMean;
use qplay_core::ops::tflite::pool::TflPool;
use qplay_core::ops::tflite::quantize::TflQuantize;
use qplay_core::ops::tflite::resize::TflResize;
use qplay_core::ops::tflite::softmax::TflSoftmax;

type Built = Option<Vec<Dispatch>>;

/// Builds step `i` for the GPU, or `None` when it stays on the CPU: the one list of GPU ops,
/// by the core op's type. Reshape-like ops (the core says so with `reshapes_input`) become
/// aliases of their input's buffer.
pub(crate) async fn build_step(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let op = b.plan.step(i).op;
    macro_rules! gpu_ops {
        ($($ty:ty => $build:path),* $(,)?) => {
            $( if let Some(o) = op.downcast_ref::<$ty>() { return $build(b, i, o).await; } )*
        };
    }
    gpu_ops! {
        QConv => conv::qconv,
        Conv => conv::fconv,
        QuantizeLinear => quant::quantize,
        DequantizeLinear => quant::dequantize,
        Lookup => quant::lookup,
        Binary => elementwise::binary,
        Unary => elementwise::unary,
        Clip => elementwise::clip,
        BatchNorm => elementwise::batchnorm,
        Split => data::split,
        Slice => data::slice,
        Pad => data::pad,
        Transpose => data::transpose,
        Concat => data::concat,
        MaxPool => pool::maxpool,
        GlobalPool => pool::global_pool,
        Softmax => pool::softmax,
        Resize => resize::resize,
        TflConv => tflite::conv,
        TflBinary => tflite::binary,
        TflPool => tflite::pool,
        TflQuantize => tflite::quantize,
        TflResize => tflite::resize,
        TflSoftmax => tflite::softmax,
        TflMean => tflite::mean,
    }
    if op.reshapes_input() {
        return data::alias(b, i);
    }
    Ok(None)
}

impl Builder<'_> {
    fn step_name(&self, i: usize) -> String {
        let s = self.plan.step(i);
        format!("step `{}` ({})", s.name, s.op_type)
    }

    fn check_size(&self, i: usize, bytes: u64, what: &str) -> Result<(), GpuError> {
        let l = self.gpu.device.limits();
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        if bytes > max {
            return Err(GpuError::Limits(format!(
                "{}: {what} needs a {bytes}-byte buffer; this adapter binds at most {max} bytes (split the layer, or run the model on the CPU)",
                self.step_name(i)
            )));
        }
        Ok(())
    }

    /// The buffer of slot `s`, created (in the slot's layout) if it has none yet.
    fn slot_buf(&mut self, i: usize, s: usize) -> Result<Option<wgpu::Buffer>, GpuError> {
        if let Some(sb) = &self.slots[s] {
            return Ok(Some(sb.buf.clone()));
        }
        let (name, dtype, shape) = self.plan.slot(s);
        let Some(layout) = Layout::of(dtype, shape, self.flat8) else { return Ok(None) };
        let bytes = layout.bytes(shape);
        self.check_size(i, bytes, &format!("tensor `{name}` {shape:?}"))?;
        if let Some(buf) = self.assigned.get(s).cloned().flatten() {
            self.slots[s] = Some(SlotBuf { buf: buf.clone(), layout, staging: None });
            return Ok(Some(buf));
        }
        let buf = self.gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.slots[s] = Some(SlotBuf { buf: buf.clone(), layout, staging: None });
        Ok(Some(buf))
    }

    fn layout_of(&self, s: usize) -> Option<Layout> {
        let (_, dtype, shape) = self.plan.slot(s);
        Layout::of(dtype, shape, self.flat8)
    }

    /// A constant storage buffer (kept alive with the plan).
    fn const_buf(&mut self, i: usize, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer, GpuError> {
        self.check_size(i, bytes.len() as u64, label)?;
        let mut padded;
        let contents = if bytes.len() < 4 {
            padded = bytes.to_vec();
            padded.resize(4, 0);
            &padded[..]
        } else {
            bytes
        };
        let buf = self.gpu.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        });
        self.keep.push(buf.clone());
        Ok(buf)
    }

    /// A scratch storage buffer of `bytes` (kept alive with the plan).
    fn scratch(&mut self, i: usize, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        self.check_size(i, bytes, "an intermediate")?;
        let buf = self.gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("qplay scratch"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        self.keep.push(buf.clone());
        Ok(buf)
    }

    fn check_groups(&self, i: usize, kernel: Kernel, groups: [u32; 3]) -> Result<(), GpuError> {
        let max = self.gpu.device.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(GpuError::Limits(format!(
                "{}: {} needs {groups:?} workgroups; this adapter dispatches at most {max} per dimension (split the layer, or run the model on the CPU)",
                self.step_name(i),
                kernel.file()
            )));
        }
        Ok(())
    }

    /// One dispatch over `groups` of the kernel that reads `uniform` ([`Uniform::KERNEL`]),
    /// with `uniform` at binding 0 and `bufs` at 1…
    async fn dispatch<U: Uniform>(
        &mut self,
        i: usize,
        uniform: &U,
        bufs: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<Dispatch, GpuError> {
        let kernel = U::KERNEL;
        self.check_groups(i, kernel, groups)?;
        let pipeline = self.gpu.cached_pipeline(kernel).await?;
        let ub = self.gpu.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(kernel.file()),
            contents: bytemuck::bytes_of(uniform),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ub.as_entire_binding() }];
        for (k, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: k as u32 + 1, resource: b.as_entire_binding() });
        }
        let bind = self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.keep.push(ub);
        Ok(Dispatch { pipeline, bind, groups })
    }
}

/// The most loop iterations one invocation may run ([`crate::MAX_SERIAL`]).
pub(super) use crate::MAX_SERIAL;

/// Workgroups of 64 over `n` invocations, as a 2-D grid when one row would be too long;
/// returns the grid and the invocations per row.
pub(crate) fn grid_1d(n: usize, max: u32) -> ([u32; 3], u32) {
    let wg = n.div_ceil(64).max(1) as u64;
    let gx = wg.min(max as u64);
    let gy = wg.div_ceil(gx);
    ([gx as u32, gy.min(u32::MAX as u64) as u32, 1], (gx * 64) as u32)
}

/// A 2-D core window (1-D ones lifted) as the kernels' [`Window`] uniform block.
fn window(w: &spatial::Window) -> Window {
    let [ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw] = [
        w.input[0],
        w.input[1],
        w.output[0],
        w.output[1],
        w.kernel[0],
        w.kernel[1],
        w.strides[0],
        w.strides[1],
        w.dilations[0],
        w.dilations[1],
        w.pad_begin[0],
        w.pad_begin[1],
    ]
    .map(|v| v as u32);
    Window { ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw }
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `v` right-aligned into 8 dims, `fill` before, as a uniform's `array<vec4<u32>, 2>`.
fn dims8(v: &[usize], fill: usize) -> [[u32; 4]; 2] {
    let mut out = [fill as u32; 8];
    for (k, &x) in v.iter().rev().enumerate() {
        out[7 - k] = x as u32;
    }
    vec4x2(out)
}

/// Eight values as a uniform's `array<vec4<T>, 2>`.
fn vec4x2<T: Copy>(v: [T; 8]) -> [[T; 4]; 2] {
    [[v[0], v[1], v[2], v[3]], [v[4], v[5], v[6], v[7]]]
}

/// A float operand: a slot's buffer or an uploaded constant, with its shape.
fn operand(b: &mut Builder<'_>, i: usize, inp: StepInput<'_>) -> Result<Option<(wgpu::Buffer, Vec<usize>)>, GpuError> {
    match inp {
        StepInput::Slot(s) => {
            let (_, d, shape) = b.plan.slot(s);
            if d != DType::F32 {
                return Ok(None);
            }
            let shape = shape.to_vec();
            Ok(b.slot_buf(i, s)?.map(|buf| (buf, shape)))
        }
        StepInput::Const(t) => match &t.data {
            Data::F32(v) => Ok(Some((b.const_buf(i, "constant", bytemuck::cast_slice(v))?, t.shape.clone()))),
            _ => Ok(None),
        },
        StepInput::Omitted => Ok(None),
    }
}

/// A strided copy: source strides (signed, for reversed slices) from `src_base`, destination
/// strides from `dst_base`.
#[allow(clippy::too_many_arguments)]
async fn copy_dispatch(
    b: &mut Builder<'_>,
    i: usize,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    dims: &[usize],
    ss: &[i64],
    sd: &[usize],
    (src_base, dst_base): (usize, usize),
) -> Result<Option<Dispatch>, GpuError> {
    let fits = |v: i64| i32::try_from(v).is_ok();
    if dims.len() > 8 || !fits(src_base as i64) || !ss.iter().all(|&v| fits(v)) {
        return Ok(None);
    }
    let n: usize = dims.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let mut s8 = [0u32; 8];
    for (k, &v) in ss.iter().rev().enumerate() {
        s8[7 - k] = v as i32 as u32;
    }
    let u = CopyUniform {
        n: n as u32,
        row,
        dst_base: dst_base as u32,
        src_base: src_base as u32,
        dims: dims8(dims, 1),
        ss: vec4x2(s8),
        sd: dims8(sd, 0),
    };
    Ok(Some(b.dispatch(i, &u, &[src, dst], groups).await?))
}
