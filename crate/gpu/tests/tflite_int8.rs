//! Full-integer TFLite models (int8; 16x8, with int16 activations; TF1's uint8) on the GPU
//! executor: TFLite's integer ops (`qplay.tfl.*`) have no WGSL kernels yet, so the executor
//! keeps them on the CPU (their reference kernels); the outputs are LiteRT's, bit for bit, as on
//! the CPU.

use qplay_core::model::{load_tflite_integer_io, npy::read_npy, Plan};
use qplay_core::ops::Registry;
use qplay_gpu::{Gpu, GpuPlan};
use std::path::PathBuf;
use std::sync::Arc;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tflite").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn int8_tflite_models_equal_litert_on_the_gpu_executor() {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    let g = Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}"));
    for name in ["cnn_int8", "det_int8", "ops_int8", "cnn_16x8", "det_16x8", "ops_16x8", "det_uint8"] {
        let graph = load_tflite_integer_io(&fixture(&format!("{name}.tflite"))).unwrap();
        let plan = Arc::new(Plan::new(&graph, &Registry::new(), &[]).unwrap());
        let x = read_npy(&fixture(&format!("{name}/input_q.npy"))).unwrap();
        let mut gp = GpuPlan::new_blocking(&g, plan).unwrap();
        eprintln!("{name}: {}", gp.summary());
        let outs = gp.run_blocking(&[(graph.inputs[0].name.clone(), x)]).unwrap();
        for (k, got) in outs.iter().enumerate() {
            let want = read_npy(&fixture(&format!("{name}/output_{k}.npy"))).unwrap();
            assert_eq!(got.shape, want.shape, "{name} output {k}");
            assert!(got.data == want.data, "{name} output {k} differs from LiteRT");
        }
    }
}
