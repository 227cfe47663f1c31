"""The English side of the lecture grammars of Spanish, French and German (pairs ``es-en``, ``fr-en``,
``de-en``): one list of terms and one list of sentence templates (with their paraphrases), which each
language module translates.

A lecture on machine learning and the talk around it (homework, exams, questions). Each language
module gives, keyed by the English, its translation of every term (with its grammatical gender) and
of every template (with the determiner forms of its slots: ``{M:def}``, see
:mod:`csst_espnet.synth.grammar`); :func:`make_grammar` checks that nothing is missing and builds the
:class:`~csst_espnet.synth.grammar.Grammar`. So the three languages translate the same English
sentences, and a sentence's translation is exact by construction.

English is lower case without punctuation (the transcript style of every set); ``|`` marks where
a code-switched rendition may go on in English (phrase boundaries that the code-switching language's
templates mark at the same places).
"""

from typing import Callable, Dict, List, Tuple

from csst_espnet.synth.grammar import Grammar, Template, Term, words

# slot class -> English terms (singular, in the form used after "the"/"this"; methods take no article)
TERMS: Dict[str, List[str]] = {
    # models
    "M": ["model", "language model", "decision tree", "classifier", "encoder", "decoder", "transformer",
          "perceptron", "autoencoder", "regression model", "convolutional network", "network"],
    # methods
    "A": ["gradient descent", "backpropagation", "regularization", "cross validation", "data augmentation",
          "batch normalization", "transfer learning", "reinforcement learning", "clustering",
          "knowledge distillation", "pretraining", "fine tuning"],
    # quantities and parts
    "Q": ["loss function", "learning rate", "accuracy", "activation function", "batch size", "hidden layer",
          "output layer", "word embedding", "error", "probability distribution", "objective function",
          "weight matrix", "feature vector", "decision boundary", "validation loss"],
    # data
    "D": ["training set", "test set", "validation set", "dataset", "benchmark"],
    # the course
    "N": ["homework", "example", "exam", "formula", "concept", "experiment", "code", "result", "problem",
          "slide", "project", "paper"],
}

# (English, paraphrased English)
TEMPLATES: List[Tuple[str, str]] = [
    ("we use {A} | to train this {M}", "we train this {M} with {A}"),
    ("today | we will talk about {A}", "today we are going to discuss {A}"),
    ("next | we compute the {Q}", "next we calculate the {Q}"),
    ("please | remember this {Q}", "everyone please remember this {Q}"),
    ("i think | the {Q} is a problem", "in my opinion the {Q} is a problem"),
    ("{A} can make the {M} better", "{A} makes the {M} better"),
    ("why is {A} useful", "why does {A} help"),
    ("we need to update the {Q}", "we have to update the {Q}"),
    ("you can think of the {M} | as a function", "you can view the {M} as a function"),
    ("this is the basic idea | behind {A}", "that is the main idea behind {A}"),
    ("the {Q} will slowly decrease", "the {Q} goes down slowly"),
    ("first | we initialize the {Q}", "we first initialize the {Q}"),
    ("this {M} is better | than that {M2}", "this {M} works better than that {M2}"),
    ("the {N} uses {A}", "the {N} requires {A}"),
    ("in class | we discussed the {Q}", "we talked about the {Q} in class"),
    ("we evaluate the {M} | on the {D}", "we test the {M} on the {D}"),
    ("{A} is not the same as {A2}", "{A} and {A2} are not the same"),
    ("next week | the exam will cover {A}", "the exam next week covers {A}"),
    ("how much is the {Q} here", "what is the value of the {Q} here"),
    ("what happens | if the {Q} is huge", "what if the {Q} is huge"),
    ("the {M} needs a lot of data", "the {M} needs much data"),
    ("we use the {D} | to train the {M}", "we train the {M} on the {D}"),
    ("do you think | {A} is difficult", "is {A} difficult for you"),
    ("let us look at this {N}", "we look at this {N}"),
    ("the {N} is on the course website", "the {N} is on the class website"),
    ("this {N} has to do with {A}", "this {N} is related to {A}"),
    ("in the end | we get the {Q}", "finally we obtain the {Q}"),
    ("has anyone heard of {A}", "did anyone hear about {A}"),
    ("this time | we do not use {A}", "we are not using {A} this time"),
    ("i still do not understand | the {Q}", "i do not understand the {Q} yet"),
    ("can you explain | the {N} again", "could you explain the {N} once more"),
    ("i finished the {N} | yesterday", "yesterday i finished the {N}"),
    ("the {N} is due tomorrow", "the {N} must be handed in tomorrow"),
    ("we trained the {M} | on the {D}", "the {M} was trained on the {D}"),
    ("we compute the {Q} | on the {D}", "we calculate the {Q} on the {D}"),
    ("i saved the {M} | on my computer", "the {M} is saved on my computer"),
    ("i really like this {N}", "i am very fond of this {N}"),
    ("does anyone have questions", "are there any questions"),
    ("let us take a ten minute break", "we take a break for ten minutes"),
    ("that is all for today", "we stop here for today"),
]

# sentence length caps that keep utterances at about 1.5-4 s
MAX_SOURCE_WORDS = 12
MAX_EN_WORDS = 10


def make_grammar(source: str, terms: Dict[str, Tuple[str, str]], templates: Dict[str, str],
                 determiner: Callable[[Term, str], str], code_switch: bool) -> Grammar:
    """The grammar of language ``source``: ``terms`` maps every English term to (source term, gender),
    ``templates`` every English template (as in :data:`TEMPLATES`, with its ``|``) to its translation."""
    english = [t for ts in TERMS.values() for t in ts]
    for what, given, needed in (("terms", terms, english), ("templates", templates, [t for t, _ in TEMPLATES])):
        missing, extra = set(needed) - set(given), set(given) - set(needed)
        if missing or extra:
            raise ValueError(f"{source}: {what} missing {sorted(missing)}, unknown {sorted(extra)}")
    lexicon = {cls: [Term(terms[t][0], t, terms[t][1]) for t in ts] for cls, ts in TERMS.items()}
    return Grammar(source, "en", lexicon, [Template(templates[t], t, alt) for t, alt in TEMPLATES],
                   source_length=lambda text: len(words(text)), determiner=determiner,
                   code_switch=code_switch)


def corpus_sentences(grammar: Grammar) -> Callable[[int], list]:
    """The ``sentences`` of a :class:`~csst_espnet.synth.pairs.LanguagePair` of ``grammar``: its pool
    with the length caps, shuffled by the seed."""
    return lambda seed: grammar.sentence_pool(seed, MAX_SOURCE_WORDS, MAX_EN_WORDS)
