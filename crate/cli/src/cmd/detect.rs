//! `qplay detect MODEL IMAGE [--profile p.json] [--json] [--draw out.png] [--gpu]`. With
//! `--gpu` the image is pre-processed and the model run by the GPU executor (Vulkan natively),
//! decoding on the CPU as always.

use super::common::{detector, read_image};
use qplay_core::detect::Detection;
use std::path::Path;
use std::time::Instant;

/// `qplay detect`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The detector: ONNX or TFLite (.tflite).
    #[arg(value_name = "MODEL")]
    model: String,
    /// A PNG or JPEG image.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Detector profile (default: MODEL.json beside the model, else inferred).
    #[arg(long, value_name = "p.json")]
    profile: Option<String>,
    /// Score threshold, 0 to 1 (default: the profile's).
    #[arg(long, value_name = "T")]
    score: Option<f32>,
    /// IoU threshold of the NMS, 0 to 1 (default: the profile's).
    #[arg(long, value_name = "T")]
    iou: Option<f32>,
    /// Print JSON: detections, timings_ms, assumed, …
    #[arg(long)]
    json: bool,
    /// Save the image with the boxes drawn (.png or .jpg).
    #[arg(long, value_name = "out.png")]
    draw: Option<String>,
    /// Pre-process and run on the GPU (Vulkan); decoding stays on the CPU.
    #[arg(long)]
    gpu: bool,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    let (model, image) = (&a.model, &a.image);
    let (mut det, source) = detector(Path::new(model), a.profile.as_deref())?;
    let (score, iou) = (a.score, a.iou);
    if score.is_some() || iou.is_some() {
        let p = det.profile().clone();
        det.set_thresholds(score.unwrap_or(p.score_threshold), iou.unwrap_or(p.iou_threshold));
    }
    let (w, h, rgba) = read_image(Path::new(image))?;
    // An inferred profile's pixel scaling is a guess: try the common ones on this photo.
    det.probe_pixel_scaling(w, h, &rgba).map_err(|e| e.to_string())?;
    let mut backend = "cpu".to_string();
    let (t0, t1, t2, out, tf) = if a.gpu {
        let gpu = qplay_gpu::Gpu::new_blocking().map_err(|e| e.to_string())?;
        let mut gp = qplay_gpu::GpuPlan::new_blocking(&gpu, det.shared_plan()).map_err(|e| e.to_string())?;
        backend = format!("gpu ({}; {})", gpu.adapter(), gp.summary());
        let t0 = Instant::now();
        let rp = qplay_core::detect::resize_plan(det.profile(), w, h).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let outs = match gp.can_preprocess(&rp, w, h) {
            Ok(()) => qplay_gpu::block_on(gp.run_rgba(&rp, w, h, &rgba)),
            Err(_) => {
                let (x, _) = det.preprocess(w, h, &rgba).map_err(|e| e.to_string())?;
                gp.run_blocking(&[(det.profile().input.clone(), x)])
            }
        }
        .map_err(|e| e.to_string())?;
        let names = det.plan().output_names().into_iter().map(String::from);
        (t0, t1, Instant::now(), names.zip(outs).collect::<Vec<_>>(), rp.transform)
    } else {
        let t0 = Instant::now();
        let (x, tf) = det.preprocess(w, h, &rgba).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let out = qplay_core::parallel::on_pool(|| det.infer(x)).map_err(|e| e.to_string())?;
        (t0, t1, Instant::now(), out, tf)
    };
    let dets = det.decode(&out, &tf).map_err(|e| e.to_string())?;
    let t3 = Instant::now();
    let warning = det.score_warning(&dets);
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    if a.json {
        let v = serde_json::json!({
            "detections": dets.iter().map(|d| serde_json::json!({
                "class": d.class, "label": d.label, "score": d.score, "box": d.bbox,
                "keypoints": d.keypoints,
            })).collect::<Vec<_>>(),
            "image": { "width": w, "height": h },
            "profile": source,
            "assumed": det.assumed(),
            "timings_ms": { "preprocess": ms(t0, t1), "inference": ms(t1, t2), "decode": ms(t2, t3) },
            "backend": backend,
            "score_warning": warning,
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
    } else {
        println!("{model} on {image} ({w}×{h}), profile: {source}");
        if a.gpu {
            println!("  on the {backend}; pre-processing on the GPU is inside inference");
        }
        for s in det.assumed() {
            println!("  assumed: {s}");
        }
        for d in &dets {
            let [x1, y1, x2, y2] = d.bbox;
            println!("  {:<12} {:.3}  [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]", d.label, d.score);
        }
        println!(
            "  {} detection(s); pre-process {:.1} ms, inference {:.1} ms, decode {:.1} ms",
            dets.len(),
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3)
        );
        if let Some(w) = &warning {
            println!("  warning: {w}");
        }
    }
    if let Some(p) = &a.draw {
        draw(Path::new(image), &dets, Path::new(p))?;
    }
    Ok(())
}

/// Draws each box (3 px, Okabe–Ito blue) over the image and saves a PNG.
fn draw(image: &Path, dets: &[Detection], out: &Path) -> Result<(), String> {
    let (w, h, rgba) = read_image(image)?;
    let mut img = image::RgbaImage::from_raw(w as u32, h as u32, rgba).ok_or("image buffer size")?;
    let color = image::Rgba([0, 114, 178, 255]);
    for d in dets {
        let [x1, y1, x2, y2] = d.bbox.map(|v| v.max(0.0) as i64);
        for t in 0..3 {
            for x in x1..=x2 {
                for y in [y1 + t, y2 - t] {
                    if (0..w as i64).contains(&x) && (0..h as i64).contains(&y) {
                        img.put_pixel(x as u32, y as u32, color);
                    }
                }
            }
            for y in y1..=y2 {
                for x in [x1 + t, x2 - t] {
                    if (0..w as i64).contains(&x) && (0..h as i64).contains(&y) {
                        img.put_pixel(x as u32, y as u32, color);
                    }
                }
            }
        }
    }
    img.save(out).map_err(|e| format!("cannot write {}: {e}", out.display()))
}
