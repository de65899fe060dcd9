"""arm_mfcc_q15 tables: bit-exact against the cmsisdsp wheel's generators and
against the tables stored with the CMSIS-DSP firmware golden vectors (tier 1),
plus validation errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

import cmsisdsp.datatype as cmsis_dt
import cmsisdsp.fixedpoint as cmsis_fixedpoint
import cmsisdsp.mfcc as cmsis_mfcc

from _compare import assert_equal_ints
from sed_runtime.errors import ConfigError
from sed_runtime.frontend import cmsis_tables
from sed_runtime.frontend.cmsis_tables import (
    RFFT_Q15_LENGTHS,
    MfccTablesQ15,
    dct_matrix_q15,
    hamming_window_q15,
    hann_window_q15,
    mel_filter_bank_q15,
    to_q15,
)

GOLDEN_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "golden" / "cmsis-dsp"
GOLDEN_MFCC_FILES = [
    f"{target}_mfcc_q15_{cfg}.npz"
    for target in ("m3", "m4")
    for cfg in ("fft512_mel40_dct13", "fft1024_mel40_dct10", "fft256_mel32_dct12_fs8k")
]

SAMPLE_RATES_HZ = (8000, 16000, 22050, 44100, 48000)
MEL_COUNTS = (10, 20, 32, 40, 64, 80, 128)


def bands_hz(sample_rate_hz):
    """Band edges exercised for one sample rate: from 0, up to Nyquist, telephone, ..."""
    nyquist = sample_rate_hz / 2
    return [(0, nyquist), (20, nyquist), (125, min(7500, nyquist)), (300, 3400),
            (64, 0.9 * nyquist)]


def wheel_mel(lower_hz, upper_hz, n_mels, sample_rate_hz, fft_len):
    """The wheel's filter bank reordered to (pos, len, coefs)."""
    lengths, positions, coefs = cmsis_mfcc.melFilterMatrix(
        cmsis_dt.Q15, lower_hz, upper_hz, n_mels, sample_rate_hz, fft_len
    )
    return positions, lengths, coefs


# --------------------------------------------------------------------------
# to_q15
# --------------------------------------------------------------------------


def test_to_q15_rounds_half_to_even_and_saturates():
    lsb = 1.0 / 32768
    values = [0.5 * lsb, 1.5 * lsb, 2.5 * lsb, -0.5 * lsb, -1.5 * lsb, -2.5 * lsb,
              1.0, -1.0, 32767.5 * lsb, -32768.5 * lsb, 7.0, -7.0, np.inf, -np.inf]
    expected = [0, 2, 2, 0, -2, -2, 32767, -32768, 32767, -32768, 32767, -32768, 32767, -32768]
    result = to_q15(values)
    assert result.dtype == np.int16
    assert_equal_ints(result, expected, "to_q15")


def test_to_q15_matches_wheel_on_random_values_and_every_midpoint():
    rng = np.random.default_rng(1234)
    random = rng.uniform(-1.5, 1.5, 20_000)
    midpoints = (np.arange(-33_000, 33_000) + 0.5) / 32768
    for name, values in (("random", random), ("midpoints", midpoints),
                         ("float32", random.astype(np.float32))):
        assert_equal_ints(to_q15(values), cmsis_fixedpoint.toQ15(values), name)


def test_to_q15_keeps_shape():
    values = np.random.default_rng(7).uniform(-1, 1, (3, 5))
    result = to_q15(values)
    assert result.shape == (3, 5)
    assert_equal_ints(result, cmsis_fixedpoint.toQ15(values), "2-D")
    assert to_q15(0.25).shape == ()
    assert int(to_q15(0.25)) == 8192


def test_to_q15_where_the_wheel_fails():
    # The wheel raises for all three inputs; we define the result.
    assert to_q15(np.array([], np.float64)).shape == (0,)
    assert_equal_ints(to_q15(np.array([0, 1, -1], np.int16)), [0, 32767, -32768], "int16 input")
    with pytest.raises(ConfigError, match=r"values\[1\]=nan is not a number"):
        to_q15([0.0, np.nan])
    with pytest.raises(ConfigError, match="dtype complex128"):
        to_q15(np.array([1j]))


# --------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fft_len", RFFT_Q15_LENGTHS)
def test_hann_matches_wheel_formula_and_scipy_periodic_hann(fft_len):
    n = np.arange(fft_len)
    formula = cmsis_fixedpoint.toQ15(0.5 - 0.5 * np.cos(2 * np.pi * n / fft_len))
    scipy_hann = cmsis_fixedpoint.toQ15(scipy.signal.windows.hann(fft_len, sym=False))
    window = hann_window_q15(fft_len)
    assert window.dtype == np.int16
    assert_equal_ints(window, formula, "hann vs formula")
    assert_equal_ints(window, scipy_hann, "hann vs scipy")
    assert window[fft_len // 2] == 32767  # the peak 1.0 saturates
    assert window[0] == 0


@pytest.mark.parametrize("fft_len", RFFT_Q15_LENGTHS)
def test_hamming_matches_scipy_periodic_hamming(fft_len):
    scipy_hamming = cmsis_fixedpoint.toQ15(scipy.signal.windows.hamming(fft_len, sym=False))
    window = hamming_window_q15(fft_len)
    assert window.dtype == np.int16
    assert_equal_ints(window, scipy_hamming, "hamming vs scipy")
    assert window[fft_len // 2] == 32767


@pytest.mark.parametrize("fft_len", [16, 100, 16384, 512.0, True])
def test_window_rejects_non_rfft_lengths(fft_len):
    with pytest.raises(ConfigError, match="fft_len="):
        hann_window_q15(fft_len)


# --------------------------------------------------------------------------
# Mel filter bank
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate_hz", SAMPLE_RATES_HZ)
@pytest.mark.parametrize("fft_len", RFFT_Q15_LENGTHS)
def test_mel_filter_bank_matches_wheel(fft_len, sample_rate_hz):
    """Every (n_mels, band) at this FFT length and rate.

    Where the wheel fails (its first filter is empty), we must raise ConfigError.
    Everywhere else, every integer must match.
    """
    for n_mels in MEL_COUNTS:
        for lower_hz, upper_hz in bands_hz(sample_rate_hz):
            config = f"mels={n_mels} band={lower_hz}..{upper_hz}"
            try:
                ref_pos, ref_len, ref_coefs = wheel_mel(lower_hz, upper_hz, n_mels,
                                                        sample_rate_hz, fft_len)
            except UnboundLocalError:
                with pytest.raises(ConfigError, match="mel filter 0 "):
                    mel_filter_bank_q15(lower_hz, upper_hz, n_mels, sample_rate_hz, fft_len)
                continue
            pos, length, coefs = mel_filter_bank_q15(lower_hz, upper_hz, n_mels,
                                                     sample_rate_hz, fft_len)
            assert (pos.dtype, length.dtype, coefs.dtype) == (np.uint32, np.uint32, np.int16)
            assert_equal_ints(pos, ref_pos, f"{config} filter_pos")
            assert_equal_ints(length, ref_len, f"{config} filter_len")
            assert_equal_ints(coefs, ref_coefs, f"{config} filter_coefs")


def test_mel_grid_covers_all_three_wheel_behaviours():
    """The grid above holds complete banks, banks with an empty filter after the
    first (the wheel gives it the previous range), and banks the wheel cannot
    build (empty first filter)."""
    outcomes = {"complete": 0, "empty_later_filter": 0, "wheel_fails": 0}
    for fft_len in RFFT_Q15_LENGTHS:
        for sample_rate_hz in SAMPLE_RATES_HZ:
            for n_mels in MEL_COUNTS:
                for lower_hz, upper_hz in bands_hz(sample_rate_hz):
                    weights, _ = cmsis_tables._triangle_weights(
                        float(lower_hz), float(upper_hz), n_mels, float(sample_rate_hz), fft_len
                    )
                    empty = np.flatnonzero(~weights.any(axis=1))
                    if empty.size == 0:
                        outcomes["complete"] += 1
                    elif empty[0] == 0:
                        outcomes["wheel_fails"] += 1
                    else:
                        outcomes["empty_later_filter"] += 1
    assert outcomes == {"complete": 1008, "empty_later_filter": 64, "wheel_fails": 503}


def test_empty_filter_keeps_previous_range_with_zero_coefficients_like_wheel():
    # 80 mels from 20 Hz over 62.5 Hz bins: filters 2 and 7 fall between two bins.
    args = (20, 8000, 80, 16000, 256)
    weights, _ = cmsis_tables._triangle_weights(20.0, 8000.0, 80, 16000.0, 256)
    assert np.flatnonzero(~weights.any(axis=1)).tolist() == [2, 7]
    pos, length, coefs = mel_filter_bank_q15(*args)
    ref_pos, ref_len, ref_coefs = wheel_mel(*args)
    assert_equal_ints(pos, ref_pos, "filter_pos")
    assert_equal_ints(length, ref_len, "filter_len")
    assert_equal_ints(coefs, ref_coefs, "filter_coefs")
    starts = np.concatenate([[0], np.cumsum(length, dtype=np.int64)])
    for m in (2, 7):
        assert (pos[m], length[m]) == (pos[m - 1], length[m - 1])
        assert length[m] > 0 and not coefs[starts[m]:starts[m + 1]].any()


def test_first_filter_empty_raises_where_wheel_fails():
    args = (0, 8000, 128, 16000, 32)
    with pytest.raises(UnboundLocalError):
        wheel_mel(*args)
    with pytest.raises(ConfigError, match=r"mel filter 0 \(0\.0\.\.\d+\.\d Hz\) has no FFT bin"):
        mel_filter_bank_q15(*args)


def test_upper_above_nyquist_is_rejected_where_wheel_cuts_the_last_filter():
    # Above Nyquist the last filter is non-zero up to the last bin.  The wheel then
    # takes the stale end position of the filter before it: the last filter is empty.
    ref_pos, ref_len, _ = wheel_mel(20, 9000, 40, 16000, 512)
    assert ref_len[-1] == 0
    with pytest.raises(ConfigError, match="upper_hz=9000 must not exceed sample_rate_hz/2=8000"):
        mel_filter_bank_q15(20, 9000, 40, 16000, 512)


def test_filter_still_non_zero_at_last_bin_raises():
    # Unreachable through the public API, because upper_hz <= sample_rate_hz/2
    # makes the weight at the Nyquist bin <= 0.  The packing step refuses it anyway.
    band_hz = np.array([[0.0, 100.0], [50.0, 200.0]])
    last_filter_open = np.array([[0.0, 0.5, 1.0, 0.0], [0.0, 0.0, 0.5, 1.0]])
    with pytest.raises(ConfigError, match="mel filter 1 .* still non-zero at the last FFT bin "
                                          r"\(3\).* cuts this filter at the end of filter 0"):
        cmsis_tables._pack_filters(last_filter_open, band_hz, "test config")
    first_filter_open = np.array([[0.0, 0.5, 1.0, 0.5], [0.0, 0.0, 0.5, 1.0]])
    with pytest.raises(ConfigError, match="mel filter 0 .* fails here"):
        cmsis_tables._pack_filters(first_filter_open, band_hz, "test config")


def test_weight_at_nyquist_is_exactly_zero_when_upper_is_nyquist():
    for sample_rate_hz in SAMPLE_RATES_HZ:
        for fft_len in RFFT_Q15_LENGTHS:
            weights, _ = cmsis_tables._triangle_weights(0.0, sample_rate_hz / 2, 40,
                                                        float(sample_rate_hz), fft_len)
            assert weights[-1, -1] == 0.0


def test_tables_stay_far_from_rounding_midpoints_and_from_zero():
    """The integers cannot change with a last-bit change in log/cos/linspace:
    no coefficient is within 1e-7 LSB of a q15 midpoint, and no non-zero
    weight is within 1e-6 of zero (a last-bit error is ~1e-16 relative)."""
    closest_midpoint = np.inf
    smallest_weight = np.inf
    for fft_len in RFFT_Q15_LENGTHS:
        for sample_rate_hz in SAMPLE_RATES_HZ:
            for n_mels in MEL_COUNTS:
                for lower_hz, upper_hz in bands_hz(sample_rate_hz):
                    weights, _ = cmsis_tables._triangle_weights(
                        float(lower_hz), float(upper_hz), n_mels, float(sample_rate_hz), fft_len
                    )
                    nonzero = weights[weights != 0.0]
                    scaled = nonzero * 32768
                    closest_midpoint = min(closest_midpoint,
                                           np.min(np.abs(scaled - np.floor(scaled) - 0.5)))
                    smallest_weight = min(smallest_weight, nonzero.min())
    assert closest_midpoint > 1e-7
    assert smallest_weight > 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        ((20, 8000, 40, 16000, 500), "fft_len=500 must be a power of two in 32..8192"),
        ((20, 8000, 40, 16000, 16384), "fft_len=16384 must be a power of two"),
        ((-1, 8000, 40, 16000, 512), "lower_hz=-1 must be >= 0"),
        ((300, 300, 40, 16000, 512), "upper_hz=300 must be greater than lower_hz=300"),
        ((300, 200.5, 40, 16000, 512), "upper_hz=200.5 must be greater than lower_hz=300"),
        ((0, 11025.5, 40, 22050, 512), r"upper_hz=11025\.5 must not exceed sample_rate_hz/2=11025"),
        ((0, np.nan, 40, 16000, 512), "upper_hz=nan must be finite"),
        ((0, 8000, 0, 16000, 512), "n_mels=0 must be at least 1"),
        ((0, 8000, 40.0, 16000, 512), "n_mels=40.0 must be an integer"),
        ((0, 8000, 40, 0, 512), "sample_rate_hz=0 must be positive"),
        ((0, 8000, 40, "16k", 512), "sample_rate_hz='16k' must be a real number"),
        ((1000, np.nextafter(1000, 2000), 40, 16000, 512), "too close to hold n_mels=40"),
    ],
)
def test_mel_filter_bank_rejects_bad_config(args, message):
    with pytest.raises(ConfigError, match=message):
        mel_filter_bank_q15(*args)


# --------------------------------------------------------------------------
# DCT
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_mels", range(1, 129))
def test_dct_matches_wheel(n_mels):
    reference = cmsis_mfcc.dctMatrix(cmsis_dt.Q15, n_mels, n_mels).reshape(n_mels, n_mels)
    full = dct_matrix_q15(n_mels, n_mels)
    assert full.dtype == np.int16
    assert_equal_ints(full, reference, f"dct {n_mels}x{n_mels}")
    for n_dct in {1, min(13, n_mels)}:
        reference = cmsis_mfcc.dctMatrix(cmsis_dt.Q15, n_dct, n_mels).reshape(n_dct, n_mels)
        assert_equal_ints(dct_matrix_q15(n_dct, n_mels), reference, f"dct {n_dct}x{n_mels}")


def test_dct_row_zero_saturates_for_two_mels():
    assert_equal_ints(dct_matrix_q15(1, 2)[0], [32767, 32767], "row 0")


@pytest.mark.parametrize("n_dct, n_mels, message", [
    (0, 40, r"n_dct=0 must be in 1\.\.n_mels=40"),
    (41, 40, r"n_dct=41 must be in 1\.\.n_mels=40"),
    (13, 0, "n_mels=0 must be at least 1"),
])
def test_dct_rejects_bad_sizes(n_dct, n_mels, message):
    with pytest.raises(ConfigError, match=message):
        dct_matrix_q15(n_dct, n_mels)


# --------------------------------------------------------------------------
# The tables against the firmware golden vectors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", GOLDEN_MFCC_FILES)
def test_tables_equal_golden_firmware_tables(file_name):
    golden = np.load(GOLDEN_DIR / file_name)
    tables = MfccTablesQ15.from_config(
        sample_rate_hz=golden["fs"].item(),
        fft_len=golden["fft_len"].item(),
        n_mels=golden["n_mels"].item(),
        lower_hz=golden["fmin"].item(),
        upper_hz=golden["fmax"].item(),
        n_dct=golden["n_dct"].item(),
    )
    pairs = [("window", tables.window_q15), ("filter_pos", tables.filter_pos),
             ("filter_len", tables.filter_len), ("filter_coefs", tables.filter_coefs_q15),
             ("dct", tables.dct_q15)]
    for key, ours in pairs:
        assert ours.dtype == golden[key].dtype, key
        assert_equal_ints(ours, golden[key], f"{file_name} {key}")

    supplied = MfccTablesQ15.from_arrays(
        golden["window"], golden["filter_pos"], golden["filter_len"],
        golden["filter_coefs"], golden["dct"],
        fft_len=golden["fft_len"].item(), n_mels=golden["n_mels"].item(),
        n_dct=golden["n_dct"].item(),
    )
    for key, ours in pairs:
        name = {"window": "window_q15", "filter_coefs": "filter_coefs_q15",
                "dct": "dct_q15"}.get(key, key)
        assert_equal_ints(getattr(supplied, name), ours, f"{file_name} from_arrays {key}")


# --------------------------------------------------------------------------
# MfccTablesQ15
# --------------------------------------------------------------------------


def build(**overrides):
    config = dict(sample_rate_hz=16000, fft_len=512, n_mels=40, lower_hz=20, upper_hz=8000,
                  n_dct=13)
    config.update(overrides)
    return MfccTablesQ15.from_config(**config)


def table_arrays():
    tables = build()
    return dict(window_q15=tables.window_q15, filter_pos=tables.filter_pos,
                filter_len=tables.filter_len, filter_coefs_q15=tables.filter_coefs_q15,
                dct_q15=tables.dct_q15)


def test_from_config_sizes_dtypes_and_read_only():
    tables = build()
    assert (tables.fft_len, tables.n_mels, tables.n_dct) == (512, 40, 13)
    assert repr(tables) == "MfccTablesQ15(fft_len=512, n_mels=40, n_dct=13, n_filter_coefs=492)"
    assert tables.window_q15.dtype == np.int16 and tables.dct_q15.shape == (13, 40)
    with pytest.raises(ValueError):
        tables.filter_coefs_q15[0] = 1


def test_from_config_hamming_window():
    tables = build(window="hamming")
    assert_equal_ints(tables.window_q15, hamming_window_q15(512), "window")


def test_from_arrays_accepts_lists_wider_ints_and_flat_dct():
    arrays = table_arrays()
    supplied = MfccTablesQ15.from_arrays(
        arrays["window_q15"].tolist(),
        arrays["filter_pos"].astype(np.int64),
        arrays["filter_len"].astype(np.uint64),
        arrays["filter_coefs_q15"].astype(np.int32),
        cmsis_mfcc.dctMatrix(cmsis_dt.Q15, 13, 40),  # flat, as the wheel returns it
    )
    for name, expected in arrays.items():
        result = getattr(supplied, name)
        assert result.dtype == expected.dtype, name
        assert_equal_ints(result, expected, name)


def test_from_arrays_copies_its_inputs():
    arrays = table_arrays()
    window = arrays["window_q15"].copy()
    supplied = MfccTablesQ15.from_arrays(**{**arrays, "window_q15": window})
    window[1] = 999
    assert supplied.window_q15[1] == arrays["window_q15"][1]


def _filter_3_ending_at_bin_260(arrays):
    pos = arrays["filter_pos"].copy()
    pos[3] = 260 - int(arrays["filter_len"][3])
    return pos


@pytest.mark.parametrize(
    "changes, expected_sizes, message",
    [
        (lambda a: {"filter_coefs_q15": a["filter_coefs_q15"].astype(np.float64)}, {},
         "filter_coefs_q15 has dtype float64; expected integers that fit int16"),
        (lambda a: {"filter_coefs_q15": np.r_[a["filter_coefs_q15"][:-1].astype(np.int64),
                                              40000]}, {},
         r"filter_coefs_q15\[491\]=40000 does not fit int16 \(-32768\.\.32767\)"),
        (lambda a: {"filter_len": np.r_[-1, a["filter_len"][1:].astype(np.int64)]}, {},
         r"filter_len\[0\]=-1 does not fit uint32"),
        (lambda a: {"dct_q15": np.where(np.arange(40) == 5, -40000,
                                        a["dct_q15"].astype(np.int64))}, {},
         r"dct_q15\[0, 5\]=-40000 does not fit int16"),
        (lambda a: {"window_q15": a["window_q15"].reshape(2, 256)}, {},
         r"window_q15 has shape \(2, 256\); expected a 1-D array"),
        (lambda a: {"window_q15": a["window_q15"][:300]}, {},
         "window_q15 has 300 samples; expected an arm_rfft_q15 length"),
        (lambda a: {"window_q15": a["window_q15"][:256]}, {"fft_len": 512},
         "window_q15 has 256 samples; expected fft_len=512"),
        (lambda a: {}, {"fft_len": 500}, "fft_len=500 must be a power of two"),
        (lambda a: {"filter_len": a["filter_len"][:-1]}, {},
         "filter_len has 39 entries; expected n_mels=40"),
        (lambda a: {}, {"n_mels": 32}, "filter_pos has 40 entries; expected n_mels=32"),
        (lambda a: {"filter_pos": [], "filter_len": [], "filter_coefs_q15": [],
                    "dct_q15": np.zeros((1, 0), np.int16)}, {}, "filter_pos is empty"),
        (lambda a: {"filter_coefs_q15": a["filter_coefs_q15"][:-2]}, {},
         "filter_coefs_q15 has 490 values; expected sum\\(filter_len\\)=492"),
        (lambda a: {"filter_pos": _filter_3_ending_at_bin_260(a)}, {},
         r"filter_pos\[3\]\+filter_len\[3\]=260 exceeds fft_len//2\+1=257"),
        (lambda a: {"dct_q15": a["dct_q15"][:, :39]}, {},
         r"dct_q15 has shape \(13, 39\); expected \(n_dct, n_mels\)=\(13, 40\)"),
        (lambda a: {}, {"n_dct": 12},
         r"dct_q15 has shape \(13, 40\); expected \(n_dct, n_mels\)=\(12, 40\)"),
        (lambda a: {"dct_q15": np.zeros((41, 40), np.int16)}, {},
         r"dct_q15 has 41 rows; expected n_dct in 0\.\.n_mels=40"),
        (lambda a: {"dct_q15": a["dct_q15"].ravel()[:-1]}, {},
         "dct_q15 has 519 values; expected n_dct\\*n_mels with n_mels=40"),
    ],
    ids=["float-dtype", "int16-overflow", "negative-len", "dct-overflow", "window-2d",
         "window-length", "window-vs-fft_len", "bad-fft_len", "len-count", "n_mels-mismatch",
         "no-filters", "coef-count", "filter-past-nyquist", "dct-columns", "n_dct-mismatch",
         "too-many-dct-rows", "flat-dct-size"],
)
def test_from_arrays_rejects_inconsistent_tables(changes, expected_sizes, message):
    arrays = table_arrays()
    arrays.update(changes(arrays))
    with pytest.raises(ConfigError, match=message):
        MfccTablesQ15.from_arrays(**arrays, **expected_sizes)


def test_direct_construction_validates_too():
    arrays = table_arrays()
    arrays["filter_coefs_q15"] = arrays["filter_coefs_q15"][:-1]
    with pytest.raises(ConfigError, match="expected sum"):
        MfccTablesQ15(**arrays)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"window": "blackman"}, "window='blackman' is not supported"),
        ({"fft_len": 100}, "fft_len=100 must be a power of two in 32..8192"),
        ({"fft_len": 16}, "fft_len=16 must be a power of two"),
        ({"n_mels": 0}, "n_mels=0 must be at least 1"),
        ({"n_dct": 41}, r"n_dct=41 must be in 1\.\.n_mels=40"),
        ({"lower_hz": -20}, "lower_hz=-20 must be >= 0"),
        ({"lower_hz": 8000}, "upper_hz=8000 must be greater than lower_hz=8000"),
        ({"upper_hz": 8001}, "upper_hz=8001 must not exceed sample_rate_hz/2=8000"),
        ({"sample_rate_hz": -16000}, "sample_rate_hz=-16000 must be positive"),
        ({"fft_len": 32, "n_mels": 128, "lower_hz": 0}, "mel filter 0 .* has no FFT bin"),
    ],
)
def test_from_config_rejects_bad_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)
