#!/usr/bin/env python3
"""Exports the ONNX backend node test cases that qplay can run.

Run from the repository root (needs numpy and onnx; the outputs are committed):

    python3 tests/conformance/export_cases.py

Reads `tests/conformance/supported_ops.txt` (the op types of `Registry::new()`, kept in sync by
`crate/core/tests/conformance.rs`) and walks `onnx.backend.test.case.node.collect_testcases`.
A case is exported when every node of its graph is a default-domain op qplay supports, every
tensor it touches has a dtype qplay supports, and its data is small. Exported cases go to
`tests/conformance/cases/<case>/`:

- `model.onnx`
- `input_<i>.npy`, `output_<i>.npy` for the first data set (`input_<i>_set<d>.npy`, … for more)
- `meta.json`: {"op", "rtol", "atol", "data_sets": [{"inputs": [{"name", "file"}], "outputs": [...]}]}

Every other case is listed with its reason in `tests/conformance/skipped.json`. The export is
deterministic (the cases' data are generated from fixed seeds), so re-running reproduces the files.
"""

import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx.backend.test.case.node import collect_testcases

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
MAX_BYTES = 256 << 10  # model + all data of a case: keeps the committed cases at about 5 MB

# ONNX TensorProto codes qplay computes with: float32, uint8, int8, uint16, int16, int32, int64, bool.
SUPPORTED_ELEM = {1, 2, 3, 4, 5, 6, 7, 9}
SUPPORTED_NP = {np.dtype(t) for t in ("float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "bool")}


def primary_op(case, ops):
    """The op a case tests: the longest ONNX op name that prefixes the case name (so
    `test_softmax_axis_0_expanded` is Softmax even though its graph is ReduceMax, Exp, …)."""
    key = case.name[len("test_"):].replace("_", "").lower()
    names = sorted({s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}, key=len, reverse=True)
    for n in names:
        if key.startswith(n.lower()):
            return n
    if len(ops) == 1:
        return ops[0]  # e.g. test_basic_conv_*, test_edge_pad
    # An op newer than this onnx's schemas (e.g. test_flexattention_*): the case name's stem.
    return case.name[len("test_"):].split("_")[0]


def type_problem(tp):
    """Why a TypeProto is unsupported, or None."""
    kind = tp.WhichOneof("value")
    if kind != "tensor_type":
        return f"non-tensor value ({kind})"
    code = tp.tensor_type.elem_type
    if code not in SUPPORTED_ELEM:
        return f"dtype {onnx.TensorProto.DataType.Name(code).lower()}"
    return None


def case_problem(case, supported):
    """Why a case cannot be exported, or None."""
    g = case.model.graph
    if case.model.functions:
        return "model-local functions"
    # Nodes of the graph and of its subgraphs (If branches, Loop bodies), each subgraph's
    # declared values checked like the graph's.
    nodes, stack = [], [g]
    while stack:
        sg = stack.pop()
        if sg is not g:
            for v in list(sg.input) + list(sg.output):
                p = type_problem(v.type)
                if p:
                    return f"{p} (`{v.name}` of a sub-graph)"
        for n in sg.node:
            nodes.append(n)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPHS:
                    return "sub-graph list attribute"
                if a.type == onnx.AttributeProto.GRAPH:
                    stack.append(a.g)
    unsupported = sorted({n.op_type for n in nodes if n.domain not in ("", "ai.onnx") or n.op_type not in supported})
    if unsupported:
        return "unsupported op: " + ", ".join(unsupported)
    for n in nodes:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                continue
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in SUPPORTED_ELEM:
                return f"dtype {onnx.TensorProto.DataType.Name(a.t.data_type).lower()} (attribute `{a.name}` of {n.op_type})"
            if n.op_type in ("Cast", "CastLike") and a.name == "to" and a.i not in SUPPORTED_ELEM:
                return f"dtype {onnx.TensorProto.DataType.Name(a.i).lower()} (Cast to)"
    for init in g.initializer:
        if init.data_type not in SUPPORTED_ELEM:
            return f"dtype {onnx.TensorProto.DataType.Name(init.data_type).lower()} (initializer)"
    for v in list(g.input) + list(g.output) + list(g.value_info):
        p = type_problem(v.type)
        if p:
            return f"{p} (`{v.name}`)"
    size = len(case.model.SerializeToString())
    for inputs, outputs in case.data_sets:
        for a in list(inputs) + list(outputs):
            # numpy scalars (DynamicQuantizeLinear's scale, Dropout's ratio) are 0-d tensors.
            if not isinstance(a, (np.ndarray, np.generic)):
                return f"non-tensor data ({type(a).__name__})"
            if a.dtype not in SUPPORTED_NP:
                return f"dtype {a.dtype.name} (data)"
            size += a.nbytes
    if size > MAX_BYTES:
        return f"large ({size} bytes)"
    return None


def main():
    supported = set(open(os.path.join(HERE, "supported_ops.txt")).read().split())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    if os.path.isdir(CASES):
        shutil.rmtree(CASES)
    os.makedirs(CASES)
    skipped = {}
    exported = 0
    for case in sorted(cases, key=lambda c: c.name):
        problem = case_problem(case, supported)
        if problem:
            skipped[case.name] = problem
            continue
        g = case.model.graph
        ops = sorted({n.op_type for n in g.node})
        d = os.path.join(CASES, case.name)
        os.makedirs(d)
        onnx.save(case.model, os.path.join(d, "model.onnx"))
        init_names = {i.name for i in g.initializer}
        in_names = [v.name for v in g.input if v.name not in init_names]
        out_names = [v.name for v in g.output]
        sets = []
        for k, (inputs, outputs) in enumerate(case.data_sets):
            suffix = "" if k == 0 else f"_set{k}"
            entry = {"inputs": [], "outputs": []}
            for kind, names, arrays in (("input", in_names, inputs), ("output", out_names, outputs)):
                for i, a in enumerate(arrays):
                    f = f"{kind}_{i}{suffix}.npy"
                    # (ascontiguousarray would make a 0-d array 1-d.)
                    np.save(os.path.join(d, f), np.require(np.asarray(a), requirements="C"))
                    entry[kind + "s"].append({"name": names[i] if i < len(names) else "", "file": f})
            sets.append(entry)
        meta = {"op": primary_op(case, ops), "graph_ops": ops, "rtol": case.rtol, "atol": case.atol, "data_sets": sets}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        exported += 1
    with open(os.path.join(CASES, "onnx_version.txt"), "w") as f:
        f.write(onnx.__version__ + "\n")
    with open(os.path.join(HERE, "skipped.json"), "w") as f:
        json.dump(skipped, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"exported {exported} cases, skipped {len(skipped)}", file=sys.stderr)


if __name__ == "__main__":
    main()
