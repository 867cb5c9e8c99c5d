//! Op family `math`: element-wise ops with numpy broadcasting, reductions, casts.
//!
//! The element-wise ops are instances of two generic ops rather than one type each:
//! [`unary::Unary`] (a float function and optionally an integer one) and [`binary::Binary`]
//! (a [`binary::Kernel`] per element-type family), both dtype-generic through
//! [`Elem`](super::shape::elem::Elem). [`broadcast`] holds the broadcasting rules and the strided
//! walker that the element-wise ops, reductions and view-like shape ops share.

pub mod activation;
pub mod argmax;
pub mod arith;
pub mod binary;
pub mod broadcast;
pub mod cast;
pub mod clip;
pub mod compare;
pub mod cumsum;
pub mod elementary;
pub mod is_nan;
pub mod mean;
pub mod not;
pub mod reduce;
pub mod topk;
pub mod unary;
pub mod where_op;

use super::Registry;

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    activation::register(r);
    elementary::register(r);
    arith::register(r);
    compare::register(r);
    reduce::register(r);
    argmax::register(r);
    topk::register(r);
    cast::register(r);
    r.register("Clip", clip::build);
    r.register("CumSum", cumsum::build);
    r.register("Where", where_op::build);
    r.register("Not", not::build);
    r.register("Mean", mean::build);
    is_nan::register(r);
}
