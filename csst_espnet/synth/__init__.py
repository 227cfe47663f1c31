"""Synthetic speech corpora (see docs/architecture.md).

``espeak``: the eSpeak NG engine (ctypes binding, deterministic isolated synthesis).
``pairs``: what the corpus builder needs from a language pair (languages, voices, sentence
grammar) and the registry of pairs. ``grammar``: template grammars (lexicon, templates in both
languages, determiner forms, code-switched renditions). ``grammar_zh_en``: the Mandarin-English
lecture grammar; ``lecture_en``: the English lecture sentences that ``grammar_es_en``,
``grammar_fr_en`` and ``grammar_de_en`` translate. ``corpus``: the corpus builder of one pair or
several with one target (Kaldi data dirs, audio, phone alignments, LM text); its command line is
``python -m csst_espnet.bin.synth_corpus``.
"""
