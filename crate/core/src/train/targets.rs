//! What the distillation compares: the model's raw outputs, before any post-processing that
//! selects by value inside the graph.
//!
//! An export with its post-processing inside (`nms=True` Ultralytics models, YOLOv10's
//! end-to-end head, torchvision's SSD and RetinaNet, TF's detection graphs) ends in TopK,
//! NonMaxSuppression, and Gathers or Scatters at indices computed from the scores. Those
//! outputs jump when a score crosses another, and their gradient trains the student to move
//! boxes between slots, not to compute what the teacher computes. So, for each graph output that
//! a value selection leads to with no trained layer after it, the loss compares the tensors the
//! selection reads instead (the *frontier*: the float tensors computed before any selection that
//! feed it). An output whose selection is followed by trained layers (DETR-style query
//! selection, then a decoder) stays in the loss as it is.
//!
//! A selection is TopK, TFLite's detection post-processing, or any op that reads an integer or
//! bool tensor computed from the input's values (indices, masks, counts: what NonZero,
//! NonMaxSuppression, ArgMax, comparisons and casts of values make). Integers computed from
//! shapes alone (Shape, Size and arithmetic on them) select nothing.

use crate::model::{DType, Graph, OpKind, Tensor, ValueInfo};
use std::collections::{HashMap, HashSet};

/// The distillation's tensors for a graph.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Targets {
    /// Tensors to add as graph outputs (after the model's own), compared in place of the
    /// post-processed outputs.
    pub extra: Vec<String>,
    /// The model's outputs that post-processing computes, left out of the loss.
    pub replaced: Vec<String>,
}

impl Targets {
    /// Per output of the graph with [`Targets::extra`] appended: whether it is in the loss.
    pub fn loss_mask(&self, outputs: &[String]) -> Vec<bool> {
        outputs.iter().map(|o| !self.replaced.contains(o)).chain(self.extra.iter().map(|_| true)).collect()
    }

    /// `g` with the [`Targets::extra`] tensors appended to its outputs.
    pub fn widen(&self, g: &Graph) -> Graph {
        let mut g = g.clone();
        g.outputs.extend(self.extra.iter().map(|t| ValueInfo { name: t.clone(), elem_type: 1, shape: vec![] }));
        g
    }
}

/// The tensors of `v` that `mask` marks (an empty mask or one too short: the rest too).
pub(crate) fn masked(v: &[Tensor], mask: &[bool]) -> Vec<Tensor> {
    v.iter().enumerate().filter(|(k, _)| mask.get(*k).copied().unwrap_or(true)).map(|(_, t)| t.clone()).collect()
}

/// The [`Targets`] of `g` (in topological order), with `dtype` giving each tensor's element
/// type where known.
pub fn distill_targets(g: &Graph, dtype: &dyn Fn(&str) -> Option<DType>) -> Targets {
    let inits: HashSet<&str> = g.initializers.keys().map(String::as_str).collect();
    // Tensors that depend on the input's values (not on its shape alone).
    let mut value: HashSet<&str> = g.inputs.iter().map(|v| v.name.as_str()).filter(|n| !inits.contains(n)).collect();
    // Tensors computed by or after a selection; `mid`: with a trained layer after it.
    let (mut sel, mut mid): (HashSet<&str>, HashSet<&str>) = (HashSet::new(), HashSet::new());
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let present = || n.inputs.iter().map(String::as_str).filter(|t| !t.is_empty());
        let shape_only = n.is_any(&[OpKind::Shape, OpKind::Size]);
        let is_value = !shape_only && present().any(|t| value.contains(t));
        let selects = n.is_any(&[OpKind::TopK, OpKind::TfliteDetectionPostProcess])
            || present().any(|t| value.contains(t) && dtype(t).is_some_and(|d| d != DType::F32));
        let after = present().any(|t| sel.contains(t));
        let trained = n.is_any(&[OpKind::Conv, OpKind::ConvTranspose, OpKind::Gemm, OpKind::MatMul])
            && n.inputs.iter().skip(1).any(|t| inits.contains(t.as_str()));
        let is_mid = present().any(|t| mid.contains(t)) || (trained && after);
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            producer.insert(o, i);
            if is_value {
                value.insert(o);
            }
            if selects || after {
                sel.insert(o);
            }
            if is_mid {
                mid.insert(o);
            }
        }
    }
    let mut t = Targets::default();
    for out in &g.outputs {
        let o = out.name.as_str();
        if !sel.contains(o) || mid.contains(o) {
            continue;
        }
        // Walk back through the selected tensors; collect the float values they read.
        let (mut stack, mut seen, mut frontier) = (vec![o], HashSet::new(), Vec::new());
        while let Some(x) = stack.pop() {
            if !seen.insert(x) {
                continue;
            }
            let Some(&i) = producer.get(x) else { continue };
            for inp in g.nodes[i].inputs.iter().map(String::as_str).filter(|t| !t.is_empty()) {
                if sel.contains(inp) {
                    stack.push(inp);
                } else if value.contains(inp) && dtype(inp) == Some(DType::F32) {
                    frontier.push(inp.to_string());
                }
            }
        }
        if frontier.is_empty() {
            continue;
        }
        t.replaced.push(out.name.clone());
        for f in frontier {
            let kept_output = g.outputs.iter().any(|v| v.name == f && !sel.contains(v.name.as_str()));
            if !kept_output && !t.extra.contains(&f) {
                t.extra.push(f);
            }
        }
    }
    t
}
