"""Wrap a network that takes the encoded matrix into one ONNX graph that takes raw columns.

    raw columns --[imputation, one-hot]--> encoded [batch, width] --> network --> scores
                                                                      scores --> label

The network is any ONNX model with one FP32 input [batch, width] in the FeaturePipeline's
encoded layout and one output (class probabilities, or a regression prediction already
in the target's units): the torch MLP's export, or a boosted-tree model converted to
ONNX. The preprocessing is built from the pipeline's learned values with standard ONNX
ops (IsNaN/Where for the medians, Equal on strings for the one-hot), so Triton's
onnxruntime backend, the serving app and batch scoring run exactly what training
encoded, with no client-side feature code. Standardisation stays in the network (its
buffers), where the weights were trained with it.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from framework.runtime.training.features import FeaturePipeline, category_key
from framework.signature import Signature

BATCH = "batch"
NET_PREFIX = "mlops::net/"
MIN_OPSET = 19  # Equal on strings
MIN_IR = 9  # the IR version opset 19 came with
COLUMNS_PROP, CLASSES_PROP, TASK_PROP = "mlops.columns", "mlops.classes", "mlops.task"


def _name(kind: str, column: str) -> str:
    return f"mlops::{kind}/{column}"


def _preprocessing(pipeline: FeaturePipeline, encoded: str) -> tuple[list, list, list]:
    """(graph inputs, nodes, initializers) turning raw columns into `encoded`."""
    inputs, nodes, inits = [], [], []
    numeric_parts, categorical_parts = [], []
    for column in pipeline.features:
        if column in pipeline.categorical:
            inputs.append(helper.make_tensor_value_info(column, TensorProto.STRING, [BATCH, 1]))
            categories = np.array([category_key(c) for c in pipeline.categorical[column]], dtype=object)
            inits.append(numpy_helper.from_array(categories, _name("categories", column)))
            # [batch, 1] == [K] broadcasts to [batch, K]: a null ("") or unseen value matches none.
            nodes.append(helper.make_node("Equal", [column, _name("categories", column)], [_name("is", column)]))
            nodes.append(helper.make_node("Cast", [_name("is", column)], [_name("onehot", column)], to=TensorProto.FLOAT))
            categorical_parts.append(_name("onehot", column))
        else:
            inputs.append(helper.make_tensor_value_info(column, TensorProto.FLOAT, [BATCH, 1]))
            median = np.array([pipeline.medians[column]], dtype=np.float32)
            inits.append(numpy_helper.from_array(median, _name("median", column)))
            nodes.append(helper.make_node("IsNaN", [column], [_name("isnan", column)]))
            nodes.append(
                helper.make_node("Where", [_name("isnan", column), _name("median", column), column], [_name("filled", column)])
            )
            numeric_parts.append(_name("filled", column))
    nodes.append(helper.make_node("Concat", [*numeric_parts, *categorical_parts], [encoded], axis=1))
    return inputs, nodes, inits


def _postprocessing(pipeline: FeaturePipeline, signature: Signature, scores: str) -> tuple[list, list, list]:
    """(graph outputs, nodes, initializers): the scores under their contract name, and the label."""
    names = [t.name for t in signature.outputs]
    nodes = [helper.make_node("Identity", [scores], [names[0]])]
    outputs = [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [BATCH, signature.outputs[0].width])]
    inits = []
    if signature.task == "classification":
        classes = np.array(pipeline.class_names, dtype=object)
        inits.append(numpy_helper.from_array(classes, "mlops::classes"))
        nodes.append(helper.make_node("ArgMax", [scores], ["mlops::class_index"], axis=1, keepdims=1))
        nodes.append(helper.make_node("Gather", ["mlops::classes", "mlops::class_index"], [names[1]], axis=0))
        outputs.append(helper.make_tensor_value_info(names[1], TensorProto.STRING, [BATCH, 1]))
    return outputs, nodes, inits


def wrap_network(network: onnx.ModelProto, pipeline: FeaturePipeline, signature: Signature, recipe_name: str) -> onnx.ModelProto:
    """The served model: raw columns in, the signature's outputs out, `network` inside."""
    if len(network.graph.input) != 1 or len(network.graph.output) != 1:
        raise ValueError("the network must have one input (the encoded matrix) and one output")
    net = onnx.compose.add_prefix(network, NET_PREFIX)
    encoded, scores = net.graph.input[0].name, net.graph.output[0].name
    inputs, pre_nodes, pre_inits = _preprocessing(pipeline, encoded)
    outputs, post_nodes, post_inits = _postprocessing(pipeline, signature, scores)
    graph = helper.make_graph(
        [*pre_nodes, *net.graph.node, *post_nodes],
        f"{recipe_name}-raw-columns",
        inputs,
        outputs,
        [*pre_inits, *net.graph.initializer, *post_inits],
        value_info=list(net.graph.value_info),
    )
    opsets = {o.domain: o.version for o in net.opset_import}
    opsets[""] = max(opsets.get("", MIN_OPSET), MIN_OPSET)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())],
        ir_version=max(network.ir_version, MIN_IR),
        producer_name="mlops",
    )
    model.functions.extend(net.functions)
    columns = [{"name": t.name, "datatype": t.dtype} for t in signature.inputs]
    props = {"mlops.recipe": recipe_name, COLUMNS_PROP: json.dumps(columns), TASK_PROP: signature.task}
    if pipeline.class_names is not None:
        props[CLASSES_PROP] = json.dumps(pipeline.class_names)
    helper.set_model_props(model, props)
    return model
