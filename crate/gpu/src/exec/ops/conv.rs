//! Convolutions: `QLinearConv` (implicit GEMM `qconv.wgsl`, direct depthwise `dwconv.wgsl`)
//! and float `Conv` (`fconv.wgsl`), from the core ops' resolved fields.

use super::{window, Builder, Built, MAX_SERIAL};
use crate::uniforms::{DwconvUniform, Epi, FconvUniform, QconvUniform};
use crate::{GpuError, Kernel};
use qplay_core::model::{DType, Data, StepInput, Tensor};
use qplay_core::ops::nn::conv::Conv;
use qplay_core::ops::quant::qlinear_conv::{ChannelMax, QConv, QConvOut, QConvSpec};

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
fn epi(spec: &QConvSpec) -> Epi {
    let has_cmax = spec.channel_max.is_some() as u32;
    match spec.out {
        QConvOut::Codes { zero_point, lo, hi, .. } => {
            Epi { float_out: 0, has_cmax, zp: zero_point, lo, hi, ..Epi::default() }
        }
        QConvOut::F32 { lo, hi } => {
            Epi { float_out: 1, has_cmax, flo: f32_bound(lo), fhi: f32_bound(hi), ..Epi::default() }
        }
        QConvOut::I32 => Epi::default(),
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

/// `QLinearConv` (8-bit or float output) on 2-D (or 1-D lifted) windows.
pub(super) async fn qconv(b: &mut Builder<'_>, i: usize, op: &QConv) -> Result<Built, GpuError> {
    if b.flat8 {
        return Ok(None); // NHWC4 kernels.
    }
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
    let Ok(spec) = op.spec(xshape, xd, &args) else { return Ok(None) };
    let win = spec.window();
    let Some(w) = args.get(3).copied().flatten().and_then(bytes_i32) else { return Ok(None) };
    if win.input.len() != 2 || matches!(spec.out, QConvOut::I32) || b.layout_of(ys).is_none() {
        return Ok(None);
    }
    let (n, c, m, g) = (spec.batch(), spec.in_channels(), spec.out_channels(), spec.group);
    let npix = n * win.output[0] * win.output[1];
    let depthwise = c == g && m == g;
    // An invocation's loops: the taps times the group's channel words, for each of four channels
    // and then four pixels (MAX_SERIAL).
    if win.kernel[0] * win.kernel[1] * (c / g.max(1)).div_ceil(4) * 8 > MAX_SERIAL {
        return Ok(None);
    }
    // The grid, checked before any buffer is made: qconv.wgsl takes 4 pixels per invocation.
    let groups = if depthwise {
        [npix.div_ceil(64) as u32, c.div_ceil(4) as u32, 1]
    } else {
        [npix.div_ceil(4).div_ceil(64) as u32, m.div_ceil(4) as u32, 1]
    };
    b.check_groups(i, if depthwise { Kernel::Dwconv } else { Kernel::Qconv }, groups)?;
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let (cg, mg) = (c / g, m / g);
    let taps = win.kernel[0] * win.kernel[1];
    let xshift = if xd == DType::U8 { 128 } else { 0 };
    let wshift = if spec.w_dtype == DType::U8 { 128 } else { 0 };
    let a = xshift - spec.zx; // x' + a = x − zx
    let x_xor = if xd == DType::U8 { 0x8080_8080u32 } else { 0 };
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
        let u = DwconvUniform {
            win: window(&win),
            c4: c4 as u32,
            c: c as u32,
            npix: npix as u32,
            x_xor,
            a,
            _pad: [0; 3],
            epi: epi(&spec),
        };
        let wb = b.const_buf(i, "dwconv weights", bytemuck::cast_slice(&wv))?;
        let cb = b.const_buf(i, "dwconv channels", bytemuck::cast_slice(&chans))?;
        return Ok(Some(vec![b.dispatch(i, &u, &[&xb, &wb, &cb, &yb], groups).await?]));
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
    let u = QconvUniform {
        win: window(&win),
        c4_in: c4_in as u32,
        m: m as u32,
        m4: m4 as u32,
        npix: npix as u32,
        cg: cg as u32,
        mg: mg as u32,
        cg4: cg4 as u32,
        fast: shared as u32,
        x_xor,
        pad_word: pad_byte * 0x0101_0101,
        last_mask,
        need_xsum,
        epi: epi(&spec),
    };
    let chans = chan(&spec, &add, &zb);
    let wb = b.const_buf(i, "qconv weights", bytemuck::cast_slice(&wq))?;
    let cb = b.const_buf(i, "qconv channels", bytemuck::cast_slice(&chans))?;
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &wb, &cb, &yb], groups).await?]))
}

/// Float `Conv`, with its fused clamp and per-channel upper bounds.
pub(super) async fn fconv(b: &mut Builder<'_>, i: usize, op: &Conv) -> Result<Built, GpuError> {
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
    let Ok(win) = op.window().resolve(&xshape[2..], &w.shape[2..]) else { return Ok(None) };
    let win = win.lifted_to_2d();
    let group = op.group();
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
    let cmax: Vec<f32> = match op.channel_max() {
        Some(v) if v.len() == m => v.to_vec(),
        Some(v) if v.len() == 1 => vec![v[0]; m],
        Some(_) => return Ok(None),
        None => vec![0.0],
    };
    // Infinite bounds are absent ones (the CPU's `Clamp` holds ±∞ for them).
    let bound = |v: f32| v.is_finite().then_some(v);
    let (lo, hi) = op.clamp().map_or((None, None), |c| (bound(c.lo), bound(c.hi)));
    // An invocation's loops: four lanes of the group's channels times the taps (MAX_SERIAL).
    if 4 * cg * win.kernel.iter().product::<usize>() > MAX_SERIAL {
        return Ok(None);
    }
    let (Some(xb), Some(yb)) = (b.slot_buf(i, xs)?, b.slot_buf(i, ys)?) else { return Ok(None) };
    let npix = n * win.output[0] * win.output[1];
    let u = FconvUniform {
        win: window(&win),
        c: c as u32,
        m: m as u32,
        npix: npix as u32,
        cg: cg as u32,
        mg: (m / group) as u32,
        has_bias: bias.is_some() as u32,
        has_lo: lo.is_some() as u32,
        has_hi: hi.is_some() as u32,
        has_cmax: op.channel_max().is_some() as u32,
        lo: lo.unwrap_or(0.0),
        hi: hi.unwrap_or(0.0),
        fast: (group == 1 || (m / group) % 4 == 0) as u32,
    };
    let wb = b.const_buf(i, "conv weights", bytemuck::cast_slice(wv))?;
    let bb = b.const_buf(i, "conv bias", bytemuck::cast_slice(&bv))?;
    let mb = b.const_buf(i, "conv channel max", bytemuck::cast_slice(&cmax))?;
    let groups = [npix.div_ceil(4).div_ceil(64) as u32, m.div_ceil(4) as u32, 1];
    Ok(Some(vec![b.dispatch(i, &u, &[&xb, &wb, &bb, &mb, &yb], groups).await?]))
}
