"""XY-Tokenizer configuration: the three official YAML layouts parsed into frozen dataclasses.

Layouts (docs/SPEC.md, "Variants"):
- standalone 16 kHz: top-level and ``generator_params.sample_rate``; vocoder module ``vocos``;
- MOSS-TTSD 24/32 kHz: ``generator_params.{input,output}_sample_rate``,
  ``encoder_downsample_rate``, ``decoder_upsample_rate``; vocoder module ``enhanced_vocos``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xyrt.errors import ConfigError, received

# Front-end constants of the Whisper-style log-mel (docs/SPEC.md section 1).
INPUT_SAMPLE_RATE = 16000  # Hz
N_FFT = 400  # samples per STFT frame (25 ms)
HOP_LENGTH = 160  # samples between mel frames (10 ms, 100 Hz)
N_MELS = 80
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * INPUT_SAMPLE_RATE  # 480000 samples in a 30 s window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a 30 s window
MEL_PER_CODE = 8  # 100 Hz mel -> 12.5 Hz codes
SAMPLES_PER_CODE_IN = HOP_LENGTH * MEL_PER_CODE  # 1280 input samples per code (80 ms)
CODE_RATE = INPUT_SAMPLE_RATE / SAMPLES_PER_CODE_IN  # 12.5 codes per second
FRAME_SECONDS = SAMPLES_PER_CODE_IN / INPUT_SAMPLE_RATE  # 0.08 s of audio per code frame
CODES_PER_CHUNK = N_FRAMES // MEL_PER_CODE  # 375 codes in a 30 s window


def valid_frames(samples):
    """Valid mel frames of ``samples`` samples: ceil(n / 160). Works on ints and arrays/tensors."""
    return (samples + HOP_LENGTH - 1) // HOP_LENGTH


@dataclass(frozen=True)
class TransformerConfig:
    """One stack of pre-LN transformer layers (encoder, adapter or decoder)."""

    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    max_positions: int
    input_dim: int | None = None  # adapters: optional input projection
    output_dim: int | None = None  # adapters: optional output projection

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ConfigError(
                f"d_model {self.d_model} is not divisible by {self.heads} attention heads"
            )


@dataclass(frozen=True)
class QuantizerConfig:
    input_dim: int
    rvq_dim: int
    output_dim: int
    num_quantizers: int
    codebook_size: int


@dataclass(frozen=True)
class VocosConfig:
    input_channels: int
    dim: int
    intermediate_dim: int
    num_layers: int
    n_fft: int
    hop: int


@dataclass(frozen=True)
class XYConfig:
    """Everything the model needs, derived once from a config file."""

    semantic_encoder: TransformerConfig
    semantic_adapter: TransformerConfig
    acoustic_encoder: TransformerConfig
    pre_rvq_adapter: TransformerConfig
    downsample_factor: int
    quantizer: QuantizerConfig
    post_rvq_adapter: TransformerConfig
    upsample_stride: int
    acoustic_decoder: TransformerConfig
    vocos: VocosConfig
    input_sample_rate: int
    output_sample_rate: int
    variant: str  # "standalone" or "moss_ttsd"

    @property
    def vocoder_name(self) -> str:
        """Name of the vocoder module in the checkpoint (``vocos`` or ``enhanced_vocos``)."""
        return "vocos" if self.variant == "standalone" else "enhanced_vocos"

    @property
    def samples_per_code_out(self) -> int:
        """Output-rate samples per code (1280 at 16 kHz, 1920 at 24 kHz, 2560 at 32 kHz)."""
        return self.vocos.hop * MEL_PER_CODE

    @property
    def num_quantizers(self) -> int:
        return self.quantizer.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> XYConfig:
        """Inverse of `to_dict` (e.g. the ``config`` entry of an export's manifest.json)."""
        kw = dict(d)
        for key in (
            "semantic_encoder",
            "semantic_adapter",
            "acoustic_encoder",
            "pre_rvq_adapter",
            "post_rvq_adapter",
            "acoustic_decoder",
        ):
            kw[key] = TransformerConfig(**d[key])
        kw["quantizer"] = QuantizerConfig(**d["quantizer"])
        kw["vocos"] = VocosConfig(**d["vocos"])
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> XYConfig:
        """Read one of the official config files (any of the three layouts)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<dict>") -> XYConfig:
        """Parse the YAML structure; raises `ConfigError` naming the missing or bad key."""
        if not isinstance(raw, dict):
            raise ConfigError(f"config {source}: expected a mapping, got {type(raw).__name__}")
        gp = raw.get("generator_params", raw)
        if not isinstance(gp, dict):
            raise ConfigError(f"config {source}: 'generator_params' must be a mapping")
        return _parse(gp, raw, source)


def _get(d: dict, key: str, source: str, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ConfigError(f"config {source}: missing key '{where}{key}'")
    return d[key]


def _int(d: dict, key: str, source: str, where: str) -> int:
    value = _get(d, key, source, where)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"config {source}: '{where}{key}' must be a positive integer, got {received(value)}"
        )
    return value


def _stack(gp: dict, name: str, source: str, kind: str) -> TransformerConfig:
    d = _get(gp, name, source, "generator_params.")
    w = f"generator_params.{name}."
    prefix = "decoder" if kind == "decoder" else "encoder"
    if kind == "adapter":
        input_dim = _int(d, "input_dim", source, w)
        output_dim = _int(d, "output_dim", source, w)
        max_pos = _int(d, "max_source_positions", source, w)
    else:
        input_dim = output_dim = None
        max_pos = _int(d, "max_audio_seconds", source, w) * 50  # 50 Hz after the stride-2 conv
    d_model = _int(d, "d_model", source, w)
    return TransformerConfig(
        d_model=d_model,
        layers=_int(d, f"{prefix}_layers", source, w),
        heads=_int(d, f"{prefix}_attention_heads", source, w),
        ffn_dim=_int(d, f"{prefix}_ffn_dim", source, w),
        max_positions=max_pos,
        input_dim=input_dim,
        output_dim=output_dim,
    )


def _parse(gp: dict, top: dict, source: str) -> XYConfig:
    fe = gp.get("feature_extractor_kwargs", {})
    expected_fe = {
        "feature_size": N_MELS,
        "hop_length": HOP_LENGTH,
        "n_fft": N_FFT,
        "n_samples": N_SAMPLES,
    }
    for key, want in expected_fe.items():
        if key in fe and fe[key] != want:
            raise ConfigError(
                f"config {source}: feature_extractor_kwargs.{key} is {fe[key]!r}; xyrt supports "
                f"only the published front end ({key}={want})"
            )
    q = _get(gp, "quantizer_kwargs", source, "generator_params.")
    wq = "generator_params.quantizer_kwargs."
    quant = QuantizerConfig(
        input_dim=_int(q, "input_dim", source, wq),
        rvq_dim=_int(q, "rvq_dim", source, wq),
        output_dim=_int(q, "output_dim", source, wq),
        num_quantizers=_int(q, "num_quantizers", source, wq),
        codebook_size=_int(q, "codebook_size", source, wq),
    )
    if "codebook_dim" in q and q["codebook_dim"] != quant.rvq_dim:
        raise ConfigError(
            f"config {source}: codebook_dim {q['codebook_dim']} != rvq_dim {quant.rvq_dim}"
        )
    v = _get(gp, "vocos_kwargs", source, "generator_params.")
    wv = "generator_params.vocos_kwargs."
    vocos = VocosConfig(
        input_channels=_int(v, "input_channels", source, wv),
        dim=_int(v, "dim", source, wv),
        intermediate_dim=_int(v, "intermediate_dim", source, wv),
        num_layers=_int(v, "num_layers", source, wv),
        n_fft=_int(v, "n_fft", source, wv),
        hop=_int(v, "hop_size", source, wv),
    )
    if v.get("padding", "same") != "same":
        raise ConfigError(f"config {source}: only vocos padding 'same' is supported")
    if (vocos.n_fft - vocos.hop) % 2:
        raise ConfigError(f"config {source}: vocos n_fft - hop_size must be even")

    moss_keys = ("input_sample_rate", "output_sample_rate")
    if any(k in gp for k in moss_keys) or any(k in top for k in moss_keys):
        variant = "moss_ttsd"
        in_rate = gp.get("input_sample_rate", top.get("input_sample_rate"))
        out_rate = gp.get("output_sample_rate", top.get("output_sample_rate"))
        down = gp.get("encoder_downsample_rate", SAMPLES_PER_CODE_IN)
        up = gp.get("decoder_upsample_rate", vocos.hop * MEL_PER_CODE)
        if down != SAMPLES_PER_CODE_IN:
            raise ConfigError(
                f"config {source}: encoder_downsample_rate is {down}, expected "
                f"{SAMPLES_PER_CODE_IN} (12.5 Hz codes from 16 kHz audio)"
            )
        if up != vocos.hop * MEL_PER_CODE:
            raise ConfigError(
                f"config {source}: decoder_upsample_rate {up} does not match vocos hop_size "
                f"{vocos.hop} x {MEL_PER_CODE} = {vocos.hop * MEL_PER_CODE}"
            )
    else:
        variant = "standalone"
        in_rate = gp.get("sample_rate", top.get("sample_rate"))
        out_rate = in_rate
    if in_rate != INPUT_SAMPLE_RATE:
        raise ConfigError(
            f"config {source}: input sample rate is {in_rate!r}, expected {INPUT_SAMPLE_RATE}"
        )
    if out_rate != vocos.hop * 100:
        raise ConfigError(
            f"config {source}: output sample rate {out_rate!r} does not match vocos hop_size "
            f"{vocos.hop} at 100 frames/s (expected {vocos.hop * 100})"
        )
    down_cfg = _get(gp, "downsample_kwargs", source, "generator_params.")
    up_cfg = _get(gp, "upsample_kwargs", source, "generator_params.")
    cfg = XYConfig(
        semantic_encoder=_stack(gp, "semantic_encoder_kwargs", source, "encoder"),
        semantic_adapter=_stack(gp, "semantic_encoder_adapter_kwargs", source, "adapter"),
        acoustic_encoder=_stack(gp, "acoustic_encoder_kwargs", source, "encoder"),
        pre_rvq_adapter=_stack(gp, "pre_rvq_adapter_kwargs", source, "adapter"),
        downsample_factor=_int(down_cfg, "avg_pooler", source, "downsample_kwargs."),
        quantizer=quant,
        post_rvq_adapter=_stack(gp, "post_rvq_adapter_kwargs", source, "adapter"),
        upsample_stride=_int(up_cfg, "stride", source, "upsample_kwargs."),
        acoustic_decoder=_stack(gp, "acoustic_decoder_kwargs", source, "decoder"),
        vocos=vocos,
        input_sample_rate=in_rate,
        output_sample_rate=out_rate,
        variant=variant,
    )
    _check_dims(cfg, source)
    return cfg


def _check_dims(cfg: XYConfig, source: str) -> None:
    d = cfg.acoustic_encoder.d_model
    checks = [
        (cfg.downsample_factor == 4, "downsample_kwargs.avg_pooler must be 4"),
        (cfg.upsample_stride == 4, "upsample_kwargs.stride must be 4"),
        (cfg.semantic_encoder.d_model == d, "semantic and acoustic encoders differ in d_model"),
        (
            cfg.pre_rvq_adapter.input_dim == cfg.semantic_adapter.output_dim + d,
            "pre_rvq_adapter.input_dim must equal semantic adapter output + acoustic d_model",
        ),
        (
            cfg.quantizer.input_dim == cfg.pre_rvq_adapter.output_dim * cfg.downsample_factor,
            "quantizer.input_dim must equal pre_rvq_adapter.output_dim x 4",
        ),
        (
            cfg.acoustic_decoder.d_model * 4 == cfg.post_rvq_adapter.output_dim,
            "post_rvq_adapter.output_dim must be 4 x acoustic_decoder d_model",
        ),
        (cfg.vocos.input_channels == N_MELS, f"vocos input_channels must be {N_MELS}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"config {source}: {message}")


def builtin_config_path(name: str = "xy_tokenizer_16k") -> Path:
    """Path of a bundled official config: xy_tokenizer_16k, moss_ttsd_24k or moss_ttsd_32k."""
    path = Path(__file__).parent / "data" / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"no built-in config named '{name}'; available: {', '.join(names)}")
    return path
