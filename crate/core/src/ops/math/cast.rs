//! Cast and CastLike: element type conversion with C cast semantics (float → int truncates
//! toward zero, narrowing ints wrap, `!= 0` → bool), as ONNX Runtime implements it.

use crate::model::{DType, Node, Tensor};
use crate::ops::grad::{out_grad, Backward, GradError, Grads};
use crate::ops::shape::elem::cast;
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError, Registry};

/// Cast to a fixed type (`to` attribute), or CastLike (the type of input 1).
#[derive(Debug, Clone)]
pub struct Cast {
    /// Target type; `None` for CastLike.
    to: Option<DType>,
}

impl Cast {
    fn target(&self, like: Option<DType>) -> Result<DType, OpError> {
        self.to.or(like).ok_or_else(|| OpError::malformed("CastLike needs input 1 (the tensor whose type to take)"))
    }
}

/// Adds Cast and CastLike to the registry.
pub fn register(r: &mut Registry) {
    r.register("Cast", build_cast);
    r.register("CastLike", |_, _| Ok(Box::new(Cast { to: None })));
}

fn build_cast(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let code = node.attrs.int_opt("to").ok_or_else(|| OpError::malformed("Cast needs the `to` attribute"))?;
    let to = i32::try_from(code)
        .map_err(|_| OpError::malformed(format!("unknown data type code {code}")))
        .and_then(|c| DType::from_onnx(c).map_err(OpError::unsupported))?;
    Ok(Box::new(Cast { to: Some(to) }))
}

impl Op for Cast {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        let to = self.target(inputs.get(1).copied().flatten().map(|f| f.dtype))?;
        Ok(vec![Fact::new(to, x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let to = self.target(inputs.get(1).copied().flatten().map(Tensor::dtype))?;
        Ok(vec![cast(input(inputs, 0)?, to)?])
    }

    /// Float to float (every float runs as float32 here) passes the gradient through; a cast
    /// from or to an integer or bool type stops it (such values carry none).
    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        let mut out: Grads = vec![None; b.inputs.len()];
        let x = input(b.inputs, 0)?;
        let to = self.target(b.inputs.get(1).copied().flatten().map(Tensor::dtype))?;
        if x.dtype() != DType::F32 || to != DType::F32 {
            return Ok(out);
        }
        if let Some(g) = out_grad(b.grads, 0, x.len())? {
            out[0] = Some(Tensor { shape: x.shape.clone(), data: crate::model::Data::F32(g.to_vec()) });
        }
        Ok(out)
    }
}
