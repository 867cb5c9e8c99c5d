//! The GPU executor: a core [`Plan`] run with its tensors in GPU buffers.
//!
//! At plan time ([`GpuPlan::new`]) every step is placed: on the GPU when a kernel here
//! supports it (see [`kernels`]), else on the CPU, through the plan's own op
//! ([`Plan::eval_step`], the numerical reference). Consecutive steps with the same placement
//! form a *phase*. Every tensor a GPU step reads or writes gets one buffer, allocated here once
//! ([`layout`] says how it is laid out), with its uniforms, bind groups and — for tensors the
//! CPU needs afterwards — a staging buffer; pipelines come from the [`Gpu`]'s cache, keyed by
//! (kernel, `dot4` variant). Reshape-like steps on float tensors alias their input's buffer.
//!
//! A run ([`GpuPlan::run`]) then allocates nothing on the GPU: for each GPU phase it writes the
//! tensors the CPU made (graph inputs, CPU steps' outputs) into their buffers, records all the
//! phase's dispatches and the copies to staging buffers in **one** command encoder, submits it,
//! and awaits the staging buffers' mapping (a future: the browser awaits it, native code
//! blocks on it with [`GpuPlan::run_blocking`]). CPU phases run between, on the downloaded
//! tensors. A model whose steps all run on the GPU is one encoder and one submission per run.

pub mod layout;
mod ops;
mod preprocess;

use crate::{BufferCounter, Gpu, GpuError};
use layout::Layout;
use qplay_core::model::{DType, Plan, StepInput, Tensor};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the GPU.
    Gpu,
    /// On the CPU reference implementation (with downloads/uploads at the edges).
    Cpu,
}

/// A tensor's GPU buffer.
#[derive(Debug, Clone)]
struct SlotBuf {
    buf: wgpu::Buffer,
    layout: Layout,
    /// For tensors the CPU reads after the GPU made them (CPU steps, graph outputs).
    staging: Option<wgpu::Buffer>,
}

/// One compute dispatch, everything bound at plan time.
#[derive(Debug)]
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

#[derive(Debug)]
enum Phase {
    Gpu {
        /// The plan steps of this phase.
        steps: std::ops::Range<usize>,
        dispatches: Vec<Dispatch>,
        /// Slots the CPU made that this phase reads: written into their buffers first.
        uploads: Vec<usize>,
        /// Slots this phase makes that the CPU reads later: copied to staging and mapped.
        downloads: Vec<usize>,
    },
    Cpu {
        steps: Vec<usize>,
    },
}

/// A [`Plan`] prepared for the GPU: placement, buffers, bind groups, pipelines.
pub struct GpuPlan {
    plan: Arc<Plan>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    placement: Vec<Placement>,
    slots: Vec<Option<SlotBuf>>,
    phases: Vec<Phase>,
    /// Constant and uniform buffers, kept alive with the bind groups that use them.
    _keep: Vec<wgpu::Buffer>,
    /// The device's buffer count (buffers made later, for pre-processing, count there too).
    counter: Arc<BufferCounter>,
    /// The pre-processing kernel, when the model's one input can be made on the GPU.
    pre_pipeline: Option<wgpu::ComputePipeline>,
    /// Pre-processing buffers (frame, taps, uniform), made at the first frame and grown with it.
    pre: Option<preprocess::PreState>,
}

impl std::fmt::Debug for GpuPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPlan").field("placement", &self.summary()).field("phases", &self.phases.len()).finish()
    }
}

/// What building one GPU step needs: the device, the plan's facts, the buffers so far.
struct Builder<'a> {
    gpu: &'a Gpu,
    plan: &'a Plan,
    /// Per slot, the shared buffer it was given (second build pass; see `GpuPlan::sharing`).
    assigned: &'a [Option<wgpu::Buffer>],
    /// The plan has 8-bit tensors: kernels that only agree with the CPU to rounding (exp, tanh,
    /// division) stay on the CPU, so that no quantized code can differ from the reference.
    exact_only: bool,
    /// The plan has TFLite's integer ops: its 8-bit tensors are NHWC, laid out
    /// [`Layout::Flat8`] (row-major bytes) instead of NHWC4.
    flat8: bool,
    slots: &'a mut Vec<Option<SlotBuf>>,
    keep: &'a mut Vec<wgpu::Buffer>,
}

impl GpuPlan {
    /// Places every step of `plan`, allocates the buffers and compiles (or takes from the
    /// cache) the pipelines. Errors: a tensor or dispatch beyond the adapter's limits
    /// ([`GpuError::Limits`], naming the step: split the layer or run it on the CPU), a kernel
    /// that fails to compile ([`GpuError::Shader`], naming the kernel).
    pub async fn new(gpu: &Gpu, plan: Arc<Plan>) -> Result<GpuPlan, GpuError> {
        let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = Self::build_shared(gpu, plan).await;
        let error = scope.pop().await;
        let out_of_memory = oom.pop().await;
        if let Some(e) = out_of_memory {
            let mib = built.as_ref().map_or(0.0, |b| b.buffer_bytes() as f64 / (1 << 20) as f64);
            return Err(GpuError::Limits(format!(
                "the model needs {mib:.1} MiB of GPU buffers and this GPU ran out of memory ({e}): run it on the CPU, or close other tabs and applications that use the GPU"
            )));
        }
        let built = built?;
        match error {
            Some(e) => Err(GpuError::Device(format!("building the GPU plan: {e}"))),
            None => Ok(built),
        }
    }

    /// Builds the plan twice: the first pass places the steps and finds each tensor buffer's
    /// lifetime (from the first GPU step or upload that writes it to the last step that reads
    /// it or the end of the phase that downloads it); buffers whose lifetimes do not overlap
    /// then share one allocation (greedy interval colouring, best fit by size), and the second
    /// pass binds the shared buffers. Every producer writes its whole tensor before any read, so
    /// a reused buffer's old contents are never seen.
    async fn build_shared(gpu: &Gpu, plan: Arc<Plan>) -> Result<GpuPlan, GpuError> {
        let none = vec![None; plan.slot_count()];
        let first = Self::build(gpu, plan.clone(), &none).await?;
        let pools = first.sharing();
        drop(first);
        let mut assigned = none;
        for (size, members) in pools {
            let buf = gpu.create_buffer(&wgpu::BufferDescriptor {
                label: Some("qplay shared tensor"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            for s in members {
                assigned[s] = Some(buf.clone());
            }
        }
        Self::build(gpu, plan, &assigned).await
    }

    /// Groups of slots that can share one buffer: `(bytes, slots)` per buffer to make.
    fn sharing(&self) -> Vec<(u64, Vec<usize>)> {
        // Slots that already share a buffer (aliases) form one group.
        let mut groups: Vec<(wgpu::Buffer, Vec<usize>)> = Vec::new();
        let mut group_of: Vec<Option<usize>> = vec![None; self.slots.len()];
        for (s, sb) in self.slots.iter().enumerate() {
            let Some(sb) = sb else { continue };
            let g = match groups.iter().position(|(b, _)| *b == sb.buf) {
                Some(g) => g,
                None => {
                    groups.push((sb.buf.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.push(s);
            group_of[s] = Some(g);
        }
        // Lifetimes in plan steps.
        let mut life = vec![(usize::MAX, 0usize); groups.len()];
        let mut touch = |s: usize, t: usize| {
            if let Some(g) = group_of.get(s).copied().flatten() {
                life[g] = (life[g].0.min(t), life[g].1.max(t));
            }
        };
        for phase in &self.phases {
            let Phase::Gpu { steps, uploads, downloads, .. } = phase else { continue };
            for &s in uploads {
                touch(s, steps.start);
            }
            for &s in downloads {
                touch(s, steps.end - 1);
            }
            for i in steps.clone() {
                let step = self.plan.step(i);
                for inp in &step.inputs {
                    if let StepInput::Slot(s) = *inp {
                        touch(s, i);
                    }
                }
                for &o in step.outputs.iter().flatten() {
                    touch(o, i);
                }
            }
        }
        // Greedy interval colouring, by start; a pool is free once its last user ended before.
        let mut order: Vec<usize> = (0..groups.len()).filter(|&g| life[g].0 != usize::MAX).collect();
        order.sort_by_key(|&g| (life[g].0, life[g].1));
        let mut pools: Vec<(usize, u64, Vec<usize>)> = Vec::new(); // (last end, bytes, slots)
        for g in order {
            let (start, end) = life[g];
            let size = groups[g].0.size();
            let free = pools
                .iter()
                .enumerate()
                .filter(|(_, p)| p.0 < start)
                .min_by_key(|(_, p)| if p.1 >= size { (0, p.1 - size) } else { (1, size - p.1) })
                .map(|(k, _)| k);
            match free {
                Some(k) => {
                    let p = &mut pools[k];
                    p.0 = end;
                    p.1 = p.1.max(size);
                    p.2.extend(&groups[g].1);
                }
                None => pools.push((end, size, groups[g].1.clone())),
            }
        }
        pools.into_iter().map(|(_, size, slots)| (size, slots)).collect()
    }

    /// [`GpuPlan::new`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(gpu: &Gpu, plan: Arc<Plan>) -> Result<GpuPlan, GpuError> {
        pollster::block_on(GpuPlan::new(gpu, plan))
    }

    async fn build(gpu: &Gpu, plan: Arc<Plan>, assigned: &[Option<wgpu::Buffer>]) -> Result<GpuPlan, GpuError> {
        let n = plan.step_count();
        let mut slots: Vec<Option<SlotBuf>> = vec![None; plan.slot_count()];
        let mut keep = Vec::new();
        let mut placement = Vec::with_capacity(n);
        let mut step_dispatches: Vec<Vec<Dispatch>> = Vec::with_capacity(n);
        let exact_only = (0..plan.slot_count()).any(|s| matches!(plan.slot(s).1, DType::U8 | DType::I8));
        let flat8 = (0..n).any(|i| qplay_core::ops::tflite::is_tflite_op(plan.step(i).op_type));
        for i in 0..n {
            let mut b = Builder { gpu, plan: &plan, assigned, exact_only, flat8, slots: &mut slots, keep: &mut keep };
            // Dynamic steps (shapes known only at run time) always run on the CPU.
            let built = if plan.step(i).dynamic { None } else { ops::build_step(&mut b, i).await? };
            match built {
                Some(d) => {
                    placement.push(Placement::Gpu);
                    step_dispatches.push(d);
                }
                None => {
                    placement.push(Placement::Cpu);
                    step_dispatches.push(Vec::new());
                }
            }
        }

        // Which slots the CPU needs: read by a CPU step, or a graph output.
        let mut cpu_reads = vec![false; plan.slot_count()];
        for (i, &p) in placement.iter().enumerate() {
            if p == Placement::Cpu {
                for inp in plan.step(i).inputs {
                    if let StepInput::Slot(s) = inp {
                        cpu_reads[s] = true;
                    }
                }
            }
        }
        for src in plan.output_sources() {
            if let StepInput::Slot(s) = src {
                cpu_reads[s] = true;
            }
        }
        // Who made each slot: the GPU (true) or the CPU / the caller (false).
        let mut gpu_made = vec![false; plan.slot_count()];
        let mut phases = Vec::new();
        let mut uploaded = vec![false; plan.slot_count()];
        let mut i = 0;
        let mut dispatches = step_dispatches.into_iter();
        while i < n {
            let start = i;
            while i < n && placement[i] == placement[start] {
                i += 1;
            }
            if placement[start] == Placement::Cpu {
                for s in start..i {
                    for &o in plan.step(s).outputs.iter().flatten() {
                        gpu_made[o] = false;
                        uploaded[o] = false;
                    }
                }
                phases.push(Phase::Cpu { steps: (start..i).collect() });
                for _ in start..i {
                    dispatches.next();
                }
                continue;
            }
            let mut uploads = Vec::new();
            let mut downloads = Vec::new();
            let mut ds = Vec::new();
            for s in start..i {
                let step = plan.step(s);
                for inp in &step.inputs {
                    if let StepInput::Slot(k) = *inp {
                        if !gpu_made[k] && !uploaded[k] {
                            uploaded[k] = true;
                            uploads.push(k);
                        }
                    }
                }
                for &o in step.outputs.iter().flatten() {
                    gpu_made[o] = true;
                    if cpu_reads[o] {
                        downloads.push(o);
                    }
                }
                ds.extend(dispatches.next().unwrap_or_default());
            }
            for &k in &downloads {
                if let Some(sb) = slots[k].as_mut() {
                    let size = sb.buf.size();
                    sb.staging = Some(gpu.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("qplay staging"),
                        size,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }));
                }
            }
            phases.push(Phase::Gpu { steps: start..i, dispatches: ds, uploads, downloads });
        }
        // Pre-processing on the GPU: the model's one float input, image-shaped, written only by
        // the frame kernel (no CPU step reads it).
        let ins = plan.input_slots();
        let pre_pipeline = match ins.as_slice() {
            [s] if !cpu_reads[*s]
                && slots[*s].as_ref().is_some_and(|b| b.layout == layout::Layout::F32)
                && preprocess::image_input(&plan, *s).is_some() =>
            {
                Some(gpu.cached_pipeline(crate::Kernel::Preprocess).await?)
            }
            _ => None,
        };
        Ok(GpuPlan {
            counter: gpu.counter.clone(),
            pre_pipeline,
            pre: None,
            device: gpu.device.clone(),
            queue: gpu.queue.clone(),
            plan,
            placement,
            slots,
            phases,
            _keep: keep,
        })
    }

    /// Where each step runs, in plan order.
    pub fn placement(&self) -> &[Placement] {
        &self.placement
    }

    /// The plan this runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Bytes of the plan's GPU buffers, each counted once (aliases share their input's).
    pub fn buffer_bytes(&self) -> u64 {
        let mut bufs: Vec<&wgpu::Buffer> = self._keep.iter().collect();
        for sb in self.slots.iter().flatten() {
            bufs.push(&sb.buf);
            bufs.extend(sb.staging.as_ref());
        }
        bufs.sort();
        bufs.dedup();
        bufs.iter().map(|b| b.size()).sum()
    }

    /// "N of M steps on the GPU (ops …); on the CPU: ops …; K GPU phases".
    pub fn summary(&self) -> String {
        let mut gpu: Vec<(String, usize)> = Vec::new();
        let mut cpu: Vec<(String, usize)> = Vec::new();
        for (i, p) in self.placement.iter().enumerate() {
            let op = self.plan.step(i).op_type.to_string();
            let list = if *p == Placement::Gpu { &mut gpu } else { &mut cpu };
            match list.iter_mut().find(|(o, _)| *o == op) {
                Some(e) => e.1 += 1,
                None => list.push((op, 1)),
            }
        }
        let mib = self.buffer_bytes() as f64 / (1 << 20) as f64;
        let fmt = |l: &[(String, usize)]| l.iter().map(|(o, c)| format!("{o} ×{c}")).collect::<Vec<_>>().join(", ");
        let n_gpu: usize = gpu.iter().map(|e| e.1).sum();
        let gpu_phases = self.phases.iter().filter(|p| matches!(p, Phase::Gpu { .. })).count();
        format!(
            "{n_gpu} of {} steps on the GPU ({}); on the CPU: {}; {gpu_phases} GPU phase(s), one command encoder each; {mib:.1} MiB of GPU buffers",
            self.placement.len(),
            if gpu.is_empty() { "none".into() } else { fmt(&gpu) },
            if cpu.is_empty() { "none".into() } else { fmt(&cpu) },
        )
    }

    /// Runs the model: the graph inputs by name (each once, with the planned dtype and shape),
    /// the graph outputs in order.
    pub async fn run(&mut self, inputs: &[(String, Tensor)]) -> Result<Vec<Tensor>, GpuError> {
        self.run_impl(inputs, None).await
    }

    /// [`GpuPlan::run`], with the input slot `pre` (when given) made on the GPU by the
    /// pre-processing kernel at the start of its phase instead of uploaded.
    async fn run_impl(&mut self, inputs: &[(String, Tensor)], pre: Option<usize>) -> Result<Vec<Tensor>, GpuError> {
        let plan = self.plan.clone();
        let mut env = plan.bind(inputs, pre)?;
        for phase in &self.phases {
            match phase {
                Phase::Cpu { steps } => {
                    for &i in steps {
                        let outs = plan.eval_step(i, &plan.step_args(i, &env)?)?;
                        plan.store(i, &mut env, outs, &mut |_, _| {});
                        plan.free_after(i, &mut env);
                    }
                }
                Phase::Gpu { steps, dispatches, uploads, downloads } => {
                    for &s in uploads {
                        if Some(s) == pre {
                            continue;
                        }
                        let t = env.get(s).ok_or_else(|| {
                            GpuError::Input(format!("internal: `{}` is not available", plan.slot(s).0))
                        })?;
                        let sb = self.slots[s].as_ref().ok_or_else(|| no_buffer(&plan, s))?;
                        layout::write_tensor(&self.queue, &sb.buf, sb.layout, t)?;
                    }
                    let mut enc = self
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("qplay run") });
                    {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("qplay run"),
                            timestamp_writes: None,
                        });
                        if let (Some(ps), Some(st)) = (pre, &self.pre) {
                            if uploads.contains(&ps) {
                                pass.set_pipeline(&st.pipeline);
                                pass.set_bind_group(0, &st.bind, &[]);
                                pass.dispatch_workgroups(st.groups[0], st.groups[1], st.groups[2]);
                            }
                        }
                        for d in dispatches {
                            pass.set_pipeline(&d.pipeline);
                            pass.set_bind_group(0, &d.bind, &[]);
                            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                        }
                    }
                    for &s in downloads {
                        let sb = self.slots[s].as_ref().ok_or_else(|| no_buffer(&plan, s))?;
                        if let Some(st) = &sb.staging {
                            enc.copy_buffer_to_buffer(&sb.buf, 0, st, 0, st.size());
                        }
                    }
                    self.queue.submit([enc.finish()]);
                    let maps: Vec<MapFuture> = downloads
                        .iter()
                        .filter_map(|&s| self.slots[s].as_ref().and_then(|sb| sb.staging.as_ref()))
                        .map(MapFuture::new)
                        .collect();
                    #[cfg(not(target_arch = "wasm32"))]
                    self.device
                        .poll(wgpu::PollType::wait_indefinitely())
                        .map_err(|e| GpuError::Readback(e.to_string()))?;
                    for m in maps {
                        m.await?;
                    }
                    for &s in downloads {
                        let sb = self.slots[s].as_ref().ok_or_else(|| no_buffer(&plan, s))?;
                        let Some(st) = &sb.staging else { continue };
                        let (_, dtype, shape) = plan.slot(s);
                        let t = {
                            let view =
                                st.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
                            layout::read_tensor(&view, sb.layout, dtype, shape)?
                        };
                        st.unmap();
                        env.set(s, t);
                    }
                    // Host copies no later step reads (the GPU buffers stay: they are the plan's).
                    for i in steps.clone() {
                        plan.free_after(i, &mut env);
                    }
                }
            }
        }

        Ok(plan.take_outputs(&mut env)?)
    }

    /// [`GpuPlan::run`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&mut self, inputs: &[(String, Tensor)]) -> Result<Vec<Tensor>, GpuError> {
        pollster::block_on(self.run(inputs))
    }
}

fn no_buffer(plan: &Plan, s: usize) -> GpuError {
    GpuError::Input(format!("internal: `{}` has no GPU buffer", plan.slot(s).0))
}

/// The result of a `map_async`, as a future (awaited in the browser; natively the device is
/// polled to completion first, so it is ready when awaited).
struct MapFuture {
    state: Arc<Mutex<MapState>>,
}

#[derive(Default)]
struct MapState {
    result: Option<Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

impl MapFuture {
    fn new(buf: &wgpu::Buffer) -> MapFuture {
        let state = Arc::new(Mutex::new(MapState::default()));
        let s2 = state.clone();
        buf.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            if let Ok(mut st) = s2.lock() {
                st.result = Some(r);
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
            }
        });
        MapFuture { state }
    }
}

impl Future for MapFuture {
    type Output = Result<(), GpuError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut st) = self.state.lock() else {
            return Poll::Ready(Err(GpuError::Readback("map state poisoned".into())));
        };
        match st.result.take() {
            Some(r) => Poll::Ready(r.map_err(|e| GpuError::Readback(e.to_string()))),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
