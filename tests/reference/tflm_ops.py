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
           "preprocessor_constants", "SignalChain"]

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


class SignalChain:
    """The micro_speech op chain up to ``SignalFilterBankLog`` as one model, for any parameters.

    Window -> FftAutoScale -> Rfft -> Energy -> FilterBank -> FilterBankSquareRoot
    -> FilterBankSpectralSubtraction -> [PCAN] -> FilterBankLog, wired as
    ``audio_preprocessor.py`` wires them, with the integer parameters of a
    :class:`sed_runtime.frontend.tflm.TflmStages`.  Input int16[window],
    output int16[n_channels] (the log features); with ``stages.int8.enabled``
    the graph continues with micro_speech's int32 tail as the TFLite converter
    emits it (CAST, MUL, ADD, DIV, ADD, MINIMUM, MAXIMUM, CAST) and outputs
    int8[n_channels].
    Energy bins outside the filter bank's range are left as the arena holds
    them; the filter bank gives them zero weight, so they cannot matter.
    """

    def __init__(self, stages, window_samples: int, n_channels: int):
        w, fb, nr, pcan, log = (stages.window, stages.filter_bank.tables, stages.noise_reduction, stages.pcan,
                                stages.log)
        fft_len = stages.fft.kiss.fft_len
        n_bins = fft_len // 2 + 1
        T = lambda shape, dtype, name, data=None: me.Tensor(  # noqa: E731
            shape=shape, dtype=_TYPES[np.dtype(dtype)], name=name,
            **({} if data is None else {"data": np.ascontiguousarray(data, dtype=dtype)}))
        audio = T((window_samples,), np.int16, "audio")
        windowed = T((window_samples,), np.int16, "windowed")
        scaled = T((window_samples,), np.int16, "scaled")
        scale_bits = T((), np.int32, "scale_bits")
        spectrum = T((fft_len + 2,), np.int16, "spectrum")
        energy = T((n_bins,), np.uint32, "energy")
        banks = T((n_channels,), np.uint64, "banks")
        roots = T((n_channels,), np.uint32, "roots")
        cleaned = T((n_channels,), np.uint32, "cleaned")
        noise = T((n_channels,), np.uint32, "noise")
        gained = T((n_channels,), np.uint32, "gained")
        logs = T((n_channels,), np.int16, "logs")
        consts = [T(w.weights.shape, np.int16, "window", w.weights)]
        fb_consts = [T(a.shape, np.int16, f"fb{i}", a) for i, a in enumerate(
            (fb.weights, fb.unweights, fb.channel_frequency_starts, fb.channel_weight_starts, fb.channel_widths))]
        lut = T(pcan.gain_lut.shape, np.int16, "lut", pcan.gain_lut)

        def op(code, options, inputs, outputs):
            o = me.Operator(opcode=schema.BuiltinOperator.CUSTOM, custom_code=code, inputs=inputs, outputs=outputs)
            o._fb.customOptions = list(flexbuffers.Dumps(options))
            o._fb.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
            return o

        ops = [
            op("SignalWindow", {"shift": int(w.shift)}, [audio, consts[0]], [windowed]),
            op("SignalFftAutoScale", {}, [windowed], [scaled, scale_bits]),
            op("SignalRfft", {"T": int(schema.TensorType.INT16), "fft_length": int(fft_len)}, [scaled], [spectrum]),
            op("SignalEnergy", {"end_index": int(fb.end_index), "start_index": int(fb.start_index)},
               [spectrum], [energy]),
            op("SignalFilterBank", {"num_channels": int(n_channels)}, [energy] + fb_consts, [banks]),
            op("SignalFilterBankSquareRoot", {}, [banks, scale_bits], [roots]),
            op("SignalFilterBankSpectralSubtraction",
               dict(alternate_one_minus_smoothing=int(nr.alternate_one_minus_smoothing),
                    alternate_smoothing=int(nr.alternate_smoothing), clamping=bool(nr.clamping),
                    min_signal_remaining=int(nr.min_signal_remaining), num_channels=int(n_channels),
                    one_minus_smoothing=int(nr.one_minus_smoothing), smoothing=int(nr.smoothing),
                    smoothing_bits=int(nr.smoothing_bits), spectral_subtraction_bits=int(nr.spectral_subtraction_bits)),
               [roots], [cleaned, noise]),
        ]
        log_input = cleaned
        tensors = [audio, windowed, scaled, scale_bits, spectrum, energy, banks, roots, cleaned, noise, logs]
        tensors += consts + fb_consts
        if pcan.enabled:
            ops.append(op("SignalPCAN", {"snr_shift": int(pcan.snr_shift)}, [cleaned, noise, lut], [gained]))
            log_input = gained
            tensors += [gained, lut]
        ops.append(op("SignalFilterBankLog", {"input_correction_bits": int(log.correction_bits),
                                              "output_scale": int(log.output_scale)}, [log_input], [logs]))
        output = logs
        q = stages.int8
        if q.enabled:
            B = schema.BuiltinOperator

            def builtin(code, inputs, outputs, options_type=None, options=None):
                o = me.Operator(opcode=code, inputs=inputs, outputs=outputs)
                if options is not None:
                    o._fb.builtinOptionsType = options_type
                    o._fb.builtinOptions = options
                return o

            def scalar(name, value):
                return T((), np.int32, name, np.array(value, np.int32))

            wide = [T((n_channels,), np.int32, f"wide{i}") for i in range(7)]
            k = [scalar("scale", q.value_scale), scalar("rounding", q.value_rounding), scalar("div", q.value_div),
                 scalar("offset", q.offset), scalar("hi", 127), scalar("lo", -128)]
            output = T((n_channels,), np.int8, "features")
            opts = schema.BuiltinOptions
            ops += [
                builtin(B.CAST, [logs], [wide[0]]),
                builtin(B.MUL, [wide[0], k[0]], [wide[1]], opts.MulOptions, schema.MulOptionsT()),
                builtin(B.ADD, [wide[1], k[1]], [wide[2]], opts.AddOptions, schema.AddOptionsT()),
                builtin(B.DIV, [wide[2], k[2]], [wide[3]], opts.DivOptions, schema.DivOptionsT()),
                builtin(B.ADD, [wide[3], k[3]], [wide[4]], opts.AddOptions, schema.AddOptionsT()),
                builtin(B.MINIMUM, [wide[4], k[4]], [wide[5]]),
                builtin(B.MAXIMUM, [wide[5], k[5]], [wide[6]]),
                builtin(B.CAST, [wide[6]], [output]),
            ]
            tensors += wide + k + [output]
        model = me.Model(subgraphs=[me.Subgraph(tensors=tensors, operators=ops, inputs=[audio], outputs=[output])])
        self.model_bytes = bytes(model.build())
        self.interpreter = runtime.Interpreter.from_bytes(self.model_bytes, arena_size=1 << 21)
        self.window_samples = window_samples

    def frames(self, samples: np.ndarray, hop: int) -> np.ndarray:
        """Every complete window of ``samples`` (hop ``hop``), one Invoke each, from a fresh state."""
        self.interpreter.reset()
        n = 0 if samples.shape[0] < self.window_samples else 1 + (samples.shape[0] - self.window_samples) // hop
        out = []
        for k in range(n):
            self.interpreter.set_input(samples[k * hop:k * hop + self.window_samples], 0)
            self.interpreter.invoke()
            out.append(np.array(self.interpreter.get_output(0)))
        return np.array(out).reshape(n, -1)
