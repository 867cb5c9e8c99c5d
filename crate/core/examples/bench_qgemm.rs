//! Times the int8 GEMM on MobileNet-like shapes: `cargo run --release --example bench_qgemm`.
use qplay_core::ops::quant::qgemm::{qgemm, Bytes, Epilogue, Out, PackedA, PerIndex, QMat};
use std::time::Instant;

fn main() {
    for &(m, k, n) in
        &[(96usize, 16usize, 22500usize), (16, 32, 22500), (144, 24, 5625), (24, 144, 5625), (960, 160, 100)]
    {
        let a: Vec<i8> = (0..m * k).map(|i| (i * 37 % 255) as i8).collect();
        let b: Vec<u8> = (0..k * n).map(|i| (i * 91 % 256) as u8).collect();
        let pa = PackedA::new(&QMat::row_major(Bytes::I8(&a), m, k).unwrap()).unwrap();
        let bm = QMat::row_major(Bytes::U8(&b), k, n).unwrap();
        let scale = vec![0.001f32; m];
        let bias = vec![100i32; m];
        let mut out = vec![0u8; m * n];
        let mut out32 = vec![0i32; m * n];
        let mut best = f64::INFINITY;
        for _ in 0..10 {
            let t = Instant::now();
            let ep = Epilogue {
                za: PerIndex::All(0),
                zb: PerIndex::All(3),
                bias: Some(&bias),
                scale: &scale,
                scale_per_row: true,
                row_max: None,
                out: if std::env::var("I32").is_ok() {
                    Out::I32(&mut out32)
                } else {
                    Out::U8 { out: &mut out, zero_point: 5, lo: 0, hi: 255 }
                },
                ldc: n,
            };
            qgemm(&pa, &bm, ep).unwrap();
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        let gmacs = (m * k * n) as f64 / best / 1e6;
        println!("{m}×{k}×{n}: {best:.3} ms, {gmacs:.2} GMAC/s");
    }
}
