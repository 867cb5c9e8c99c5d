//! Why an op could not be built, inferred or run: [`OpError`]. The message says what to change;
//! the variant says what kind of problem it is, so that callers (the planner, the page) branch
//! on [`OpError::code`] instead of reading the text.

use crate::model::ModelError;
use std::fmt::Display;

/// What can go wrong in an op ([`Op::infer`](super::Op::infer), [`Op::eval`](super::Op::eval),
/// a [`Builder`](super::Builder) or a helper). The planner wraps it with the node it happened in
/// ([`ModelError::Op`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// The node asks for something valid in ONNX that qplay does not implement: an attribute
    /// value, a mode, a data type, an argument it needs to be a constant. The message says what
    /// to export instead.
    #[error("{0}")]
    Unsupported(String),
    /// The node contradicts ONNX or itself: a required attribute or input is missing, or an
    /// attribute or argument value is outside what the op allows. The model is invalid.
    #[error("{0}")]
    Malformed(String),
    /// The inputs' shapes or element types are ones the op cannot take (ranks, channel counts,
    /// inner dimensions, broadcasting, a float-only op given integers). The model disagrees with
    /// itself, or with the input shape it was planned or run with.
    #[error("{0}")]
    Mismatch(String),
    /// A size limit: an output or a count above what one tensor may have or can be addressed.
    #[error("{0}")]
    Limit(String),
    /// An invariant qplay keeps between its own parts broke: a bug in qplay, not in the model.
    #[error("{0}")]
    Internal(String),
    /// The subgraph an `If` (the branch it took) or a `Loop` (its body) ran at run time failed
    /// to plan or run; the error keeps its kind.
    #[error("in the subgraph it ran: {0}")]
    Branch(Box<ModelError>),
}

impl OpError {
    /// [`OpError::Unsupported`] with `msg`.
    pub fn unsupported(msg: impl Display) -> OpError {
        OpError::Unsupported(msg.to_string())
    }

    /// [`OpError::Malformed`] with `msg`.
    pub fn malformed(msg: impl Display) -> OpError {
        OpError::Malformed(msg.to_string())
    }

    /// [`OpError::Mismatch`] with `msg`.
    pub fn mismatch(msg: impl Display) -> OpError {
        OpError::Mismatch(msg.to_string())
    }

    /// [`OpError::Limit`] with `msg`.
    pub fn limit(msg: impl Display) -> OpError {
        OpError::Limit(msg.to_string())
    }

    /// [`OpError::Internal`] with `msg`.
    pub fn internal(msg: impl Display) -> OpError {
        OpError::Internal(msg.to_string())
    }

    /// A required input the node leaves out: the model is malformed.
    pub fn missing_input(i: usize) -> OpError {
        OpError::Malformed(format!("input {i} is missing"))
    }

    /// A stable name for the kind of error, for callers that branch on it:
    /// `unsupported-feature` ([`OpError::Unsupported`]), `bad-model` ([`OpError::Malformed`]),
    /// `mismatch` ([`OpError::Mismatch`]), `limit` ([`OpError::Limit`]), `internal`
    /// ([`OpError::Internal`]); a failed branch ([`OpError::Branch`]) gives its error's code.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::Unsupported(_) => "unsupported-feature",
            OpError::Malformed(_) => "bad-model",
            OpError::Mismatch(_) => "mismatch",
            OpError::Limit(_) => "limit",
            OpError::Internal(_) => "internal",
            OpError::Branch(e) => e.code(),
        }
    }

    /// The message with `context` in front (`"{context}: {message}"`), keeping the kind.
    pub fn context(self, context: impl Display) -> OpError {
        self.map_message(|m| format!("{context}: {m}"))
    }

    /// The message rewritten by `f`, keeping the kind. A branch's error is kept whole: its
    /// message already names the node inside the branch.
    pub fn map_message(self, f: impl FnOnce(&str) -> String) -> OpError {
        match self {
            OpError::Unsupported(m) => OpError::Unsupported(f(&m)),
            OpError::Malformed(m) => OpError::Malformed(f(&m)),
            OpError::Mismatch(m) => OpError::Mismatch(f(&m)),
            OpError::Limit(m) => OpError::Limit(f(&m)),
            OpError::Internal(m) => OpError::Internal(f(&m)),
            OpError::Branch(e) => OpError::Branch(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code_and_keeps_its_text() {
        let cases = [
            (OpError::unsupported("mode `cubic` is not supported"), "unsupported-feature"),
            (OpError::malformed("kernel_shape is required"), "bad-model"),
            (OpError::mismatch("inner dimensions differ"), "mismatch"),
            (OpError::limit("too many elements"), "limit"),
            (OpError::internal("a view overflows"), "internal"),
            (OpError::missing_input(2), "bad-model"),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(OpError::missing_input(2).to_string(), "input 2 is missing");
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = OpError::mismatch("expected float32").context("scale");
        assert_eq!(e, OpError::Mismatch("scale: expected float32".into()));
    }

    #[test]
    fn a_branch_error_gives_its_own_code() {
        let inner = ModelError::Op {
            node: "up".into(),
            op: "Resize".into(),
            error: OpError::unsupported("mode `cubic` is not supported: use nearest or linear"),
        };
        let e = OpError::Branch(Box::new(inner));
        assert_eq!(e.code(), "unsupported-feature");
        assert!(e.to_string().starts_with("in the subgraph it ran: node `up` (Resize)"), "{e}");
    }
}
