//! The GPU across the wasm boundary: a [`WasmGpu`] (the browser's WebGPU device) that a
//! [`WasmDetector`](crate::WasmDetector) runs its plan on (`useGpu`, then `inferGpu`). Every
//! GPU call is async (a JS `Promise`): the browser maps result buffers with a callback, never
//! by blocking.

use crate::{coded, err};
use qplay_core::model::Plan;
use qplay_gpu::{Gpu, GpuPlan};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// A model's plan on the GPU, shared with the futures that run it (taken out during a run).
pub(crate) type GpuCell = Rc<RefCell<Option<GpuPlan>>>;

/// Builds `plan` on `gpu` into `cell` (emptied first: the old plan's buffers go); resolves to
/// the placement summary, rejects with the reason.
pub(crate) fn place(gpu: &WasmGpu, plan: Arc<Plan>, cell: &GpuCell) -> js_sys::Promise {
    let (device, cell) = (gpu.gpu.clone(), cell.clone());
    cell.borrow_mut().take();
    wasm_bindgen_futures::future_to_promise(async move {
        let p = GpuPlan::new(&device, plan).await.map_err(err)?;
        let summary = p.summary();
        *cell.borrow_mut() = Some(p);
        Ok(JsValue::from_str(&summary))
    })
}

/// A WebGPU device (wgpu's WebGPU backend), shared by every model the worker runs on it.
#[wasm_bindgen]
pub struct WasmGpu {
    pub(crate) gpu: Rc<Gpu>,
}

#[wasm_bindgen]
impl WasmGpu {
    /// Opens the default WebGPU adapter and a device. Rejects with a message saying why when
    /// the browser has no WebGPU or no adapter (the page then stays on the CPU and says so).
    pub async fn create() -> Result<WasmGpu, JsValue> {
        let has_gpu = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
            .ok()
            .filter(|n| n.is_object())
            .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
            .is_some_and(|g| g.is_object());
        if !has_gpu {
            return Err(coded(
                "gpu-unavailable",
                "this browser has no WebGPU (navigator.gpu is missing): use a current Chrome or Edge, or Firefox/Safari with WebGPU enabled",
            ));
        }
        let gpu = Gpu::new().await.map_err(|e| match e {
            qplay_gpu::GpuError::NoAdapter(_) => coded(
                "gpu-unavailable",
                "the browser has WebGPU but offers no GPU adapter (the GPU may be blocklisted, or hardware acceleration turned off: see chrome://gpu or about:support)",
            ),
            other => err(other),
        })?;
        Ok(WasmGpu { gpu: Rc::new(gpu) })
    }

    /// The adapter: name, backend and device type.
    pub fn adapter(&self) -> String {
        self.gpu.adapter()
    }

    /// Whether the int8 kernels use WGSL's `dot4I8Packed` (else the unpacking variant).
    #[wasm_bindgen(js_name = packedDot)]
    pub fn packed_dot(&self) -> bool {
        self.gpu.packed_dot()
    }

    /// Why the device was lost, or `undefined` while it works.
    pub fn lost(&self) -> Option<String> {
        self.gpu.lost()
    }

    /// The last GPU error no error scope caught, if any (taken: reported once).
    #[wasm_bindgen(js_name = takeError)]
    pub fn take_error(&self) -> Option<String> {
        self.gpu.take_uncaptured_error()
    }

    /// `[count, bytes]` of the GPU buffers qplay has created on this device (all at plan time:
    /// the count stays put while frames run).
    #[wasm_bindgen(js_name = buffersCreated)]
    pub fn buffers_created(&self) -> Vec<f64> {
        let (n, bytes) = self.gpu.buffers_created();
        vec![n as f64, bytes as f64]
    }

    /// Destroys the device, as a driver reset or a GPU process crash would (for tests and for
    /// the page's "lose the device" check of its recovery).
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(&self) {
        self.gpu.destroy();
    }
}
