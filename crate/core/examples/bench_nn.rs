//! Single-threaded throughput of the nn kernels on the shapes that dominate the default model
//! (SSDLite-MobileNetV2 at 300×300): `cargo run --release --example bench_nn [name filter]`.
//!
//! Each case runs the op through its public `Op::eval`, exactly as a model would, and reports
//! the best of several timed runs as GFLOP/s (one multiply-add = 2 FLOP).

use qplay_core::model::{Attr, Attrs, Node, Tensor};
use qplay_core::ops::{BuildCtx, Registry};
use std::time::Instant;

struct Case {
    name: &'static str,
    op: &'static str,
    attrs: Vec<(&'static str, Attr)>,
    inputs: Vec<Vec<usize>>,
    /// Multiply-adds per run.
    macs: f64,
}

fn node(op: &str, attrs: Vec<(&'static str, Attr)>, n_inputs: usize) -> Node {
    Node {
        name: op.into(),
        op_type: op.into(),
        inputs: (0..n_inputs).map(|i| format!("in{i}")).collect(),
        outputs: vec!["out".into()],
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    }
}

fn random(shape: &[usize], seed: &mut u64) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::f32(shape.to_vec(), data).unwrap()
}

fn conv(name: &'static str, c: usize, m: usize, hw: usize, k: usize, stride: usize, group: usize) -> Case {
    let out = (hw + 2 * (k / 2) - k) / stride + 1;
    let pad = (k / 2) as i64;
    Case {
        name,
        op: "Conv",
        attrs: vec![
            ("group", Attr::Int(group as i64)),
            ("strides", Attr::Ints(vec![stride as i64; 2])),
            ("pads", Attr::Ints(vec![pad; 4])),
        ],
        inputs: vec![vec![1, c, hw, hw], vec![m, c / group, k, k], vec![m]],
        macs: (m * out * out * (c / group) * k * k) as f64,
    }
}

fn main() {
    let cases = vec![
        conv("conv 1x1 96->24 @75x75", 96, 24, 75, 1, 1, 1),
        conv("conv 1x1 24->144 @75x75", 24, 144, 75, 1, 1, 1),
        conv("dw 3x3 144ch @75x75 s1", 144, 144, 75, 3, 1, 144),
        conv("dw 3x3 144ch @75x75 s2", 144, 144, 75, 3, 2, 144),
        conv("conv 1x1 576->160 @10x10", 576, 160, 10, 1, 1, 1),
        conv("conv 3x3 32->64 @75x75 (im2col)", 32, 64, 75, 3, 1, 1),
        conv("conv 3x3 3->32 @300x300 s2 (stem)", 3, 32, 300, 3, 2, 1),
        Case {
            name: "matmul 256x512 * 512x256",
            op: "MatMul",
            attrs: vec![],
            inputs: vec![vec![256, 512], vec![512, 256]],
            macs: (256 * 512 * 256) as f64,
        },
    ];
    let registry = Registry::new();
    let ctx = BuildCtx { opset: 13 };
    // An optional argument keeps only the cases whose name contains it.
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mut seed = 7u64;
    println!("{:<36} {:>10} {:>10}", "case", "ms", "GFLOP/s");
    for case in cases.into_iter().filter(|c| c.name.contains(filter.as_str())) {
        let Some(builder) = registry.get(case.op) else {
            println!("{:<36} (op {} not registered)", case.name, case.op);
            continue;
        };
        let op = builder(&node(case.op, case.attrs, case.inputs.len()), &ctx).unwrap();
        let tensors: Vec<Tensor> = case.inputs.iter().map(|s| random(s, &mut seed)).collect();
        let inputs: Vec<Option<&Tensor>> = tensors.iter().map(Some).collect();
        // Enough repetitions for ~0.3 s per case, best run reported.
        let t0 = Instant::now();
        op.eval(&inputs).unwrap();
        let once = t0.elapsed().as_secs_f64();
        // BENCH_REPS fixes the count (for `perf stat` cycle counts on a busy machine).
        let reps = std::env::var("BENCH_REPS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(((0.3 / once.max(1e-6)) as usize).clamp(3, 2000));
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            std::hint::black_box(op.eval(&inputs).unwrap());
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{:<36} {:>10.3} {:>10.2}", case.name, best * 1e3, 2.0 * case.macs / best / 1e9);
    }
}
