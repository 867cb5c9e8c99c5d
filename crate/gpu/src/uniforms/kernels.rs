//! The uniform structs, one per kernel, and the structs nested in them: the one definition of
//! each (see the parent module for how their WGSL is generated and checked).

use super::{Field, Uniform, UniformLayout, WgslStruct, WgslType};
use crate::Kernel;

uniforms! {
    nested {
        /// A 2-D convolution or pooling window (1-D as a height of 1), shared by the
        /// convolutions and max pooling (`window.wgsl` reads it): input `ih × iw`, output
        /// `oh × ow`, kernel `kh × kw`, strides, dilations, padding before (top, left).
        Window as "Window" {
            ih: u32,
            iw: u32,
            oh: u32,
            ow: u32,
            kh: u32,
            kw: u32,
            sh: u32,
            sw: u32,
            dh: u32,
            dw: u32,
            ph: u32,
            pw: u32,
        }

        /// The requantization epilogue shared by the quantized convolutions (`requant.wgsl`).
        Epi as "Epi" {
            /// 0: 8-bit codes, packed 4 per word; 1: float32 NCHW.
            float_out: u32,
            /// 1: per-channel upper bounds apply.
            has_cmax: u32,
            /// Output zero-point.
            zp: i32,
            /// Code clamp (the fused activation, or the type's range).
            lo: i32,
            /// Upper code clamp.
            hi: i32,
            /// Float clamp (±f32 max when unbounded).
            flo: f32,
            /// Upper float clamp.
            fhi: f32,
            _pad: u32,
        }
    }

    /// `qgemm.wgsl`: the int8 GEMM's dimensions and output clamp ([`crate::QGemm`]).
    QgemmUniform for Qgemm as "Dims" {
        m: u32,
        n: u32,
        /// K / 4, rounded up (zero-padded words).
        k4: u32,
        /// Output zero-point.
        zp: i32,
        /// Clamp bounds in the output's integer domain.
        lo: i32,
        hi: i32,
        _pad: [u32; 2],
    }

    /// `qconv.wgsl`: `QLinearConv` as an implicit GEMM.
    QconvUniform for Qconv as "Conv" {
        win: Window,
        /// Input words per pixel.
        c4_in: u32,
        /// Output channels.
        m: u32,
        /// Output words per pixel.
        m4: u32,
        /// Batch · oh · ow.
        npix: u32,
        /// Input channels per group.
        cg: u32,
        /// Output channels per group.
        mg: u32,
        /// Words per tap in a weight row.
        cg4: u32,
        /// 1: the fast path applies.
        fast: u32,
        /// 0x80808080 for uint8 activations, else 0.
        x_xor: u32,
        /// x' of a padded tap, in all four lanes.
        pad_word: u32,
        /// 0x01 in the lanes of the last word of a tap that hold real channels.
        last_mask: u32,
        /// 1: some channel has zb ≠ 0 (Σx' is needed).
        need_xsum: u32,
        epi: Epi,
    }

    /// `dwconv.wgsl`: depthwise `QLinearConv`.
    DwconvUniform for Dwconv as "Dw" {
        win: Window,
        /// Words per pixel (input and output).
        c4: u32,
        /// Channels.
        c: u32,
        /// Batch · oh · ow.
        npix: u32,
        /// 0x80808080 for uint8 activations, else 0.
        x_xor: u32,
        /// shift − zx: x' + a = x − zx.
        a: i32,
        _pad: [u32; 3],
        epi: Epi,
    }

    /// `fconv.wgsl`: float `Conv`.
    FconvUniform for Fconv as "F" {
        win: Window,
        /// Input channels.
        c: u32,
        /// Output channels.
        m: u32,
        /// Batch · oh · ow.
        npix: u32,
        /// Input channels per group.
        cg: u32,
        /// Output channels per group.
        mg: u32,
        has_bias: u32,
        has_lo: u32,
        has_hi: u32,
        has_cmax: u32,
        lo: f32,
        hi: f32,
        /// 1: the four channels of an invocation are in one group.
        fast: u32,
    }

    /// `quantize.wgsl`: `QuantizeLinear` per tensor.
    QuantizeUniform for Quantize as "Q" {
        /// Channels.
        c: u32,
        /// Words per pixel.
        c4: u32,
        /// Pixels per image (product of the spatial dims; 1 for rank 2).
        s: u32,
        /// Batch · s.
        npix: u32,
        scale: f32,
        zp: i32,
        qmin: i32,
        qmax: i32,
    }

    /// `dequantize.wgsl`: `DequantizeLinear` per tensor.
    DequantizeUniform for Dequantize as "D" {
        c: u32,
        c4: u32,
        s: u32,
        npix: u32,
        scale: f32,
        zp: i32,
        /// 0x80808080 for uint8, else 0.
        x_xor: u32,
        /// 128 for uint8, else 0.
        shift: i32,
    }

    /// `binary.wgsl`: broadcasting binary arithmetic and clip, per output element.
    BinaryUniform for Binary as "B" {
        @elements
        /// A [`crate::BinaryCode`].
        op: u32,
        has_lo: u32,
        has_hi: u32,
        lo: f32,
        hi: f32,
        _pad: u32,
        /// Output shape, right-aligned to 8 dims (leading 1s).
        dims: [[u32; 4]; 2],
        /// `a`'s strides (0 where broadcast).
        sa: [[u32; 4]; 2],
        /// `b`'s strides.
        sb: [[u32; 4]; 2],
    }

    /// `copy.wgsl`: a strided copy, per element copied.
    CopyUniform for Copy as "C" {
        @elements
        dst_base: u32,
        src_base: u32,
        dims: [[u32; 4]; 2],
        /// Source strides, two's complement (negative for reversed slices: the sum wraps).
        ss: [[u32; 4]; 2],
        /// Destination strides.
        sd: [[u32; 4]; 2],
    }

    /// `copy8.wgsl`: a strided gather of Flat8 or Flat16 codes, per output word.
    Copy8Uniform for Copy8 as "C8" {
        @elements
        /// Output codes.
        len: u32,
        /// 1: codes outside the box get `value`; 0: they keep their old value.
        fill: u32,
        /// The fill code (its low byte, or low half for int16 codes).
        value: u32,
        /// The source offset of the box's first element.
        src_base: u32,
        /// 1: int16 codes (Flat16), two to a word; else bytes.
        bits16: u32,
        _pad: u32,
        /// Output shape, right-aligned to 8 dims (leading 1s).
        dims: [[u32; 4]; 2],
        /// The box's first element in the output.
        base: [[u32; 4]; 2],
        /// The box's size.
        extent: [[u32; 4]; 2],
        /// Source strides per box dim, two's complement.
        ss: [[u32; 4]; 2],
    }

    /// `pad.wgsl`: constant-mode pad, per output element.
    PadUniform for Pad as "P" {
        @elements
        /// The constant.
        value: f32,
        _pad: u32,
        /// Output shape.
        dims: [[u32; 4]; 2],
        /// Pads before each dim (negative: crop).
        begin: [[i32; 4]; 2],
        /// Input shape.
        idims: [[u32; 4]; 2],
        /// Input strides.
        istr: [[u32; 4]; 2],
    }

    /// `maxpool.wgsl`: 1-D/2-D max pooling, per output element (planes · oh · ow).
    MaxpoolUniform for Maxpool as "M" {
        @elements
        _pad: [u32; 2],
        win: Window,
    }

    /// `preprocess.wgsl`: RGBA pixels to the model's input tensor, per input pixel
    /// (in_w · in_h).
    PreprocessUniform for Preprocess as "P" {
        @elements
        /// Frame width in pixels.
        src_w: u32,
        in_w: u32,
        /// Content rectangle in the input.
        left: u32,
        top: u32,
        cw: u32,
        ch: u32,
        /// 1: `[1, H, W, 3]`, else `[1, 3, H, W]`.
        nhwc: u32,
        _pad: [u32; 3],
        /// RGBA byte of each model channel.
        src_ch: [u32; 4],
        /// 1 / (255·std).
        a: [f32; 4],
        /// −mean / std.
        b: [f32; 4],
        /// Normalised padding value.
        pad: [f32; 4],
    }

    /// `unary.wgsl`: float functions of one tensor, per element.
    UnaryUniform for Unary as "U" {
        @elements
        /// A [`crate::UnaryCode`].
        op: u32,
        alpha: f32,
        beta: f32,
        _pad: [u32; 3],
    }

    /// `resample.wgsl`: resampling of one axis by taps, per output element.
    ResampleUniform for Resample as "R" {
        @elements
        n_in: u32,
        n_out: u32,
        inner: u32,
        _pad: [u32; 3],
    }

    /// `reduce.wgsl`: softmax and the global pools, per row (outer · inner rows).
    ReduceUniform for Reduce as "S" {
        @elements
        len: u32,
        inner: u32,
        /// A [`crate::ReduceCode`].
        op: u32,
        _pad: [u32; 3],
    }

    /// `tflconv.wgsl`: TFLite's int8/uint8 convolutions and fully-connected layer on Flat8
    /// tensors, per output word (four codes).
    TflconvUniform for Tflconv as "T" {
        @elements
        /// Output codes.
        len: u32,
        /// Input channels (fully-connected: K).
        c: u32,
        win: Window,
        /// Output channels.
        o: u32,
        /// Depthwise: output channels per input channel.
        mult: u32,
        /// 1: depthwise (weights `[1, kh, kw, O]`).
        depthwise: u32,
        /// 1: a multiplier per output channel.
        per_channel: u32,
        x_zp: i32,
        w_zp: i32,
        y_zp: i32,
        /// The input and output codes: 0 uint8, 1 int8, 2 int16 (int8 weights).
        signed: u32,
        /// The fused activation's range.
        act_lo: i32,
        act_hi: i32,
        /// The codes' range.
        code_lo: i32,
        code_hi: i32,
        /// 1: channels are multiples of 4 (and a depthwise multiplier is 1): a word per tap.
        quad: u32,
        /// 1: 64-bit sums, an int64 bias and `mbqm64` (16x8 models with an int64 bias).
        wide: u32,
        _pad: [u32; 2],
    }

    /// `tflbinary.wgsl`: TFLite's int8/uint8 element-wise arithmetic with broadcasting on Flat8
    /// tensors, per output word (four codes).
    TflbinaryUniform for Tflbinary as "TB" {
        @elements
        /// Output codes.
        len: u32,
        /// 0: ADD / SUB, 1: MUL, 2: MAXIMUM, 3: MINIMUM, 4: requantize A.
        op: u32,
        /// ADD: 1, SUB: −1.
        sign: i32,
        /// ADD / SUB's left shift (20 for 8-bit codes).
        left_shift: u32,
        za: i32,
        zb: i32,
        zc: i32,
        /// The inputs' codes: 0 uint8, 1 int8, 2 int16 (then the output's too).
        signed: u32,
        act_lo: i32,
        act_hi: i32,
        /// The output codes' range.
        code_lo: i32,
        code_hi: i32,
        /// (multiplier, shift) of input A (ADD / SUB).
        ma: [i32; 2],
        /// Of input B.
        mb: [i32; 2],
        /// Of the output (MUL: of the product).
        mo: [i32; 2],
        /// Output shape, right-aligned to 8 dims (leading 1s).
        dims: [[u32; 4]; 2],
        /// A's strides (0 where broadcast).
        sa: [[u32; 4]; 2],
        /// B's strides.
        sb: [[u32; 4]; 2],
    }

    /// `tflpool.wgsl`: TFLite's int8/uint8 pools on NHWC Flat8 tensors, per output word.
    TflpoolUniform for Tflpool as "TP" {
        @elements
        /// Output codes.
        len: u32,
        /// Channels.
        c: u32,
        ih: u32,
        iw: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        sh: u32,
        sw: u32,
        /// Padding before (top, left).
        pt: u32,
        pl: u32,
        /// 1: average, else max.
        average: u32,
        /// The codes: 0 uint8, 1 int8, 2 int16.
        signed: u32,
        act_lo: i32,
        act_hi: i32,
        code_lo: i32,
        code_hi: i32,
    }

    /// `tflresize.wgsl`: TFLite's nearest and int8 bilinear resizes on NHWC Flat8 tensors, per
    /// output word.
    TflresizeUniform for Tflresize as "TR" {
        @elements
        /// Output codes.
        len: u32,
        /// Channels.
        c: u32,
        ih: u32,
        iw: u32,
        oh: u32,
        ow: u32,
        /// 1: bilinear, else nearest.
        bilinear: u32,
        /// The codes: 0 uint8, 1 int8, 2 int16.
        signed: u32,
        _pad: [u32; 2],
    }

    /// `tflsoftmax.wgsl`: TFLite's 8-bit softmax along the last axis on Flat8 tensors, per
    /// output word.
    TflsoftmaxUniform for Tflsoftmax as "TS" {
        @elements
        /// Output codes.
        len: u32,
        /// The last axis' length (a row).
        depth: u32,
        /// 1: int8 codes, else uint8.
        signed: u32,
        code_lo: i32,
        code_hi: i32,
        _pad: u32,
    }

    /// `tflmean.wgsl`: TFLite's 8-bit MEAN over any axes on Flat8 tensors, per output word.
    TflmeanUniform for Tflmean as "TM" {
        @elements
        /// Output codes.
        len: u32,
        /// Codes per mean.
        count: u32,
        /// The codes: 0 uint8, 1 int8, 2 int16.
        signed: u32,
        x_zp: i32,
        y_zp: i32,
        /// The multiplier and shift with the division by `count` folded in.
        m: i32,
        shift: i32,
        code_lo: i32,
        code_hi: i32,
        _pad: [u32; 5],
        /// The input's shape with the reduced axes as 1 (the output's index space),
        /// right-aligned to 8 dims.
        dims: [[u32; 4]; 2],
        /// The reduced axes' sizes (1 elsewhere).
        rdims: [[u32; 4]; 2],
        /// The input's strides.
        istr: [[u32; 4]; 2],
    }

    /// `lookup.wgsl`: 256-entry lookup tables on packed 8-bit tensors.
    LookupUniform for Lookup as "L" {
        /// Batch · pixels.
        npix: u32,
        /// Words per pixel (⌈channels / 4⌉).
        c4: u32,
        /// Channels.
        c: u32,
        _pad: u32,
    }

    /// `lookup16.wgsl`: 65 536-entry lookup tables on int16 codes (Flat16), per output word.
    Lookup16Uniform for Lookup16 as "L16" {
        @elements
        /// Codes.
        len: u32,
        _pad: u32,
    }
}
