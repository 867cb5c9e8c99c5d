//! qplay's GPU backend: wgpu compute shaders — WebGPU in the browser, Vulkan
//! natively (lavapipe on machines without a GPU).
//!
//! The CPU kernels of `qplay-core` are the numerical reference. The int8 GEMM here
//! ([`Gpu::qgemm`]) computes the same requantized codes as the CPU's
//! [`qgemm`](qplay_core::ops::quant::qgemm) bit for bit: exact `i32` sums of packed int8 words
//! (`dot4I8Packed`, or an unpacking variant on adapters without the WGSL language feature
//! `packed_4x8_integer_dot_product`), then the same float multiply, clamp to ±2²² and
//! round-half-to-even (WGSL `round`) as the CPU epilogue. Shapes travel in a uniform buffer;
//! shader text never contains a shape.
//!
//! The executor ([`GpuPlan`], module `exec`) runs a planned model (a core [`Plan`]) on the GPU:
//! quantized convolutions (implicit GEMM and direct depthwise), float convolutions,
//! QuantizeLinear / DequantizeLinear and the float element-wise and data-movement ops of the int8 person
//! detector, tensors kept in GPU buffers between ops, one command encoder per run of GPU steps,
//! buffers and bind groups made once at plan time, pipelines cached by (kernel, `dot4`
//! variant); every other op runs on the CPU reference with a download/upload at the edges.
//!
//! [`Plan`]: qplay_core::model::Plan

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

mod exec;

/// The most loop iterations one invocation of a kernel may run, its loops together. llvmpipe
/// (lavapipe, the software Vulkan driver of machines without a GPU, and of the tests) ends
/// every loop of an invocation once 65,535 iterations have run in all — one counter shared by
/// every loop of the shader (`LP_MAX_TGSI_LOOP_ITERATIONS` in Mesa's gallivm) — silently, so a
/// longer reduction there gives wrong sums (a MEAN over 256×256 codes did). A step whose kernel
/// would loop longer, as the builders estimate it, stays on the CPU; on a real GPU so long a
/// serial loop would be slow anyway.
pub(crate) const MAX_SERIAL: usize = 60_000;

mod kernels;
mod qgemm;
pub mod uniforms;

pub use exec::{GpuPlan, Placement};

/// Runs a future to completion, blocking (native only): the GPU calls' `*_blocking` forms for
/// the ones that have none.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
pub use kernels::{kernel_source, shader_files, BinaryCode, Kernel, Prelude, ReduceCode, UnaryCode};
pub use qgemm::QGemm;

/// What can go wrong, each with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuError {
    /// No adapter: no WebGPU in this browser, or no Vulkan driver natively.
    NoAdapter(String),
    /// The adapter refused a device.
    Device(String),
    /// A shader failed to compile or validate; names the kernel.
    Shader {
        /// The kernel (WGSL file) that failed.
        kernel: &'static str,
        /// The validation message.
        message: String,
    },
    /// The input is beyond the adapter's limits (buffer size, dispatch size).
    Limits(String),
    /// Bad arguments (sizes that do not match).
    Input(String),
    /// Reading results back failed (e.g. the device was lost).
    Readback(String),
    /// The plan refused the inputs, or a step on the CPU failed (the core's error, with its kind).
    Model(qplay_core::model::ModelError),
}

impl From<qplay_core::model::ModelError> for GpuError {
    fn from(e: qplay_core::model::ModelError) -> GpuError {
        GpuError::Model(e)
    }
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(m) => write!(
                f,
                "no GPU adapter: {m} (natively install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers; in a browser, one with WebGPU)"
            ),
            GpuError::Device(m) => write!(f, "the GPU adapter refused a device: {m}"),
            GpuError::Shader { kernel, message } => write!(f, "GPU kernel `{kernel}` failed to compile: {message}"),
            GpuError::Limits(m) => write!(f, "beyond this GPU's limits: {m}"),
            GpuError::Input(m) => write!(f, "{m}"),
            GpuError::Readback(m) => write!(f, "reading the GPU result failed: {m}"),
            GpuError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GpuError {}

impl GpuError {
    /// A stable name for the kind of error, for callers that branch on it (the page's worker
    /// re-creates the device on `gpu-lost`): `gpu-unavailable`, `gpu-device`, `gpu-shader`,
    /// `gpu-limits`, `bad-input` or `gpu-lost`.
    pub fn code(&self) -> &'static str {
        match self {
            GpuError::NoAdapter(_) => "gpu-unavailable",
            GpuError::Device(_) => "gpu-device",
            GpuError::Shader { .. } => "gpu-shader",
            GpuError::Limits(_) => "gpu-limits",
            GpuError::Input(_) => "bad-input",
            GpuError::Readback(_) => "gpu-lost",
            GpuError::Model(e) => e.code(),
        }
    }
}

/// A GPU device with what qplay needs to know about it.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    packed_dot: bool,
    /// Compiled pipelines by (kernel, packed `dot4`).
    pipelines: Mutex<HashMap<(Kernel, bool), wgpu::ComputePipeline>>,
    /// Why the device was lost, once it is (set by the device-lost callback).
    lost: Arc<Mutex<Option<String>>>,
    /// The last error no error scope caught (wgpu's default handler would panic).
    uncaptured: Arc<Mutex<Option<String>>>,
    /// Buffers created on this device so far, and their bytes (the soak test checks that a run
    /// creates none).
    counter: Arc<BufferCounter>,
}

/// Buffers created on a device and their bytes.
#[derive(Debug, Default)]
pub(crate) struct BufferCounter {
    count: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl BufferCounter {
    pub(crate) fn add(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.count.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info.name).field("packed_dot", &self.packed_dot).finish()
    }
}

impl Gpu {
    /// Opens the default adapter and a device on it.
    pub async fn new() -> Result<Gpu, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        #[cfg(target_arch = "wasm32")]
        let desc = wgpu::InstanceDescriptor::new_without_display_handle();
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let packed_dot =
            instance.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("qplay"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let lost = Arc::new(Mutex::new(None));
        let l2 = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = l2.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let u2 = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut u) = u2.lock() {
                *u = Some(e.to_string());
            }
        }));
        Ok(Gpu {
            device,
            queue,
            info,
            packed_dot,
            pipelines: Mutex::new(HashMap::new()),
            lost,
            uncaptured,
            counter: Default::default(),
        })
    }

    /// Why the device was lost (`None` while it works). A lost device stays lost: open a new
    /// [`Gpu`] and build the plans again.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Creates a buffer, counted in [`Gpu::buffers_created`].
    pub(crate) fn create_buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        self.counter.add(desc.size);
        self.device.create_buffer(desc)
    }

    /// Creates a buffer with contents, counted in [`Gpu::buffers_created`].
    pub(crate) fn create_buffer_init(&self, desc: &wgpu::util::BufferInitDescriptor<'_>) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.counter.add(desc.contents.len() as u64);
        self.device.create_buffer_init(desc)
    }

    /// How many GPU buffers qplay has created on this device, and their total bytes: made at
    /// plan time, none per run (GPU memory cannot grow from frame to frame).
    pub fn buffers_created(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.counter.count.load(Relaxed), self.counter.bytes.load(Relaxed))
    }

    /// Takes the last error that no error scope caught, if any.
    pub fn take_uncaptured_error(&self) -> Option<String> {
        self.uncaptured.lock().ok().and_then(|mut u| u.take())
    }

    /// Destroys the device, as a driver reset would: every later run fails and [`Gpu::lost`]
    /// says why (for tests of device-lost recovery).
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// [`Gpu::new`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Gpu, GpuError> {
        pollster::block_on(Gpu::new())
    }

    /// The adapter: name, backend and device type, e.g. "llvmpipe (LLVM 15.0.6, 256 bits),
    /// Vulkan, Cpu".
    pub fn adapter(&self) -> String {
        format!("{}, {:?}, {:?}", self.info.name, self.info.backend, self.info.device_type)
    }

    /// Whether the WGSL `dot4I8Packed` built-in is available (else the unpacking variant runs).
    pub fn packed_dot(&self) -> bool {
        self.packed_dot
    }

    /// Forces the unpacking `dot4` variant (to test it on an adapter that has both).
    pub fn force_unpacked_dot(&mut self) {
        self.packed_dot = false;
    }

    /// Compiles a kernel (its WGSL with the chosen `dot4` prelude) into a compute pipeline;
    /// validation errors come back as [`GpuError::Shader`] naming the kernel.
    async fn pipeline(&self, kernel: &'static str, source: &str) -> Result<wgpu::ComputePipeline, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        match scope.pop().await {
            Some(e) => Err(GpuError::Shader { kernel, message: e.to_string() }),
            None => Ok(pipeline),
        }
    }

    /// Compiles WGSL as a compute pipeline with entry point `main` and reports any validation
    /// error naming `kernel` (what every kernel goes through).
    pub async fn compile(&self, kernel: &'static str, source: &str) -> Result<(), GpuError> {
        self.pipeline(kernel, source).await.map(|_| ())
    }

    /// The pipeline of `kernel` for this adapter's `dot4` variant, compiled once and cached.
    pub(crate) async fn cached_pipeline(&self, kernel: Kernel) -> Result<wgpu::ComputePipeline, GpuError> {
        let key = (kernel, self.packed_dot);
        if let Some(p) =
            self.pipelines.lock().map_err(|_| GpuError::Device("pipeline cache poisoned".into()))?.get(&key)
        {
            return Ok(p.clone());
        }
        let p = self.pipeline(kernel.file(), &kernel_source(kernel, self.packed_dot)).await?;
        self.pipelines.lock().map_err(|_| GpuError::Device("pipeline cache poisoned".into()))?.insert(key, p.clone());
        Ok(p)
    }

    /// Number of pipelines compiled and cached so far.
    pub fn cached_pipelines(&self) -> usize {
        self.pipelines.lock().map_or(0, |p| p.len())
    }

    /// Reads a storage buffer of `len` `i32` back to the CPU.
    async fn read_i32(&self, src: &wgpu::Buffer, len: usize) -> Result<Vec<i32>, GpuError> {
        let bytes = (len * 4) as u64;
        let staging = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("qplay readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes.max(4));
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        let mapped = rx.recv().map_err(|e| GpuError::Readback(e.to_string()))?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let view = slice.get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, i32>(&view[..len * 4]).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
