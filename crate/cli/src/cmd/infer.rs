//! `qplay infer MODEL --input x.npy --out DIR`: raw output tensors for checks against other
//! runtimes. Writes `DIR/<k>.npy` for the k-th graph output and `DIR/outputs.json`.

use super::common::{read, read_model};
use qplay_core::model::{load_model, npy, Plan};
use qplay_core::ops::Registry;
use std::path::Path;

/// `qplay infer`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model, ONNX or TFLite (.tflite), with one input.
    #[arg(value_name = "MODEL")]
    model: String,
    /// The input tensor, a .npy file.
    #[arg(long, value_name = "x.npy")]
    input: String,
    /// Output folder: DIR/<k>.npy per output, DIR/outputs.json (index → name).
    #[arg(long, value_name = "DIR")]
    out: String,
    #[command(flatten)]
    pub threads: crate::threads::ThreadArgs,
}

pub fn run(a: Args) -> Result<(), String> {
    let (model, input, out) = (&a.model, &a.input, &a.out);
    let graph = load_model(&read_model(Path::new(model))?).map_err(|e| format!("{model}: {e}"))?;
    let x = npy::read_npy(&read(Path::new(input))?).map_err(|e| format!("{input}: {e}"))?;
    let name = match graph.inputs.as_slice() {
        [one] => one.name.clone(),
        [] => return Err(format!("{model} has no runtime input")),
        many => {
            return Err(format!(
                "{model} has {} inputs ({}); `infer` feeds one .npy: export a single-input model",
                many.len(),
                many.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let plan = Plan::new(&graph, &Registry::new(), &[(name.clone(), x.shape.clone())]).map_err(|e| e.to_string())?;
    let outputs = qplay_core::parallel::on_pool(|| plan.run(&[(name, x)])).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {out}: {e}"))?;
    let mut map = serde_json::Map::new();
    for (k, (t, n)) in outputs.iter().zip(plan.output_names()).enumerate() {
        let p = Path::new(out).join(format!("{k}.npy"));
        std::fs::write(&p, npy::write_npy(t)).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        map.insert(k.to_string(), n.into());
        println!("{k}: {n} {:?} -> {}", t.shape, p.display());
    }
    let p = Path::new(out).join("outputs.json");
    std::fs::write(&p, serde_json::to_string_pretty(&map).map_err(|e| e.to_string())?)
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    Ok(())
}
