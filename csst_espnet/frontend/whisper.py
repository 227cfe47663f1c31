"""Whisper's log-mel frontend in PyTorch: waveform (16 kHz) -> (B, T, n_mels).

Same analysis as Whisper's feature extractor (400-point Hann STFT, hop 160, Slaney mel bank,
log10, 8-unit dynamic range, (x + 4) / 4), computed batched on the model's device. Each
utterance is clipped to its own dynamic range and padding never leaks into its frames, so an
utterance gives the same features alone and inside a batch.

``vtlp_warp`` > 0 adds vocal-tract-length perturbation in training: each utterance's spectrum is
stretched along the frequency axis by a factor drawn uniformly from [1 - vtlp_warp, 1 + vtlp_warp]
(formants and harmonics move together, as between speakers), by warping the mel filterbank. The
time axis is untouched, so frame-level labels stay aligned. Off in eval mode.
"""

from typing import Tuple

import torch
import torchaudio

from espnet2.asr.frontend.abs_frontend import AbsFrontend


class WhisperLogMel(AbsFrontend):
    def __init__(
        self, fs: int = 16000, n_mels: int = 80, n_fft: int = 400, hop_length: int = 160, vtlp_warp: float = 0.0
    ):
        super().__init__()
        if fs != 16000:
            raise ValueError(f"Whisper features need 16 kHz audio, got fs={fs}; resample in data preparation")
        if not 0.0 <= vtlp_warp < 0.5:
            raise ValueError(f"vtlp_warp must be in [0, 0.5), got {vtlp_warp}")
        self.vtlp_warp = vtlp_warp
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        mel = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, f_min=0.0, f_max=fs / 2, n_mels=n_mels, sample_rate=fs, norm="slaney", mel_scale="slaney"
        )  # (n_freqs, n_mels)
        self.register_buffer("mel_fbank", mel, persistent=False)

    def output_size(self) -> int:
        return self.n_mels

    def warped_fbank(self, alphas: torch.Tensor) -> torch.Tensor:
        """Mel filterbanks of spectra stretched by ``alphas`` (B,): (B, n_freqs, n_mels).

        A spectrum stretched by a, P'(f) = P(f / a), gives mel energies sum_g P(g) W(a g):
        the filterbank read at the scaled frequency (linear interpolation, zero past Nyquist).
        """
        n_freqs = self.mel_fbank.size(0)
        pos = torch.arange(n_freqs, device=alphas.device, dtype=torch.float32)[None, :] * alphas[:, None]
        low = pos.floor().long()
        frac = (pos - low)[..., None]  # (B, F, 1)
        padded = torch.cat([self.mel_fbank, self.mel_fbank.new_zeros(2, self.mel_fbank.size(1))])
        low = low.clamp(max=n_freqs)  # past Nyquist: the zero rows
        return padded[low] * (1 - frac) + padded[low + 1] * frac

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # speech: (B, S) float; lengths in samples
        speech = speech.float()
        samples = torch.arange(speech.size(1), device=speech.device)
        speech = speech.masked_fill(samples[None, :] >= speech_lengths[:, None], 0.0)
        # Reflect-pad the start as Whisper does; zero-pad the end, so that an utterance's last
        # frames see zeros after it both alone and inside a longer batch.
        half = self.n_fft // 2
        speech = torch.cat([speech[:, 1 : half + 1].flip(1), speech, speech.new_zeros(speech.size(0), half)], dim=1)
        spec = torch.stft(speech, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True)
        power = spec[..., :-1].abs() ** 2  # (B, F, T); Whisper drops the last frame
        if self.training and self.vtlp_warp > 0:
            alphas = 1.0 + (torch.rand(speech.size(0), device=speech.device) * 2 - 1) * self.vtlp_warp
            mel = torch.bmm(power.transpose(1, 2), self.warped_fbank(alphas))  # (B, T, n_mels)
        else:
            mel = torch.matmul(power.transpose(1, 2), self.mel_fbank)  # (B, T, n_mels)
        log_mel = torch.clamp(mel, min=1e-10).log10()
        lengths = torch.div(speech_lengths, self.hop_length, rounding_mode="floor")
        frames = torch.arange(log_mel.size(1), device=speech.device)
        valid = frames[None, :] < lengths[:, None]  # (B, T)
        peak = log_mel.masked_fill(~valid[..., None], float("-inf")).amax(dim=(1, 2), keepdim=True)
        log_mel = torch.maximum(log_mel, peak - 8.0)
        feats = ((log_mel + 4.0) / 4.0).masked_fill(~valid[..., None], 0.0)
        return feats, lengths
