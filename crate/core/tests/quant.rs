//! Quantization math: unit and property tests. Zero-points are non-zero wherever the scheme
//! allows it, so sign slips in Z cannot hide.

use proptest::prelude::*;
use qplay_core::quant::*;

#[test]
fn seed_example_exact_and_textbook() {
    let e = explain(&ExplainRequest::SEED).unwrap();
    assert_eq!(e.zero_point, 0);
    assert_eq!(e.q, 83);
    assert!((e.scale_exact - 4.0 / 255.0).abs() < 1e-15);
    assert!((e.dequantized - 1.301_960_8).abs() < 1e-6, "{}", e.dequantized);
    // −min/Δ is exactly 127.5: Z is the half-even rounding of −0.5.
    assert_eq!(e.zero_point_real, -0.5);

    let t = explain(&ExplainRequest { scale_decimals: Some(4), ..ExplainRequest::SEED }).unwrap();
    assert_eq!(t.scale, 0.0157);
    assert_eq!(t.zero_point, -1);
    assert_eq!(t.q, 82);
    assert!((t.dequantized - 1.3031).abs() < 1e-12);
}

#[test]
fn qtype_ranges() {
    assert_eq!((QType::INT8.qmin(), QType::INT8.qmax()), (-128, 127));
    assert_eq!((QType::UINT8.qmin(), QType::UINT8.qmax()), (0, 255));
    let r = QType::new(8, true, true).unwrap();
    assert_eq!((r.qmin(), r.qmax()), (-127, 127));
    let t = QType::new(16, true, false).unwrap();
    assert_eq!((t.qmin(), t.qmax()), (-32768, 32767));
    let u2 = QType::new(2, false, false).unwrap();
    assert_eq!((u2.qmin(), u2.qmax(), u2.levels()), (0, 3, 4));
    for bad in [0u8, 1, 9, 12, 15, 17, 32] {
        assert_eq!(QType::new(bad, true, false), Err(QuantError::Bits(bad)));
    }
}

#[test]
fn bad_ranges_are_errors() {
    let q = QType::INT8;
    let a = Scheme::Asymmetric;
    assert!(matches!(QParams::from_range(1.0, -1.0, q, a), Err(QuantError::Inverted { .. })));
    assert!(matches!(QParams::from_range(1.0, 1.0, q, a), Err(QuantError::EmptyRange(_))));
    assert!(matches!(QParams::from_range(f64::NAN, 1.0, q, a), Err(QuantError::NonFinite { .. })));
    assert!(matches!(QParams::from_range(0.0, f64::INFINITY, q, a), Err(QuantError::NonFinite { .. })));
    assert!(matches!(QParams::from_range(0.0, 1e300, q, a), Err(QuantError::ScaleOutOfRange(_))));
    assert!(matches!(QParams::from_range(0.0, 1e-300, q, a), Err(QuantError::ScaleOutOfRange(_))));
    assert!(matches!(QParams::checked(0.0, 0, q), Err(QuantError::ScaleOutOfRange(_))));
    assert!(matches!(QParams::checked(1.0, 200, q), Err(QuantError::ZeroPoint { .. })));
    assert!(matches!(min_max(&[1.0, f32::NAN]), Err(QuantError::NonFiniteData)));
    assert!(matches!(min_max(&[]), Err(QuantError::EmptyTensor)));
    let e = explain(&ExplainRequest { value: f64::NAN, ..ExplainRequest::SEED }).unwrap_err();
    assert!(e.to_string().contains("not a finite number"));
    // Messages tell the user what to do.
    assert!(QuantError::Inverted { min: 2.0, max: 1.0 }.to_string().contains("swap"));
}

#[test]
fn asymmetric_range_is_widened_to_contain_zero() {
    // [2, 6] quantizes as [0, 6]: 0.0 must be exact.
    let p = QParams::from_range(2.0, 6.0, QType::UINT8, Scheme::Asymmetric).unwrap();
    assert_eq!(p.zero_point, 0);
    assert_eq!(p.fake(0.0, QType::UINT8), 0.0);
    let p = QParams::from_range(-6.0, -2.0, QType::UINT8, Scheme::Asymmetric).unwrap();
    assert_eq!(p.zero_point, 255);
    assert_eq!(p.fake(0.0, QType::UINT8), 0.0);
    // A non-zero zero-point in the middle.
    let p = QParams::from_range(-1.0, 3.0, QType::UINT8, Scheme::Asymmetric).unwrap();
    assert_eq!(p.zero_point, 64); // 0 − (−1)·255/4 = 63.75 → 64
    assert_eq!(p.fake(0.0, QType::UINT8), 0.0);
}

#[test]
fn symmetric_params() {
    let p = QParams::from_range(-0.5, 2.0, QType::INT8, Scheme::Symmetric).unwrap();
    assert_eq!(p.zero_point, 0);
    assert!((p.scale - 4.0 / 255.0).abs() < 1e-9);
    let r = QType::new(8, true, true).unwrap();
    let p = QParams::from_range(-0.5, 2.0, r, Scheme::Symmetric).unwrap();
    assert!((p.scale - 2.0 / 127.0).abs() < 1e-9);
    assert_eq!(p.quantize(2.0, r), 127);
    assert_eq!(p.quantize(-2.0, r), -127);
    // Unsigned symmetric: the zero-point sits in the middle.
    let p = QParams::from_range(-1.0, 1.0, QType::UINT8, Scheme::Symmetric).unwrap();
    assert_eq!(p.zero_point, 128);
}

#[test]
fn rounding_is_half_to_even_like_onnx() {
    let p = QParams { scale: 1.0, zero_point: 3 };
    let t = QType::INT8;
    assert_eq!(p.quantize(0.5, t), 3);
    assert_eq!(p.quantize(1.5, t), 5);
    assert_eq!(p.quantize(2.5, t), 5);
    assert_eq!(p.quantize(-0.5, t), 3);
    assert_eq!(p.quantize(-1.5, t), 1);
    assert_eq!(p.quantize(1000.0, t), 127);
    assert_eq!(p.quantize(-1000.0, t), -128);
    assert_eq!(p.quantize(f32::NAN, t), 3);
    assert_eq!(p.quantize(f32::INFINITY, t), 127);
}

#[test]
fn sixteen_bit_and_low_bit() {
    let t16 = QType::new(16, true, false).unwrap();
    let p = QParams::from_range(-1.0, 1.0, t16, Scheme::Asymmetric).unwrap();
    assert!((p.fake(0.123456, t16) - 0.123456).abs() <= p.scale / 2.0 + 1e-7);
    let t2 = QType::new(2, false, false).unwrap();
    let p = QParams::from_range(0.0, 3.0, t2, Scheme::Asymmetric).unwrap();
    assert_eq!(p.scale, 1.0);
    assert_eq!(p.quantize(2.6, t2), 3);
}

#[test]
fn metrics_known_values() {
    let m = error_metrics(&[1.0, -1.0, 2.0], &[1.0, -1.0, 2.0]).unwrap();
    assert_eq!(m.mse, 0.0);
    assert_eq!(m.sqnr_db, f64::INFINITY);
    assert!((m.cosine - 1.0).abs() < 1e-12);
    let m = error_metrics(&[3.0, 4.0], &[3.0, 3.0]).unwrap();
    assert!((m.sqnr_db - 10.0 * 25f64.log10()).abs() < 1e-9);
    assert!(error_metrics(&[1.0], &[1.0, 2.0]).is_err());
    let m = error_metrics(&[0.0, 0.0], &[0.0, 0.0]).unwrap();
    assert_eq!(m.cosine, 1.0);
}

#[test]
fn min_max_by_lanes_equals_the_plain_loop_and_refuses_any_non_finite_value() {
    // Lengths around the 8-wide lanes and the 256-value blocks; the extremes at the first, a
    // middle and the last position.
    for len in [1usize, 7, 8, 9, 255, 256, 257, 1000] {
        let d: Vec<f32> = sample_tensor(SampleKind::Gaussian, len, len as u64);
        let plain = d.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        assert_eq!(min_max(&d).unwrap(), plain, "{len} values");
        for at in [0, len / 2, len - 1] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut e = d.clone();
                e[at] = bad;
                assert!(matches!(min_max(&e), Err(QuantError::NonFiniteData)), "{bad} at {at} of {len}");
            }
            let mut e = d.clone();
            e[at] = -1e30;
            assert_eq!(min_max(&e).unwrap().0, -1e30);
            e[at] = 1e30;
            assert_eq!(min_max(&e).unwrap().1, 1e30);
        }
    }
}

#[test]
fn histogram_counts_everything() {
    let d = sample_tensor(SampleKind::Gaussian, 10_000, 7);
    let h = Histogram::of(&d, 64).unwrap();
    assert_eq!(h.total(), 10_000);
    let c = Histogram::of(&[2.0, 2.0], 8).unwrap();
    assert_eq!(c.total(), 2);
}

#[test]
fn histogram_add_counts_each_value_in_its_index_bin() {
    // The blocked, four-table `add` against `index` one value at a time: ReLU zeros, values
    // beyond both ends, NaN and ±∞ (skipped), a length that is not a multiple of the block.
    let mut d: Vec<f32> = sample_tensor(SampleKind::Relu, 10_007, 3).into_iter().map(|v| v * 1.3 - 0.1).collect();
    d.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -50.0, 50.0, 0.0]);
    d.rotate_left(5_000);
    for bins in [1, 7, 64, 2048] {
        let mut h = Histogram::new(-0.05, 2.5, bins);
        h.add(&d);
        h.add(&d[..37]);
        let mut want = vec![0u64; bins];
        for &v in d.iter().chain(&d[..37]) {
            if let Some(i) = h.index(v) {
                want[i] += 1;
            }
        }
        assert_eq!(h.counts, want, "{bins} bins");
        assert_eq!(h.total(), (d.len() + 37 - 3) as u64);
    }
}

#[test]
fn per_channel_fake_quant_and_errors() {
    let w = [1.0, -1.0, 0.5, 2.0, 0.0, -4.0];
    let p = per_channel_params(&w, &[2, 3], 0, QType::INT8, Scheme::Symmetric).unwrap();
    let f = fake_quantize_per_channel(&w, &[2, 3], 0, &p, QType::INT8).unwrap();
    for (a, b) in w.iter().zip(&f) {
        assert!((a - b).abs() < 0.02);
    }
    assert!(matches!(per_channel_params(&w, &[2, 3], 2, QType::INT8, Scheme::Symmetric), Err(QuantError::Axis { .. })));
    assert!(matches!(
        per_channel_params(&w, &[4, 3], 0, QType::INT8, Scheme::Symmetric),
        Err(QuantError::ShapeData { .. })
    ));
    assert!(matches!(
        fake_quantize_per_channel(&w, &[2, 3], 1, &p, QType::INT8),
        Err(QuantError::ChannelMismatch { .. })
    ));
    // An all-zero channel falls back to Δ = 1 and stays exact.
    let z = [0.0, 0.0, 1.0, 2.0];
    let p = per_channel_params(&z, &[2, 2], 0, QType::INT8, Scheme::Asymmetric).unwrap();
    assert_eq!(p[0].scale, 1.0);
}

#[test]
fn observers_on_known_distributions() {
    let t = QType::INT8;
    let s = Scheme::Asymmetric;
    // Uniform on [−1, 1]: every method should keep nearly the whole range.
    let u = sample_tensor(SampleKind::Uniform, 50_000, 1);
    for (m, lo, hi) in calibration_ranges(&u, t, s).unwrap() {
        assert!(lo < -0.85 && hi > 0.85, "{m:?} clipped a uniform tensor to [{lo}, {hi}]");
    }
    // Gaussian with 0.5 % outliers at ±8..12: MinMax keeps them, the clipping methods do not.
    let o = sample_tensor(SampleKind::Outliers, 50_000, 2);
    let r = calibration_ranges(&o, t, s).unwrap();
    let get = |n: &str| r.iter().find(|(m, _, _)| m.name() == n).map(|&(_, lo, hi)| (lo, hi)).unwrap();
    let (mlo, mhi) = get("minmax");
    assert!(mlo < -7.9 && mhi > 7.9);
    for n in ["percentile", "entropy", "mse"] {
        let (lo, hi) = get(n);
        assert!(hi < mhi && lo > mlo, "{n} did not clip outliers: [{lo}, {hi}]");
        assert!(hi > 2.0, "{n} clipped into the bulk: [{lo}, {hi}]");
    }
    // The MSE observer's range has lower error than MinMax on outlier data, by its definition.
    let mse_of = |lo: f32, hi: f32| {
        let p = params_or_unit(lo as f64, hi as f64, t, s).unwrap();
        error_metrics(&o, &fake_quantize_slice(&o, p, t)).unwrap().mse
    };
    let (a, b) = get("mse");
    assert!(mse_of(a, b) < mse_of(mlo, mhi));
    // ReLU output: lower end stays at 0.
    let relu = sample_tensor(SampleKind::Relu, 20_000, 3);
    for (m, lo, _) in calibration_ranges(&relu, QType::UINT8, s).unwrap() {
        assert_eq!(lo, 0.0, "{m:?}");
    }
}

#[test]
fn observers_stream_over_batches() {
    let mut o = Calibration::MinMax.observer();
    assert!(matches!(o.range(QType::INT8, Scheme::Asymmetric), Err(QuantError::NoCalibrationData)));
    o.observe(&[0.0, 1.0]).unwrap();
    o.observe(&[-3.0, 0.5]).unwrap();
    assert_eq!(o.range(QType::INT8, Scheme::Asymmetric).unwrap(), (-3.0, 1.0));
    assert!(o.observe(&[f32::NAN]).is_err());

    let mut e = Calibration::MovingAverageMinMax { momentum: 0.5 }.observer();
    e.observe(&[0.0, 2.0]).unwrap();
    e.observe(&[0.0, 4.0]).unwrap();
    assert_eq!(e.range(QType::INT8, Scheme::Asymmetric).unwrap(), (0.0, 3.0));

    // A histogram observer whose range grows between batches keeps every count.
    let mut p = Calibration::Percentile { percentile: 100.0 }.observer();
    p.observe(&sample_tensor(SampleKind::Uniform, 1000, 4)).unwrap();
    p.observe(&[5.0, -5.0]).unwrap();
    assert_eq!(p.histogram().unwrap().total(), 1002);
    let (lo, hi) = p.range(QType::INT8, Scheme::Asymmetric).unwrap();
    assert!(lo <= -4.9 && hi >= 4.9);
    assert!(Calibration::parse("nope").is_err());
    for m in Calibration::ALL {
        assert_eq!(Calibration::parse(m.name()).unwrap().name(), m.name());
    }
}

fn qtypes() -> impl Strategy<Value = QType> {
    (prop_oneof![2u8..=8, Just(16u8)], any::<bool>(), any::<bool>())
        .prop_map(|(b, s, r)| QType::new(b, s, r && s).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Inside the representable range the round trip loses at most Δ/2 (plus f32 rounding).
    #[test]
    fn round_trip_within_half_step(lo in -100.0f64..50.0, width in 0.01f64..200.0, t in 0.0f64..=1.0, qt in qtypes(), sym in any::<bool>()) {
        let hi = lo + width;
        let scheme = if sym { Scheme::Symmetric } else { Scheme::Asymmetric };
        let p = QParams::from_range(lo, hi, qt, scheme).unwrap();
        let (rlo, rhi) = p.representable(qt);
        let x = (rlo as f64 + t * (rhi as f64 - rlo as f64)) as f32;
        let err = (p.fake(x, qt) - x).abs();
        let tol = p.scale / 2.0 + 4.0 * f32::EPSILON * x.abs().max(rhi.abs());
        prop_assert!(err <= tol, "x={x} err={err} scale={}", p.scale);
        // 0.0 is always exact.
        prop_assert_eq!(p.fake(0.0, qt), 0.0);
        prop_assert!(p.zero_point >= qt.qmin() && p.zero_point <= qt.qmax());
    }

    /// Outside the range, values clamp to qmin/qmax.
    #[test]
    fn clamps_outside(lo in -10.0f64..-0.1, hi in 0.1f64..10.0, k in 1.01f32..100.0, qt in qtypes()) {
        let p = QParams::from_range(lo, hi, qt, Scheme::Asymmetric).unwrap();
        let (rlo, rhi) = p.representable(qt);
        prop_assert_eq!(p.quantize(rhi * k + p.scale, qt), qt.qmax());
        prop_assert_eq!(p.quantize(rlo * k - p.scale, qt), qt.qmin());
    }

    /// Per-channel quantization equals per-tensor quantization of each slice.
    #[test]
    fn per_channel_equals_per_tensor_on_slices(
        outer in 1usize..4, ch in 1usize..5, inner in 1usize..6, seed in any::<u64>(), axis_first in any::<bool>(), qt in qtypes()
    ) {
        let shape = if axis_first { vec![ch, outer, inner] } else { vec![outer, ch, inner] };
        let axis = if axis_first { 0 } else { 1 };
        let n = outer * ch * inner;
        let mut data = sample_tensor(SampleKind::Gaussian, n, seed);
        data.iter_mut().enumerate().for_each(|(i, v)| *v += (i % 3) as f32 * 0.25);
        let params = per_channel_params(&data, &shape, axis, qt, Scheme::Asymmetric).unwrap();
        let fq = fake_quantize_per_channel(&data, &shape, axis, &params, qt).unwrap();
        let (o, c, inn) = split_axis(n, &shape, axis).unwrap();
        for (ci, pc) in params.iter().enumerate() {
            let mut slice = Vec::new();
            let mut got = Vec::new();
            for oi in 0..o {
                let b = (oi * c + ci) * inn;
                slice.extend_from_slice(&data[b..b + inn]);
                got.extend_from_slice(&fq[b..b + inn]);
            }
            let (lo, hi) = min_max(&slice).unwrap();
            let pt = params_or_unit(lo as f64, hi as f64, qt, Scheme::Asymmetric).unwrap();
            prop_assert_eq!(*pc, pt);
            prop_assert_eq!(got, fake_quantize_slice(&slice, pt, qt));
        }
    }

    /// Quantize → dequantize → quantize is the identity on codes.
    #[test]
    fn codes_are_stable(lo in -50.0f64..-0.01, hi in 0.01f64..50.0, code_t in 0.0f64..=1.0, qt in qtypes()) {
        let p = QParams::from_range(lo, hi, qt, Scheme::Asymmetric).unwrap();
        let q = qt.qmin() + ((qt.qmax() - qt.qmin()) as f64 * code_t) as i32;
        prop_assert_eq!(p.quantize(p.dequantize(q), qt), q);
    }
}

#[test]
fn entropy_does_not_collapse_on_relu6_activations() {
    // ReLU6 of a wide normal: about half the values are exactly 0 and a few percent sit at 6.
    // The zero spike used to dominate the KL search, which clipped [0, 6] to about [0, 1.3] on
    // the person detector. The threshold must stay in the upper part of the range, and the
    // quantization error must be close to MinMax's (not many times worse).
    let g = sample_tensor(SampleKind::Gaussian, 50_000, 7);
    let x: Vec<f32> = g.iter().map(|v| (v * 2.5).clamp(0.0, 6.0)).collect();
    let mut o = Calibration::Entropy.observer();
    o.observe(&x).unwrap();
    let (lo, hi) = o.range(QType::UINT8, Scheme::Asymmetric).unwrap();
    assert_eq!(lo, 0.0);
    assert!(hi > 4.0, "entropy clipped a ReLU6 tensor to [{lo}, {hi}]");
    let mse = |hi: f32| {
        let p = params_or_unit(0.0, hi as f64, QType::UINT8, Scheme::Asymmetric).unwrap();
        error_metrics(&x, &fake_quantize_slice(&x, p, QType::UINT8)).unwrap().mse
    };
    assert!(mse(hi) < 3.0 * mse(6.0), "entropy MSE {} vs MinMax {}", mse(hi), mse(6.0));
    // A half-normal with a zero spike: the threshold stays beyond the bulk (3σ ≈ 7.5).
    let r: Vec<f32> = g.iter().map(|v| (v * 2.5).max(0.0)).collect();
    let mut o = Calibration::Entropy.observer();
    o.observe(&r).unwrap();
    let (_, hi) = o.range(QType::UINT8, Scheme::Asymmetric).unwrap();
    assert!(hi > 5.0, "entropy clipped a ReLU tensor to [0, {hi}]");
}

#[test]
fn fake_into_is_fake_bit_for_bit() {
    // Ties, clamps at both ends, huge values, ±0, infinities and NaN, on every grid.
    let mut xs: Vec<f32> = (-3000..3000).map(|i| i as f32 * 0.0137).collect();
    xs.extend([0.5, 1.5, 2.5, -0.5, -1.5, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -0.0, 0.0]);
    xs.extend((0..1000).map(|i| ((i as f32) * 0.731).sin() * 9.0));
    for qt in [QType::UINT8, QType::INT8, QType { bits: 4, signed: true, restricted: false }] {
        for (scale, zp) in [(0.05f32, 0), (0.0137, 3), (0.1, qt.qmin()), (0.013_7 / 2.0, qt.qmax()), (3.0, 1)] {
            let p = QParams { scale, zero_point: zp.clamp(qt.qmin(), qt.qmax()) };
            let mut ys = vec![0.0; xs.len()];
            p.fake_into(&xs, &mut ys, qt);
            for (&x, &y) in xs.iter().zip(&ys) {
                assert_eq!(y.to_bits(), p.fake(x, qt).to_bits(), "x = {x}, scale {scale}, zp {zp}, {qt:?}");
            }
        }
    }
    let t16 = QType { bits: 16, signed: false, restricted: false };
    let p = QParams { scale: 1e-4, zero_point: 30000 };
    let mut ys = vec![0.0; xs.len()];
    p.fake_into(&xs, &mut ys, t16);
    assert!(xs.iter().zip(&ys).all(|(&x, &y)| y.to_bits() == p.fake(x, t16).to_bits()));
}
