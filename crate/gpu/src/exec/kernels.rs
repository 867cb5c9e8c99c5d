//! One builder per op the GPU runs: checks that the step fits the kernel (else `Ok(None)`: the
//! step stays on the CPU), packs constants, writes the uniform and binds the buffers.
//!
//! On the GPU: `QLinearConv` (2-D and 1-D, 8-bit or float output; `qconv.wgsl`, or
//! `dwconv.wgsl` when groups = input = output channels), float `Conv` (`fconv.wgsl`, equal to
//! the CPU's to rounding), `QuantizeLinear` and
//! `DequantizeLinear` (per tensor), float `Add`/`Sub`/`Mul` with broadcasting, `Clip` with
//! constant bounds, `Relu`, `BatchNormalization` (a multiply then an add), constant-mode `Pad`
//! and 1-D/2-D `MaxPool` of float tensors, `Neg`/`Abs`/`LeakyRelu`, `Transpose`, `Concat`,
//! `Split`, `Slice`, and — only in plans without 8-bit tensors, since they agree with the CPU
//! to rounding — `Div`, `Sigmoid`, `Tanh`, `Exp`, `HardSigmoid`, `HardSwish`, `Elu`, `Sqrt`; and
//! `Reshape`/`Flatten`/`Squeeze`/`Unsqueeze`/`Identity` of float tensors (aliases, no
//! dispatch).

use super::layout::{ncs, Layout};
use super::{Builder, Dispatch, SlotBuf};
use crate::GpuError;
use qplay_core::model::{DType, Data, Node, StepInput, Tensor};
use qplay_core::ops::nn::conv::{FUSED_CHANNEL_MAX_ATTR, FUSED_MAX_ATTR, FUSED_MIN_ATTR};
use qplay_core::ops::nn::spatial::WindowAttrs;
use qplay_core::ops::quant::qlinear_conv::{qconv_spec, ChannelMax, QConvOut, QConvSpec};

type Built = Option<Vec<Dispatch>>;

/// Builds step `i` for the GPU, or `None` when it stays on the CPU.
pub(crate) async fn build_step(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let op = b.plan.step(i).op_type;
    match op {
        "QLinearConv" => qconv(b, i).await,
        "Conv" => fconv(b, i).await,
        "QuantizeLinear" => quantize(b, i).await,
        "DequantizeLinear" => dequantize(b, i).await,
        "Add" | "Sub" | "Mul" => binary(b, i).await,
        "Div" if !b.exact_only => binary(b, i).await,
        "Neg" | "Abs" | "LeakyRelu" => unary(b, i).await,
        "Sigmoid" | "Tanh" | "Exp" | "HardSigmoid" | "HardSwish" | "Elu" | "Sqrt" if !b.exact_only => unary(b, i).await,
        "Split" => split(b, i).await,
        "Resize" | "Upsample" => resize(b, i).await,
        "GlobalMaxPool" => reduce(b, i).await,
        "qplay.Lookup" => lookup(b, i).await,
        "Softmax" | "GlobalAveragePool" if !b.exact_only => reduce(b, i).await,
        "Slice" => slice(b, i).await,
        "Clip" => clip(b, i).await,
        "Relu" => relu(b, i).await,
        "Pad" => pad(b, i).await,
        "MaxPool" => maxpool(b, i).await,
        "BatchNormalization" => batchnorm(b, i).await,
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" => alias(b, i),
        "Transpose" => transpose(b, i).await,
        "Concat" => concat(b, i).await,
        _ => Ok(None),
    }
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
        let Some(layout) = Layout::of(dtype, shape) else { return Ok(None) };
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
        Layout::of(dtype, shape)
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

    fn check_groups(&self, i: usize, kernel: &str, groups: [u32; 3]) -> Result<(), GpuError> {
        let max = self.gpu.device.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(GpuError::Limits(format!(
                "{}: {kernel} needs {groups:?} workgroups; this adapter dispatches at most {max} per dimension (split the layer, or run the model on the CPU)",
                self.step_name(i)
            )));
        }
        Ok(())
    }

    /// One dispatch of `kernel` over `groups` with `uniform` at binding 0 and `bufs` at 1…
    async fn dispatch(
        &mut self,
        i: usize,
        kernel: &'static str,
        uniform: &[u32],
        bufs: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<Dispatch, GpuError> {
        self.check_groups(i, kernel, groups)?;
        let pipeline = self.gpu.cached_pipeline(kernel).await?;
        let ub = self.gpu.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(kernel),
            contents: bytemuck::cast_slice(uniform),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ub.as_entire_binding() }];
        for (k, b) in bufs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: k as u32 + 1, resource: b.as_entire_binding() });
        }
        let bind = self.gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.keep.push(ub);
        Ok(Dispatch { pipeline, bind, groups })
    }
}

/// Workgroups of 64 over `n` invocations, as a 2-D grid when one row would be too long;
/// returns the grid and the invocations per row.
pub(crate) fn grid_1d(n: usize, max: u32) -> ([u32; 3], u32) {
    let wg = n.div_ceil(64).max(1) as u64;
    let gx = wg.min(max as u64);
    let gy = wg.div_ceil(gx);
    ([gx as u32, gy.min(u32::MAX as u64) as u32, 1], (gx * 64) as u32)
}

fn f32_bound(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else if v > 0.0 {
        f32::MAX
    } else {
        -f32::MAX
    }
}

/// The shared epilogue block of the convolution uniforms (`Epi` in requant.wgsl).
fn epi(spec: &QConvSpec) -> [u32; 8] {
    let cmax = spec.channel_max.is_some() as u32;
    match spec.out {
        QConvOut::Codes { zero_point, lo, hi, .. } => [0, cmax, zero_point as u32, lo as u32, hi as u32, 0, 0, 0],
        QConvOut::F32 { lo, hi } => [1, cmax, 0, 0, 0, f32_bound(lo).to_bits(), f32_bound(hi).to_bits(), 0],
        QConvOut::I32 => [0; 8],
    }
}

/// `Chan` entries (requant.wgsl): add, zb, scale, channel max.
fn chan(spec: &QConvSpec, add: &[i32], zb: &[i32]) -> Vec<u32> {
    let m = spec.out_channels();
    let mut v = Vec::with_capacity(4 * m);
    for c in 0..m {
        let scale = if spec.scale.len() == 1 { spec.scale[0] } else { spec.scale[c] };
        let cmax = match &spec.channel_max {
            None => 0,
            Some(ChannelMax::Codes(q)) => (if q.len() == 1 { q[0] } else { q[c] }) as u32,
            Some(ChannelMax::F32(f)) => (if f.len() == 1 { f[0] } else { f[c] }).to_bits(),
        };
        v.extend([add[c] as u32, zb[c] as u32, scale.to_bits(), cmax]);
    }
    v
}

fn bytes_i32(t: &Tensor) -> Option<Vec<i32>> {
    match &t.data {
        Data::U8(v) => Some(v.iter().map(|&x| x as i32).collect()),
        Data::I8(v) => Some(v.iter().map(|&x| x as i32).collect()),
        _ => None,
    }
}

async fn qconv(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    let mut args: Vec<Option<&Tensor>> = vec![None; step.inputs.len()];
    for (k, inp) in step.inputs.iter().enumerate().skip(1) {
        match inp {
            StepInput::Const(t) => args[k] = Some(*t),
            StepInput::Omitted => {}
            StepInput::Slot(_) => return Ok(None),
        }
    }
    let (_, xd, xshape) = b.plan.slot(xs);
    let Ok(spec) = qconv_spec(step.op_type, step.attrs, xshape, xd, &args) else { return Ok(None) };
    let win = spec.window();
    let Some(w) = args.get(3).copied().flatten().and_then(bytes_i32) else { return Ok(None) };
    if win.input.len() != 2 || matches!(spec.out, QConvOut::I32) || b.layout_of(ys).is_none() {
        return Ok(None);
    }
    let (n, c, m, g) = (spec.batch(), spec.in_channels(), spec.out_channels(), spec.group);
    let npix = n * win.output[0] * win.output[1];
    let depthwise = c == g && m == g;
    // The grid, checked before any buffer is made: qconv.wgsl takes 4 pixels per invocation.
    let groups = if depthwise {
        [npix.div_ceil(64) as u32, c.div_ceil(4) as u32, 1]
    } else {
        [npix.div_ceil(4).div_ceil(64) as u32, m.div_ceil(4) as u32, 1]
    };
    b.check_groups(i, if depthwise { "dwconv.wgsl" } else { "qconv.wgsl" }, groups)?;
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (cg, mg) = (c / g, m / g);
    let (ih, iw, oh, ow) = (win.input[0], win.input[1], win.output[0], win.output[1]);
    let (kh, kw) = (win.kernel[0], win.kernel[1]);
    let taps = kh * kw;
    let xshift = if xd == DType::U8 { 128 } else { 0 };
    let wshift = if spec.w_dtype == DType::U8 { 128 } else { 0 };
    let a = xshift - spec.zx; // x' + a = x − zx
    let x_xor = if xd == DType::U8 { 0x8080_8080u32 } else { 0 };
    let geometry = |v: &mut Vec<u32>| {
        v.extend([kh, kw, win.strides[0], win.strides[1], win.dilations[0], win.dilations[1]].map(|x| x as u32));
        v.extend([win.pad_begin[0] as u32, win.pad_begin[1] as u32]);
    };
    let bias = |c: usize| spec.bias.as_ref().map_or(0, |b| b[c]);

    if depthwise {
        // Direct depthwise: weights (w − zw) as i32, four channels per vec4, rows [c/4][tap].
        let c4 = c.div_ceil(4);
        let mut wv = vec![0i32; c4 * taps * 4];
        for ch in 0..c {
            for t in 0..taps {
                wv[((ch / 4) * taps + t) * 4 + ch % 4] = w[ch * taps + t] - spec.zw[ch];
            }
        }
        let add: Vec<i32> = (0..m).map(bias).collect();
        let chans = chan(&spec, &add, &vec![0; m]);
        let mut u: Vec<u32> = [ih, iw, c4, c, oh, ow, npix].iter().map(|&x| x as u32).collect();
        geometry(&mut u);
        u.extend([x_xor, a as u32, 0, 0, 0]);
        u.extend(epi(&spec));
        let wb = b.const_buf(i, "dwconv weights", bytemuck::cast_slice(&wv))?;
        let cb = b.const_buf(i, "dwconv channels", bytemuck::cast_slice(&chans))?;
        return Ok(Some(vec![b.dispatch(i, "dwconv.wgsl", &u, &[&xb, &wb, &cb, &yb], groups).await?]));
    }

    // Implicit GEMM: w' = w − wshift packed [m][tap][cg4]; add = bias + a·Σw' + K·a·zb.
    let cg4 = cg.div_ceil(4);
    let k = (cg * taps) as i32;
    let mut wq = vec![0u32; m * taps * cg4];
    let mut add = vec![0i32; m];
    let mut zb = vec![0i32; m];
    for oc in 0..m {
        let mut sum = 0i32;
        for ci in 0..cg {
            for t in 0..taps {
                let v = w[(oc * cg + ci) * taps + t] - wshift;
                sum += v;
                wq[(oc * taps + t) * cg4 + ci / 4] |= ((v as i8 as u8) as u32) << (8 * (ci % 4));
            }
        }
        zb[oc] = wshift - spec.zw[oc];
        add[oc] = bias(oc).wrapping_add(a.wrapping_mul(sum)).wrapping_add(k.wrapping_mul(a).wrapping_mul(zb[oc]));
    }
    let shared = g == 1 || (cg % 4 == 0 && mg % 4 == 0);
    let pad_byte = ((spec.zx - xshift) as i8 as u8) as u32;
    let real_last = cg - 4 * (cg4 - 1);
    let last_mask = (0..real_last).fold(0u32, |acc, l| acc | (1 << (8 * l)));
    let need_xsum = zb.iter().any(|&z| z != 0) as u32;
    let m4 = m.div_ceil(4);
    let c4_in = c.div_ceil(4);
    let mut u: Vec<u32> = [ih, iw, c4_in, oh, ow, m, m4, npix].iter().map(|&x| x as u32).collect();
    geometry(&mut u);
    u.extend([cg as u32, mg as u32, cg4 as u32, shared as u32, x_xor, pad_byte * 0x0101_0101, last_mask, need_xsum]);
    u.extend(epi(&spec));
    let chans = chan(&spec, &add, &zb);
    let wb = b.const_buf(i, "qconv weights", bytemuck::cast_slice(&wq))?;
    let cb = b.const_buf(i, "qconv channels", bytemuck::cast_slice(&chans))?;
    Ok(Some(vec![b.dispatch(i, "qconv.wgsl", &u, &[&xb, &wb, &cb, &yb], groups).await?]))
}

async fn fconv(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    let Some(StepInput::Const(w)) = step.inputs.get(1).copied() else { return Ok(None) };
    let bias = match step.inputs.get(2).copied() {
        None | Some(StepInput::Omitted) => None,
        Some(StepInput::Const(t)) => Some(t),
        Some(StepInput::Slot(_)) => return Ok(None),
    };
    let (_, xd, xshape) = b.plan.slot(xs);
    let (Data::F32(wv), DType::F32) = (&w.data, xd) else { return Ok(None) };
    let xshape = xshape.to_vec();
    if xshape.len() < 3 || xshape.len() > 4 || w.shape.len() != xshape.len() {
        return Ok(None);
    }
    let node = Node {
        name: String::new(),
        op_type: "Conv".into(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        attrs: step.attrs.clone(),
    };
    let Ok(wa) = WindowAttrs::from_node(&node, false) else { return Ok(None) };
    let Ok(win) = wa.resolve(&xshape[2..], &w.shape[2..]) else { return Ok(None) };
    let win = win.lifted_to_2d();
    let group = step.attrs.int("group", 1).max(1) as usize;
    let (n, c, m, cg) = (xshape[0], xshape[1], w.shape[0], w.shape[1]);
    if cg * group != c || m % group != 0 {
        return Ok(None);
    }
    let bv: Vec<f32> = match bias {
        Some(t) => match &t.data {
            Data::F32(v) if v.len() == m => v.clone(),
            _ => return Ok(None),
        },
        None => vec![0.0],
    };
    let cmax: Vec<f32> = match step.attrs.floats(FUSED_CHANNEL_MAX_ATTR) {
        Some(v) if v.len() == m => v.to_vec(),
        Some(v) if v.len() == 1 => vec![v[0]; m],
        Some(_) => return Ok(None),
        None => vec![0.0],
    };
    let (lo, hi) = (step.attrs.float_opt(FUSED_MIN_ATTR), step.attrs.float_opt(FUSED_MAX_ATTR));
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (oh, ow) = (win.output[0], win.output[1]);
    let npix = n * oh * ow;
    let mut u: Vec<u32> = [win.input[0], win.input[1], c, oh, ow, m, npix, win.kernel[0], win.kernel[1]]
        .iter()
        .map(|&v| v as u32)
        .collect();
    u.extend(
        [win.strides[0], win.strides[1], win.dilations[0], win.dilations[1], win.pad_begin[0], win.pad_begin[1]]
            .map(|v| v as u32),
    );
    u.extend([cg as u32, (m / group) as u32, bias.is_some() as u32, lo.is_some() as u32, hi.is_some() as u32]);
    u.extend([
        step.attrs.floats(FUSED_CHANNEL_MAX_ATTR).is_some() as u32,
        lo.unwrap_or(0.0).to_bits(),
        hi.unwrap_or(0.0).to_bits(),
        (group == 1 || (m / group) % 4 == 0) as u32,
    ]);
    let wb = b.const_buf(i, "conv weights", bytemuck::cast_slice(wv))?;
    let bb = b.const_buf(i, "conv bias", bytemuck::cast_slice(&bv))?;
    let mb = b.const_buf(i, "conv channel max", bytemuck::cast_slice(&cmax))?;
    let groups = [npix.div_ceil(4).div_ceil(64) as u32, m.div_ceil(4) as u32, 1];
    Ok(Some(vec![b.dispatch(i, "fconv.wgsl", &u, &[&xb, &wb, &bb, &mb, &yb], groups).await?]))
}

/// A constant scalar's single value.
fn scalar(t: &Tensor) -> Option<f64> {
    match &t.data {
        Data::F32(v) if v.len() == 1 => Some(v[0] as f64),
        _ if t.len() == 1 => t.to_i64_vec().ok().map(|v| v[0] as f64),
        _ => None,
    }
}

/// (x slot, scale, zero-point tensor) of a per-tensor Q/DQ step with constant parameters.
fn qdq_params<'a>(b: &Builder<'a>, i: usize) -> Option<(usize, usize, f32, Option<&'a Tensor>)> {
    let step = b.plan.step(i);
    let (StepInput::Slot(xs), Some(Some(ys))) = (*step.inputs.first()?, step.outputs.first().copied()) else {
        return None;
    };
    let StepInput::Const(st) = *step.inputs.get(1)? else { return None };
    let Data::F32(sv) = &st.data else { return None };
    if sv.len() != 1 || !(sv[0].is_finite() && sv[0] > 0.0) || step.attrs.int("block_size", 0) != 0 {
        return None;
    }
    let zp = match step.inputs.get(2).copied() {
        None | Some(StepInput::Omitted) => None,
        Some(StepInput::Const(z)) if z.len() == 1 => Some(z),
        _ => return None,
    };
    Some((xs, ys, sv[0], zp))
}

/// `qplay.Lookup` (an int8 element-wise function as a 256-entry table) on 8-bit tensors.
async fn lookup(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(StepInput::Const(t)), Some(Some(ys))) =
        (step.inputs.first().copied(), step.inputs.get(1).copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    let table: Vec<u8> = match &t.data {
        Data::U8(v) => v.clone(),
        Data::I8(v) => v.iter().map(|&c| c as u8).collect(),
        _ => return Ok(None),
    };
    let (_, xd, shape) = b.plan.slot(xs);
    if table.len() != 256 || !matches!(xd, DType::U8 | DType::I8) || shape.len() < 2 {
        return Ok(None);
    }
    let shape = shape.to_vec();
    if !matches!(b.layout_of(xs), Some(Layout::Packed8 { .. }))
        || !matches!(b.layout_of(ys), Some(Layout::Packed8 { .. }))
    {
        return Ok(None);
    }
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let tb = b.const_buf(i, "lookup table", &table)?;
    let (n, c, s) = ncs(&shape);
    let c4 = c.div_ceil(4);
    let u = [(n * s) as u32, c4 as u32, c as u32, 0];
    let groups = [(n * s).div_ceil(64) as u32, c4 as u32, 1];
    Ok(Some(vec![b.dispatch(i, "lookup.wgsl", &u, &[&xb, &tb, &yb], groups).await?]))
}

async fn quantize(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let Some((xs, ys, scale, zp)) = qdq_params(b, i) else { return Ok(None) };
    let (_, xd, shape) = b.plan.slot(xs);
    let (_, yd, _) = b.plan.slot(ys);
    let (qmin, qmax) = match yd {
        DType::U8 => (0, 255),
        DType::I8 => (-128, 127),
        _ => return Ok(None),
    };
    let z = zp.map_or(Some(0.0), scalar).unwrap_or(f64::NAN);
    if xd != DType::F32 || shape.len() < 2 || !(qmin as f64..=qmax as f64).contains(&z) {
        return Ok(None);
    }
    let shape = shape.to_vec();
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (n, c, s) = ncs(&shape);
    let c4 = c.div_ceil(4);
    let u = [c as u32, c4 as u32, s as u32, (n * s) as u32, scale.to_bits(), z as i32 as u32, qmin as u32, qmax as u32];
    let groups = [(n * s).div_ceil(64) as u32, c4 as u32, 1];
    Ok(Some(vec![b.dispatch(i, "quantize.wgsl", &u, &[&xb, &yb], groups).await?]))
}

async fn dequantize(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let Some((xs, ys, scale, zp)) = qdq_params(b, i) else { return Ok(None) };
    let (_, xd, shape) = b.plan.slot(xs);
    let shift = match xd {
        DType::U8 => 128,
        DType::I8 => 0,
        _ => return Ok(None),
    };
    if shape.len() < 2 || zp.is_some_and(|z| z.dtype() != xd) {
        return Ok(None);
    }
    let z = zp.map_or(Some(0.0), scalar).unwrap_or(0.0) as i32;
    let shape = shape.to_vec();
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (n, c, s) = ncs(&shape);
    let c4 = c.div_ceil(4);
    let x_xor = if shift == 128 { 0x8080_8080u32 } else { 0 };
    let u = [c as u32, c4 as u32, s as u32, (n * s) as u32, scale.to_bits(), z as u32, x_xor, shift as u32];
    let groups = [(n * s).div_ceil(64) as u32, c4 as u32, 1];
    Ok(Some(vec![b.dispatch(i, "dequantize.wgsl", &u, &[&xb, &yb], groups).await?]))
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `v` right-aligned into 8 dims, `fill` before.
fn dims8(v: &[usize], fill: usize) -> [u32; 8] {
    let mut out = [fill as u32; 8];
    for (k, &x) in v.iter().rev().enumerate() {
        out[7 - k] = x as u32;
    }
    out
}

/// Broadcast strides of an operand of `shape` read over `out` (0 along broadcast dims).
fn bcast_strides(shape: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    if shape.len() > out.len() {
        return None;
    }
    let st = strides(shape);
    let off = out.len() - shape.len();
    let mut r = vec![0; out.len()];
    for d in 0..shape.len() {
        if shape[d] == out[off + d] {
            r[off + d] = st[d];
        } else if shape[d] != 1 {
            return None;
        }
    }
    Some(r)
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

/// One binary.wgsl dispatch.
#[allow(clippy::too_many_arguments)]
async fn binary_dispatch(
    b: &mut Builder<'_>,
    i: usize,
    op: u32,
    clip: (Option<f32>, Option<f32>),
    a: (&wgpu::Buffer, &[usize]),
    bb: (&wgpu::Buffer, &[usize]),
    out: &wgpu::Buffer,
    oshape: &[usize],
) -> Result<Option<Dispatch>, GpuError> {
    if oshape.len() > 8 {
        return Ok(None);
    }
    let (Some(sa), Some(sb)) = (bcast_strides(a.1, oshape), bcast_strides(bb.1, oshape)) else { return Ok(None) };
    let n: usize = oshape.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let mut u = vec![
        n as u32,
        op,
        row,
        clip.0.is_some() as u32,
        clip.1.is_some() as u32,
        clip.0.unwrap_or(0.0).to_bits(),
        clip.1.unwrap_or(0.0).to_bits(),
        0,
    ];
    u.extend(dims8(oshape, 1));
    u.extend(dims8(&sa, 0));
    u.extend(dims8(&sb, 0));
    Ok(Some(b.dispatch(i, "binary.wgsl", &u, &[a.0, bb.0, out], groups).await?))
}

async fn binary(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let op = match step.op_type {
        "Add" => 0,
        "Sub" => 1,
        "Mul" => 2,
        _ => 4,
    };
    let (Some(Some(ys)), 2) = (step.outputs.first().copied(), step.inputs.len()) else { return Ok(None) };
    let (_, yd, oshape) = b.plan.slot(ys);
    if yd != DType::F32 {
        return Ok(None);
    }
    let oshape = oshape.to_vec();
    let (Some(a), Some(bb)) = (operand(b, i, step.inputs[0])?, operand(b, i, step.inputs[1])?) else {
        return Ok(None);
    };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, op, (None, None), (&a.0, &a.1), (&bb.0, &bb.1), &yb, &oshape).await?;
    Ok(d.map(|d| vec![d]))
}

async fn clip(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let bound = |k: usize| -> Result<Option<f32>, ()> {
        match step.inputs.get(k).copied() {
            None | Some(StepInput::Omitted) => Ok(None),
            Some(StepInput::Const(t)) => match &t.data {
                Data::F32(v) if v.len() == 1 => Ok(Some(v[0])),
                _ => Err(()),
            },
            Some(StepInput::Slot(_)) => Err(()),
        }
    };
    let (lo, hi) = if step.inputs.len() == 1 {
        (step.attrs.float_opt("min"), step.attrs.float_opt("max"))
    } else {
        match (bound(1), bound(2)) {
            (Ok(l), Ok(h)) => (l, h),
            _ => return Ok(None),
        }
    };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, 3, (lo, hi), (&x.0, &x.1), (&x.0, &x.1), &yb, &x.1.clone()).await?;
    Ok(d.map(|d| vec![d]))
}

/// The float functions of `unary.wgsl`.
async fn unary(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (op, alpha, beta) = match step.op_type {
        "Sigmoid" => (0, 0.0, 0.0),
        "Tanh" => (1, 0.0, 0.0),
        "Exp" => (2, 0.0, 0.0),
        "HardSigmoid" => (3, step.attrs.float("alpha", 0.2), step.attrs.float("beta", 0.5)),
        "HardSwish" => (4, 0.0, 0.0),
        "LeakyRelu" => (5, step.attrs.float("alpha", 0.01), 0.0),
        "Elu" => (6, step.attrs.float("alpha", 1.0), 0.0),
        "Neg" => (7, 0.0, 0.0),
        "Abs" => (8, 0.0, 0.0),
        _ => (9, 0.0, 0.0),
    };
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    if b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let n: usize = x.1.iter().product();
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u = [n as u32, row, op, 0, f32::to_bits(alpha), f32::to_bits(beta), 0, 0];
    Ok(Some(vec![b.dispatch(i, "unary.wgsl", &u, &[&x.0, &yb], groups).await?]))
}

/// `Split` of a float tensor: one strided copy per output, from its slice of the input.
async fn split(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let r = x.1.len() as i64;
    let axis = step.attrs.int("axis", 0);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let ist: Vec<i64> = strides(&x.1).iter().map(|&v| v as i64).collect();
    let mut off = 0;
    let mut ds = Vec::new();
    let outs: Vec<Option<usize>> = step.outputs.to_vec();
    for o in outs {
        let Some(ys) = o else { return Ok(None) };
        let (_, yd, oshape) = b.plan.slot(ys);
        if yd != DType::F32 || oshape.len() != x.1.len() {
            return Ok(None);
        }
        let oshape = oshape.to_vec();
        let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
        if oshape.iter().product::<usize>() > 0 {
            let base = off * ist[axis] as usize;
            match copy_dispatch(b, i, &x.0, &yb, &oshape, &ist, &strides(&oshape), (base, 0)).await? {
                Some(d) => ds.push(d),
                None => return Ok(None),
            }
        }
        off += oshape[axis];
    }
    Ok(Some(ds))
}

/// `Slice` of a float tensor with constant starts, ends, axes and steps (any sign): one strided
/// copy, the ranges from the CPU's own `slice_axis`.
async fn slice(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    use qplay_core::ops::shape::slice::slice_axis;
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let ints = |k: usize| -> Result<Option<Vec<i64>>, ()> {
        match step.inputs.get(k).copied() {
            None | Some(StepInput::Omitted) => Ok(None),
            Some(StepInput::Const(t)) => t.to_i64_vec().map(Some).map_err(|_| ()),
            Some(StepInput::Slot(_)) => Err(()),
        }
    };
    let (starts, ends, axes, steps) = if let Some(st) = step.attrs.ints("starts") {
        let Some(en) = step.attrs.ints("ends") else { return Ok(None) };
        (st.to_vec(), en.to_vec(), step.attrs.ints("axes").map(<[i64]>::to_vec), None)
    } else {
        match (ints(1), ints(2), ints(3), ints(4)) {
            (Ok(Some(s)), Ok(Some(e)), Ok(a), Ok(st)) => (s, e, a, st),
            _ => return Ok(None),
        }
    };
    let r = x.1.len();
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Ok(None);
    }
    let ist = strides(&x.1);
    let mut ss: Vec<i64> = ist.iter().map(|&v| v as i64).collect();
    let mut base: i64 = 0;
    let mut oshape = x.1.clone();
    for k in 0..n {
        let a = if axes[k] < 0 { axes[k] + r as i64 } else { axes[k] };
        if !(0..r as i64).contains(&a) {
            return Ok(None);
        }
        let a = a as usize;
        let Ok(rg) = slice_axis(x.1[a], starts[k], ends[k], steps[k]) else { return Ok(None) };
        base += rg.start * ist[a] as i64;
        ss[a] = rg.step * ist[a] as i64;
        oshape[a] = rg.len;
    }
    if oshape != b.plan.slot(ys).2 || b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if oshape.iter().product::<usize>() == 0 {
        return Ok(Some(Vec::new()));
    }
    let Ok(base) = usize::try_from(base) else { return Ok(None) };
    let d = copy_dispatch(b, i, &x.0, &yb, &oshape, &ss, &strides(&oshape), (base, 0)).await?;
    Ok(d.map(|d| vec![d]))
}

/// `Resize`/`Upsample` of a float tensor with constant scales or sizes: one `resample.wgsl`
/// dispatch per resampled axis, through scratch buffers, with the CPU op's own taps. Nearest
/// is exact; linear only in plans without 8-bit tensors (a fused multiply-add may round
/// differently). Extrapolating (tf_crop_and_resize outside the roi) stays on the CPU.
async fn resize(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let mut args: Vec<Option<&Tensor>> = vec![None];
    for inp in step.inputs.iter().skip(1) {
        match *inp {
            StepInput::Const(t) => args.push(Some(t)),
            StepInput::Omitted => args.push(None),
            StepInput::Slot(_) => return Ok(None),
        }
    }
    let Some(Ok((axes, oshape))) = b.plan.axis_taps(i, &x.1, &args) else { return Ok(None) };
    if oshape != b.plan.slot(ys).2 || b.plan.slot(ys).1 != DType::F32 || oshape.iter().product::<usize>() == 0 {
        return Ok(None);
    }
    // The axes that change anything (the CPU skips identities too).
    let work: Vec<_> = axes
        .iter()
        .filter(|(a, t)| {
            !(x.1[*a] == oshape[*a]
                && t.iter().enumerate().all(|(k, t)| matches!(t, Some([(j, w), _]) if *j == k && *w == 1.0)))
        })
        .collect();
    let linear = work.iter().any(|(_, t)| t.iter().any(|t| matches!(t, Some([_, (_, w)]) if *w != 0.0)));
    if work.iter().any(|(_, t)| t.iter().any(Option::is_none)) || (linear && b.exact_only) {
        return Ok(None);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    if work.is_empty() {
        let ss: Vec<i64> = strides(&x.1).iter().map(|&v| v as i64).collect();
        let d = copy_dispatch(b, i, &x.0, &yb, &x.1, &ss, &strides(&x.1), (0, 0)).await?;
        return Ok(d.map(|d| vec![d]));
    }
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let mut cur = x.1.clone();
    let mut src = x.0.clone();
    let mut ds = Vec::new();
    for (k, (a, taps)) in work.iter().enumerate() {
        let (a, n_out) = (*a, taps.len());
        let n_in = cur[a];
        let inner: usize = cur[a + 1..].iter().product();
        cur[a] = n_out;
        let n: usize = cur.iter().product();
        let dst = if k + 1 == work.len() { yb.clone() } else { b.scratch(i, (n * 4) as u64)? };
        let words: Vec<u32> = taps
            .iter()
            .flat_map(|t| {
                let [(i0, w0), (i1, w1)] = t.unwrap_or([(0, 0.0), (0, 0.0)]);
                [i0 as u32, i1 as u32, w0.to_bits(), w1.to_bits()]
            })
            .collect();
        let tb = b.const_buf(i, "resize taps", bytemuck::cast_slice(&words))?;
        let (groups, row) = grid_1d(n, max);
        let u = [n as u32, row, n_in as u32, n_out as u32, inner as u32, 0, 0, 0];
        ds.push(b.dispatch(i, "resample.wgsl", &u, &[&src, &tb, &dst], groups).await?);
        src = dst;
    }
    Ok(Some(ds))
}

/// `Softmax` (opset ≥ 13: one axis) and the global pools, one invocation per row.
async fn reduce(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let shape = &x.1;
    let (op, outer, len, inner) = match step.op_type {
        "Softmax" => {
            // Opset < 13 flattens from the axis on; the plan keeps the op's own rule, so only
            // the axis = last case (the same either way) is taken here.
            let r = shape.len() as i64;
            // Without the attribute the default depends on the opset (1 before 13, else −1):
            // the same axis only up to rank 2.
            let axis = match step.attrs.int_opt("axis") {
                Some(a) => a,
                None if r <= 2 => r - 1,
                None => return Ok(None),
            };
            let axis = if axis < 0 { axis + r } else { axis };
            if r == 0 || axis != r - 1 {
                return Ok(None);
            }
            let len = shape[axis as usize];
            (0, shape.iter().product::<usize>() / len.max(1), len, 1)
        }
        _ => {
            if shape.len() < 3 {
                return Ok(None);
            }
            let op = if step.op_type == "GlobalMaxPool" { 2 } else { 1 };
            (op, shape[0] * shape[1], shape[2..].iter().product(), 1)
        }
    };
    if len == 0 || b.plan.slot(ys).1 != DType::F32 {
        return Ok(None);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let rows = outer * inner;
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(rows, max);
    let u = [rows as u32, row, len as u32, inner as u32, op, 0, 0, 0];
    Ok(Some(vec![b.dispatch(i, "reduce.wgsl", &u, &[&x.0, &yb], groups).await?]))
}

/// `Relu` as a clip from below at 0.
async fn relu(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = binary_dispatch(b, i, 3, (Some(0.0), None), (&x.0, &x.1), (&x.0, &x.1), &yb, &x.1.clone()).await?;
    Ok(d.map(|d| vec![d]))
}

/// Constant-mode `Pad` of a float tensor with constant pads (and value, and axes).
async fn pad(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    if step.attrs.string("mode", "constant") != "constant" {
        return Ok(None);
    }
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let r = x.1.len();
    let konst = |k: usize| -> Option<Option<&Tensor>> {
        match step.inputs.get(k).copied() {
            None | Some(StepInput::Omitted) => Some(None),
            Some(StepInput::Const(t)) => Some(Some(t)),
            Some(StepInput::Slot(_)) => None,
        }
    };
    let (pads, value, axes): (Vec<i64>, f32, Option<Vec<i64>>) = match step.attrs.ints("pads") {
        Some(p) => (p.to_vec(), step.attrs.float("value", 0.0), None),
        None => {
            let (Some(Some(p)), Some(v), Some(a)) = (konst(1), konst(2), konst(3)) else { return Ok(None) };
            let Ok(p) = p.to_i64_vec() else { return Ok(None) };
            let value = match v.map(|t| &t.data) {
                None => 0.0,
                Some(Data::F32(v)) if v.len() == 1 => v[0],
                _ => return Ok(None),
            };
            let axes = match a {
                None => None,
                Some(t) => match t.to_i64_vec() {
                    Ok(v) => Some(v),
                    Err(_) => return Ok(None),
                },
            };
            (p, value, axes)
        }
    };
    let axes: Vec<usize> = match axes {
        None => (0..r).collect(),
        Some(a) => {
            let mut out = Vec::new();
            for v in a {
                let v = if v < 0 { v + r as i64 } else { v };
                if !(0..r as i64).contains(&v) {
                    return Ok(None);
                }
                out.push(v as usize);
            }
            out
        }
    };
    if pads.len() != 2 * axes.len() || r > 8 {
        return Ok(None);
    }
    let mut begin = [0i32; 8];
    for (k, &a) in axes.iter().enumerate() {
        let Ok(v) = i32::try_from(pads[k]) else { return Ok(None) };
        begin[8 - r + a] = v;
    }
    let oshape = b.plan.slot(ys).2.to_vec();
    let n: usize = oshape.iter().product();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let mut u = vec![n as u32, row, value.to_bits(), 0];
    u.extend(dims8(&oshape, 1));
    u.extend(begin.iter().map(|&v| v as u32));
    u.extend(dims8(&x.1, 1));
    u.extend(dims8(&strides(&x.1), 0));
    Ok(Some(vec![b.dispatch(i, "pad.wgsl", &u, &[&x.0, &yb], groups).await?]))
}

/// 1-D and 2-D `MaxPool` of a float NCHW tensor (the values output only).
async fn maxpool(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    if step.outputs.iter().skip(1).any(|o| o.is_some()) {
        return Ok(None);
    }
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    if !(3..=4).contains(&x.1.len()) {
        return Ok(None);
    }
    let node = Node {
        name: String::new(),
        op_type: "MaxPool".into(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        attrs: step.attrs.clone(),
    };
    let Ok(wa) = WindowAttrs::from_node(&node, true) else { return Ok(None) };
    let Ok((w, oshape)) = qplay_core::ops::nn::spatial::pool_geometry(&wa, &x.1) else { return Ok(None) };
    if oshape != b.plan.slot(ys).2 {
        return Ok(None);
    }
    // 1-D as a height of 1.
    let w = w.lifted_to_2d();
    let (ih, iw, oh, ow) = (w.input[0], w.input[1], w.output[0], w.output[1]);
    let (kh, kw, sh, sw) = (w.kernel[0], w.kernel[1], w.strides[0], w.strides[1]);
    let (dh, dw, ph, pw) = (w.dilations[0], w.dilations[1], w.pad_begin[0], w.pad_begin[1]);
    let n: usize = oshape.iter().product();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let max = b.gpu.device.limits().max_compute_workgroups_per_dimension;
    let (groups, row) = grid_1d(n, max);
    let u: Vec<u32> =
        [n, row as usize, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, 0, 0].iter().map(|&v| v as u32).collect();
    Ok(Some(vec![b.dispatch(i, "maxpool.wgsl", &u, &[&x.0, &yb], groups).await?]))
}

async fn batchnorm(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let mut p: Vec<&[f32]> = Vec::new();
    for k in 1..5 {
        match step.inputs.get(k) {
            Some(StepInput::Const(t)) => match &t.data {
                Data::F32(v) => p.push(v),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        }
    }
    let eps = step.attrs.float("epsilon", 1e-5);
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    if x.1.len() < 2 || p.iter().any(|v| v.len() != x.1[1]) {
        return Ok(None);
    }
    // The CPU's per-channel a, b (same f32 expressions), then y = (x·a) + b in two dispatches,
    // so the product is rounded before the add exactly as on the CPU.
    let c = x.1[1];
    let (mut av, mut bv) = (Vec::with_capacity(c), Vec::with_capacity(c));
    for (((&scale, &bias), &mean), &var) in p[0].iter().zip(p[1]).zip(p[2]).zip(p[3]) {
        let a = scale / (var + eps).sqrt();
        av.push(a);
        bv.push(bias - mean * a);
    }
    let mut cshape = vec![1; x.1.len()];
    cshape[1] = c;
    let ab = b.const_buf(i, "batchnorm a", bytemuck::cast_slice(&av))?;
    let bb = b.const_buf(i, "batchnorm b", bytemuck::cast_slice(&bv))?;
    let tmp = b.scratch(i, Layout::F32.bytes(&x.1))?;
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let shape = x.1.clone();
    let d1 = binary_dispatch(b, i, 2, (None, None), (&x.0, &shape), (&ab, &cshape), &tmp, &shape).await?;
    let d2 = binary_dispatch(b, i, 0, (None, None), (&tmp, &shape), (&bb, &cshape), &yb, &shape).await?;
    Ok(d1.zip(d2).map(|(a, b)| vec![a, b]))
}

/// Reshape-like steps on float tensors: the output is the input's buffer.
fn alias(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let (Some(StepInput::Slot(xs)), Some(Some(ys))) = (step.inputs.first().copied(), step.outputs.first().copied())
    else {
        return Ok(None);
    };
    if b.plan.slot(xs).1 != DType::F32 || b.plan.slot(ys).1 != DType::F32 || b.slots[ys].is_some() {
        return Ok(None);
    }
    let Some(buf) = b.slot_buf(i, xs)? else { return Ok(None) };
    b.slots[ys] = Some(SlotBuf { buf, layout: Layout::F32, staging: None });
    Ok(Some(Vec::new()))
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
    let mut u = vec![n as u32, row, dst_base as u32, src_base as u32];
    u.extend(dims8(dims, 1));
    let mut s8 = [0u32; 8];
    for (k, &v) in ss.iter().rev().enumerate() {
        s8[7 - k] = v as i32 as u32;
    }
    u.extend(s8);
    u.extend(dims8(sd, 0));
    Ok(Some(b.dispatch(i, "copy.wgsl", &u, &[src, dst], groups).await?))
}

async fn transpose(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let Some(x) = operand(b, i, step.inputs[0])? else { return Ok(None) };
    let r = x.1.len();
    let perm: Vec<usize> = match step.attrs.ints("perm") {
        Some(p) => p.iter().map(|&v| v as usize).collect(),
        None => (0..r).rev().collect(),
    };
    if perm.len() != r || perm.iter().any(|&p| p >= r) {
        return Ok(None);
    }
    let oshape: Vec<usize> = perm.iter().map(|&p| x.1[p]).collect();
    let ist = strides(&x.1);
    let ss: Vec<i64> = perm.iter().map(|&p| ist[p] as i64).collect();
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let d = copy_dispatch(b, i, &x.0, &yb, &oshape, &ss, &strides(&oshape), (0, 0)).await?;
    Ok(d.map(|d| vec![d]))
}

async fn concat(b: &mut Builder<'_>, i: usize) -> Result<Built, GpuError> {
    let step = b.plan.step(i);
    let Some(Some(ys)) = step.outputs.first().copied() else { return Ok(None) };
    let (_, yd, oshape) = b.plan.slot(ys);
    if yd != DType::F32 {
        return Ok(None);
    }
    let oshape = oshape.to_vec();
    let r = oshape.len() as i64;
    let axis = step.attrs.int("axis", 0);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return Ok(None);
    }
    let axis = axis as usize;
    let mut ops = Vec::new();
    for inp in step.inputs.clone() {
        let Some(x) = operand(b, i, inp)? else { return Ok(None) };
        ops.push(x);
    }
    let Some(yb) = b.slot_buf(i, ys)? else { return Ok(None) };
    let ost = strides(&oshape);
    let mut off = 0;
    let mut ds = Vec::new();
    for (buf, shape) in &ops {
        if shape.len() != oshape.len() {
            return Ok(None);
        }
        if shape.iter().product::<usize>() > 0 {
            let ss: Vec<i64> = strides(shape).iter().map(|&v| v as i64).collect();
            match copy_dispatch(b, i, buf, &yb, shape, &ss, &ost, (0, off * ost[axis])).await? {
                Some(d) => ds.push(d),
                None => return Ok(None),
            }
        }
        off += shape[axis];
    }
    Ok(Some(ds))
}
