//! `qplay compare FP32.onnx INT8.onnx --images DIR [--json]`: detection agreement (mAP@0.5 of the
//! INT8 detections with the FP32 ones as ground truth), latency and size.

use super::common::{median, profile_for, read_image, read_model};
use qplay_core::detect::{agreement::Comparison, Detector};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `qplay compare`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The FP32 model: its detections are the ground truth.
    #[arg(value_name = "FP32.onnx")]
    fp32: String,
    /// The INT8 model measured against it.
    #[arg(value_name = "INT8.onnx")]
    int8: String,
    /// Folder of .png/.jpg images.
    #[arg(long, value_name = "DIR")]
    images: String,
    /// Profile for both models (default: FP32.json beside FP32.onnx, else inferred).
    #[arg(long, value_name = "p.json")]
    profile: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    let (fp, q, dir) = (&a.fp32, &a.int8, &a.images);
    let (profile, source) = profile_for(Path::new(fp), a.profile.as_deref())?;
    let (fb, qb) = (read_model(Path::new(fp))?, read_model(Path::new(q))?);
    let mut dfp = Detector::new(&fb, profile.clone()).map_err(|e| format!("{fp}: {e}"))?;
    let prof = dfp.profile().clone();
    let mut dq = Detector::new(&qb, Some(prof)).map_err(|e| format!("{q}: {e}"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read --images {dir}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
                Some("png" | "jpg" | "jpeg")
            )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{dir} holds no .png or .jpg images"));
    }
    let (mut tf, mut tq) = (Vec::new(), Vec::new());
    let mut cmp = Comparison::default();
    for f in &files {
        let (w, h, rgba) = read_image(f)?;
        let mut runs = Vec::with_capacity(2);
        for (d, times) in [(&mut dfp, &mut tf), (&mut dq, &mut tq)] {
            let (x, t) = d.preprocess(w, h, &rgba).map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            let out = qplay_core::parallel::on_pool(|| d.infer(x)).map_err(|e| e.to_string())?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            let dets = d.decode(&out, &t).map_err(|e| e.to_string())?;
            runs.push((out, dets));
        }
        let (q, f) = (runs.pop(), runs.pop());
        if let (Some((fo, fd)), Some((qo, qd))) = (f, q) {
            cmp.add((&fo, fd), (&qo, qd));
        }
    }
    let s = cmp.summary();
    let (map, sqnr) = (s.map50, s.output_sqnr_db.clone());
    let (mf, mq) = (median(tf), median(tq));
    let v = serde_json::json!({
        "images": files.len(),
        "profile": source,
        "map50": map,
        "output_sqnr_db": sqnr,
        "reference_detections": s.reference_detections,
        "candidate_detections": s.candidate_detections,
        "score_warning": s.score_warning,
        "fp32": { "bytes": fb.len(), "median_ms": mf },
        "int8": { "bytes": qb.len(), "median_ms": mq },
        "size_ratio": qb.len() as f64 / fb.len() as f64,
        "latency_ratio": mq / mf,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
    } else {
        println!("{} images, {} FP32 detections as ground truth", files.len(), v["reference_detections"]);
        match map {
            Some(m) => println!("  agreement mAP@0.5: {m:.4}"),
            None => println!("  agreement mAP@0.5: undefined (FP32 found nothing on these images)"),
        }
        if let Some(w) = &s.score_warning {
            println!("  warning: {w}");
        }
        let list: Vec<String> = sqnr.iter().map(|(k, v)| format!("{k} {v:.2} dB")).collect();
        println!("  output SQNR vs FP32 (all images): {}", list.join(" · "));
        println!(
            "  size: {:.2} MB → {:.2} MB ({:.2}×)",
            fb.len() as f64 / 1e6,
            qb.len() as f64 / 1e6,
            v["size_ratio"].as_f64().unwrap_or(0.0)
        );
        println!("  median inference: FP32 {mf:.1} ms, INT8 {mq:.1} ms ({:.2}×, native CPU, 1 thread)", mq / mf);
    }
    Ok(())
}
