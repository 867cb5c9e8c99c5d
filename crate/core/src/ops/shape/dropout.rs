//! Dropout at inference: its input unchanged, and a mask of all `true` when the node asks for
//! one (older exporters and Keras converters leave Dropout nodes in inference graphs; onnxruntime
//! runs them the same way). Training mode (opset 12+'s `training_mode` input set to true) drops
//! values at random; it is refused with what to do.

use crate::model::{DType, Data, Node, Tensor};
use crate::ops::grad::{Backward, GradError, Grads};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// A built Dropout node.
#[derive(Debug, Clone)]
pub struct Dropout {
    /// Whether the node has its second output, the mask.
    mask: bool,
}

/// Builds Dropout.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let mask = node.outputs.get(1).is_some_and(|o| !o.is_empty());
    Ok(Box::new(Dropout { mask }))
}

const TRAINING: &str = "runs in training mode (training_mode is true), which drops values at random; \
    export the model in inference mode (PyTorch: model.eval() before torch.onnx.export)";

fn training(t: Option<&Tensor>) -> Result<bool, OpError> {
    match t.map(|t| &t.data) {
        None => Ok(false),
        Some(Data::Bool(v)) if v.len() == 1 => Ok(v[0]),
        Some(_) => Err(OpError::mismatch("training_mode must be one bool")),
    }
}

impl Op for Dropout {
    fn reshapes_input(&self) -> bool {
        !self.mask
    }

    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if let Some(mode) = inputs.get(2).copied().flatten() {
            if training(mode.value.as_deref())? {
                return Err(OpError::unsupported(TRAINING));
            }
        }
        let mut out = vec![x.clone()];
        if self.mask {
            out.push(Fact::new(DType::Bool, x.shape.clone()));
        }
        Ok(out)
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        if training(inputs.get(2).copied().flatten())? {
            return Err(OpError::unsupported(TRAINING));
        }
        let mut out = vec![x.clone()];
        if self.mask {
            out.push(Tensor { shape: x.shape.clone(), data: Data::Bool(vec![true; x.len()]) });
        }
        Ok(out)
    }

    fn backward(&self, b: &Backward<'_>) -> Result<Grads, GradError> {
        Ok(crate::ops::grad::reshape_back(b.inputs, b.grads)?)
    }
}
