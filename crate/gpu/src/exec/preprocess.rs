//! Pre-processing on the GPU ([`GpuPlan::run_rgba`]): the RGBA frame is uploaded as one `u32`
//! per pixel (a quarter of the float input's bytes) and `preprocess.wgsl` writes the model's
//! input buffer at the start of the first GPU phase, in the same command encoder as the model.
//! The taps, normalisation and padding come from the CPU's [`resize_plan`], so both paths do
//! the same arithmetic (to rounding: a GPU may fuse a multiply and an add).
//!
//! Buffers: the frame buffer, the two tap tables and the uniform are made at the first frame;
//! only a frame with more pixels than any before makes a new frame buffer (and bind group).
//!
//! [`resize_plan`]: qplay_core::detect::resize_plan

use super::ops::grid_1d;
use super::GpuPlan;
use crate::uniforms::PreprocessUniform;
use crate::GpuError;
use qplay_core::detect::ResizePlan;
use qplay_core::model::{DType, Plan, Tensor};

/// The pre-processing dispatch and its buffers.
#[derive(Debug)]
pub(crate) struct PreState {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) bind: wgpu::BindGroup,
    pub(crate) groups: [u32; 3],
    row: u32,
    uniform: wgpu::Buffer,
    xs: wgpu::Buffer,
    ys: wgpu::Buffer,
    frame: wgpu::Buffer,
    /// Pixels the frame buffer holds.
    frame_px: usize,
    /// The input size the tap tables and the dispatch were made for.
    in_wh: (usize, usize),
}

/// `(height, width, nhwc)` of an image-shaped float input `[1, 3, H, W]` or `[1, H, W, 3]`.
pub(crate) fn image_input(plan: &Plan, slot: usize) -> Option<(usize, usize, bool)> {
    let (_, dtype, shape) = plan.slot(slot);
    match (dtype, shape) {
        (DType::F32, &[1, 3, h, w]) => Some((h, w, false)),
        (DType::F32, &[1, h, w, 3]) => Some((h, w, true)),
        _ => None,
    }
}

impl GpuPlan {
    /// Whether [`GpuPlan::run_rgba`] can take this frame: the model's input can be made on the
    /// GPU, matches the plan's size and layout, and the frame fits the adapter's buffers. The
    /// error says why not (then pre-process on the CPU and call [`GpuPlan::run`]).
    pub fn can_preprocess(&self, rp: &ResizePlan, width: usize, height: usize) -> Result<(), GpuError> {
        let slots = self.plan.input_slots();
        let (Some(_), [s]) = (&self.pre_pipeline, slots.as_slice()) else {
            return Err(GpuError::Input(
                "this model's input cannot be pre-processed on the GPU (it is not one image-shaped float input that only GPU steps read)".into(),
            ));
        };
        let Some((h, w, nhwc)) = image_input(&self.plan, *s) else {
            return Err(GpuError::Input("the model's input is not an image tensor".into()));
        };
        if (h, w, nhwc) != (rp.in_h, rp.in_w, rp.nhwc) {
            return Err(GpuError::Input(format!(
                "the pre-processing is for a {}×{} {} input; the plan's is {w}×{h} {}",
                rp.in_w,
                rp.in_h,
                if rp.nhwc { "NHWC" } else { "NCHW" },
                if nhwc { "NHWC" } else { "NCHW" }
            )));
        }
        let [_, _, cw, ch] = rp.content;
        if rp.xs.len() != cw || rp.ys.len() != ch || cw > w || ch > h {
            return Err(GpuError::Input("the pre-processing plan's taps do not match its content size".into()));
        }
        let l = self.device.limits();
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        let bytes = (width as u64) * (height as u64) * 4;
        if bytes > max {
            return Err(GpuError::Limits(format!(
                "a {width}×{height} frame needs a {bytes}-byte buffer; this adapter binds at most {max} bytes (scale the image down)"
            )));
        }
        Ok(())
    }

    /// Runs the model on an RGBA frame (`width × height × 4` bytes) pre-processed on the GPU
    /// as `rp` says ([`qplay_core::detect::resize_plan`] of the same frame). Errors as
    /// [`GpuPlan::can_preprocess`] and [`GpuPlan::run`].
    pub async fn run_rgba(
        &mut self,
        rp: &ResizePlan,
        width: usize,
        height: usize,
        rgba: &[u8],
    ) -> Result<Vec<Tensor>, GpuError> {
        self.can_preprocess(rp, width, height)?;
        if rgba.len() != width * height * 4 {
            return Err(GpuError::Input(format!(
                "a {width}×{height} RGBA frame has {} bytes, got {}",
                width * height * 4,
                rgba.len()
            )));
        }
        let slot = self.plan.input_slots()[0];
        self.prepare(slot, rp, width * height)?;
        let st = self.pre.as_ref().ok_or_else(|| GpuError::Input("internal: no pre-processing state".into()))?;
        let taps = |v: &[(u32, u32, f32, f32)]| -> Vec<u32> {
            v.iter().flat_map(|&(i0, i1, w0, w1)| [i0, i1, w0.to_bits(), w1.to_bits()]).collect()
        };
        let [left, top, cw, ch] = rp.content;
        let n = rp.in_w * rp.in_h;
        let vec4 = |v: [f32; 3]| [v[0], v[1], v[2], 0.0];
        let u = PreprocessUniform {
            n: n as u32,
            row: st.row,
            src_w: width as u32,
            in_w: rp.in_w as u32,
            left: left as u32,
            top: top as u32,
            cw: cw as u32,
            ch: ch as u32,
            nhwc: rp.nhwc as u32,
            _pad: [0; 3],
            src_ch: [rp.src_ch[0] as u32, rp.src_ch[1] as u32, rp.src_ch[2] as u32, 0],
            a: vec4(rp.a),
            b: vec4(rp.b),
            pad: vec4(rp.pad),
        };
        self.queue.write_buffer(&st.uniform, 0, bytemuck::bytes_of(&u));
        if !rp.xs.is_empty() {
            self.queue.write_buffer(&st.xs, 0, bytemuck::cast_slice(&taps(&rp.xs)));
        }
        if !rp.ys.is_empty() {
            self.queue.write_buffer(&st.ys, 0, bytemuck::cast_slice(&taps(&rp.ys)));
        }
        if !rgba.is_empty() {
            self.queue.write_buffer(&st.frame, 0, rgba);
        }
        self.run_impl(&[], Some(slot)).await
    }

    /// Makes (or grows) the pre-processing buffers for a frame of `px` pixels.
    fn prepare(&mut self, slot: usize, rp: &ResizePlan, px: usize) -> Result<(), GpuError> {
        let in_wh = (rp.in_w, rp.in_h);
        if self.pre.as_ref().is_some_and(|p| p.frame_px >= px && p.in_wh == in_wh) {
            return Ok(());
        }
        let pipeline = self.pre_pipeline.clone().ok_or_else(|| GpuError::Input("no pre-processing kernel".into()))?;
        let out = self.slots[slot].as_ref().map(|s| s.buf.clone()).ok_or_else(|| super::no_buffer(&self.plan, slot))?;
        let make = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            self.counter.add(bytes);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16),
                usage: usage | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let old = self.pre.take();
        let (uniform, xs, ys) = match old {
            Some(p) if p.in_wh == in_wh => (p.uniform, p.xs, p.ys),
            _ => (
                make("qplay pre uniform", size_of::<PreprocessUniform>() as u64, wgpu::BufferUsages::UNIFORM),
                make("qplay pre xs", (rp.in_w * 16) as u64, wgpu::BufferUsages::STORAGE),
                make("qplay pre ys", (rp.in_h * 16) as u64, wgpu::BufferUsages::STORAGE),
            ),
        };
        // Room for the common camera sizes at once; bigger frames grow it.
        let frame_px = px.max(640 * 480);
        let frame = make("qplay frame", (frame_px * 4) as u64, wgpu::BufferUsages::STORAGE);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = [&uniform, &frame, &xs, &ys, &out]
            .iter()
            .enumerate()
            .map(|(k, b)| wgpu::BindGroupEntry { binding: k as u32, resource: b.as_entire_binding() })
            .collect();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("preprocess.wgsl"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let max = self.device.limits().max_compute_workgroups_per_dimension;
        let (groups, row) = grid_1d(rp.in_w * rp.in_h, max);
        self.pre = Some(PreState { pipeline, bind, groups, row, uniform, xs, ys, frame, frame_px, in_wh });
        Ok(())
    }
}
