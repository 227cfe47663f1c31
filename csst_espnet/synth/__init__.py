"""Synthetic speech corpora (see docs/architecture.md).

``espeak``: the eSpeak NG engine (ctypes binding, deterministic isolated synthesis).
``pairs``: what the corpus builder needs from a language pair (languages, voices, sentence
grammar) and the registry of pairs. ``grammar_zh_en``: the Mandarin-English lecture grammar.
``corpus``: the corpus builder (Kaldi data dirs, audio, phone alignments, LM text); its command
line is ``python -m csst_espnet.bin.synth_corpus``.
"""
