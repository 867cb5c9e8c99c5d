//! EyeLike: a rank-2 tensor shaped like the input with ones on diagonal `k` (0: the main one,
//! positive: above) and zeros elsewhere, of type `dtype` (default: the input's).

use super::elem::{dispatch, Elem};
use crate::model::{DType, Node, Tensor};
use crate::ops::{input, input_fact, BuildCtx, Fact, Op, OpError};

/// EyeLike.
#[derive(Debug, Clone)]
pub struct EyeLike {
    dtype: Option<DType>,
    k: i64,
}

/// Builds EyeLike.
pub fn build(node: &Node, _: &BuildCtx) -> Result<Box<dyn Op>, OpError> {
    let dtype = match node.attrs.int_opt("dtype") {
        Some(code) => {
            Some(DType::from_onnx(code as i32).map_err(|e| OpError::unsupported(format!("EyeLike dtype: {e}")))?)
        }
        None => None,
    };
    Ok(Box::new(EyeLike { dtype, k: node.attrs.int("k", 0) }))
}

impl Op for EyeLike {
    fn infer(&self, inputs: &[Option<&Fact>]) -> Result<Vec<Fact>, OpError> {
        let x = input_fact(inputs, 0)?;
        if x.shape.len() != 2 {
            return Err(OpError::mismatch(format!("EyeLike needs a rank-2 input, got shape {:?}", x.shape)));
        }
        Ok(vec![Fact::new(self.dtype.unwrap_or(x.dtype), x.shape.clone())])
    }

    fn eval(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, OpError> {
        let x = input(inputs, 0)?;
        let [r, c] = x.shape[..] else {
            return Err(OpError::mismatch(format!("EyeLike needs a rank-2 input, got shape {:?}", x.shape)));
        };
        let dtype = self.dtype.unwrap_or(x.dtype());
        let data = dispatch!(dtype, T => {
            let mut v = vec![T::default(); r * c];
            for i in 0..r {
                let j = i as i64 + self.k;
                if (0..c as i64).contains(&j) {
                    v[i * c + j as usize] = T::from_i64(1);
                }
            }
            T::wrap(v)
        });
        Ok(vec![Tensor { shape: x.shape.clone(), data }])
    }
}
