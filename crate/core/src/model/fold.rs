//! The budget of constant folding: how much a plan may compute from constants alone.
//!
//! Planning evaluates every node whose inputs are all constants ([`super::Plan`]). Real models
//! fold little: shape arithmetic, a few weight transforms. A crafted file of a few hundred bytes
//! can instead ask for an `Expand` to a 16384 × 16384 matrix followed by a constant `MatMul` of
//! it with itself (4.4 · 10¹² multiply-adds), or a chain of such nodes, each of them under the
//! per-tensor limit: planning would then run for hours or keep gigabytes of folded constants.
//! `FoldBudget` charges each folded node, *before* it is evaluated, an estimate of its work and
//! the elements it produces, and refuses the node that would go over either total with a
//! [`ModelError::Limit`] naming it.

use super::{ModelError, Node};
use crate::model::OpKind;
use crate::ops::Fact;

/// Default [`super::PlanOptions::max_fold_elements`]: 256 Mi elements (1 GiB of float32) folded
/// in all, the per-tensor limit.
pub const DEFAULT_MAX_FOLD_ELEMENTS: u64 = 256 << 20;

/// Default [`super::PlanOptions::max_fold_work`]: 1 Gi operations (multiply-adds or elements
/// read and written), about a second of one core.
pub const DEFAULT_MAX_FOLD_WORK: u64 = 1 << 30;

/// What constant folding has used so far in one plan, against its limits.
#[derive(Debug)]
pub(crate) struct FoldBudget {
    max_elements: u64,
    max_work: u64,
    elements: u64,
    work: u64,
}

impl FoldBudget {
    pub(crate) fn new(max_elements: u64, max_work: u64) -> FoldBudget {
        FoldBudget { max_elements, max_work, elements: 0, work: 0 }
    }

    /// Charges folding `node` (inputs `inputs`, outputs as inferred) to the budget, or says why it
    /// may not be folded. `Constant` nodes are free: their value is in the file, which the loader
    /// already bounds.
    pub(crate) fn charge(&mut self, node: &Node, inputs: &[Option<&Fact>], outputs: &[Fact]) -> Result<(), ModelError> {
        if node.is(OpKind::Constant) {
            return Ok(());
        }
        let produced = outputs.iter().fold(0u64, |acc, f| acc.saturating_add(count(&f.shape)));
        let work = work(node, inputs, outputs);
        let elements = self.elements.saturating_add(produced);
        let total = self.work.saturating_add(work);
        let what = || format!("node `{}` ({})", node.name, node.op_type);
        const ADVICE: &str = "a model that computes this much from constants alone is probably malformed; \
             if it is real, save it with the constant already computed (e.g. with onnxsim) or make \
             the constant a graph input";
        if elements > self.max_elements {
            return Err(ModelError::Limit(format!(
                "constant folding: {} would compute {produced} elements from constants at load time, \
                 {elements} in all with what was folded before, more than the limit of {} \
                 (PlanOptions::max_fold_elements); {ADVICE}",
                what(),
                self.max_elements
            )));
        }
        if total > self.max_work {
            return Err(ModelError::Limit(format!(
                "constant folding: {} would take about {work} operations on constants at load time, \
                 {total} in all with what was folded before, more than the limit of {} \
                 (PlanOptions::max_fold_work); {ADVICE}",
                what(),
                self.max_work
            )));
        }
        self.elements = elements;
        self.work = total;
        Ok(())
    }
}

/// Elements of a shape, saturating (the per-tensor limit is checked elsewhere).
fn count(shape: &[usize]) -> u64 {
    shape.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// The shape of input `i`, when given.
fn shape_of<'a>(inputs: &[Option<&'a Fact>], i: usize) -> Option<&'a [usize]> {
    inputs.get(i).copied().flatten().map(|f| f.shape.as_slice())
}

/// An estimate of the operations evaluating `node` takes: every element read and written, plus,
/// for the ops whose work grows faster than their inputs and outputs (products, convolutions,
/// pooling windows), the multiply-adds. An upper bound up to a small constant factor for every
/// op in the registry; the other ops touch each element a bounded number of times.
fn work(node: &Node, inputs: &[Option<&Fact>], outputs: &[Fact]) -> u64 {
    let io =
        inputs.iter().flatten().copied().chain(outputs.iter()).fold(0u64, |acc, f| acc.saturating_add(count(&f.shape)));
    let out = outputs.first().map_or(0, |f| count(&f.shape));
    // Multiply-adds per output element (or per input element for ConvTranspose).
    let per = |shape: Option<&[usize]>, skip: usize| shape.map_or(0, |s| count(s.get(skip..).unwrap_or(&[])));
    let Some(kind) = node.kind() else { return io };
    use OpKind::*;
    let macs = match kind {
        // A [.., M, K] × [.., K, N]: K per output element (K is A's last dimension, or its only one).
        MatMul | MatMulInteger | QLinearMatMul => {
            out.saturating_mul(shape_of(inputs, 0).and_then(|a| a.last().copied()).unwrap_or(0) as u64)
        }
        Gemm => {
            let k = shape_of(inputs, 0).and_then(|a| {
                if node.attrs.int("transA", 0) != 0 {
                    a.first().copied()
                } else {
                    a.last().copied()
                }
            });
            out.saturating_mul(k.unwrap_or(0) as u64)
        }
        // W is [M, C/group, k…]: C/group · ∏k per output element.
        Conv | ConvInteger => out.saturating_mul(per(shape_of(inputs, 1), 1)),
        QLinearConv => out.saturating_mul(per(shape_of(inputs, 3), 1)),
        // W is [C, M/group, k…]: each input element reaches M/group · ∏k outputs.
        ConvTranspose => per(shape_of(inputs, 0), 0).saturating_mul(per(shape_of(inputs, 1), 1)),
        MaxPool | AveragePool => {
            let window = node
                .attrs
                .ints("kernel_shape")
                .unwrap_or(&[])
                .iter()
                .fold(1u64, |acc, &k| acc.saturating_mul(k.max(1) as u64));
            out.saturating_mul(window)
        }
        _ => 0,
    };
    io.saturating_add(macs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, DType};

    fn fact(shape: &[usize]) -> Fact {
        Fact::new(DType::F32, shape.to_vec())
    }

    fn node(op: &str) -> Node {
        Node {
            name: "n".into(),
            op_type: op.into(),
            inputs: vec![],
            outputs: vec![],
            attrs: Default::default(),
            fused: Default::default(),
        }
    }

    #[test]
    fn matmul_work_counts_multiply_adds() {
        let (a, b) = (fact(&[2, 64, 32]), fact(&[2, 32, 16]));
        let w = work(&node("MatMul"), &[Some(&a), Some(&b)], &[fact(&[2, 64, 16])]);
        assert_eq!(w, 2 * 64 * 16 * 32 + (2 * 64 * 32 + 2 * 32 * 16 + 2 * 64 * 16));
        let mut gemm = node("Gemm");
        gemm.attrs.0.insert("transA".into(), Attr::Int(1));
        let (a, b) = (fact(&[32, 64]), fact(&[32, 16]));
        let w = work(&gemm, &[Some(&a), Some(&b)], &[fact(&[64, 16])]);
        assert_eq!(w, 64 * 16 * 32 + (32 * 64 + 32 * 16 + 64 * 16));
    }

    #[test]
    fn conv_and_pool_work_count_the_window() {
        let (x, w) = (fact(&[1, 8, 10, 10]), fact(&[4, 2, 3, 3]));
        let y = fact(&[1, 4, 8, 8]);
        assert_eq!(work(&node("Conv"), &[Some(&x), Some(&w)], std::slice::from_ref(&y)), 256 * 18 + 800 + 72 + 256);
        let mut pool = node("MaxPool");
        pool.attrs.0.insert("kernel_shape".into(), Attr::Ints(vec![3, 3]));
        assert_eq!(work(&pool, &[Some(&x)], &[y]), 256 * 9 + 800 + 256);
        let (x, w) = (fact(&[1, 2, 4, 4]), fact(&[2, 3, 2, 2]));
        assert_eq!(work(&node("ConvTranspose"), &[Some(&x), Some(&w)], &[fact(&[1, 3, 5, 5])]), 32 * 12 + 32 + 24 + 75);
    }

    #[test]
    fn the_budget_is_cumulative_and_names_the_node() {
        let mut budget = FoldBudget::new(100, 1_000);
        let x = fact(&[40]);
        let add = node("Add");
        budget.charge(&add, &[Some(&x), Some(&x)], &[fact(&[40])]).expect("40 of 100 elements");
        budget.charge(&add, &[Some(&x), Some(&x)], &[fact(&[40])]).expect("80 of 100 elements");
        let e = budget.charge(&add, &[Some(&x), Some(&x)], &[fact(&[40])]).unwrap_err().to_string();
        assert!(e.contains("node `n` (Add) would compute 40 elements") && e.contains("120 in all"), "{e}");
        assert!(e.contains("max_fold_elements"), "{e}");
        // Constant nodes are free (their value is in the file).
        budget.charge(&node("Constant"), &[], &[fact(&[1 << 20])]).expect("free");
        let mut budget = FoldBudget::new(u64::MAX, 1_000);
        let (a, b) = (fact(&[10, 10]), fact(&[10, 10]));
        let e = budget.charge(&node("MatMul"), &[Some(&a), Some(&b)], &[fact(&[10, 10])]).unwrap_err().to_string();
        assert!(e.contains("about 1300 operations") && e.contains("max_fold_work"), "{e}");
        // Shapes whose size overflows saturate instead of wrapping.
        let huge = fact(&[usize::MAX, usize::MAX]);
        assert!(budget.charge(&add, &[Some(&huge)], std::slice::from_ref(&huge)).is_err());
    }
}
