"""TFLM signal ops as oracles: one-operator ``.tflite`` models run by the tflite-micro interpreter.

Each builder writes a model holding a single TFLM ``signal`` custom operator
(custom options as the flexbuffer map the op's ``Init`` reads, constant
tensors for tables) and returns a :class:`SignalOp` that feeds inputs and
returns every output.  The interpreter is the ``tflite-micro`` Python package,
i.e. TFLM's C++ kernels compiled for this host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flatbuffers import flexbuffers
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = ["SignalOp", "window_op", "fft_auto_scale_op", "rfft_op", "energy_op", "filter_bank_op",
           "filter_bank_square_root_op", "spectral_subtraction_op", "pcan_op", "filter_bank_log_op",
           "preprocessor_constants"]

_TYPES = {
    np.dtype(np.int8): schema.TensorType.INT8,
    np.dtype(np.int16): schema.TensorType.INT16,
    np.dtype(np.int32): schema.TensorType.INT32,
    np.dtype(np.uint32): schema.TensorType.UINT32,
    np.dtype(np.uint64): schema.TensorType.UINT64,
}


@dataclass
class _In:
    shape: tuple
    dtype: type
    data: np.ndarray | None = None  # constant tensor when given


class SignalOp:
    """A one-operator model: ``op(*inputs) -> list of outputs`` (numpy copies)."""

    def __init__(self, custom_code: str, options: dict, inputs: list[_In], outputs: list[tuple[tuple, type]]):
        tensors_in = []
        for i, spec in enumerate(inputs):
            kwargs = dict(shape=spec.shape, dtype=_TYPES[np.dtype(spec.dtype)], name=f"in{i}")
            if spec.data is not None:
                kwargs["data"] = np.ascontiguousarray(spec.data, dtype=spec.dtype)
            tensors_in.append(me.Tensor(**kwargs))
        tensors_out = [me.Tensor(shape=shape, dtype=_TYPES[np.dtype(dtype)], name=f"out{i}")
                       for i, (shape, dtype) in enumerate(outputs)]
        op = me.Operator(opcode=schema.BuiltinOperator.CUSTOM, custom_code=custom_code,
                         inputs=tensors_in, outputs=tensors_out)
        op._fb.customOptions = list(flexbuffers.Dumps(options))
        op._fb.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        self._variable = [t for t, spec in zip(tensors_in, inputs) if spec.data is None]
        model = me.Model(subgraphs=[me.Subgraph(tensors=tensors_in + tensors_out, operators=[op],
                                                inputs=self._variable, outputs=tensors_out)])
        self.model_bytes = bytes(model.build())
        self.interpreter = runtime.Interpreter.from_bytes(self.model_bytes, arena_size=1 << 20)
        self._input_specs = [spec for spec in inputs if spec.data is None]
        self._n_out = len(outputs)

    def __call__(self, *arrays) -> list[np.ndarray]:
        for i, (arr, spec) in enumerate(zip(arrays, self._input_specs)):
            self.interpreter.set_input(np.ascontiguousarray(arr, dtype=spec.dtype).reshape(spec.shape), i)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(i)) for i in range(self._n_out)]

    def reset(self) -> None:
        self.interpreter.reset()


def window_op(weights: np.ndarray, shift: int) -> SignalOp:
    n = weights.shape[0]
    return SignalOp("SignalWindow", {"shift": int(shift)},
                    [_In((n,), np.int16), _In((n,), np.int16, weights)], [((n,), np.int16)])


def fft_auto_scale_op(n: int) -> SignalOp:
    return SignalOp("SignalFftAutoScale", {}, [_In((n,), np.int16)], [((n,), np.int16), ((), np.int32)])


def rfft_op(input_len: int, fft_len: int) -> SignalOp:
    return SignalOp("SignalRfft", {"T": int(schema.TensorType.INT16), "fft_length": int(fft_len)},
                    [_In((input_len,), np.int16)], [((fft_len + 2,), np.int16)])


def energy_op(n_bins: int, start_index: int, end_index: int) -> SignalOp:
    return SignalOp("SignalEnergy", {"end_index": int(end_index), "start_index": int(start_index)},
                    [_In((2 * n_bins,), np.int16)], [((n_bins,), np.uint32)])


def filter_bank_op(n_bins: int, weights, unweights, freq_starts, weight_starts, widths) -> SignalOp:
    n_channels = widths.shape[0] - 1
    return SignalOp("SignalFilterBank", {"num_channels": int(n_channels)},
                    [_In((n_bins,), np.uint32), _In(weights.shape, np.int16, weights),
                     _In(unweights.shape, np.int16, unweights), _In(freq_starts.shape, np.int16, freq_starts),
                     _In(weight_starts.shape, np.int16, weight_starts), _In(widths.shape, np.int16, widths)],
                    [((n_channels,), np.uint64)])


def filter_bank_square_root_op(n: int) -> SignalOp:
    return SignalOp("SignalFilterBankSquareRoot", {}, [_In((n,), np.uint64), _In((), np.int32)],
                    [((n,), np.uint32)])


def spectral_subtraction_op(n: int, *, smoothing: int, one_minus_smoothing: int, alternate_smoothing: int,
                            alternate_one_minus_smoothing: int, min_signal_remaining: int, smoothing_bits: int,
                            spectral_subtraction_bits: int, clamping: bool) -> SignalOp:
    options = dict(alternate_one_minus_smoothing=int(alternate_one_minus_smoothing),
                   alternate_smoothing=int(alternate_smoothing), clamping=bool(clamping),
                   min_signal_remaining=int(min_signal_remaining), num_channels=int(n),
                   one_minus_smoothing=int(one_minus_smoothing), smoothing=int(smoothing),
                   smoothing_bits=int(smoothing_bits), spectral_subtraction_bits=int(spectral_subtraction_bits))
    return SignalOp("SignalFilterBankSpectralSubtraction", options, [_In((n,), np.uint32)],
                    [((n,), np.uint32), ((n,), np.uint32)])


def pcan_op(n: int, gain_lut: np.ndarray, snr_shift: int) -> SignalOp:
    return SignalOp("SignalPCAN", {"snr_shift": int(snr_shift)},
                    [_In((n,), np.uint32), _In((n,), np.uint32), _In(gain_lut.shape, np.int16, gain_lut)],
                    [((n,), np.uint32)])


def filter_bank_log_op(n: int, output_scale: int, input_correction_bits: int) -> SignalOp:
    return SignalOp("SignalFilterBankLog",
                    {"input_correction_bits": int(input_correction_bits), "output_scale": int(output_scale)},
                    [_In((n,), np.uint32)], [((n,), np.int16)])


def preprocessor_constants(path) -> dict:
    """Custom options and constant tables of a micro_speech audio preprocessor ``.tflite``.

    Returns ``{custom_code: {"options": dict, "constants": [arrays of the op's constant inputs]}}``
    and, under ``"builtin"``, the constant operands of the int32 tail in graph order.
    """
    buf = open(path, "rb").read()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    graph = model.subgraphs[0]
    dtypes = {v: k for k, v in _TYPES.items()}
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def const(index):
        tensor = graph.tensors[index]
        data = model.buffers[tensor.buffer].data
        if data is None or len(data) == 0:
            return None
        return np.frombuffer(bytes(data), dtypes[tensor.type]).reshape(tensor.shape)

    found: dict = {"builtin": []}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        consts = [c for c in (const(i) for i in op.inputs) if c is not None]
        if code.customCode is not None:
            options = flexbuffers.Loads(bytes(op.customOptions)) if op.customOptions is not None else {}
            found[code.customCode.decode()] = {"options": options, "constants": consts}
        else:
            found["builtin"].append((names[max(code.builtinCode, code.deprecatedBuiltinCode)], consts))
    return found
