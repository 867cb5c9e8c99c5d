//! One module per subcommand.
pub mod bench;
pub mod calib;
mod common;
pub mod compare;
pub mod convert;
pub mod detect;
pub mod explain;
pub mod infer;
pub mod inspect;
pub mod qat;
pub mod quantize;
