//! Op family `shape`: ops that move or reinterpret data without arithmetic, one per file, each
//! generic over the element type through [`elem::Elem`]. [`args`] holds what every op shares
//! for reading its arguments identically at plan time and at run time.

pub mod args;
pub mod concat;
pub mod constant;
pub mod constant_of_shape;
pub mod depth_to_space;
pub mod dropout;
pub mod elem;
pub mod expand;
pub mod eye_like;
pub mod flatten;
pub mod gather;
pub mod gather_elements;
pub mod gather_nd;
pub mod identity;
pub mod non_zero;
pub mod range;
pub mod reshape;
pub mod scatter_elements;
pub mod scatter_nd;
pub mod shape_of;
pub mod size;
pub mod slice;
pub mod split;
pub mod squeeze;
pub mod tile;
pub mod transpose;
pub mod trilu;
pub mod unsqueeze;

use super::Registry;

/// Implements [`Op`](crate::ops::Op) for an op that only changes the shape of input 0 (Reshape,
/// Flatten, Squeeze, Unsqueeze): the output shape comes from the type's `plan`, the data is the
/// input's, and the plan may hand the input buffer over without copying.
macro_rules! reshape_like_op {
    ($t:ty) => {
        impl $crate::ops::Op for $t {
            fn reshapes_input(&self) -> bool {
                true
            }

            fn infer(
                &self,
                inputs: &[Option<&$crate::ops::Fact>],
            ) -> Result<Vec<$crate::ops::Fact>, $crate::ops::OpError> {
                Ok(vec![$crate::ops::Fact::new(inputs.dtype(0)?, self.plan(inputs)?)])
            }

            fn eval(
                &self,
                inputs: &[Option<&$crate::model::Tensor>],
            ) -> Result<Vec<$crate::model::Tensor>, $crate::ops::OpError> {
                let shape = self.plan(inputs)?;
                Ok(vec![$crate::model::Tensor { shape, data: $crate::ops::input(inputs, 0)?.data.clone() }])
            }
        }
    };
}
pub(crate) use reshape_like_op;

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register("Concat", concat::build);
    r.register("Constant", constant::build);
    r.register("ConstantOfShape", constant_of_shape::build);
    r.register("Expand", expand::build);
    r.register("EyeLike", eye_like::build);
    r.register("Trilu", trilu::build);
    r.register("Flatten", flatten::build);
    r.register("Gather", gather::build);
    r.register("GatherElements", gather_elements::build);
    r.register("GatherND", gather_nd::build);
    r.register("NonZero", non_zero::build);
    r.register("ScatterND", scatter_nd::build);
    r.register("ScatterElements", scatter_elements::build);
    // Scatter (opsets 9–10) is ScatterElements under its old name.
    r.register("Scatter", scatter_elements::build);
    r.register("Identity", identity::build);
    r.register("Dropout", dropout::build);
    r.register("DepthToSpace", depth_to_space::build_depth_to_space);
    r.register("SpaceToDepth", depth_to_space::build_space_to_depth);
    r.register("Range", range::build);
    r.register("Reshape", reshape::build);
    r.register("Shape", shape_of::build);
    r.register("Size", size::build);
    r.register("Slice", slice::build);
    r.register("Split", split::build);
    r.register("Squeeze", squeeze::build);
    r.register("Tile", tile::build);
    r.register("Transpose", transpose::build);
    r.register("Unsqueeze", unsqueeze::build);
}
