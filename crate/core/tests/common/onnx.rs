//! ONNX protos built by hand, for the tests that feed the loader hand-made models
//! (`model_load.rs`, `fuzz_regressions.rs`).
#![allow(dead_code)] // each test uses its own part

use qplay_core::model::proto::{
    tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, NodeProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// A tensor value of ONNX element type `elem_type` (1 float, 7 int64, 9 bool…) with the given
/// dimensions.
pub fn tensor_vi(name: &str, elem_type: i32, dims: impl IntoIterator<Item = dimension::Value>) -> ValueInfoProto {
    let dim = dims.into_iter().map(|d| Dimension { value: Some(d), ..Default::default() }).collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node of the default domain, without a name or attributes.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}
