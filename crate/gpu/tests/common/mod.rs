//! What the GPU tests share: the seeded generator (the CPU tests' own,
//! `crate/core/tests/common/rng.rs`), the device, small graphs built node by node, and a plan run
//! on the CPU reference and on the GPU.

#![allow(dead_code)]

#[path = "../../../core/tests/common/rng.rs"]
mod rng;

use qplay_core::model::{Attr, Attrs, Data, Graph, Node, Plan, Tensor, ValueInfo};
use qplay_core::ops::Registry;
use qplay_gpu::{Gpu, GpuPlan};
pub use rng::Rng;
use std::collections::HashMap;
use std::sync::Arc;

/// The device (lavapipe where there is no GPU).
pub fn gpu() -> Gpu {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}"))
}

/// A node `name`: `op` from `inputs` to `outputs`, with `attrs`.
pub fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[(&str, Attr)]) -> Node {
    Node {
        name: name.into(),
        op_type: op.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        attrs: Attrs(attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
        fused: Default::default(),
    }
}

/// An opset-13 graph of `nodes` and `init` with one input `x` (ONNX element type `elem`, shape
/// `shape`) and the outputs named (element types left open).
pub fn graph(nodes: Vec<Node>, init: HashMap<String, Tensor>, x: (&str, i32, &[usize]), outputs: &[&str]) -> Graph {
    let (name, elem_type, shape) = x;
    Graph {
        nodes,
        initializers: init,
        inputs: vec![ValueInfo { name: name.into(), elem_type, shape: shape.iter().map(|&d| Some(d)).collect() }],
        outputs: outputs.iter().map(|n| ValueInfo { name: n.to_string(), elem_type: 0, shape: vec![] }).collect(),
        opset: 13,
        ..Default::default()
    }
}

/// `graph` planned for its one input `x` and run on the CPU reference and on the GPU: the CPU's
/// outputs, the GPU's, and the GPU plan (for its placement).
pub fn cpu_and_gpu(g: &Gpu, graph: &Graph, x: &Tensor) -> (Vec<Tensor>, Vec<Tensor>, GpuPlan) {
    let name = graph.inputs[0].name.clone();
    let plan = Arc::new(Plan::new(graph, &Registry::new(), &[(name.clone(), x.shape.clone())]).unwrap());
    let want = plan.run(&[(name.clone(), x.clone())]).unwrap();
    let mut gp = GpuPlan::new_blocking(g, plan).unwrap();
    let got = gp.run_blocking(&[(name, x.clone())]).unwrap();
    (want, got, gp)
}

/// Codes or floats, bit for bit: the number of elements that differ.
pub fn differ(a: &Tensor, b: &Tensor) -> usize {
    assert_eq!((a.dtype(), &a.shape), (b.dtype(), &b.shape));
    match (&a.data, &b.data) {
        (Data::U8(x), Data::U8(y)) => x.iter().zip(y).filter(|(p, q)| p != q).count(),
        (Data::I8(x), Data::I8(y)) => x.iter().zip(y).filter(|(p, q)| p != q).count(),
        (Data::I16(x), Data::I16(y)) => x.iter().zip(y).filter(|(p, q)| p != q).count(),
        (Data::F32(x), Data::F32(y)) => x.iter().zip(y).filter(|(p, q)| p.to_bits() != q.to_bits()).count(),
        _ => panic!("unexpected output type {:?}", a.dtype()),
    }
}

/// Largest |a − b| over the largest |b| (float outputs that agree to rounding).
pub fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
    let range = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max) / range
}

/// Every output equal to the CPU's bit for bit.
pub fn assert_exact(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: outputs");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(differ(a, b), 0, "{what}: output {k} differs from the CPU");
    }
}

/// Every output within `tol` of the CPU's range ([`rel_diff`]).
pub fn assert_close(got: &[Tensor], want: &[Tensor], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: outputs");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let d = rel_diff(a, b);
        assert!(d <= tol, "{what}: output {k}: max |diff| {d} of the range");
        eprintln!("{what}: output {k}: max |diff| {d:e} of the range");
    }
}
