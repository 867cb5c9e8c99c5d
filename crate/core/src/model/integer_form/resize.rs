//! RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR in integer ONNX: the source rows and columns
//! TFLite's kernel reads ([`TflResize::axis_taps`]) as `Gather` indices, and the bilinear
//! weights as constants — in 1/1024 with the sum rounded half away from zero for int8 codes,
//! in float for uint8 codes in the order of LiteRT's float template (so that every product and
//! sum rounds as there), plus 0.5, truncated.

use super::emit::{type_range, Emit};
use super::Ctx;
use crate::model::{Attr, DType, Data, Node, Tensor};
use crate::ops::tflite::resize::{taps_f32, TflResize};

/// `Gather(x, index, axis)` with constant indices.
fn pick(e: &mut Emit, x: &str, index: &[usize], axis: i64) -> String {
    let i = e.i64s_shaped(index.iter().map(|&v| v as i64).collect(), vec![index.len()]);
    e.op("Gather", &[x, &i], vec![("axis", Attr::Int(axis))])
}

fn f32s(e: &mut Emit, v: Vec<f32>, shape: Vec<usize>) -> String {
    e.constant(Tensor { shape, data: Data::F32(v) })
}

pub(super) fn resize(e: &mut Emit, n: &Node, cx: &Ctx) -> Result<(), String> {
    let op = cx.built::<TflResize>(n)?;
    let x = cx.input(n, 0)?;
    let t = cx.code_type(x)?;
    let &[_, h, w, _] = &cx.fact(x)?.shape[..] else { return Err("its input is not 4-D".into()) };
    if h == 0 || w == 0 {
        return Err("its input is empty".into());
    }
    let [oh, ow] = op.size;
    let out = &n.outputs[0];
    let (Some(ty), Some(tx)) = (op.axis_taps(h, oh, t), op.axis_taps(w, ow, t)) else {
        // uint8 bilinear: LiteRT's float template.
        let scale = |len: usize, o: usize| -> f32 {
            if op.align_corners && o > 1 {
                (len - 1) as f32 / (o - 1) as f32
            } else {
                len as f32 / o as f32
            }
        };
        let ty: Vec<(f32, usize, usize)> = (0..oh).map(|v| taps_f32(v, scale(h, oh), op.half_pixel, h)).collect();
        let tx: Vec<(f32, usize, usize)> = (0..ow).map(|v| taps_f32(v, scale(w, ow), op.half_pixel, w)).collect();
        return float_bilinear(e, x, &ty, &tx, t, out);
    };
    if !op.bilinear {
        let rows = pick(e, x, &ty.iter().map(|t| t.0).collect::<Vec<_>>(), 1);
        let i = e.i64s_shaped(tx.iter().map(|t| t.0 as i64).collect(), vec![tx.len()]);
        e.op_to("Gather", &[&rows, &i], out, vec![("axis", Attr::Int(2))]);
        return Ok(());
    }
    let wide = e.cast(x, DType::I64);
    let mut terms = Vec::new();
    for (ry, fy) in [(0, false), (1, true)] {
        let index: Vec<usize> = ty.iter().map(|p| if ry == 0 { p.0 } else { p.1 }).collect();
        let rows = pick(e, &wide, &index, 1);
        for (rx, fx) in [(0, false), (1, true)] {
            let index: Vec<usize> = tx.iter().map(|p| if rx == 0 { p.0 } else { p.1 }).collect();
            let v = pick(e, &rows, &index, 2);
            let weight = |f: i32, upper: bool| if upper { f as i64 } else { (1 << 10) - f as i64 };
            let wts: Vec<i64> =
                ty.iter().flat_map(|a| tx.iter().map(move |b| weight(a.2, fy) * weight(b.2, fx))).collect();
            let wc = e.i64s_shaped(wts, vec![1, oh, ow, 1]);
            terms.push(e.op("Mul", &[&v, &wc], vec![]));
        }
    }
    let s01 = e.op("Add", &[&terms[0], &terms[1]], vec![]);
    let s23 = e.op("Add", &[&terms[2], &terms[3]], vec![]);
    let sum = e.op("Add", &[&s01, &s23], vec![]);
    let zero = e.i64s(vec![0]);
    let positive = e.op("Greater", &[&sum, &zero], vec![]);
    let (up, down) = (e.i64s(vec![1 << 19]), e.i64s(vec![-(1 << 19)]));
    let round = e.op("Where", &[&positive, &up, &down], vec![]);
    let nudged = e.op("Add", &[&sum, &round], vec![]);
    let unit = e.i64s(vec![1 << 20]);
    let y = e.op("Div", &[&nudged, &unit], vec![]);
    e.finish(&y, 0, type_range(t), t, out);
    Ok(())
}

/// uint8 bilinear: `v00·(1−dy)·(1−dx) + v10·dy·(1−dx) + v01·(1−dy)·dx + v11·dy·dx + 0.5` in
/// float, left to right, truncated.
fn float_bilinear(
    e: &mut Emit,
    x: &str,
    ty: &[(f32, usize, usize)],
    tx: &[(f32, usize, usize)],
    t: DType,
    out: &str,
) -> Result<(), String> {
    let (oh, ow) = (ty.len(), tx.len());
    let xf = e.op("Cast", &[x], vec![("to", Attr::Int(DType::F32.onnx_code() as i64))]);
    let dy: Vec<f32> = ty.iter().map(|&(f, lo, _)| f - lo as f32).collect();
    let dx: Vec<f32> = tx.iter().map(|&(f, lo, _)| f - lo as f32).collect();
    let col = |v: &[f32]| v.to_vec();
    let (dy_c, ndy_c) =
        (f32s(e, col(&dy), vec![1, oh, 1, 1]), f32s(e, dy.iter().map(|d| 1.0 - d).collect(), vec![1, oh, 1, 1]));
    let (dx_c, ndx_c) =
        (f32s(e, col(&dx), vec![1, 1, ow, 1]), f32s(e, dx.iter().map(|d| 1.0 - d).collect(), vec![1, 1, ow, 1]));
    let rows0 = pick(e, &xf, &ty.iter().map(|t| t.1).collect::<Vec<_>>(), 1);
    let rows1 = pick(e, &xf, &ty.iter().map(|t| t.2).collect::<Vec<_>>(), 1);
    let (c0, c1): (Vec<usize>, Vec<usize>) = (tx.iter().map(|t| t.1).collect(), tx.iter().map(|t| t.2).collect());
    let v00 = pick(e, &rows0, &c0, 2);
    let v10 = pick(e, &rows1, &c0, 2);
    let v01 = pick(e, &rows0, &c1, 2);
    let v11 = pick(e, &rows1, &c1, 2);
    let term = |e: &mut Emit, v: &str, a: &str, b: &str| {
        let p = e.op("Mul", &[v, a], vec![]);
        e.op("Mul", &[&p, b], vec![])
    };
    let t1 = term(e, &v00, &ndy_c, &ndx_c);
    let t2 = term(e, &v10, &dy_c, &ndx_c);
    let t3 = term(e, &v01, &ndy_c, &dx_c);
    let t4 = term(e, &v11, &dy_c, &dx_c);
    let s = e.op("Add", &[&t1, &t2], vec![]);
    let s = e.op("Add", &[&s, &t3], vec![]);
    let s = e.op("Add", &[&s, &t4], vec![]);
    let half = f32s(e, vec![0.5], vec![]);
    let s = e.op("Add", &[&s, &half], vec![]);
    let truncated = e.op("Cast", &[&s], vec![("to", Attr::Int(DType::I64.onnx_code() as i64))]);
    e.finish(&truncated, 0, type_range(t), t, out);
    Ok(())
}
