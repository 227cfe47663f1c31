"""A small ctypes binding of eSpeak NG, as shipped by the ``espeakng-loader`` wheel.

Only what the synthetic corpus needs: pick a voice (``cmn+f3``, ``en-us+m2``...),
set rate and pitch, synthesise UTF-8 text to 16-bit samples at the engine's rate
(22050 Hz) together with the phones eSpeak spoke and where each starts (its phoneme
events), and turn text into phonemes (to check that a voice knows a word).

Determinism. eSpeak NG keeps state across calls inside one process (noise
generators and filter memories in its wave generator that ``espeak_Terminate`` /
``espeak_Initialize`` do not reset), so the same text synthesised twice in a row
gives slightly different samples. Audio is therefore reproducible only when
every clip is made by a process whose engine has synthesised nothing before and
whose random seeds are fixed. :func:`run_isolated` does that: each job runs in a
freshly forked child of a process whose engine is initialised but never used,
and this process never synthesises itself. All synthesis in this package goes
through it.
"""

import ctypes
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

# espeak_AUDIO_OUTPUT / espeak_PARAMETER / flags, from speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_INITIALIZE_PHONEME_EVENTS = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
SILENCE = "sil"

ENGINE_SAMPLE_RATE = 22050


class ESpeakError(RuntimeError):
    pass


def library_paths() -> Tuple[str, str]:
    """(shared library, data directory) of the espeakng-loader wheel."""
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise ESpeakError(
            "espeakng-loader is not installed: pip install espeakng-loader"
        ) from e
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h (the union ``id`` read as the phoneme mnemonic)."""

    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

# phone segments of a clip: (start sample at the engine's rate, phone), in time order
Phones = List[Tuple[int, str]]


def normalize_phone(mnemonic: str) -> str:
    """A phoneme mnemonic without stress marks; pauses (``_``, ``_:``, ``_|``...) are ``sil``."""
    if mnemonic.startswith("_"):
        return SILENCE
    return mnemonic.replace("'", "").replace(",", "")


class ESpeak:
    """One eSpeak NG engine. The C library is process-global: make one per process.

    Prefer :func:`run_isolated` over calling :meth:`synth` directly (see module doc).
    """

    def __init__(self, lib_path: Optional[str] = None, data_path: Optional[str] = None):
        default_lib, default_data = library_paths()
        lib_path = lib_path or default_lib
        data_path = data_path or default_data
        self.lib = ctypes.CDLL(lib_path)
        self.libc = ctypes.CDLL(None)
        lib = self.lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._has_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        if self._has_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_PHONEME_EVENTS
        )
        if self.sample_rate <= 0:
            raise ESpeakError(f"espeak_Initialize failed with data at {data_path}")
        self._chunks: List[np.ndarray] = []
        self._events: Phones = []  # raw mnemonics
        self._cb = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((events[i].sample, events[i].id.decode("utf-8", "replace")))
            i += 1
        return 0

    def set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ESpeakError(f"unknown eSpeak NG voice {voice!r}")

    def seed(self, seed: int) -> None:
        """Fix eSpeak's own noise generator and libc's rand(), both used in wavegen."""
        seed = int(seed) % (2**31 - 1)
        if self._has_seed:
            self.lib.espeak_ng_SetRandSeed(seed)
        self.libc.srand(ctypes.c_uint(seed))

    def synth(
        self,
        text: str,
        voice: str,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: Optional[int] = None,
    ) -> np.ndarray:
        """Synthesise ``text`` with ``voice``; int16 samples at ``self.sample_rate``."""
        return self.synth_phones(text, voice, rate, pitch, pitch_range, seed)[0]

    def synth_phones(
        self,
        text: str,
        voice: str,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: Optional[int] = None,
    ) -> Tuple[np.ndarray, Phones]:
        """:meth:`synth`, and the phones spoken: ``[(start sample, phone)]`` at ``self.sample_rate``.

        Phones are :func:`normalize_phone`'d mnemonics; each lasts until the next one starts
        (the last one until the end of the audio). Repeats of a phone (``_|`` then ``_:``,
        both ``sil``) are merged, and a phone that starts where the next one does is left out.
        """
        self.set_voice(voice)
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(_RANGE, int(pitch_range), 0)
        if seed is not None:
            self.seed(seed)
        self._chunks = []
        self._events = []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if err != 0:
            raise ESpeakError(f"espeak_Synth failed ({err}) on {text!r}")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.int16), []
        audio = np.concatenate(self._chunks).astype(np.int16, copy=False)
        phones: Phones = []
        for start, mnemonic in self._events:
            phone = normalize_phone(mnemonic)
            start = min(start, len(audio))
            if phones and phones[-1][0] == start:  # the earlier one lasts no time
                phones.pop()
            if not phones or phones[-1][1] != phone:
                phones.append((start, phone))
        if phones and phones[-1][0] == len(audio):
            phones.pop()
        return audio, phones

    def phonemes(self, text: str, voice: str) -> str:
        """eSpeak's phoneme mnemonics for ``text`` (clauses joined by spaces)."""
        self.set_voice(voice)
        buf = ctypes.c_char_p(text.encode("utf-8"))
        ptr = ctypes.pointer(buf)
        out = []
        while buf.value:
            res = self.lib.espeak_TextToPhonemes(ptr, _CHARS_UTF8, 0)
            if res is None:
                break
            out.append(res.decode("utf-8", "replace").strip())
        return " ".join(p for p in out if p)


# ---------------------------------------------------------------- isolation
_ENGINE: Optional[ESpeak] = None


def _engine() -> ESpeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = ESpeak()
    return _ENGINE


def _in_fresh_fork(fn, job):
    """Run ``fn(engine, job)`` in a child forked from this (never synthesising) process."""
    import pickle
    import traceback

    engine = _engine()  # initialised here, used only by the children
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesise, send the pickled result, leave without cleanup
        os.close(r)
        try:
            payload = pickle.dumps((True, fn(engine, job)))
        except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
            payload = pickle.dumps((False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise ESpeakError(f"synthesis process died (status {status}) on job {job!r}")
    ok, res = pickle.loads(data)
    if not ok:
        raise ESpeakError(f"synthesis failed on job {job!r}: {res}")
    return res


def _run_job(args):
    fn, job = args
    return _in_fresh_fork(fn, job)


def run_isolated(
    fn: Callable[[ESpeak, object], object],
    jobs: Sequence[object],
    nj: int = 1,
) -> Iterator[object]:
    """Yield ``fn(engine, job)`` for each job, in order, each in a fresh forked process.

    ``fn`` must be a module-level function. ``nj`` worker processes each hold an
    initialised engine that never synthesises; every job runs in a child forked
    from one of them (a fork costs a few milliseconds). So every clip is
    independent of what was synthesised before it: the audio depends only on the
    job (and the seed inside it), not on ``nj`` or on job order. With ``nj=1`` no
    worker is started and children fork from this process, which never
    synthesises either.
    """
    if not jobs:
        return
    nj = max(1, min(int(nj), len(jobs)))
    if nj == 1:
        for job in jobs:
            yield _in_fresh_fork(fn, job)
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes=nj) as pool:
        for res in pool.imap(_run_job, [(fn, j) for j in jobs], chunksize=1):
            yield res


def _synth_job(engine: ESpeak, job):
    text, voice, rate, pitch, seed = job
    return engine.synth(text, voice, rate=rate, pitch=pitch, seed=seed)


def synthesize(
    text: str, voice: str, rate: int = 175, pitch: int = 50, seed: int = 0
) -> np.ndarray:
    """One clip at ``ENGINE_SAMPLE_RATE``, made in an isolated child process."""
    return next(run_isolated(_synth_job, [(text, voice, rate, pitch, seed)]))


def _phoneme_job(engine: ESpeak, job):
    texts, voice = job
    return [engine.phonemes(t, voice) for t in texts]


def text_to_phonemes(texts: Iterable[str], voice: str) -> List[str]:
    """Phonemes of each text with ``voice`` (computed in a child process)."""
    return next(run_isolated(_phoneme_job, [(list(texts), voice)]))


def is_available() -> bool:
    try:
        lib, data = library_paths()
    except ESpeakError:
        return False
    return os.path.exists(lib) and os.path.isdir(data)


def voice_variants() -> List[str]:
    """The names of the voice variants (``voice+VARIANT``) that eSpeak NG's data directory offers."""
    variant_dir = os.path.join(library_paths()[1], "voices", "!v")
    if not os.path.isdir(variant_dir):
        raise ESpeakError(f"eSpeak NG data has no voice variants directory {variant_dir}")
    return sorted(os.listdir(variant_dir))
