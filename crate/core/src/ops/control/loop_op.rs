//! Loop: runs its `body` while a condition holds, up to a trip count, carrying values from one
//! iteration to the next and stacking per-iteration ("scan") outputs along a new first axis.
//! torchvision's Mask R-CNN and Keypoint R-CNN exports paste their masks and keypoints back one
//! detection at a time with it; tf2onnx writes it for TensorFlow's `while_loop`.
//!
//! Node inputs: `M` (the trip count, int64; omitted: none), `cond` (bool; omitted: true), the
//! `N` loop-carried initial values, then the outer values the body reads
//! ([`crate::model::subgraph`]). Body inputs: the iteration number, the condition, the `N`
//! values, then those outer values; body outputs: the condition for the next iteration, the
//! `N` values, then `K` scan outputs. Node outputs: the `N` final values, then the `K` scans.
//! As onnxruntime runs it: iterations go on while `i < M` and the condition (the input's, then
//! each iteration's output) is true. A dynamic step ([`Op::shape_depends_on_values`]): each
//! iteration plans the body for its actual values and runs it on the CPU, under the enclosing
//! plan's options; at most [`MAX_ITERATIONS`] iterations.

use super::if_op::{condition, known_values, run_subgraph};
use crate::model::{DType, Data, Graph, Node, PlanOptions, Tensor};
use crate::ops::shape::elem::{dispatch, typed, Elem};
use crate::ops::{BuildCtx, Fact, Op, OpError};
use std::sync::Arc;

/// Most iterations a Loop may run: a crafted trip count (or a condition that never turns false)
/// fails instead of running for hours.
pub const MAX_ITERATIONS: i64 = 100_000;

/// Loop.
#[derive(Debug, Clone)]
pub struct Loop {
    /// The body (inputs: iteration, condition, the carried values, then the outer values).
    pub body: Arc<Graph>,
    /// How many values the loop carries.
    pub carried: usize,
    /// How many scan outputs the body gives.
    pub scans: usize,
    /// The options the body is planned with: the enclosing plan's.
    pub options: PlanOptions,
    /// Most iterations it runs ([`MAX_ITERATIONS`]).
    pub max_iterations: i64,
}

/// Builds Loop with default plan options (planning builds it with its own: [`build_with`]).
pub fn build(node: &Node, ctx: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    build_with(node, ctx, PlanOptions::default())
}

/// [`build`], planning the body with `options`.
pub fn build_with(node: &Node, ctx: &BuildCtx, options: PlanOptions) -> Result<Box<dyn Op>, OpError> {
    let g = node.attrs.graph("body").ok_or_else(|| {
        OpError::malformed(
            "the node has no `body` graph: a Loop needs one; check the model with onnx.checker.check_model",
        )
    })?;
    let captured = node.captured();
    let given = node.inputs.len().saturating_sub(captured);
    if given < 2 {
        return Err(OpError::malformed(format!(
            "the node takes {given} inputs before the outer values: a Loop takes M, cond and its loop-carried values"
        )));
    }
    let carried = given - 2;
    if g.formal_inputs != carried + 2 {
        return Err(OpError::malformed(format!(
            "the body declares {} inputs; with {carried} loop-carried value(s) it must declare {} (the iteration number, \
             the condition, then the carried values)",
            g.formal_inputs,
            carried + 2
        )));
    }
    if g.outputs.len() < carried + 1 || node.outputs.len() != g.outputs.len() - 1 {
        return Err(OpError::malformed(format!(
            "the body gives {} outputs and the node has {}: a body gives the condition, the {carried} carried value(s) and \
             the scan outputs, and the node one output for each but the condition",
            g.outputs.len(),
            node.outputs.len()
        )));
    }
    let mut body = g.clone();
    body.opset = ctx.opset;
    Ok(Box::new(Loop {
        scans: g.outputs.len() - 1 - carried,
        carried,
        body: Arc::new(body),
        options,
        max_iterations: MAX_ITERATIONS,
    }))
}

/// Stacks one scan output's per-iteration values along a new first axis.
fn stack(parts: &[Tensor], declared: &[Option<usize>], dtype: DType) -> Result<Tensor, OpError> {
    let Some(first) = parts.first() else {
        // No iteration: an empty stack of the body's declared shape (unknown sizes as 0).
        let mut shape = vec![0];
        shape.extend(declared.iter().map(|d| d.unwrap_or(0)));
        return Ok(Tensor { data: dispatch!(dtype, T => T::wrap(Vec::new())), shape });
    };
    if let Some(p) = parts.iter().find(|p| p.shape != first.shape || p.dtype() != first.dtype()) {
        return Err(OpError::mismatch(format!(
            "a scan output has shape {:?} in one iteration and {:?} in another: its iterations must agree to be stacked",
            first.shape, p.shape
        )));
    }
    let mut shape = vec![parts.len()];
    shape.extend(&first.shape);
    crate::model::numel(&shape).map_err(OpError::limit)?;
    let data = dispatch!(first.dtype(), T => {
        let mut v: Vec<T> = Vec::with_capacity(first.len() * parts.len());
        for p in parts {
            v.extend_from_slice(typed::<T>(p)?);
        }
        T::wrap(v)
    });
    Ok(Tensor { shape, data })
}

impl Op for Loop {
    /// The values' shapes may change from one iteration to the next, and the scans' first axis
    /// is the number of iterations: known once the loop has run.
    fn shape_depends_on_values(&self) -> bool {
        true
    }

    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        Ok(self.eval(&known_values(inputs)?)?.into_iter().map(Fact::constant).collect())
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let n = self.carried;
        let get = |i: usize| inputs.get(i).copied().flatten();
        let trips = match get(0) {
            None => i64::MAX,
            Some(m) => *m
                .to_i64_vec()
                .map_err(OpError::mismatch)?
                .first()
                .ok_or_else(|| OpError::mismatch("the trip count M is empty: it must hold one value"))?,
        };
        let mut keep_going = match get(1) {
            None => true,
            Some(c) => condition(c)?,
        };
        let mut carried: Vec<Tensor> = (0..n)
            .map(|k| {
                get(2 + k).cloned().ok_or_else(|| OpError::malformed(format!("loop-carried value {k} is missing")))
            })
            .collect::<Result<_, _>>()?;
        let outer = &inputs[(2 + n).min(inputs.len())..];
        let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); self.scans];
        let mut i: i64 = 0;
        while i < trips && keep_going {
            if i >= self.max_iterations {
                return Err(OpError::limit(format!(
                    "the loop has run {} iterations and would go on (trip count {}): qplay stops loops there",
                    self.max_iterations,
                    if trips == i64::MAX { "none".to_string() } else { trips.to_string() }
                )));
            }
            let (iter, cond) = (
                Tensor { shape: vec![], data: Data::I64(vec![i]) },
                Tensor { shape: vec![], data: Data::Bool(vec![true]) },
            );
            let mut values: Vec<Option<&Tensor>> = vec![Some(&iter), Some(&cond)];
            values.extend(carried.iter().map(Some));
            values.extend(outer.iter().copied());
            let mut outs = run_subgraph(&self.body, &values, self.options)?.into_iter();
            keep_going = condition(&outs.next().ok_or_else(|| OpError::internal("the body gave no condition"))?)?;
            carried = outs.by_ref().take(n).collect();
            for (s, t) in scans.iter_mut().zip(outs) {
                s.push(t);
            }
            i += 1;
        }
        let mut out = carried;
        for (k, parts) in scans.iter().enumerate() {
            let declared = &self.body.outputs[1 + n + k];
            let dtype = parts
                .first()
                .map(Tensor::dtype)
                .unwrap_or_else(|| DType::from_onnx(declared.elem_type).unwrap_or(DType::F32));
            out.push(stack(parts, &declared.shape, dtype)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, Attrs, ValueInfo};

    fn vi(name: &str, elem_type: i32) -> ValueInfo {
        ValueInfo { name: name.into(), elem_type, shape: vec![] }
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            name: format!("{op}_{}", outputs[0]),
            op_type: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            attrs: Attrs::default(),
            fused: Default::default(),
        }
    }

    /// A Loop carrying `v` (v + step each iteration, `step` an outer value), its condition
    /// passed through, and `v` before the add as a scan output.
    fn counting_loop(inputs: &[&str]) -> Node {
        let body = Graph {
            nodes: vec![
                node("Identity", &["c"], &["c_out"]),
                node("Add", &["v", "step"], &["v_out"]),
                node("Identity", &["v"], &["scan"]),
            ],
            inputs: vec![vi("i", 7), vi("c", 9), vi("v", 1), vi("step", 1)],
            formal_inputs: 3,
            outputs: vec![vi("c_out", 9), vi("v_out", 1), vi("scan", 1)],
            opset: 17,
            ..Default::default()
        };
        let mut n = node("Loop", inputs, &["v_final", "scans"]);
        n.inputs.push("step".into());
        n.attrs.0.insert("body".into(), Attr::Graph(Box::new(body)));
        n
    }

    fn run(op: &dyn Op, m: Option<i64>, v: f32) -> Result<Vec<Tensor>, OpError> {
        let m = m.map(|m| Tensor { shape: vec![], data: Data::I64(vec![m]) });
        let v = Tensor { shape: vec![2], data: Data::F32(vec![v, -v]) };
        let step = Tensor { shape: vec![2], data: Data::F32(vec![1.0, 2.0]) };
        op.eval(&[m.as_ref(), None, Some(&v), Some(&step)])
    }

    #[test]
    fn runs_its_trip_count_carrying_values_and_stacking_scans() {
        let op = build(&counting_loop(&["M", "", "v0"]), &BuildCtx { opset: 17 }).unwrap();
        let out = run(&*op, Some(3), 0.5).unwrap();
        assert_eq!(out[0].as_f32().unwrap(), [3.5, 5.5]);
        assert_eq!(out[1].shape, [3, 2]);
        assert_eq!(out[1].as_f32().unwrap(), [0.5, -0.5, 1.5, 1.5, 2.5, 3.5]);
        // No iteration: the initial values, and empty scans.
        let out = run(&*op, Some(0), 0.5).unwrap();
        assert_eq!(out[0].as_f32().unwrap(), [0.5, -0.5]);
        assert_eq!(out[1].shape, [0]);
    }

    #[test]
    fn a_loop_without_end_stops_at_the_limit_and_a_bad_body_is_refused() {
        let mut op =
            build_with(&counting_loop(&["", "", "v0"]), &BuildCtx { opset: 17 }, PlanOptions::default()).unwrap();
        let l = (&mut *op as &mut dyn std::any::Any).downcast_mut::<Loop>().unwrap();
        l.max_iterations = 10;
        let e = run(&*op, None, 0.0).unwrap_err().to_string();
        assert!(e.contains("run 10 iterations and would go on (trip count none)"), "{e}");
        // A body that declares fewer inputs than the node's carried values need.
        let mut n = counting_loop(&["M", "", "v0", "w0"]);
        n.inputs.swap(3, 4);
        let e = build(&n, &BuildCtx { opset: 17 }).unwrap_err().to_string();
        assert!(e.contains("body declares 3 inputs"), "{e}");
        let mut n = counting_loop(&["M", "", "v0"]);
        n.attrs.0.clear();
        assert!(build(&n, &BuildCtx { opset: 17 }).unwrap_err().to_string().contains("no `body` graph"));
    }
}
