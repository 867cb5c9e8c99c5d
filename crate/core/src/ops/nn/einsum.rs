//! `Einsum` (opset 12) on float tensors: an equation such as `bchw,bkc->bkhw` (YOLO-World's
//! text-contrastive head), with `...` for broadcast dimensions, repeated labels within one
//! operand (diagonals) and the implicit form (no `->`: the labels seen once, in alphabetical
//! order, after the broadcast dimensions).
//!
//! How it runs, as tract and onnxruntime do: each operand first takes its diagonals and sums
//! out the labels nothing else needs, in one pass; then operands are contracted two at a time
//! as one batched matrix product (`[batch, m, k] · [batch, k, n]`, through [`sgemm`]) after a
//! transpose of each into that order; the result is transposed to the output's labels.
//! Dimensions of size 1 broadcast against the others' sizes of the same label.

use super::sgemm::{sgemm, Init, MatRef};
use super::{checked_numel, f32_fact, f32_input, f32_output};
use crate::model::{strides, DType, Node};
use crate::ops::math::broadcast::for_each_offset;
use crate::ops::{BuildCtx, Fact, Op, OpError, Tensor};

/// Labels: `a`–`z` are 0–25, `A`–`Z` 26–51, broadcast dimensions 52 and up (the last one of
/// the broadcast dimensions is 52 + (their count − 1), aligned to the right across operands).
type Label = usize;
const ELLIPSIS: Label = 52;

/// One operand's labels; `ellipsis` is where `...` stands (before label index `k`), if it does.
#[derive(Debug, Clone)]
struct Term {
    labels: Vec<Label>,
    ellipsis: Option<usize>,
}

/// A built `Einsum`.
#[derive(Debug, Clone)]
pub struct Einsum {
    inputs: Vec<Term>,
    /// `None`: the implicit form.
    output: Option<Term>,
}

fn parse_term(s: &str) -> Result<Term, OpError> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut labels = Vec::new();
    let mut ellipsis = None;
    let mut rest = s.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            if ellipsis.replace(labels.len()).is_some() {
                return Err(OpError::malformed(format!("`{s}` has `...` twice")));
            }
            rest = r;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        labels.push(match c {
            'a'..='z' => c as usize - 'a' as usize,
            'A'..='Z' => 26 + c as usize - 'A' as usize,
            _ => return Err(OpError::malformed(format!("`{s}`: `{c}` is not a letter or `...`"))),
        });
        rest = &rest[c.len_utf8()..];
    }
    Ok(Term { labels, ellipsis })
}

/// Builds `Einsum` (`equation`).
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let eq = node.attrs.string("equation", "");
    if eq.trim().is_empty() {
        return Err(OpError::malformed("Einsum needs an `equation`"));
    }
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq, None),
    };
    let inputs: Vec<Term> = lhs.split(',').map(parse_term).collect::<Result<_, _>>()?;
    if inputs.len() != node.inputs.len() {
        return Err(OpError::malformed(format!(
            "the equation `{eq}` names {} operands, the node has {} inputs",
            inputs.len(),
            node.inputs.len()
        )));
    }
    let output = rhs.map(parse_term).transpose()?;
    if let Some(o) = &output {
        if (1..o.labels.len()).any(|i| o.labels[..i].contains(&o.labels[i])) {
            return Err(OpError::malformed(format!("the output of `{eq}` repeats a label")));
        }
        if let Some(l) = o.labels.iter().find(|l| !inputs.iter().any(|t| t.labels.contains(l))) {
            return Err(OpError::malformed(format!("the output label {} of `{eq}` is in no operand", name(*l))));
        }
    }
    Ok(Box::new(Einsum { inputs, output }))
}

fn name(l: Label) -> String {
    match l {
        0..=25 => ((b'a' + l as u8) as char).to_string(),
        26..=51 => ((b'A' + (l - 26) as u8) as char).to_string(),
        _ => "...".into(),
    }
}

/// An operand during evaluation: values, one label and size per axis.
#[derive(Debug, Clone)]
struct Operand {
    data: Vec<f32>,
    labels: Vec<Label>,
    shape: Vec<usize>,
}

/// Each operand's labels, the output's labels, each label's size.
type Resolved = (Vec<Vec<Label>>, Vec<Label>, Vec<usize>);

impl Einsum {
    /// Each operand's labels with its broadcast dimensions named, the output's labels, and each
    /// label's size (the largest, where sizes of 1 broadcast).
    fn resolve(&self, shapes: &[&[usize]]) -> Result<Resolved, OpError> {
        let mut spans = Vec::new();
        for (t, s) in self.inputs.iter().zip(shapes) {
            let span = match t.ellipsis {
                Some(_) => s.len().checked_sub(t.labels.len()),
                None => (s.len() == t.labels.len()).then_some(0),
            };
            let span = span.ok_or_else(|| {
                OpError::mismatch(format!("an operand of shape {s:?} does not fit {} labels", t.labels.len()))
            })?;
            spans.push(span);
        }
        let e = spans.iter().copied().max().unwrap_or(0);
        let full = |t: &Term, span: usize| -> Vec<Label> {
            let mut v = t.labels.clone();
            if let Some(at) = t.ellipsis {
                let dots: Vec<Label> = (e - span..e).map(|k| ELLIPSIS + k).collect();
                v.splice(at..at, dots);
            }
            v
        };
        let labels: Vec<Vec<Label>> = self.inputs.iter().zip(&spans).map(|(t, &s)| full(t, s)).collect();
        let mut size = vec![0usize; ELLIPSIS + e];
        let mut seen = vec![false; ELLIPSIS + e];
        for (ls, s) in labels.iter().zip(shapes) {
            for (&l, &d) in ls.iter().zip(s.iter()) {
                if seen[l] && size[l] != d && size[l] != 1 && d != 1 {
                    return Err(OpError::mismatch(format!("label {} has sizes {} and {d}", name(l), size[l])));
                }
                if !seen[l] || size[l] == 1 {
                    size[l] = d;
                }
                seen[l] = true;
            }
        }
        let out = match &self.output {
            Some(o) => {
                // Broadcast dimensions an output without `...` leaves out are summed.
                let mut v = o.labels.clone();
                if let Some(at) = o.ellipsis {
                    v.splice(at..at, (0..e).map(|k| ELLIPSIS + k));
                }
                v
            }
            None => {
                let count = |l: Label| labels.iter().flatten().filter(|&&x| x == l).count();
                let mut once: Vec<Label> = (0..ELLIPSIS).filter(|&l| count(l) == 1).collect();
                once.sort_unstable();
                (0..e).map(|k| ELLIPSIS + k).chain(once).collect()
            }
        };
        Ok((labels, out, size))
    }
}

/// Takes the diagonals of repeated labels and sums out the labels not in `keep`, in one pass:
/// the result has each kept label once, in first-seen order.
fn reduce_to(x: Operand, keep: &[Label]) -> Operand {
    let mut labels: Vec<Label> = Vec::new();
    for &l in &x.labels {
        if keep.contains(&l) && !labels.contains(&l) {
            labels.push(l);
        }
    }
    let unique = (1..x.labels.len()).all(|i| !x.labels[..i].contains(&x.labels[i]));
    if unique && labels.len() == x.labels.len() {
        return x;
    }
    // One walk over the distinct labels in order of first appearance (the input's row-major
    // order on its diagonals): a label's input stride is the sum of its axes' strides, its
    // output stride 0 where it is summed out.
    let src = strides(&x.shape);
    let mut distinct: Vec<(Label, usize, isize)> = Vec::new();
    for (a, &l) in x.labels.iter().enumerate() {
        match distinct.iter_mut().find(|d| d.0 == l) {
            Some(d) => d.2 += src[a] as isize,
            None => distinct.push((l, x.shape[a], src[a] as isize)),
        }
    }
    let shape: Vec<usize> = labels.iter().map(|&l| x.shape[pos(&x.labels, l)]).collect();
    let out_strides = strides(&shape);
    let walk: Vec<usize> = distinct.iter().map(|d| d.1).collect();
    let in_stride: Vec<isize> = distinct.iter().map(|d| d.2).collect();
    let out_stride: Vec<isize> =
        distinct.iter().map(|d| labels.iter().position(|&l| l == d.0).map_or(0, |p| out_strides[p] as isize)).collect();
    let mut out = vec![0f32; shape.iter().product()];
    let _ = for_each_offset(&walk, [&in_stride, &out_stride], [0, 0], |[i, o]| {
        out[o] += x.data[i];
        Ok(())
    });
    Operand { data: out, labels, shape }
}

/// The operand with its axes in the order of `labels` (each of its labels once), broadcast to
/// `size` where it has 1 and the label is in `grow`.
fn arrange(x: &Operand, labels: &[Label], size: &[usize], grow: &[Label]) -> Vec<f32> {
    let shape: Vec<usize> =
        labels.iter().map(|&l| if grow.contains(&l) { size[l] } else { x.shape[pos(&x.labels, l)] }).collect();
    let src_strides = strides(&x.shape);
    let stride: Vec<isize> = labels
        .iter()
        .map(|&l| {
            let a = pos(&x.labels, l);
            if x.shape[a] == 1 {
                0
            } else {
                src_strides[a] as isize
            }
        })
        .collect();
    let mut out = Vec::with_capacity(shape.iter().product());
    let _ = for_each_offset(&shape, [&stride], [0], |[i]| {
        out.push(x.data[i]);
        Ok(())
    });
    out
}

fn pos(labels: &[Label], l: Label) -> usize {
    labels.iter().position(|&m| m == l).unwrap_or(0)
}

/// `a · b` over their shared labels not in `keep`: `[batch, a-only, b-only]`.
fn contract(a: Operand, b: Operand, keep: &[Label], size: &[usize]) -> Result<Operand, OpError> {
    let a = reduce_to(a, &[keep, &b.labels].concat());
    let b = reduce_to(b, &[keep, &a.labels].concat());
    let shared: Vec<Label> = a.labels.iter().copied().filter(|l| b.labels.contains(l)).collect();
    let batch: Vec<Label> = shared.iter().copied().filter(|l| keep.contains(l)).collect();
    let inner: Vec<Label> = shared.iter().copied().filter(|l| !keep.contains(l)).collect();
    let a_only: Vec<Label> = a.labels.iter().copied().filter(|l| !shared.contains(l)).collect();
    let b_only: Vec<Label> = b.labels.iter().copied().filter(|l| !shared.contains(l)).collect();
    // Shared labels broadcast to the larger of the two sizes; the others keep their own.
    let mut size = size.to_vec();
    for &l in a.labels.iter().chain(&b.labels) {
        let d = |o: &Operand| o.labels.iter().position(|&m| m == l).map_or(1, |p| o.shape[p]);
        size[l] = d(&a).max(d(&b));
    }
    let size = size.as_slice();
    let prod = |ls: &[Label]| ls.iter().map(|&l| size[l]).product::<usize>();
    let (nb, m, k, n) = (prod(&batch), prod(&a_only), prod(&inner), prod(&b_only));
    let av = arrange(&a, &[&batch[..], &a_only, &inner].concat(), size, &shared);
    let bv = arrange(&b, &[&batch[..], &inner, &b_only].concat(), size, &shared);
    let labels: Vec<Label> = [&batch[..], &a_only, &b_only].concat();
    let shape: Vec<usize> = labels.iter().map(|&l| size[l]).collect();
    let mut out = vec![0f32; checked_numel(&shape)?];
    if m > 0 && n > 0 {
        for (i, c) in out.chunks_exact_mut(m * n).enumerate().take(nb) {
            let am = MatRef::row_major(&av[i * m * k..(i + 1) * m * k], m, k)?;
            let bm = MatRef::row_major(&bv[i * k * n..(i + 1) * k * n], k, n)?;
            sgemm(1.0, am, bm, Init::Zero, c, n)?;
        }
    }
    Ok(Operand { data: out, labels, shape })
}

impl Op for Einsum {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let facts: Vec<&Fact> =
            (0..self.inputs.len()).map(|i| f32_fact(inputs, i, "Inputs")).collect::<Result<_, _>>()?;
        let shapes: Vec<&[usize]> = facts.iter().map(|f| f.shape.as_slice()).collect();
        let (_, out, size) = self.resolve(&shapes)?;
        let shape: Vec<usize> = out.iter().map(|&l| size[l]).collect();
        checked_numel(&shape)?;
        Ok(vec![Fact::new(DType::F32, shape)])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let n = self.inputs.len();
        let data: Vec<&[f32]> = (0..n).map(|i| f32_input(inputs, i, "Inputs")).collect::<Result<_, _>>()?;
        let shapes: Vec<Vec<usize>> =
            (0..n).map(|i| super::input_shape(inputs, i).unwrap_or_default().to_vec()).collect();
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let (labels, out_labels, size) = self.resolve(&refs)?;
        let mut ops: Vec<Operand> = data
            .iter()
            .zip(&labels)
            .zip(&shapes)
            .map(|((d, l), s)| Operand { data: d.to_vec(), labels: l.clone(), shape: s.clone() })
            .collect();
        // Left to right; what a contraction keeps is what the output and the operands after it use.
        let mut acc = reduce_to(
            ops.remove(0),
            &[&out_labels[..], &ops.iter().flat_map(|o| o.labels.clone()).collect::<Vec<_>>()].concat(),
        );
        while !ops.is_empty() {
            let b = ops.remove(0);
            let later: Vec<Label> = ops.iter().flat_map(|o| o.labels.clone()).collect();
            acc = contract(acc, b, &[&out_labels[..], &later].concat(), &size)?;
        }
        let acc = reduce_to(acc, &out_labels);
        let shape: Vec<usize> = out_labels.iter().map(|&l| size[l]).collect();
        let y = arrange(&acc, &out_labels, &size, &out_labels);
        Ok(vec![f32_output(shape, y)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, Attrs};

    fn node(eq: &str, n: usize) -> Node {
        Node {
            name: "e".into(),
            op_type: "Einsum".into(),
            inputs: (0..n).map(|i| format!("x{i}")).collect(),
            outputs: vec!["y".into()],
            attrs: Attrs([("equation".to_string(), Attr::String(eq.into()))].into_iter().collect()),
            fused: Default::default(),
        }
    }

    /// numpy's einsum by brute force: every combination of the labels' values.
    fn reference(eq: &str, xs: &[(Vec<usize>, Vec<f32>)]) -> (Vec<usize>, Vec<f32>) {
        let built = build(&node(eq, xs.len()), &BuildCtx { opset: 12 }).unwrap();
        let op = built.downcast_ref::<Einsum>().unwrap();
        let shapes: Vec<&[usize]> = xs.iter().map(|(s, _)| s.as_slice()).collect();
        let (labels, out, size) = op.resolve(&shapes).unwrap();
        let all: Vec<Label> = (0..size.len()).filter(|&l| labels.iter().flatten().any(|&m| m == l)).collect();
        let oshape: Vec<usize> = out.iter().map(|&l| size[l]).collect();
        let mut y = vec![0f64; oshape.iter().product()];
        let mut val = vec![0usize; size.len()];
        let total: usize = all.iter().map(|&l| size[l]).product();
        for _ in 0..total {
            let mut p = 1f64;
            for ((ls, (s, d)), st) in labels.iter().zip(xs).zip(xs.iter().map(|(s, _)| strides(s))) {
                let off: usize = ls.iter().enumerate().map(|(a, &l)| if s[a] == 1 { 0 } else { val[l] * st[a] }).sum();
                p *= d[off] as f64;
            }
            let ost = strides(&oshape);
            y[out.iter().enumerate().map(|(a, &l)| val[l] * ost[a]).sum::<usize>()] += p;
            for &l in all.iter().rev() {
                val[l] += 1;
                if val[l] < size[l] {
                    break;
                }
                val[l] = 0;
            }
        }
        (oshape, y.into_iter().map(|v| v as f32).collect())
    }

    #[test]
    fn equations_match_a_brute_force_einsum() {
        let cases: &[(&str, &[&[usize]])] = &[
            ("bchw,bkc->bkhw", &[&[2, 3, 4, 5], &[2, 6, 3]]),
            ("ij,jk->ik", &[&[3, 4], &[4, 5]]),
            ("ij,jk", &[&[3, 4], &[4, 5]]),
            ("ii->i", &[&[4, 4]]),
            ("ii", &[&[4, 4]]),
            ("ij->", &[&[3, 4]]),
            ("ijk->kji", &[&[2, 3, 4]]),
            ("a,b->ab", &[&[3], &[4]]),
            ("i,i", &[&[5], &[5]]),
            ("ij,ij->ij", &[&[3, 4], &[3, 4]]),
            ("bij,bjk", &[&[2, 3, 4], &[2, 4, 5]]),
            ("...ij,...jk->...ik", &[&[2, 1, 3, 4], &[5, 4, 2]]),
            ("...ii->...i", &[&[2, 3, 3]]),
            ("ab,bc,cd->ad", &[&[2, 3], &[3, 4], &[4, 5]]),
            ("iij->j", &[&[3, 3, 4]]),
            ("bhwc,bhwc->bhw", &[&[1, 3, 4, 5], &[1, 3, 4, 5]]),
            ("ij,kj->ikj", &[&[1, 4], &[3, 4]]),
        ];
        let mut seed = 7u64;
        for (eq, shapes) in cases {
            let xs: Vec<(Vec<usize>, Vec<f32>)> = shapes
                .iter()
                .map(|s| {
                    let n: usize = s.iter().product();
                    let v = (0..n)
                        .map(|_| {
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            ((seed >> 40) % 2000) as f32 / 1000.0 - 1.0
                        })
                        .collect();
                    (s.to_vec(), v)
                })
                .collect();
            let (want_shape, want) = reference(eq, &xs);
            let op = build(&node(eq, xs.len()), &BuildCtx { opset: 12 }).unwrap();
            let ts: Vec<Tensor> = xs.iter().map(|(s, v)| Tensor::f32(s.clone(), v.clone()).unwrap()).collect();
            let refs: Vec<Option<&Tensor>> = ts.iter().map(Some).collect();
            let facts: Vec<Fact> = ts.iter().map(|t| Fact::new(DType::F32, t.shape.clone())).collect();
            let frefs: Vec<Option<&Fact>> = facts.iter().map(Some).collect();
            assert_eq!(op.infer(&frefs).unwrap()[0].shape, want_shape, "{eq}");
            let y = op.eval(&refs).unwrap().remove(0);
            assert_eq!(y.shape, want_shape, "{eq}");
            for (a, b) in y.as_f32().unwrap().iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{eq}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_equations_are_errors() {
        for (eq, n) in [("ij,jk->ik", 1), ("i1->i", 1), ("ij->ii", 1), ("ij->k", 1), ("...i...->i", 1), ("", 1)] {
            assert!(build(&node(eq, n), &BuildCtx { opset: 12 }).is_err(), "{eq}");
        }
        let op = build(&node("ij,jk->ik", 2), &BuildCtx { opset: 12 }).unwrap();
        let (a, b) = (Fact::new(DType::F32, vec![2, 3]), Fact::new(DType::F32, vec![4, 5]));
        assert!(op.infer(&[Some(&a), Some(&b)]).is_err(), "j is 3 and 4");
        let c = Fact::new(DType::F32, vec![2, 3, 4]);
        assert!(op.infer(&[Some(&c), Some(&b)]).is_err(), "rank 3 for two labels");
    }
}
