"""The XY-Tokenizer network: waveform window -> codes and codes -> waveform (docs/SPEC.md 1-7).

``XYTokenizer`` is state-dict compatible with the official checkpoints. It works on one window
(at most 30 s) at a time; long audio and chunking live in `xyrt.runtime.codec`.
"""

from __future__ import annotations

from xyrt.config import N_SAMPLES, XYConfig
from xyrt.errors import AudioError, CodesError, require
from xyrt.runtime.graph_io import padded_length
from xyrt.runtime.network.frontend import LogMel
from xyrt.runtime.network.layers import (
    AcousticDecoder,
    Adapter,
    Downsample,
    Encoder,
    TransformerStack,
    Upsample,
    sinusoids,
)
from xyrt.runtime.network.quantizer import ResidualVQ
from xyrt.runtime.network.vocos import ISTFT, Vocos

torch = require("torch", "export", "the PyTorch network")
Tensor = torch.Tensor
nn = torch.nn


class XYTokenizer(nn.Module):
    """The whole codec network; submodule names are the official checkpoints' names."""

    def __init__(self, cfg: XYConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel()
        self.semantic_encoder = Encoder(cfg.semantic_encoder)
        self.semantic_encoder_adapter = Adapter(cfg.semantic_adapter)
        self.acoustic_encoder = Encoder(cfg.acoustic_encoder)
        self.pre_rvq_adapter = Adapter(cfg.pre_rvq_adapter)
        self.downsample = Downsample(cfg.pre_rvq_adapter.output_dim, cfg.downsample_factor)
        self.quantizer = ResidualVQ(cfg.quantizer)
        self.post_rvq_adapter = Adapter(cfg.post_rvq_adapter)
        self.upsample = Upsample(cfg.acoustic_decoder.d_model, cfg.upsample_stride)
        self.acoustic_decoder = AcousticDecoder(cfg.acoustic_decoder)
        self.add_module(cfg.vocoder_name, Vocos(cfg.vocos))

    @classmethod
    def uninitialized(cls, cfg: XYConfig) -> XYTokenizer:
        """Parameters allocated but not initialised (to be loaded or overwritten); buffers set."""
        with torch.device("meta"):
            model = cls(cfg)
        model = model.to_empty(device="cpu")
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(float("nan"))  # anything left unset shows up, never stale memory
        model.reset_buffers()
        return model

    def reset_buffers(self) -> None:
        """Recompute the constant buffers: positional embeddings, windows, mel filters."""
        self.frontend = LogMel()
        for module in self.modules():
            if isinstance(module, TransformerStack):
                module.positional_embedding = sinusoids(*module.positional_embedding.shape)
            elif isinstance(module, ISTFT):
                module.window = torch.hann_window(module.n_fft, periodic=True)

    @property
    def vocoder(self) -> Vocos:
        return getattr(self, self.cfg.vocoder_name)

    # -- encode ---------------------------------------------------------------------------------
    def latents(
        self, mel: Tensor, mel_lengths: Tensor, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """log-mel (B, 80, N) -> pre-RVQ latents (B, N/8, 4d) at 12.5 Hz and their lengths.

        ``positions`` (B,): each window's first code in the 30 s window (None: 0)."""
        pos = None if positions is None else positions * self.cfg.downsample_factor  # 50 Hz
        sem, lengths = self.semantic_encoder(mel, mel_lengths, pos)
        sem = self.semantic_encoder_adapter(sem, lengths, positions=pos)
        aco, _ = self.acoustic_encoder(mel, mel_lengths, pos)
        x = self.pre_rvq_adapter(torch.cat([sem, aco], dim=-1), lengths, positions=pos)
        return self.downsample(x, lengths)

    def encode_mel(
        self, mel: Tensor, mel_lengths: Tensor, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """log-mel (B, 80, N) -> codes (8, B, N/8) int64 and code lengths (B,)."""
        x, lengths = self.latents(mel, mel_lengths, positions)
        return self.quantizer.encode(x, lengths), lengths

    def prepare_window(self, wav: Tensor, lengths: Tensor, pad_to_30s: bool = False) -> Tensor:
        """Zero beyond each length, then pad or crop to the samples the network must see."""
        if wav.ndim != 2:
            raise AudioError(f"expected a (batch, samples) waveform, got shape {tuple(wav.shape)}")
        max_len = int(lengths.max()) if lengths.numel() else 0
        if max_len > N_SAMPLES:
            raise AudioError(
                f"a window holds at most {N_SAMPLES} samples (30 s); got {max_len}. "
                "Use XYCodec.encode, which chunks long audio."
            )
        size = padded_length(max_len, pad_to_30s)
        wav = wav[:, :size].float()
        if wav.shape[1] < size:
            wav = torch.nn.functional.pad(wav, (0, size - wav.shape[1]))
        keep = torch.arange(size, device=wav.device)[None, :] < lengths.to(wav.device)[:, None]
        return wav * keep.to(wav.dtype)

    # -- decode ---------------------------------------------------------------------------------
    def decode_mel(
        self, codes: Tensor, lengths: Tensor | None = None, positions: Tensor | None = None
    ) -> Tensor:
        """codes (8, B, T) -> reconstructed log-mel (B, 80, 8T) at 100 Hz; ``positions`` (B,):
        each window's first code in the 30 s window (None: 0)."""
        if codes.ndim != 3 or codes.shape[0] != self.cfg.num_quantizers:
            raise CodesError(
                f"expected codes of shape ({self.cfg.num_quantizers}, batch, frames), "
                f"got {tuple(codes.shape)}"
            )
        if lengths is None:
            lengths = torch.full(
                (codes.shape[1],), codes.shape[2], dtype=torch.long, device=codes.device
            )
        return self.decode_projected(self.quantizer.decode(codes), lengths, positions, True)

    def decode_projected(
        self, x: Tensor, lengths: Tensor, positions: Tensor | None, project_input: bool
    ) -> Tensor:
        """RVQ output (B, T, rvq out, or d_model when projected) -> log-mel (B, 80, 8T)."""
        x = self.post_rvq_adapter(x, lengths, project_input, positions)
        x, up_lengths = self.upsample(x, lengths)
        up_pos = None if positions is None else positions * self.cfg.upsample_stride
        mel, _ = self.acoustic_decoder(x, up_lengths, up_pos)
        return mel

    def decode_codes(
        self, codes: Tensor, lengths: Tensor | None = None, positions: Tensor | None = None
    ) -> Tensor:
        """codes (8, B, T) int64 -> audio (B, T x samples_per_code) float32 at the output rate."""
        return self.vocoder(self.decode_mel(codes, lengths, positions))
