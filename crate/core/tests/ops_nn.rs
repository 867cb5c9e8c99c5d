//! The `nn` ops against straightforward reference implementations (naive loops written here,
//! straight from the ONNX operator docs) on random shapes and attributes, against hand-checked
//! examples from the ONNX spec, and on malformed inputs, which must produce an `Err` that
//! says what is wrong rather than a panic.
//!
//! Every successful run also checks that `infer`'s shape and type equal `eval`'s output.

use qplay_core::model::{Attr, Attrs, DType, Data, Node, Tensor};
use qplay_core::ops::{BuildCtx, Fact, OpError, Registry};

/// Allowed error: max |got − want| ≤ `REL_TOL` × the reference output's range (at least 1).
const REL_TOL: f32 = 1e-4;

// ---------------------------------------------------------------------------------------------
// Harness

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo + 1)
    }
    fn float(&mut self) -> f32 {
        (self.next() % 2_000_001) as f32 / 1_000_000.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::f32(shape.to_vec(), (0..n).map(|_| self.float()).collect()).unwrap()
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.int(0, v.len() - 1)]
    }
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

fn node(op: &str, attrs: Vec<(&str, Attr)>, n_inputs: usize) -> Node {
    Node {
        name: format!("{op}_test"),
        op_type: op.into(),
        inputs: (0..n_inputs).map(|i| format!("in{i}")).collect(),
        outputs: vec!["out".into()],
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        fused: Default::default(),
    }
}

/// Builds, infers (input 0 as a runtime value, the rest as constants, as in a real model) and
/// evaluates; checks that inference agrees with evaluation.
fn try_run(op: &str, opset: i64, attrs: Vec<(&str, Attr)>, inputs: &[Option<&Tensor>]) -> Result<Tensor, OpError> {
    let registry = Registry::new();
    let builder = registry.get(op).unwrap_or_else(|| panic!("{op} is not registered"));
    let built = builder(&node(op, attrs, inputs.len()), &BuildCtx { opset })?;
    let facts: Vec<Option<Fact>> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| t.map(|t| if i == 0 { Fact::new(t.dtype(), t.shape.clone()) } else { Fact::constant(t.clone()) }))
        .collect();
    let fact_refs: Vec<Option<&Fact>> = facts.iter().map(Option::as_ref).collect();
    let inferred = built.infer(&fact_refs);
    let evaluated = built.eval(inputs);
    match (inferred, evaluated) {
        (Ok(f), Ok(mut t)) => {
            assert_eq!(f.len(), 1, "{op}: one output fact");
            assert_eq!(t.len(), 1, "{op}: one output tensor");
            let t = t.remove(0);
            assert_eq!(f[0].shape, t.shape, "{op}: inferred shape differs from evaluated shape");
            assert_eq!(f[0].dtype, t.dtype(), "{op}: inferred type differs from evaluated type");
            assert_eq!(t.len(), t.shape.iter().product::<usize>(), "{op}: output data matches its shape");
            Ok(t)
        }
        (Err(a), Err(_)) => Err(a),
        (a, b) => panic!("{op}: infer and eval disagree on success: {:?} vs {:?}", a.err(), b.err()),
    }
}

fn run(op: &str, opset: i64, attrs: Vec<(&str, Attr)>, inputs: &[Option<&Tensor>]) -> Tensor {
    try_run(op, opset, attrs, inputs).unwrap_or_else(|e| panic!("{op} failed: {e}"))
}

/// Expects an error (from build, infer or eval) whose message contains `needle`.
fn expect_err(op: &str, opset: i64, attrs: Vec<(&str, Attr)>, inputs: &[Option<&Tensor>], needle: &str) {
    match try_run(op, opset, attrs, inputs) {
        Ok(t) => panic!("{op}: expected an error mentioning `{needle}`, got shape {:?}", t.shape),
        Err(e) => assert!(e.to_string().contains(needle), "{op}: error `{e}` should mention `{needle}`"),
    }
}

fn assert_close(got: &Tensor, want_shape: &[usize], want: &[f32], what: &str) {
    assert_eq!(got.shape, want_shape, "{what}: shape");
    let g = got.as_f32().unwrap();
    assert_eq!(g.len(), want.len(), "{what}: length");
    let finite = want.iter().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let tol = REL_TOL * (hi - lo).max(1.0);
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        // Equal infinities (a max over a window that lies entirely in padding) match exactly.
        assert!(a == b || (a - b).abs() <= tol, "{what}: element {i}: got {a}, want {b} (tolerance {tol})");
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::f32(shape.to_vec(), v.to_vec()).unwrap()
}

fn range(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f32s(shape, &(1..=n).map(|x| x as f32).collect::<Vec<_>>())
}

/// Row-major multi-index of flat index `i`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

// ---------------------------------------------------------------------------------------------
// Registry

#[test]
fn all_nn_ops_are_registered() {
    let r = Registry::new();
    for op in [
        "Conv",
        "ConvTranspose",
        "BatchNormalization",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Resize",
        "Upsample",
        "Pad",
        "MatMul",
        "Gemm",
        "Softmax",
    ] {
        assert!(r.get(op).is_some(), "{op} is not registered");
    }
}

// ---------------------------------------------------------------------------------------------
// Conv

/// Explicit pads `(begin, end)` and output size for one spatial dim, per the ONNX formulas.
fn window_dim(
    input: usize,
    eff: usize,
    s: usize,
    auto_pad: &str,
    pads: (usize, usize),
    ceil: bool,
) -> (usize, usize, usize) {
    match auto_pad {
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = input.div_ceil(s);
            let total = ((out - 1) * s + eff).saturating_sub(input);
            let (a, b) = (total / 2, total - total / 2);
            if auto_pad == "SAME_UPPER" {
                (a, b, out)
            } else {
                (b, a, out)
            }
        }
        _ => {
            let (pb, pe) = if auto_pad == "VALID" { (0, 0) } else { pads };
            let span = input + pb + pe - eff;
            let mut out = if ceil { span.div_ceil(s) + 1 } else { span / s + 1 };
            if ceil && (out - 1) * s >= input + pb {
                out -= 1;
            }
            (pb, pe, out)
        }
    }
}

/// The geometry the reference convolutions take: groups, strides, dilations, leading pads and
/// the output's spatial size.
#[derive(Clone, Copy)]
struct RefGeom<'a> {
    group: usize,
    strides: &'a [usize],
    dil: &'a [usize],
    pb: &'a [usize],
    out_sp: &'a [usize],
}

fn ref_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, geom: RefGeom) -> (Vec<usize>, Vec<f32>) {
    let RefGeom { group, strides, dil, pb, out_sp } = geom;
    let (xs, ws) = (&x.shape, &w.shape);
    let (xd, wd) = (x.as_f32().unwrap(), w.as_f32().unwrap());
    let (n, c, m) = (xs[0], xs[1], ws[0]);
    let (cg, mg) = (c / group, m / group);
    let mut out_shape = vec![n, m];
    out_shape.extend_from_slice(out_sp);
    let total: usize = out_shape.iter().product();
    let kshape = &ws[2..];
    let ksize: usize = kshape.iter().product();
    let mut out = vec![0.0; total];
    for (i, o) in out.iter_mut().enumerate() {
        let idx = unravel(i, &out_shape);
        let (ni, mi) = (idx[0], idx[1]);
        let g = mi / mg;
        let mut acc = b.map_or(0.0, |b| b.as_f32().unwrap()[mi]) as f64;
        for ci in 0..cg {
            for k in 0..ksize {
                let kidx = unravel(k, kshape);
                let mut xi = vec![ni, g * cg + ci];
                let mut inside = true;
                for d in 0..kshape.len() {
                    let p = (idx[2 + d] * strides[d] + kidx[d] * dil[d]) as isize - pb[d] as isize;
                    if p < 0 || p >= xs[2 + d] as isize {
                        inside = false;
                    }
                    xi.push(p.max(0) as usize);
                }
                if inside {
                    let mut wi = vec![mi, ci];
                    wi.extend_from_slice(&kidx);
                    acc += xd[ravel(&xi, xs)] as f64 * wd[ravel(&wi, ws)] as f64;
                }
            }
        }
        *o = acc as f32;
    }
    (out_shape, out)
}

struct ConvCase {
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    c: usize,
    m: usize,
    group: usize,
    strides: Vec<usize>,
    dil: Vec<usize>,
    pads: Vec<usize>,
    auto_pad: &'static str,
    bias: bool,
    batch: usize,
}

/// Runs one conv case against the reference; returns false when the case is geometrically
/// invalid (and checks that the op rejects it).
fn check_conv(rng: &mut Rng, cc: &ConvCase, what: &str) -> bool {
    let nd = cc.spatial.len();
    let mut xs = vec![cc.batch, cc.c];
    xs.extend_from_slice(&cc.spatial);
    let mut ws = vec![cc.m, cc.c / cc.group];
    ws.extend_from_slice(&cc.kernel);
    let x = rng.tensor(&xs);
    let w = rng.tensor(&ws);
    let b = rng.tensor(&[cc.m]);
    let mut pb = vec![];
    let mut out_sp = vec![];
    let mut valid = true;
    for d in 0..nd {
        let eff = (cc.kernel[d] - 1) * cc.dil[d] + 1;
        let pads = (cc.pads[d], cc.pads[nd + d]);
        let padded = if cc.auto_pad == "VALID" { cc.spatial[d] } else { cc.spatial[d] + pads.0 + pads.1 };
        if !cc.auto_pad.starts_with("SAME") && padded < eff {
            valid = false;
            break;
        }
        let (p0, _, o) = window_dim(cc.spatial[d], eff, cc.strides[d], cc.auto_pad, pads, false);
        pb.push(p0);
        out_sp.push(o);
    }
    let mut attrs = vec![
        ("group", Attr::Int(cc.group as i64)),
        ("strides", ints(&cc.strides)),
        ("dilations", ints(&cc.dil)),
        ("auto_pad", Attr::String(cc.auto_pad.into())),
    ];
    if cc.auto_pad == "NOTSET" {
        attrs.push(("pads", ints(&cc.pads)));
    }
    if rng.int(0, 1) == 1 {
        attrs.push(("kernel_shape", ints(&cc.kernel)));
    }
    let inputs = [Some(&x), Some(&w), cc.bias.then_some(&b)];
    if !valid {
        expect_err("Conv", 13, attrs, &inputs, "larger than the padded input");
        return false;
    }
    let got = run("Conv", 13, attrs, &inputs);
    let (shape, want) = ref_conv(
        &x,
        &w,
        cc.bias.then_some(&b),
        RefGeom { group: cc.group, strides: &cc.strides, dil: &cc.dil, pb: &pb, out_sp: &out_sp },
    );
    assert_close(&got, &shape, &want, what);
    true
}

#[test]
fn conv_random_against_reference() {
    let mut rng = Rng(1);
    let mut checked = 0;
    for case in 0..150 {
        let nd = rng.pick(&[1, 2, 2, 2, 2, 3]);
        let max_sp = match nd {
            1 => 20,
            2 => 11,
            _ => 5,
        };
        let spatial: Vec<usize> = (0..nd).map(|_| rng.int(1, max_sp)).collect();
        let kernel: Vec<usize> = (0..nd).map(|_| rng.int(1, if nd == 3 { 3 } else { 4 })).collect();
        let kind = rng.int(0, 3);
        let (c, m, group) = match kind {
            0 => (rng.int(1, 9), rng.int(1, 9), 1),
            1 => {
                let c = rng.int(1, 8);
                (c, c * rng.int(1, 2), c) // depthwise, channel multiplier 1 or 2
            }
            _ => {
                let g = rng.int(2, 3);
                (g * rng.int(1, 3), g * rng.int(1, 3), g)
            }
        };
        let cc = ConvCase {
            spatial,
            kernel,
            c,
            m,
            group,
            strides: (0..nd).map(|_| rng.int(1, 3)).collect(),
            dil: (0..nd).map(|_| rng.int(1, 2)).collect(),
            pads: (0..2 * nd).map(|_| rng.int(0, 2)).collect(),
            auto_pad: rng.pick(&["NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]),
            bias: rng.int(0, 2) > 0,
            batch: rng.int(1, 2),
        };
        if check_conv(&mut rng, &cc, &format!("conv case {case}")) {
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} valid cases");
}

#[test]
fn conv_kernel_paths() {
    let mut rng = Rng(2);
    let base = |spatial: Vec<usize>, kernel: Vec<usize>, c, m, group, s: usize, pad: usize| ConvCase {
        strides: vec![s; spatial.len()],
        dil: vec![1; spatial.len()],
        pads: vec![pad; 2 * spatial.len()],
        spatial,
        kernel,
        c,
        m,
        group,
        auto_pad: "NOTSET",
        bias: true,
        batch: 1,
    };
    // Pointwise straight to GEMM, with sizes that cross the GEMM's register tile and blocks.
    assert!(check_conv(&mut rng, &base(vec![9, 13], vec![1, 1], 37, 29, 1, 1, 0), "pointwise"));
    assert!(check_conv(&mut rng, &base(vec![3, 5], vec![1, 1], 300, 5, 1, 1, 0), "pointwise deep"));
    // 1×1 with stride or padding goes through im2col.
    assert!(check_conv(&mut rng, &base(vec![9, 9], vec![1, 1], 8, 8, 1, 2, 0), "1x1 strided"));
    assert!(check_conv(&mut rng, &base(vec![5, 5], vec![1, 1], 4, 4, 1, 1, 1), "1x1 padded"));
    // MobileNet depthwise 3×3, stride 1 and 2, plus 5×5 (generic depthwise path).
    assert!(check_conv(&mut rng, &base(vec![19, 19], vec![3, 3], 16, 16, 16, 1, 1), "dw s1"));
    assert!(check_conv(&mut rng, &base(vec![19, 18], vec![3, 3], 16, 16, 16, 2, 1), "dw s2"));
    assert!(check_conv(&mut rng, &base(vec![12, 11], vec![5, 5], 6, 6, 6, 2, 2), "dw 5x5"));
    // im2col in several chunks (64·9 rows × 40 columns per output row).
    assert!(check_conv(&mut rng, &base(vec![40, 40], vec![3, 3], 64, 8, 1, 1, 1), "im2col chunked"));
}

#[test]
fn conv_spec_example() {
    // ONNX Conv example: 5×5 input 0..24, 3×3 ones kernel, with and without padding.
    let x = f32s(&[1, 1, 5, 5], &(0..25).map(|v| v as f32).collect::<Vec<_>>());
    let w = f32s(&[1, 1, 3, 3], &[1.0; 9]);
    let padded = run("Conv", 11, vec![("pads", ints(&[1, 1, 1, 1]))], &[Some(&x), Some(&w)]);
    #[rustfmt::skip]
    let want = [12., 21., 27., 33., 24., 33., 54., 63., 72., 51., 63., 99., 108., 117., 81.,
        93., 144., 153., 162., 111., 72., 111., 117., 123., 84.];
    assert_close(&padded, &[1, 1, 5, 5], &want, "conv padded");
    // conv_with_strides_and_asymmetric_padding: 7×5 input 0..34, stride 2, pads top/bottom only.
    let x75 = f32s(&[1, 1, 7, 5], &(0..35).map(|v| v as f32).collect::<Vec<_>>());
    let attrs = vec![("strides", ints(&[2, 2])), ("pads", ints(&[1, 0, 1, 0]))];
    let strided = run("Conv", 11, attrs, &[Some(&x75), Some(&w)]);
    let want = [21., 33., 99., 117., 189., 207., 171., 183.];
    assert_close(&strided, &[1, 1, 4, 2], &want, "conv strided, asymmetric pads");
}

#[test]
fn conv_bad_inputs() {
    let x = Rng(3).tensor(&[1, 4, 6, 6]);
    let w = Rng(4).tensor(&[8, 4, 3, 3]);
    let w2 = Rng(5).tensor(&[8, 2, 3, 3]);
    let b = Rng(6).tensor(&[8]);
    let x2d = Rng(7).tensor(&[4, 6]);
    expect_err("Conv", 13, vec![], &[Some(&x2d), Some(&w)], "rank");
    expect_err("Conv", 13, vec![], &[Some(&x), Some(&Rng(8).tensor(&[8, 4, 3]))], "rank");
    expect_err("Conv", 13, vec![], &[Some(&x), Some(&w2)], "channels");
    expect_err("Conv", 13, vec![("group", Attr::Int(3))], &[Some(&x), Some(&w)], "channels");
    expect_err("Conv", 13, vec![("group", Attr::Int(2))], &[Some(&x), Some(&Rng(9).tensor(&[7, 2, 3, 3]))], "multiple");
    expect_err("Conv", 13, vec![("group", Attr::Int(0))], &[Some(&x), Some(&w)], "group");
    expect_err("Conv", 13, vec![], &[Some(&x), Some(&w), Some(&Rng(10).tensor(&[4]))], "bias");
    expect_err("Conv", 13, vec![], &[Some(&x), Some(&Rng(11).tensor(&[2, 4, 7, 7]))], "larger than the padded input");
    expect_err("Conv", 13, vec![("strides", ints(&[0, 1]))], &[Some(&x), Some(&w)], "strides must be positive");
    expect_err("Conv", 13, vec![("dilations", ints(&[1, 0]))], &[Some(&x), Some(&w)], "dilations");
    expect_err("Conv", 13, vec![("pads", Attr::Ints(vec![-1, 0, 0, 0]))], &[Some(&x), Some(&w)], "pads");
    expect_err("Conv", 13, vec![("pads", ints(&[1, 1]))], &[Some(&x), Some(&w)], "pads");
    expect_err("Conv", 13, vec![("kernel_shape", ints(&[5, 5]))], &[Some(&x), Some(&w)], "kernel_shape");
    expect_err("Conv", 13, vec![("auto_pad", Attr::String("SAME".into()))], &[Some(&x), Some(&w)], "auto_pad");
    expect_err("Conv", 13, vec![], &[Some(&x)], "missing");
    let xi = Tensor::i64(vec![1, 4, 6, 6], vec![0; 144]).unwrap();
    expect_err("Conv", 13, vec![], &[Some(&xi), Some(&w), Some(&b)], "float32");
    // Data that does not match its shape is caught, not indexed out of bounds.
    let lying = Tensor { shape: vec![1, 4, 6, 6], data: Data::F32(vec![0.0; 10]) };
    let registry = Registry::new();
    let op = registry.get("Conv").unwrap()(&node("Conv", vec![], 2), &BuildCtx { opset: 13 }).unwrap();
    let err = op.eval(&[Some(&lying), Some(&w)]).unwrap_err();
    assert!(err.to_string().contains("elements"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose

fn ref_conv_transpose(x: &Tensor, w: &Tensor, b: Option<&Tensor>, geom: RefGeom) -> (Vec<usize>, Vec<f32>) {
    let RefGeom { group, strides, dil, pb, out_sp } = geom;
    let (xs, ws) = (&x.shape, &w.shape);
    let (xd, wd) = (x.as_f32().unwrap(), w.as_f32().unwrap());
    let (n, c) = (xs[0], xs[1]);
    let (cg, mg) = (c / group, ws[1]);
    let m = mg * group;
    let mut out_shape = vec![n, m];
    out_shape.extend_from_slice(out_sp);
    let mut out = vec![0.0f64; out_shape.iter().product()];
    let kshape = &ws[2..];
    for (i, &xv) in xd.iter().enumerate() {
        let idx = unravel(i, xs);
        let (ni, ci) = (idx[0], idx[1]);
        let g = ci / cg;
        for mj in 0..mg {
            for k in 0..kshape.iter().product() {
                let kidx = unravel(k, kshape);
                let mut oi = vec![ni, g * mg + mj];
                let mut inside = true;
                for d in 0..kshape.len() {
                    let p = (idx[2 + d] * strides[d] + kidx[d] * dil[d]) as isize - pb[d] as isize;
                    inside &= p >= 0 && p < out_sp[d] as isize;
                    oi.push(p.max(0) as usize);
                }
                if inside {
                    let mut wi = vec![ci, mj];
                    wi.extend_from_slice(&kidx);
                    out[ravel(&oi, &out_shape)] += xv as f64 * wd[ravel(&wi, ws)] as f64;
                }
            }
        }
    }
    if let Some(b) = b {
        let plane: usize = out_sp.iter().product();
        for (i, v) in out.iter_mut().enumerate() {
            *v += b.as_f32().unwrap()[(i / plane) % m] as f64;
        }
    }
    (out_shape, out.into_iter().map(|v| v as f32).collect())
}

#[test]
fn conv_transpose_random_against_reference() {
    let mut rng = Rng(20);
    for case in 0..60 {
        let nd = rng.pick(&[1, 2, 2, 2, 3]);
        let spatial: Vec<usize> = (0..nd).map(|_| rng.int(1, if nd == 3 { 4 } else { 7 })).collect();
        let kernel: Vec<usize> = (0..nd).map(|_| rng.int(1, 4)).collect();
        let group = rng.int(1, 3);
        let (c, mg) = (group * rng.int(1, 3), rng.int(1, 3));
        let strides: Vec<usize> = (0..nd).map(|_| rng.int(1, 3)).collect();
        let dil: Vec<usize> = (0..nd).map(|_| rng.int(1, 2)).collect();
        let out_pad: Vec<usize> = (0..nd).map(|d| rng.int(0, strides[d].max(dil[d]) - 1)).collect();
        let full: Vec<usize> =
            (0..nd).map(|d| strides[d] * (spatial[d] - 1) + out_pad[d] + (kernel[d] - 1) * dil[d] + 1).collect();
        let mut xs = vec![rng.int(1, 2), c];
        xs.extend_from_slice(&spatial);
        let mut ws = vec![c, mg];
        ws.extend_from_slice(&kernel);
        let (x, w, b) = (rng.tensor(&xs), rng.tensor(&ws), rng.tensor(&[mg * group]));
        let mut attrs = vec![
            ("group", Attr::Int(group as i64)),
            ("strides", ints(&strides)),
            ("dilations", ints(&dil)),
            ("output_padding", ints(&out_pad)),
        ];
        let (pb, out_sp): (Vec<usize>, Vec<usize>) = match rng.int(0, 2) {
            0 => {
                // Explicit pads, kept small enough to leave an output.
                let pads: Vec<usize> = (0..2 * nd).map(|i| rng.int(0, (full[i % nd] - 1) / 2)).collect();
                attrs.push(("pads", ints(&pads)));
                (pads[..nd].to_vec(), (0..nd).map(|d| full[d] - pads[d] - pads[nd + d]).collect())
            }
            1 => {
                // output_shape: pads derived from it (extra at the start unless SAME_UPPER).
                let target: Vec<usize> = full.iter().map(|&f| rng.int(f.div_ceil(2), f)).collect();
                let upper = rng.int(0, 1) == 1;
                attrs.push(("output_shape", ints(&target)));
                if upper {
                    attrs.push(("auto_pad", Attr::String("SAME_UPPER".into())));
                }
                let pb = (0..nd)
                    .map(|d| {
                        let total = full[d] - target[d];
                        if upper {
                            total / 2
                        } else {
                            total - total / 2
                        }
                    })
                    .collect();
                (pb, target)
            }
            _ => (vec![0; nd], full.clone()),
        };
        let bias = rng.int(0, 1) == 1;
        let got = run("ConvTranspose", 13, attrs, &[Some(&x), Some(&w), bias.then_some(&b)]);
        let (shape, want) = ref_conv_transpose(
            &x,
            &w,
            bias.then_some(&b),
            RefGeom { group, strides: &strides, dil: &dil, pb: &pb, out_sp: &out_sp },
        );
        assert_close(&got, &shape, &want, &format!("conv transpose case {case}"));
    }
}

#[test]
fn conv_transpose_spec_example_and_errors() {
    // ONNX ConvTranspose example: 3×3 input 0..8, two 3×3 ones filters → 5×5 per channel.
    let x = f32s(&[1, 1, 3, 3], &(0..9).map(|v| v as f32).collect::<Vec<_>>());
    let w = f32s(&[1, 2, 3, 3], &[1.0; 18]);
    let y = run("ConvTranspose", 11, vec![], &[Some(&x), Some(&w)]);
    #[rustfmt::skip]
    let plane = [0., 1., 3., 3., 2., 3., 8., 15., 12., 7., 9., 21., 36., 27., 15., 9., 20., 33., 24., 13.,
        6., 13., 21., 15., 8.];
    let want: Vec<f32> = plane.iter().chain(&plane).copied().collect();
    assert_close(&y, &[1, 2, 5, 5], &want, "convtranspose example");

    expect_err("ConvTranspose", 13, vec![], &[Some(&x), Some(&f32s(&[2, 1, 3, 3], &[0.0; 18]))], "input channels");
    // An output_shape past the full 5×5 extent (negative total padding) extends the output at
    // the end with zeros, as onnxruntime does (ONNX test_convtranspose_output_shape).
    let y = run("ConvTranspose", 13, vec![("output_shape", ints(&[6, 7]))], &[Some(&x), Some(&w)]);
    let want: Vec<f32> = (0..2 * 6 * 7)
        .map(|i| {
            let (r, c) = (i / 7 % 6, i % 7);
            if r < 5 && c < 5 {
                plane[r * 5 + c]
            } else {
                0.0
            }
        })
        .collect();
    assert_close(&y, &[1, 2, 6, 7], &want, "convtranspose output_shape past the full extent");
    expect_err("ConvTranspose", 13, vec![("output_padding", ints(&[1, 1]))], &[Some(&x), Some(&w)], "output_padding");
    expect_err("ConvTranspose", 13, vec![("pads", ints(&[3, 3, 3, 3]))], &[Some(&x), Some(&w)], "remove the whole");
    expect_err("ConvTranspose", 13, vec![("strides", ints(&[0, 1]))], &[Some(&x), Some(&w)], "strides");
}

// ---------------------------------------------------------------------------------------------
// Pooling

/// Naive pooling: max, or mean with or without the padding in the divisor.
#[allow(clippy::too_many_arguments)]
fn ref_pool(
    x: &Tensor,
    kernel: &[usize],
    strides: &[usize],
    dil: &[usize],
    pb: &[usize],
    pe: &[usize],
    out_sp: &[usize],
    kind: &str,
) -> (Vec<usize>, Vec<f32>) {
    let xs = &x.shape;
    let xd = x.as_f32().unwrap();
    let mut out_shape = xs[..2].to_vec();
    out_shape.extend_from_slice(out_sp);
    let out = (0..out_shape.iter().product())
        .map(|i| {
            let idx = unravel(i, &out_shape);
            let (mut max, mut sum, mut inside, mut with_pad) = (f32::NEG_INFINITY, 0.0f64, 0, 0);
            for k in 0..kernel.iter().product() {
                let kidx = unravel(k, kernel);
                let mut xi = idx[..2].to_vec();
                let (mut ok, mut in_padded) = (true, true);
                for d in 0..kernel.len() {
                    let p = (idx[2 + d] * strides[d] + kidx[d] * dil[d]) as isize - pb[d] as isize;
                    ok &= p >= 0 && p < xs[2 + d] as isize;
                    in_padded &= p < (xs[2 + d] + pe[d]) as isize;
                    xi.push(p.max(0) as usize);
                }
                with_pad += in_padded as usize;
                if ok {
                    let v = xd[ravel(&xi, xs)];
                    max = max.max(v);
                    sum += v as f64;
                    inside += 1;
                }
            }
            match kind {
                "max" => max,
                _ if inside == 0 => 0.0, // every tap in padding (possible with dilation)
                "avg" => (sum / inside as f64) as f32,
                _ => (sum / with_pad as f64) as f32,
            }
        })
        .collect();
    (out_shape, out)
}

#[test]
fn pools_random_against_reference() {
    let mut rng = Rng(30);
    for case in 0..150 {
        let nd = rng.pick(&[1, 2, 2, 2, 3]);
        let spatial: Vec<usize> = (0..nd).map(|_| rng.int(1, if nd == 3 { 6 } else { 12 })).collect();
        let kernel: Vec<usize> = (0..nd).map(|_| rng.int(1, 4)).collect();
        let strides: Vec<usize> = (0..nd).map(|_| rng.int(1, 3)).collect();
        let kind = rng.pick(&["max", "avg", "avg_pad"]);
        let dil: Vec<usize> =
            (0..nd).map(|_| if kind == "max" || rng.int(0, 1) == 0 { rng.int(1, 2) } else { 1 }).collect();
        let effs: Vec<usize> = (0..nd).map(|d| (kernel[d] - 1) * dil[d] + 1).collect();
        let pads: Vec<usize> = (0..2 * nd).map(|i| rng.int(0, effs[i % nd] - 1).min(2)).collect();
        let auto_pad = rng.pick(&["NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]);
        let ceil = rng.int(0, 1) == 1;
        let mut xs = vec![rng.int(1, 2), rng.int(1, 3)];
        xs.extend_from_slice(&spatial);
        let x = rng.tensor(&xs);
        let mut attrs = vec![
            ("kernel_shape", ints(&kernel)),
            ("strides", ints(&strides)),
            ("auto_pad", Attr::String(auto_pad.into())),
            ("ceil_mode", Attr::Int(ceil as i64)),
        ];
        if dil.iter().any(|&d| d > 1) {
            attrs.push(("dilations", ints(&dil)));
        }
        if auto_pad == "NOTSET" {
            attrs.push(("pads", ints(&pads)));
        }
        let op = if kind == "max" { "MaxPool" } else { "AveragePool" };
        if kind == "avg_pad" {
            attrs.push(("count_include_pad", Attr::Int(1)));
        }
        let mut pb = vec![];
        let mut pe = vec![];
        let mut out_sp = vec![];
        let mut valid = true;
        for d in 0..nd {
            let (p0, p1) = (pads[d], pads[nd + d]);
            let padded = if auto_pad == "VALID" { spatial[d] } else { spatial[d] + p0 + p1 };
            if !auto_pad.starts_with("SAME") && padded < effs[d] {
                valid = false;
                break;
            }
            let (a, b, o) = window_dim(spatial[d], effs[d], strides[d], auto_pad, (p0, p1), ceil);
            if a >= effs[d] || b >= effs[d] {
                valid = false; // SAME padding as large as the window
                break;
            }
            pb.push(a);
            pe.push(b);
            out_sp.push(o);
        }
        if !valid {
            assert!(try_run(op, 19, attrs, &[Some(&x)]).is_err(), "case {case} should be rejected");
            continue;
        }
        let got = run(op, 19, attrs, &[Some(&x)]);
        let (shape, want) = ref_pool(&x, &kernel, &strides, &dil, &pb, &pe, &out_sp, kind);
        assert_close(&got, &shape, &want, &format!("{op} case {case} ({kind})"));
    }
}

#[test]
fn maxpool_takes_int8_and_uint8() {
    let x = Tensor::i8(vec![1, 1, 2, 3], vec![-5, 3, -128, 7, 0, 127]).unwrap();
    let y = run("MaxPool", 12, vec![("kernel_shape", ints(&[2, 2]))], &[Some(&x)]);
    assert_eq!(y, Tensor::i8(vec![1, 1, 1, 2], vec![7, 127]).unwrap());
    let x = Tensor::u8(vec![1, 1, 1, 4], vec![9, 255, 0, 4]).unwrap();
    let y = run("MaxPool", 12, vec![("kernel_shape", ints(&[1, 2])), ("strides", ints(&[1, 2]))], &[Some(&x)]);
    assert_eq!(y, Tensor::u8(vec![1, 1, 1, 2], vec![255, 4]).unwrap());
}

#[test]
fn pool_spec_examples() {
    // maxpool_2d_ceil: 4×4 1..16, 3×3 stride 2 with ceil_mode → 2×2.
    let x = range(&[1, 1, 4, 4]);
    let attrs = || vec![("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2])), ("ceil_mode", Attr::Int(1))];
    assert_close(&run("MaxPool", 12, attrs(), &[Some(&x)]), &[1, 1, 2, 2], &[11., 12., 15., 16.], "maxpool ceil");
    // maxpool_2d_same_upper: 5×5 1..25, 3×3 stride 2 → 3×3.
    let x5 = range(&[1, 1, 5, 5]);
    let attrs = vec![
        ("kernel_shape", ints(&[3, 3])),
        ("strides", ints(&[2, 2])),
        ("auto_pad", Attr::String("SAME_UPPER".into())),
    ];
    let y = run("MaxPool", 12, attrs, &[Some(&x5)]);
    assert_close(&y, &[1, 1, 3, 3], &[7., 9., 10., 17., 19., 20., 22., 24., 25.], "maxpool same_upper");
    // maxpool_2d_dilations: 4×4, 2×2 kernel dilation 2 → 2×2.
    let attrs = vec![("kernel_shape", ints(&[2, 2])), ("dilations", ints(&[2, 2]))];
    assert_close(&run("MaxPool", 12, attrs, &[Some(&x)]), &[1, 1, 2, 2], &[11., 12., 15., 16.], "maxpool dilations");
    // averagepool_2d_pads_count_include_pad (5×5 1..25, 3×3, pads 2): corner = 1 / 9.
    let attrs =
        vec![("kernel_shape", ints(&[3, 3])), ("pads", ints(&[2, 2, 2, 2])), ("count_include_pad", Attr::Int(1))];
    let y = run("AveragePool", 11, attrs, &[Some(&x5)]);
    assert_eq!(y.shape, vec![1, 1, 7, 7]);
    assert!((y.as_f32().unwrap()[0] - 1.0 / 9.0).abs() < 1e-6);
    // Global pools.
    let g = run("GlobalAveragePool", 13, vec![], &[Some(&range(&[1, 2, 2, 2]))]);
    assert_close(&g, &[1, 2, 1, 1], &[2.5, 6.5], "global average");
    let g = run("GlobalMaxPool", 13, vec![], &[Some(&range(&[2, 1, 3]))]);
    assert_close(&g, &[2, 1, 1], &[3., 6.], "global max");
}

#[test]
fn pool_bad_inputs() {
    let x = range(&[1, 1, 4, 4]);
    let k = || ("kernel_shape", ints(&[3, 3]));
    let mut with_indices = node("MaxPool", vec![k()], 1);
    with_indices.outputs.push("indices".into());
    let err = Registry::new().get("MaxPool").unwrap()(&with_indices, &BuildCtx { opset: 12 }).unwrap_err();
    assert!(err.to_string().contains("Indices"), "{err}");
    assert_eq!(err.code(), "unsupported-feature");
    expect_err("MaxPool", 12, vec![], &[Some(&x)], "kernel_shape is required");
    expect_err("MaxPool", 12, vec![("kernel_shape", ints(&[5, 5]))], &[Some(&x)], "larger than the padded input");
    expect_err(
        "MaxPool",
        12,
        vec![k(), ("pads", ints(&[3, 0, 0, 0]))],
        &[Some(&x)],
        "smaller than the (dilated) kernel",
    );
    expect_err("MaxPool", 12, vec![k(), ("strides", ints(&[1, 0]))], &[Some(&x)], "strides must be positive");
    expect_err("AveragePool", 12, vec![("kernel_shape", ints(&[3]))], &[Some(&x)], "spatial dims");
    expect_err("AveragePool", 12, vec![k()], &[Some(&range(&[4, 4]))], "rank");
    expect_err("GlobalAveragePool", 12, vec![], &[Some(&range(&[4, 4]))], "rank");
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization, Softmax

#[test]
fn batchnorm_against_reference() {
    let mut rng = Rng(40);
    for shape in [vec![2, 3, 4, 5], vec![1, 4], vec![2, 2, 7], vec![1, 3, 2, 2, 2]] {
        let c = shape[1];
        let x = rng.tensor(&shape);
        let (scale, bias, mean) = (rng.tensor(&[c]), rng.tensor(&[c]), rng.tensor(&[c]));
        let var = f32s(&[c], &(0..c).map(|i| 0.5 + i as f32).collect::<Vec<_>>());
        let eps = 1e-3;
        let y = run(
            "BatchNormalization",
            15,
            vec![("epsilon", Attr::Float(eps))],
            &[Some(&x), Some(&scale), Some(&bias), Some(&mean), Some(&var)],
        );
        let plane: usize = shape[2..].iter().product();
        let p = |t: &Tensor, i: usize| t.as_f32().unwrap()[i];
        let want: Vec<f32> = x
            .as_f32()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = (i / plane) % c;
                (v - p(&mean, ch)) / (p(&var, ch) + eps).sqrt() * p(&scale, ch) + p(&bias, ch)
            })
            .collect();
        assert_close(&y, &shape, &want, "batchnorm");
    }
    let x = rng.tensor(&[1, 3, 2, 2]);
    let p3 = rng.tensor(&[3]);
    let p2 = rng.tensor(&[2]);
    expect_err(
        "BatchNormalization",
        15,
        vec![],
        &[Some(&x), Some(&p3), Some(&p2), Some(&p3), Some(&p3)],
        "B should have shape [3]",
    );
    expect_err("BatchNormalization", 15, vec![("training_mode", Attr::Int(1))], &[Some(&x)], "training_mode");
    expect_err("BatchNormalization", 15, vec![], &[Some(&x), Some(&p3)], "missing");
}

fn ref_softmax(x: &[f32], shape: &[usize], axis: usize, coerce: bool) -> Vec<f32> {
    let outer: usize = shape[..axis].iter().product();
    let (len, inner) =
        if coerce { (shape[axis..].iter().product(), 1) } else { (shape[axis], shape[axis + 1..].iter().product()) };
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            let max = (0..len).map(|j| x[at(j)]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = (0..len).map(|j| ((x[at(j)] - max) as f64).exp()).sum();
            for j in 0..len {
                out[at(j)] = (((x[at(j)] - max) as f64).exp() / sum) as f32;
            }
        }
    }
    out
}

#[test]
fn softmax_both_semantics() {
    let mut rng = Rng(50);
    let shape = [2, 3, 4, 5];
    let x = rng.tensor(&shape);
    let xd = x.as_f32().unwrap().to_vec();
    for axis in -4i64..4 {
        let a = (axis + 4) as usize % 4;
        let y13 = run("Softmax", 13, vec![("axis", Attr::Int(axis))], &[Some(&x)]);
        assert_close(&y13, &shape, &ref_softmax(&xd, &shape, a, false), &format!("softmax-13 axis {axis}"));
        let y11 = run("Softmax", 11, vec![("axis", Attr::Int(axis))], &[Some(&x)]);
        assert_close(&y11, &shape, &ref_softmax(&xd, &shape, a, true), &format!("softmax-11 axis {axis}"));
    }
    // Defaults: −1 from opset 13, 1 (coerced) before.
    assert_close(&run("Softmax", 13, vec![], &[Some(&x)]), &shape, &ref_softmax(&xd, &shape, 3, false), "default 13");
    assert_close(&run("Softmax", 9, vec![], &[Some(&x)]), &shape, &ref_softmax(&xd, &shape, 1, true), "default 9");
    // Large values stay finite (the max is subtracted).
    let big = f32s(&[1, 3], &[1000.0, 1001.0, 1002.0]);
    let y = run("Softmax", 13, vec![], &[Some(&big)]);
    assert_close(&y, &[1, 3], &[0.09003057, 0.24472847, 0.66524096], "softmax large");
    expect_err("Softmax", 13, vec![("axis", Attr::Int(4))], &[Some(&x)], "out of range");
}

// ---------------------------------------------------------------------------------------------
// MatMul, Gemm

fn ref_matmul(a: &Tensor, b: &Tensor) -> (Vec<usize>, Vec<f32>) {
    let (ash, bsh) = (a.shape.clone(), b.shape.clone());
    let a2 = if ash.len() == 1 { vec![1, ash[0]] } else { ash.clone() };
    let b2 = if bsh.len() == 1 { vec![bsh[0], 1] } else { bsh.clone() };
    let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
    let rank = a2.len().max(b2.len());
    let pad = |s: &[usize]| {
        let mut p = vec![1; rank - s.len()];
        p.extend_from_slice(s);
        p
    };
    let (pa, pb) = (pad(&a2), pad(&b2));
    let batch: Vec<usize> = (0..rank - 2).map(|d| pa[d].max(pb[d])).collect();
    let mut out = vec![];
    for bi in 0..batch.iter().product() {
        let idx = unravel(bi, &batch);
        let ia: Vec<usize> = idx.iter().zip(&pa).map(|(&i, &d)| if d == 1 { 0 } else { i }).collect();
        let ib: Vec<usize> = idx.iter().zip(&pb).map(|(&i, &d)| if d == 1 { 0 } else { i }).collect();
        let (oa, ob) = (ravel(&ia, &pa[..rank - 2]) * m * k, ravel(&ib, &pb[..rank - 2]) * k * n);
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a.as_f32().unwrap()[oa + i * k + p] as f64 * b.as_f32().unwrap()[ob + p * n + j] as f64)
                    .sum();
                out.push(s as f32);
            }
        }
    }
    let mut shape = batch;
    if ash.len() > 1 {
        shape.push(m);
    }
    if bsh.len() > 1 {
        shape.push(n);
    }
    (shape, out)
}

#[test]
fn matmul_broadcasting_against_reference() {
    let mut rng = Rng(60);
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[4, 5]),
        (&[4], &[4, 5]),
        (&[3, 4], &[4]),
        (&[4], &[4]),
        (&[2, 3, 4], &[4, 5]),
        (&[2, 3, 4], &[2, 4, 5]),
        (&[2, 1, 3, 4], &[5, 4, 7]),
        (&[1, 3, 4], &[6, 4, 2]),
        (&[7], &[3, 7, 2]),
        (&[2, 5, 9], &[9]),
        (&[37, 70], &[70, 33]),
        (&[3, 0], &[0, 4]),
        (&[0, 3], &[3, 4]),
    ];
    for (sa, sb) in cases {
        let (a, b) = (rng.tensor(sa), rng.tensor(sb));
        let y = run("MatMul", 13, vec![], &[Some(&a), Some(&b)]);
        let (shape, want) = ref_matmul(&a, &b);
        assert_close(&y, &shape, &want, &format!("matmul {sa:?} × {sb:?}"));
    }
    let t = |s: &[usize]| rng_tensor(s);
    expect_err("MatMul", 13, vec![], &[Some(&t(&[3, 4])), Some(&t(&[5, 2]))], "inner dimensions");
    expect_err("MatMul", 13, vec![], &[Some(&t(&[2, 3, 4])), Some(&t(&[3, 4, 2]))], "broadcast");
    expect_err("MatMul", 13, vec![], &[Some(&Tensor::scalar_f32(1.0)), Some(&t(&[1]))], "rank");
}

fn rng_tensor(shape: &[usize]) -> Tensor {
    Rng(shape.iter().sum::<usize>() as u64 + 99).tensor(shape)
}

#[test]
fn gemm_against_reference() {
    let mut rng = Rng(70);
    for case in 0..40 {
        let (m, k, n) = (rng.int(1, 20), rng.int(1, 20), rng.int(1, 20));
        let (ta, tb) = (rng.int(0, 1) == 1, rng.int(0, 1) == 1);
        let (alpha, beta) = (rng.pick(&[1.0, 0.5, -2.0]), rng.pick(&[1.0, 0.0, 0.25]));
        let a = rng.tensor(&if ta { [k, m] } else { [m, k] });
        let b = rng.tensor(&if tb { [n, k] } else { [k, n] });
        let c_shape: Vec<usize> = rng.pick(&[&[][..], &[1][..], &[0][..], &[1, 1][..], &[2][..], &[3][..]]).to_vec();
        let c_shape: Vec<usize> = match c_shape.as_slice() {
            [] => vec![],
            [1] => vec![n],
            [0] => vec![m, n],
            [1, 1] => vec![1, 1],
            [2] => vec![m, 1],
            _ => vec![1, n],
        };
        let with_c = rng.int(0, 3) > 0;
        let c = rng.tensor(&c_shape);
        let ad = a.as_f32().unwrap();
        let bd = b.as_f32().unwrap();
        let cd = c.as_f32().unwrap();
        let mut want = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f32 = (0..k)
                    .map(|p| {
                        let av = if ta { ad[p * m + i] } else { ad[i * k + p] };
                        let bv = if tb { bd[j * k + p] } else { bd[p * n + j] };
                        av * bv
                    })
                    .sum();
                let cv = if !with_c {
                    0.0
                } else {
                    let ci = match c_shape.as_slice() {
                        [] => 0,
                        [_] => j,
                        [1, 1] => 0,
                        [_, 1] => i,
                        [1, _] => j,
                        _ => i * n + j,
                    };
                    cd[ci]
                };
                want[i * n + j] = alpha * s + beta * cv;
            }
        }
        let attrs = vec![
            ("alpha", Attr::Float(alpha)),
            ("beta", Attr::Float(beta)),
            ("transA", Attr::Int(ta as i64)),
            ("transB", Attr::Int(tb as i64)),
        ];
        let y = run("Gemm", 13, attrs, &[Some(&a), Some(&b), with_c.then_some(&c)]);
        assert_close(&y, &[m, n], &want, &format!("gemm case {case}"));
    }
    let (a, b) = (rng.tensor(&[3, 4]), rng.tensor(&[4, 5]));
    expect_err("Gemm", 13, vec![], &[Some(&a), Some(&a)], "inner dimensions");
    expect_err("Gemm", 13, vec![], &[Some(&rng.tensor(&[2, 3, 4])), Some(&b)], "2-D");
    expect_err("Gemm", 13, vec![], &[Some(&a), Some(&b), Some(&rng.tensor(&[2, 5]))], "broadcast");
}

// ---------------------------------------------------------------------------------------------
// Pad

fn ref_pad(x: &Tensor, pads: &[i64], mode: &str, value: f32) -> (Vec<usize>, Vec<f32>) {
    let r = x.shape.len();
    let out_shape: Vec<usize> = (0..r).map(|d| (x.shape[d] as i64 + pads[d] + pads[r + d]) as usize).collect();
    let xd = x.as_f32().unwrap();
    let out = (0..out_shape.iter().product())
        .map(|i| {
            let idx = unravel(i, &out_shape);
            let mut src = vec![];
            for d in 0..r {
                let n = x.shape[d] as i64;
                let mut p = idx[d] as i64 - pads[d];
                if !(0..n).contains(&p) {
                    match mode {
                        "constant" => return value,
                        "edge" => p = p.clamp(0, n - 1),
                        "wrap" => p = p.rem_euclid(n),
                        _ => {
                            // Mirror step by step.
                            while !(0..n).contains(&p) {
                                if n == 1 {
                                    p = 0;
                                } else if p < 0 {
                                    p = -p;
                                } else {
                                    p = 2 * (n - 1) - p;
                                }
                            }
                        }
                    }
                }
                src.push(p as usize);
            }
            xd[ravel(&src, &x.shape)]
        })
        .collect();
    (out_shape, out)
}

#[test]
fn pad_random_against_reference() {
    let mut rng = Rng(80);
    for case in 0..80 {
        let rank = rng.int(1, 4);
        let shape: Vec<usize> = (0..rank).map(|_| rng.int(1, 5)).collect();
        let mode = rng.pick(&["constant", "reflect", "edge", "wrap"]);
        let pads: Vec<i64> = (0..2 * rank)
            .map(|i| {
                let n = shape[i % rank] as i64;
                match mode {
                    // Crop at most half an axis from each side.
                    "constant" => rng.int(0, 5) as i64 - n / 2,
                    "reflect" => rng.int(0, (n - 1).max(0) as usize) as i64,
                    _ => rng.int(0, 4) as i64,
                }
            })
            .collect();
        let x = rng.tensor(&shape);
        let value = rng.float();
        let (want_shape, want) = ref_pad(&x, &pads, mode, value);
        let mode_attr = || ("mode", Attr::String(mode.into()));
        let pads_t = Tensor::vec_i64(pads.clone());
        let v = Tensor::scalar_f32(value);
        let y = run("Pad", 19, vec![mode_attr()], &[Some(&x), Some(&pads_t), Some(&v)]);
        assert_close(&y, &want_shape, &want, &format!("pad case {case} ({mode}, {pads:?})"));
        if mode != "wrap" {
            let y = run(
                "Pad",
                2,
                vec![mode_attr(), ("pads", Attr::Ints(pads.clone())), ("value", Attr::Float(value))],
                &[Some(&x)],
            );
            assert_close(&y, &want_shape, &want, &format!("pad-2 case {case}"));
        }
    }
}

#[test]
fn pad_spec_examples_and_errors() {
    let x = f32s(&[3, 2], &[1.0, 1.2, 2.3, 3.4, 4.5, 5.7]);
    let pads = Tensor::vec_i64(vec![0, 2, 0, 0]);
    let reflect = run("Pad", 11, vec![("mode", Attr::String("reflect".into()))], &[Some(&x), Some(&pads)]);
    assert_close(&reflect, &[3, 4], &[1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7], "pad reflect");
    let edge = run("Pad", 11, vec![("mode", Attr::String("edge".into()))], &[Some(&x), Some(&pads)]);
    assert_close(&edge, &[3, 4], &[1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7], "pad edge");
    let constant = run("Pad", 11, vec![], &[Some(&x), Some(&pads)]);
    assert_close(&constant, &[3, 4], &[0., 0., 1.0, 1.2, 0., 0., 2.3, 3.4, 0., 0., 4.5, 5.7], "pad constant");
    // Opset 18 axes; int64 data with a constant.
    let axes = Tensor::vec_i64(vec![-1]);
    let xi = Tensor::i64(vec![2, 2], vec![1, 2, 3, 4]).unwrap();
    let vi = Tensor::i64(vec![], vec![9]).unwrap();
    let y = run("Pad", 18, vec![], &[Some(&xi), Some(&Tensor::vec_i64(vec![1, 0])), Some(&vi), Some(&axes)]);
    assert_eq!(y.shape, vec![2, 3]);
    assert_eq!(y.as_i64().unwrap(), &[9, 1, 2, 9, 3, 4]);
    // Omitted constant_value (empty name) means zero.
    let y = run("Pad", 18, vec![], &[Some(&x), Some(&pads), None, None]);
    assert_close(&y, &[3, 4], constant.as_f32().unwrap(), "pad omitted value");

    expect_err("Pad", 11, vec![], &[Some(&x), Some(&Tensor::vec_i64(vec![0, 0, -4, 0]))], "negative size");
    expect_err("Pad", 11, vec![], &[Some(&x), Some(&Tensor::vec_i64(vec![1, 1]))], "4 values");
    expect_err("Pad", 11, vec![("mode", Attr::String("mirror".into()))], &[Some(&x), Some(&pads)], "mode");
    let empty = f32s(&[0, 2], &[]);
    expect_err(
        "Pad",
        11,
        vec![("mode", Attr::String("edge".into()))],
        &[Some(&empty), Some(&Tensor::vec_i64(vec![1, 0, 1, 0]))],
        "empty",
    );
    expect_err(
        "Pad",
        11,
        vec![],
        &[Some(&x), Some(&pads), Some(&Tensor::i64(vec![], vec![1]).unwrap())],
        "constant_value",
    );
    expect_err("Pad", 9, vec![], &[Some(&x)], "pads attribute is required");
    // A non-constant pads input cannot be planned.
    let op = Registry::new().get("Pad").unwrap()(&node("Pad", vec![], 2), &BuildCtx { opset: 13 }).unwrap();
    let facts = [Fact::new(DType::F32, vec![3, 2]), Fact::new(DType::I64, vec![4])];
    let err = op.infer(&[Some(&facts[0]), Some(&facts[1])]).unwrap_err();
    assert!(err.to_string().contains("constant"), "{err}");
    assert_eq!(err.code(), "unsupported-feature");
}

// ---------------------------------------------------------------------------------------------
// Resize / Upsample

/// Input coordinate of output index `x` (ONNX Resize's coordinate_transformation_mode).
fn ref_coord(mode: &str, x: usize, n_in: usize, n_out: usize, scale: f32) -> f32 {
    let (x, ni, no) = (x as f32, n_in as f32, n_out as f32);
    match mode {
        "half_pixel" => (x + 0.5) / scale - 0.5,
        "pytorch_half_pixel" => {
            if n_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        "align_corners" => {
            if n_out == 1 {
                0.0
            } else {
                x * (ni - 1.0) / (no - 1.0)
            }
        }
        "asymmetric" => x / scale,
        "tf_half_pixel_for_nn" => (x + 0.5) / scale,
        _ => unreachable!(),
    }
}

fn ref_resize(x: &Tensor, out_shape: &[usize], scales: &[f32], mode: &str, coord: &str, nearest: &str) -> Vec<f32> {
    let r = x.shape.len();
    let xd = x.as_f32().unwrap();
    (0..out_shape.iter().product())
        .map(|i| {
            let idx = unravel(i, out_shape);
            // Per axis: list of (index, weight).
            let per_axis: Vec<Vec<(usize, f32)>> = (0..r)
                .map(|d| {
                    let n = x.shape[d];
                    let c = ref_coord(coord, idx[d], n, out_shape[d], scales[d]);
                    if mode == "nearest" {
                        let j = match nearest {
                            "round_prefer_floor" => {
                                if c.fract() == 0.5 {
                                    c.floor()
                                } else {
                                    c.round()
                                }
                            }
                            "round_prefer_ceil" => {
                                if c.fract() == 0.5 {
                                    c.ceil()
                                } else {
                                    c.round()
                                }
                            }
                            "floor" => c.floor(),
                            _ => c.ceil(),
                        };
                        vec![(j.clamp(0.0, (n - 1) as f32) as usize, 1.0)]
                    } else {
                        let c = c.clamp(0.0, (n - 1) as f32);
                        let lo = c.floor() as usize;
                        let hi = (lo + 1).min(n - 1);
                        vec![(lo, 1.0 - (c - lo as f32)), (hi, c - lo as f32)]
                    }
                })
                .collect();
            // Sum over all corner combinations.
            let mut total = 0.0f64;
            let corners: usize = per_axis.iter().map(Vec::len).product();
            for k in 0..corners {
                let pick = unravel(k, &per_axis.iter().map(Vec::len).collect::<Vec<_>>());
                let src: Vec<usize> = (0..r).map(|d| per_axis[d][pick[d]].0).collect();
                let w: f64 = (0..r).map(|d| per_axis[d][pick[d]].1 as f64).product();
                total += w * xd[ravel(&src, &x.shape)] as f64;
            }
            total as f32
        })
        .collect()
}

#[test]
fn resize_random_against_reference() {
    let mut rng = Rng(90);
    for case in 0..100 {
        let rank = rng.pick(&[2, 3, 4, 4, 4]);
        let shape: Vec<usize> =
            (0..rank).map(|d| if rank == 4 && d < 2 { rng.int(1, 2) } else { rng.int(1, 6) }).collect();
        let x = rng.tensor(&shape);
        let mode = rng.pick(&["nearest", "linear"]);
        let coord =
            rng.pick(&["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]);
        let nearest = rng.pick(&["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]);
        let attrs = || {
            vec![
                ("mode", Attr::String(mode.into())),
                ("coordinate_transformation_mode", Attr::String(coord.into())),
                ("nearest_mode", Attr::String(nearest.into())),
            ]
        };
        let use_sizes = rng.int(0, 1) == 1;
        let (out_shape, scales): (Vec<usize>, Vec<f32>) = if use_sizes {
            let out: Vec<usize> = shape.iter().map(|&n| if rng.int(0, 2) == 0 { n } else { rng.int(1, 9) }).collect();
            let s = out.iter().zip(&shape).map(|(&o, &n)| o as f32 / n as f32).collect();
            (out, s)
        } else {
            let s: Vec<f32> = shape.iter().map(|_| rng.pick(&[1.0, 1.0, 2.0, 3.0, 0.5, 0.6, 1.5, 2.5])).collect();
            let out = shape.iter().zip(&s).map(|(&n, &s)| (n as f32 * s).floor() as usize).collect();
            (out, s)
        };
        if out_shape.contains(&0) {
            continue;
        }
        let want = ref_resize(&x, &out_shape, &scales, mode, coord, nearest);
        let scales_t = f32s(&[rank], &scales);
        let sizes_t = Tensor::vec_i64(out_shape.iter().map(|&v| v as i64).collect());
        let roi = f32s(&[0], &[]);
        let inputs13: [Option<&Tensor>; 4] =
            if use_sizes { [Some(&x), None, None, Some(&sizes_t)] } else { [Some(&x), None, Some(&scales_t), None] };
        let y = run("Resize", 13, attrs(), &inputs13);
        assert_close(&y, &out_shape, &want, &format!("resize-13 case {case} ({mode}, {coord}, {nearest})"));
        // Opset 11: roi and scales always present (empty when unused).
        let empty = f32s(&[0], &[]);
        let inputs11: [Option<&Tensor>; 4] = if use_sizes {
            [Some(&x), Some(&roi), Some(&empty), Some(&sizes_t)]
        } else {
            [Some(&x), Some(&roi), Some(&scales_t), None]
        };
        let y = run("Resize", 11, attrs(), &inputs11);
        assert_close(&y, &out_shape, &want, &format!("resize-11 case {case}"));
    }
}

#[test]
fn resize_spec_examples() {
    let x22 = range(&[1, 1, 2, 2]);
    let x24 = range(&[1, 1, 2, 4]);
    let x44 = range(&[1, 1, 4, 4]);
    let s = |v: &[f32]| f32s(&[v.len()], v);
    let sz = |v: &[i64]| Tensor::vec_i64(v.to_vec());
    let attrs = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, Attr)> {
        pairs.iter().map(|(k, v)| (*k, Attr::String(v.to_string()))).collect()
    };
    // Resize-13 by scales or by sizes.
    let scaled = |x: &Tensor, scales: &[f32], a: &[(&'static str, &str)]| {
        run("Resize", 13, attrs(a), &[Some(x), None, Some(&s(scales)), None])
    };
    let sized = |x: &Tensor, sizes: &[i64], a: &[(&'static str, &str)]| {
        run("Resize", 13, attrs(a), &[Some(x), None, None, Some(&sz(sizes))])
    };

    // resize_upsample_scales_nearest
    let y = scaled(&x22, &[1., 1., 2., 3.], &[("mode", "nearest")]);
    #[rustfmt::skip]
    let want = [1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2., 3., 3., 3., 4., 4., 4., 3., 3., 3., 4., 4., 4.];
    assert_close(&y, &[1, 1, 4, 6], &want, "upsample_scales_nearest");
    // Upsample-9 on the same input gives the same.
    let y9 =
        run("Upsample", 9, vec![("mode", Attr::String("nearest".into()))], &[Some(&x22), Some(&s(&[1., 1., 2., 3.]))]);
    assert_close(&y9, &[1, 1, 4, 6], &want, "Upsample-9 nearest");
    // resize_downsample_scales_nearest
    let y = scaled(&x24, &[1., 1., 0.6, 0.6], &[("mode", "nearest")]);
    assert_close(&y, &[1, 1, 1, 2], &[1., 3.], "downsample_scales_nearest");
    // resize_upsample_scales_linear
    let y = scaled(&x22, &[1., 1., 2., 2.], &[("mode", "linear")]);
    #[rustfmt::skip]
    let want = [1., 1.25, 1.75, 2., 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3., 3.25, 3.75, 4.];
    assert_close(&y, &[1, 1, 4, 4], &want, "upsample_scales_linear");
    // resize_upsample_scales_linear_align_corners
    let y = scaled(&x22, &[1., 1., 2., 2.], &[("mode", "linear"), ("coordinate_transformation_mode", "align_corners")]);
    #[rustfmt::skip]
    let want = [1., 1.3333333, 1.6666667, 2., 1.6666666, 2., 2.3333333, 2.6666667, 2.3333333, 2.6666665,
        3., 3.3333335, 3., 3.3333333, 3.6666667, 4.];
    assert_close(&y, &[1, 1, 4, 4], &want, "upsample_scales_linear_align_corners");
    // resize_downsample_scales_linear
    let y = scaled(&x24, &[1., 1., 0.6, 0.6], &[("mode", "linear")]);
    assert_close(&y, &[1, 1, 1, 2], &[2.6666665, 4.333_333], "downsample_scales_linear");
    // resize_downsample_sizes_nearest
    let y = sized(&x24, &[1, 1, 1, 3], &[("mode", "nearest")]);
    assert_close(&y, &[1, 1, 1, 3], &[1., 2., 4.], "downsample_sizes_nearest");
    // x44 to 8×8 nearest with a coordinate and a nearest mode: output row (and column) i reads
    // source row (column) rows[i].
    let nearest_8x8 = |coord: &str, nearest: &str, rows: [usize; 8], what: &str| {
        let a = [("mode", "nearest"), ("coordinate_transformation_mode", coord), ("nearest_mode", nearest)];
        let y = sized(&x44, &[1, 1, 8, 8], &a);
        let want: Vec<f32> = rows.iter().flat_map(|&r| rows.iter().map(move |&c| (r * 4 + c + 1) as f32)).collect();
        assert_close(&y, &[1, 1, 8, 8], &want, what);
    };
    nearest_8x8("align_corners", "floor", [0, 0, 0, 1, 1, 2, 2, 3], "upsample_sizes_nearest_floor_align_corners");
    nearest_8x8(
        "asymmetric",
        "round_prefer_ceil",
        [0, 1, 1, 2, 2, 3, 3, 3],
        "upsample_sizes_nearest_round_prefer_ceil_asymmetric",
    );
    // resize_tf_crop_and_resize: x44 linearly resized within `roi` to `sizes`, with attributes
    // beyond mode and coordinates in `more`.
    let crop = |opset: i64, roi: &[f32], sizes: &[i64], more: Option<(&'static str, Attr)>| {
        let mut a = attrs(&[("mode", "linear"), ("coordinate_transformation_mode", "tf_crop_and_resize")]);
        a.extend(more);
        run("Resize", opset, a, &[Some(&x44), Some(&s(roi)), None, Some(&sz(sizes))])
    };
    let y = crop(13, &[0., 0., 0.4, 0.6, 1., 1., 0.6, 0.8], &[1, 1, 3, 3], None);
    let want_crop = [7.6, 7.9, 8.2, 8.8, 9.1, 9.4, 10.0, 10.3, 10.6];
    assert_close(&y, &[1, 1, 3, 3], &want_crop, "tf_crop_and_resize");
    // ... with extrapolation outside the image.
    let extrapolate = Some(("extrapolation_value", Attr::Float(10.0)));
    let y = crop(13, &[0., 0., 0.4, 0.6, 1., 1., 1.2, 1.7], &[1, 1, 3, 3], extrapolate);
    #[rustfmt::skip]
    let want = [7.6000004, 10., 10., 12.400001, 10., 10., 10., 10., 10.];
    assert_close(&y, &[1, 1, 3, 3], &want, "tf_crop_and_resize_extrapolation");
    // Opset 18: the same crop with roi and sizes given for the spatial axes only.
    let y = crop(18, &[0.4, 0.6, 0.6, 0.8], &[3, 3], Some(("axes", Attr::Ints(vec![2, 3]))));
    assert_close(&y, &[1, 1, 3, 3], &want_crop, "tf_crop_and_resize axes");
    // Opset 10: scales as input 1, asymmetric coordinates.
    let y =
        run("Resize", 10, vec![("mode", Attr::String("linear".into()))], &[Some(&x22), Some(&s(&[1., 1., 2., 2.]))]);
    #[rustfmt::skip]
    let want = [1., 1.5, 2., 2., 2., 2.5, 3., 3., 3., 3.5, 4., 4., 3., 3.5, 4., 4.];
    assert_close(&y, &[1, 1, 4, 4], &want, "resize-10 linear");
    // resize_upsample_scales_linear_half_pixel_symmetric (opset 19)
    let y = scaled(
        &x22,
        &[1., 1., 2.3, 2.94],
        &[("mode", "linear"), ("coordinate_transformation_mode", "half_pixel_symmetric")],
    );
    #[rustfmt::skip]
    let want_sym = [1., 1.159_864, 1.5, 1.840_136, 2., 1.565_217_4, 1.725_081_3, 2.065_217_3, 2.405_353_5, 2.565_217_3,
        2.434_782_6, 2.594_646_5, 2.934_782_6, 3.274_918_6, 3.434_782_5, 3., 3.159_864, 3.5, 3.840_136, 4.];
    assert_close(&y, &[1, 1, 4, 5], &want_sym, "upsample_scales_linear_half_pixel_symmetric");
    // Upsample-9 linear matches Resize-10 linear; the opset-7 `scales` attribute works too.
    let up =
        run("Upsample", 9, vec![("mode", Attr::String("linear".into()))], &[Some(&x22), Some(&s(&[1., 1., 2., 2.]))]);
    assert_close(&up, &[1, 1, 4, 4], &want, "Upsample-9 linear");
    let up7 = run(
        "Upsample",
        9,
        vec![("mode", Attr::String("linear".into())), ("scales", Attr::Floats(vec![1., 1., 2., 2.]))],
        &[Some(&x22)],
    );
    assert_close(&up7, &[1, 1, 4, 4], &want, "Upsample scales attribute");
    // Opset 10 nearest when shrinking rounds the source coordinate up.
    let y = run("Resize", 10, vec![], &[Some(&range(&[1, 4])), Some(&s(&[1., 0.6]))]);
    assert_close(&y, &[1, 2], &[1., 3.], "resize-10 nearest downsample");
    // Opset 18: axes and keep_aspect_ratio_policy.
    let mut a = attrs(&[("mode", "nearest"), ("keep_aspect_ratio_policy", "not_larger")]);
    a.push(("axes", Attr::Ints(vec![2, 3])));
    let y = run("Resize", 18, a, &[Some(&x44), None, None, Some(&sz(&[7, 8]))]);
    assert_eq!(y.shape, vec![1, 1, 7, 7]);
}

#[test]
fn resize_bad_inputs() {
    let x = range(&[1, 1, 2, 2]);
    let s = f32s(&[4], &[1., 1., 2., 2.]);
    let sizes = Tensor::vec_i64(vec![1, 1, 4, 4]);
    let m = |v: &str| vec![("mode", Attr::String(v.into()))];
    expect_err("Resize", 13, m("nearest"), &[Some(&x), None, Some(&s), Some(&sizes)], "only one");
    expect_err("Resize", 13, m("nearest"), &[Some(&x), None, None, None], "must be given");
    let antialias = vec![("mode", Attr::String("cubic".into())), ("antialias", Attr::Int(1))];
    expect_err("Resize", 13, antialias, &[Some(&x), None, Some(&f32s(&[4], &[1., 1., 0., 2.]))], "positive");
    expect_err("Resize", 13, m("nearest"), &[Some(&x), None, Some(&f32s(&[2], &[2., 2.]))], "4 values");
    expect_err("Resize", 13, m("nearest"), &[Some(&x), None, Some(&f32s(&[4], &[1., 1., -2., 2.]))], "positive");
    expect_err(
        "Resize",
        13,
        m("nearest"),
        &[Some(&x), None, None, Some(&Tensor::vec_i64(vec![1, 1, -4, 4]))],
        "non-negative",
    );
    let tf = vec![
        ("mode", Attr::String("linear".into())),
        ("coordinate_transformation_mode", Attr::String("tf_crop_and_resize".into())),
    ];
    expect_err("Resize", 13, tf, &[Some(&x), None, None, Some(&sizes)], "roi");
    // Non-constant sizes cannot be planned.
    let op = Registry::new().get("Resize").unwrap()(&node("Resize", vec![], 4), &BuildCtx { opset: 13 }).unwrap();
    let facts = [Fact::new(DType::F32, vec![1, 1, 2, 2]), Fact::new(DType::I64, vec![4])];
    let err = op.infer(&[Some(&facts[0]), None, None, Some(&facts[1])]).unwrap_err();
    assert!(err.to_string().contains("constant"), "{err}");
    assert_eq!(err.code(), "unsupported-feature");
}

// ---------------------------------------------------------------------------------------------
// Attention and the other ops of opset-23 transformer exports (their numbers: the ONNX backend
// cases in tests/conformance; here, bad input and the 3-D form's equivalence)

/// The 3-D form `[B, S, H·D]` with head counts is the 4-D form `[B, H, S, D]` with its heads
/// split out, grouped-query heads included.
#[test]
fn attention_3d_is_4d_with_heads_split() {
    let (b, hq, hkv, s, t, d) = (2usize, 4usize, 2usize, 3usize, 5usize, 4usize);
    let seq = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin() * 2.0).collect::<Vec<f32>>();
    let q4 = f32s(&[b, hq, s, d], &seq(b * hq * s * d, 0.37));
    let k4 = f32s(&[b, hkv, t, d], &seq(b * hkv * t * d, 0.53));
    let v4 = f32s(&[b, hkv, t, d], &seq(b * hkv * t * d, 0.71));
    // [B, H, L, E] → [B, L, H·E]
    let to3 = |x: &Tensor, h: usize, l: usize| {
        let v = x.as_f32().unwrap();
        let mut out = vec![0f32; v.len()];
        for bi in 0..b {
            for hi in 0..h {
                for li in 0..l {
                    for e in 0..d {
                        out[((bi * l + li) * h + hi) * d + e] = v[((bi * h + hi) * l + li) * d + e];
                    }
                }
            }
        }
        f32s(&[b, l, h * d], &out)
    };
    let causal = || vec![("is_causal", Attr::Int(1))];
    let y4 = run("Attention", 23, causal(), &[Some(&q4), Some(&k4), Some(&v4)]);
    let heads = vec![("is_causal", Attr::Int(1)), ("q_num_heads", Attr::Int(4)), ("kv_num_heads", Attr::Int(2))];
    let (q3, k3, v3) = (to3(&q4, hq, s), to3(&k4, hkv, t), to3(&v4, hkv, t));
    let y3 = run("Attention", 23, heads, &[Some(&q3), Some(&k3), Some(&v3)]);
    assert_eq!(y3.as_f32().unwrap(), to3(&y4, hq, s).as_f32().unwrap());
    // Causal: query 0 sees key 0 only, so its output is V's first row of its key/value head.
    let y = y4.as_f32().unwrap();
    let v = v4.as_f32().unwrap();
    assert_eq!(&y[..d], &v[..d]);
    assert_eq!(&y[s * d..s * d + d], &v[..d], "query head 1 reads key/value head 0");
    assert_eq!(&y[2 * s * d..2 * s * d + d], &v[t * d..t * d + d], "query head 2 reads key/value head 1");
}

#[test]
fn attention_and_transformer_ops_bad_inputs() {
    let t = |shape: &[usize]| f32s(shape, &vec![0.5; shape.iter().product()]);
    let (q, k, v) = (t(&[1, 2, 3, 4]), t(&[1, 2, 5, 4]), t(&[1, 2, 5, 4]));
    fn a<'a>(x: &[(&'a str, i64)]) -> Vec<(&'a str, Attr)> {
        x.iter().map(|&(n, v)| (n, Attr::Int(v))).collect()
    }
    expect_err(
        "Attention",
        23,
        vec![],
        &[Some(&t(&[1, 3, 8])), Some(&t(&[1, 5, 8])), Some(&t(&[1, 5, 8]))],
        "need q_num_heads",
    );
    let (q3, k3) = (t(&[1, 3, 8]), t(&[1, 5, 8]));
    expect_err(
        "Attention",
        23,
        a(&[("q_num_heads", 3), ("kv_num_heads", 2)]),
        &[Some(&q3), Some(&k3), Some(&k3)],
        "do not divide",
    );
    expect_err("Attention", 23, vec![], &[Some(&t(&[1, 3, 3, 4])), Some(&k), Some(&v)], "cannot share");
    expect_err(
        "Attention",
        23,
        vec![],
        &[Some(&t(&[3, 4])), Some(&t(&[5, 4])), Some(&t(&[5, 4]))],
        "not an attention's shapes",
    );
    expect_err("Attention", 23, vec![], &[Some(&q), Some(&t(&[1, 2, 5, 3])), Some(&v)], "not an attention's shapes");
    expect_err(
        "Attention",
        23,
        a(&[("qk_matmul_output_mode", 5)]),
        &[Some(&q), Some(&k), Some(&v)],
        "qk_matmul_output_mode 5",
    );
    expect_err("Attention", 23, vec![], &[Some(&q), Some(&k), Some(&v), Some(&t(&[2, 5]))], "does not broadcast");
    expect_err("Attention", 23, vec![], &[Some(&q), Some(&k), Some(&v), Some(&t(&[3, 6]))], "does not broadcast");
    let int_mask = Tensor { shape: vec![3, 5], data: Data::I64(vec![0; 15]) };
    expect_err("Attention", 23, vec![], &[Some(&q), Some(&k), Some(&v), Some(&int_mask)], "bool or float32");
    expect_err("Attention", 23, vec![], &[Some(&q), Some(&k), Some(&v), None, Some(&t(&[1, 2, 2, 4]))], "go together");
    expect_err(
        "Attention",
        23,
        vec![],
        &[Some(&q), Some(&k), Some(&v), None, Some(&t(&[1, 3, 2, 4])), Some(&t(&[1, 3, 2, 4]))],
        "past_key",
    );
    // A mask with fewer columns than keys is padded with masked keys: a 1-column mask lets
    // every query see key 0 only.
    let one = Tensor { shape: vec![3, 1], data: Data::Bool(vec![true; 3]) };
    let vs = f32s(&[1, 2, 5, 4], &(0..40).map(|i| i as f32).collect::<Vec<_>>());
    let y = run("Attention", 23, vec![], &[Some(&q), Some(&k), Some(&vs), Some(&one)]);
    assert_eq!(&y.as_f32().unwrap()[..4], &[0.0, 1.0, 2.0, 3.0]);

    expect_err("Trilu", 14, vec![], &[Some(&t(&[4]))], "rank 2 or more");
    let ks = Tensor { shape: vec![2], data: Data::I64(vec![1, 2]) };
    expect_err("Trilu", 14, vec![], &[Some(&t(&[2, 2])), Some(&ks)], "one value");
    let ints = Tensor { shape: vec![2], data: Data::I64(vec![1, 2]) };
    expect_err("IsNaN", 20, vec![], &[Some(&ints)], "float");
    expect_err("IsInf", 20, vec![], &[Some(&ints)], "float");
    expect_err("Mean", 13, vec![], &[Some(&ints), Some(&ints)], "int64");
    expect_err("RMSNormalization", 23, vec![], &[Some(&t(&[2, 3, 4])), Some(&t(&[3]))], "does not broadcast");
    expect_err("RMSNormalization", 23, vec![("axis", Attr::Int(3))], &[Some(&t(&[2, 3, 4])), Some(&t(&[4]))], "axis");
    // Mean divides the broadcast sum by the input count.
    let m = run(
        "Mean",
        13,
        vec![],
        &[Some(&f32s(&[2], &[1.0, 2.0])), Some(&f32s(&[1], &[4.0])), Some(&f32s(&[2], &[1.0, 0.0]))],
    );
    assert_eq!(m.as_f32().unwrap(), &[2.0, 2.0]);
}

/// Antialiased linear shrinking by 2: a triangle filter twice as wide, four taps weighing
/// 1/8, 3/8, 3/8, 1/8, the edge repeated — or, with `exclude_outside`, dropped and the rest
/// renormalised (torchvision's `antialias=True` exports write exclude_outside = 1). Enlarging
/// axes keep the plain two-tap filter.
#[test]
fn resize_antialias_widens_the_filter_when_shrinking() {
    let x = range(&[1, 1, 1, 8]);
    let sizes = Tensor::vec_i64(vec![1, 1, 1, 4]);
    let attrs = |exclude: i64| {
        vec![
            ("mode", Attr::String("linear".into())),
            ("antialias", Attr::Int(1)),
            ("exclude_outside", Attr::Int(exclude)),
        ]
    };
    let y = run("Resize", 18, attrs(0), &[Some(&x), None, None, Some(&sizes)]);
    let xv = x.as_f32().unwrap();
    let edge = |i: i64| xv[i.clamp(0, 7) as usize];
    let want: Vec<f32> = (0..4)
        .map(|i: i64| 0.125 * edge(2 * i - 1) + 0.375 * edge(2 * i) + 0.375 * edge(2 * i + 1) + 0.125 * edge(2 * i + 2))
        .collect();
    assert_close(&y, &[1, 1, 1, 4], &want, "antialias, edge repeated");
    let y = run("Resize", 18, attrs(1), &[Some(&x), None, None, Some(&sizes)]);
    let mut want = want;
    want[0] = (0.375 * xv[0] + 0.375 * xv[1] + 0.125 * xv[2]) / 0.875;
    want[3] = (0.125 * xv[5] + 0.375 * xv[6] + 0.375 * xv[7]) / 0.875;
    assert_close(&y, &[1, 1, 1, 4], &want, "antialias, outside dropped");
    // Enlarging: the same as without antialias.
    let up = Tensor::vec_i64(vec![1, 1, 1, 16]);
    let plain = run("Resize", 18, vec![("mode", Attr::String("linear".into()))], &[Some(&x), None, None, Some(&up)]);
    let aa = run("Resize", 18, attrs(0), &[Some(&x), None, None, Some(&up)]);
    assert_eq!(plain.as_f32().unwrap(), aa.as_f32().unwrap());
}
