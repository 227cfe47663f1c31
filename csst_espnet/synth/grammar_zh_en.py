"""The Mandarin-English sentence grammar of the synthetic ``mini_cs`` corpus (pair ``zh-en``).

Sentences of a machine-learning lecture, built from templates and a small
Mandarin–English lexicon of technical terms. Every sentence (a
:class:`csst_espnet.synth.pairs.Sentence`) comes with

- ``source``: the Mandarin transcript (natural written form: no spaces between Chinese
  characters),
- ``target``: its exact English translation (lower case, no punctuation; it is also
  the transcript of the English rendition of the sentence),
- ``target_alt``: a second, paraphrased English translation (test-set ``text.2``),
- ``cs_segments(rng)``: a code-switched rendition: the Mandarin sentence with some
  technical terms said in English, e.g. ``我们用 gradient descent 来训练这个 model``.
  Its translation is ``target``. English words are separated from Chinese characters
  by single spaces.

A sentence is identified by its template and slot fills; translations are exact
by construction (the templates are written in both languages, the lexicon is a
one-to-one term list). :data:`PAIR` adds the voices: Mandarin with ``cmn``, English
with ``en-us`` or ``en`` (American / British).
"""

import itertools
import random
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.synth.pairs import Language, LanguagePair

# ------------------------------------------------------------------ lexicon
# slot class -> [(Mandarin, English)]; English in the form used after "the"/"this".
LEXICON: Dict[str, List[Tuple[str, str]]] = {
    # models
    "M": [
        ("模型", "model"),
        ("神经网络", "neural network"),
        ("决策树", "decision tree"),
        ("分类器", "classifier"),
        ("编码器", "encoder"),
        ("解码器", "decoder"),
        ("语言模型", "language model"),
        ("线性模型", "linear model"),
        ("随机森林", "random forest"),
        ("自编码器", "autoencoder"),
        ("生成模型", "generative model"),
        ("感知机", "perceptron"),
        ("卷积网络", "convolutional network"),
        ("循环网络", "recurrent network"),
        ("变换器", "transformer"),
        ("回归模型", "regression model"),
    ],
    # methods (no article in English)
    "A": [
        ("梯度下降", "gradient descent"),
        ("反向传播", "backpropagation"),
        ("正则化", "regularization"),
        ("交叉验证", "cross validation"),
        ("数据增强", "data augmentation"),
        ("批量归一化", "batch normalization"),
        ("迁移学习", "transfer learning"),
        ("强化学习", "reinforcement learning"),
        ("监督学习", "supervised learning"),
        ("无监督学习", "unsupervised learning"),
        ("知识蒸馏", "knowledge distillation"),
        ("预训练", "pretraining"),
        ("微调", "fine tuning"),
        ("提前停止", "early stopping"),
        ("聚类", "clustering"),
        ("主成分分析", "principal component analysis"),
    ],
    # quantities and parts (singular, after "the")
    "Q": [
        ("损失函数", "loss function"),
        ("学习率", "learning rate"),
        ("梯度", "gradient"),
        ("准确率", "accuracy"),
        ("激活函数", "activation function"),
        ("批次大小", "batch size"),
        ("隐藏层", "hidden layer"),
        ("输出层", "output layer"),
        ("词向量", "word embedding"),
        ("误差", "error"),
        ("概率分布", "probability distribution"),
        ("目标函数", "objective function"),
        ("权重矩阵", "weight matrix"),
        ("特征向量", "feature vector"),
        ("决策边界", "decision boundary"),
        ("验证损失", "validation loss"),
    ],
    # data
    "D": [
        ("训练集", "training set"),
        ("测试集", "test set"),
        ("验证集", "validation set"),
        ("数据集", "dataset"),
        ("训练数据", "training data"),
        ("基准数据", "benchmark"),
    ],
    # lecture nouns (often code-switched in lectures too)
    "N": [
        ("作业", "homework"),
        ("例子", "example"),
        ("投影片", "slides"),
        ("考试", "exam"),
        ("公式", "formula"),
        ("概念", "concept"),
        ("实验", "experiment"),
        ("程序", "code"),
        ("结果", "result"),
        ("问题", "problem"),
    ],
}

# (Mandarin, English, paraphrased English). Placeholders: {M} {M2} {A} {A2} {Q} {D} {N}.
TEMPLATES: List[Tuple[str, str, str]] = [
    ("我们用{A}来训练这个{M}", "we use {A} to train this {M}", "we train this {M} with {A}"),
    ("今天我们要讲{A}", "today we will talk about {A}", "today we are going to discuss {A}"),
    ("接下来我们计算{Q}", "next we compute the {Q}", "next we calculate the {Q}"),
    ("大家先看一下{Q}", "everyone first look at the {Q}", "let us first look at the {Q}"),
    ("我们把{Q}调小一点", "we make the {Q} a little smaller", "we reduce the {Q} a little"),
    ("这个{M}的{Q}太大了", "the {Q} of this {M} is too large", "the {Q} of this {M} is too big"),
    ("{A}可以让{M}更好", "{A} can make the {M} better", "{A} makes the {M} better"),
    ("请大家记住这个{Q}", "please remember this {Q}", "everyone please remember this {Q}"),
    ("为什么{A}有用呢", "why is {A} useful", "why does {A} help"),
    ("我们要更新{Q}", "we need to update the {Q}", "we have to update the {Q}"),
    ("你可以把{M}想成一个函数", "you can think of the {M} as a function", "you can view the {M} as a function"),
    ("这就是{A}的基本想法", "this is the basic idea of {A}", "that is the basic idea behind {A}"),
    ("{Q}会慢慢变小", "the {Q} will slowly become smaller", "the {Q} slowly decreases"),
    ("我们先初始化{Q}", "we first initialize the {Q}", "first we initialize the {Q}"),
    ("这个{M}比那个{M2}好", "this {M} is better than that {M2}", "this {M} works better than that {M2}"),
    ("{N}要用到{A}", "the {N} uses {A}", "the {N} requires {A}"),
    ("上课的时候我们讨论过{Q}", "in class we discussed the {Q}", "we talked about the {Q} in class"),
    ("我们在{D}上评估{M}", "we evaluate the {M} on the {D}", "we test the {M} on the {D}"),
    ("{A}跟{A2}不一样", "{A} is different from {A2}", "{A} and {A2} are different"),
    ("下周考试会考{A}", "next week the exam will cover {A}", "the exam next week covers {A}"),
    ("这里的{Q}是多少", "what is the {Q} here", "how large is the {Q} here"),
    ("我们画出{Q}的曲线", "we plot the curve of the {Q}", "we draw the curve of the {Q}"),
    ("如果{Q}太小会怎么样", "what happens if the {Q} is too small", "what if the {Q} is too small"),
    ("{M}需要很多数据", "the {M} needs a lot of data", "the {M} needs much data"),
    ("我们用{D}来训练{M}", "we use the {D} to train the {M}", "we train the {M} on the {D}"),
    ("你们觉得{A}难不难", "do you think {A} is difficult", "is {A} difficult for you"),
    ("这门课会介绍{M}", "this course will introduce the {M}", "this class introduces the {M}"),
    ("我们来看这个{N}", "let us look at this {N}", "we look at this {N}"),
    ("{N}在课程网站上", "the {N} is on the course website", "the {N} is on the class website"),
    ("我们检查一下{Q}", "let us check the {Q}", "we check the {Q}"),
    ("{M}的{Q}很重要", "the {Q} of the {M} is important", "the {Q} of the {M} matters"),
    ("这个{N}跟{A}有关", "this {N} is related to {A}", "this {N} has to do with {A}"),
    ("我们在{D}上算{Q}", "we compute the {Q} on the {D}", "we calculate the {Q} on the {D}"),
    ("最后我们得到{Q}", "finally we get the {Q}", "in the end we obtain the {Q}"),
    ("有没有人听过{A}", "has anyone heard of {A}", "did anyone hear about {A}"),
    ("我们这次不用{A}", "this time we do not use {A}", "we are not using {A} this time"),
    ("{A}是一种常见的方法", "{A} is a common method", "{A} is a popular method"),
    ("我们先把{M}存起来", "we first save the {M}", "first we store the {M}"),
    ("老师会解释{A}", "the teacher will explain {A}", "the instructor will explain {A}"),
    ("我们先读一下{N}", "let us first read the {N}", "first we read the {N}"),
    ("{D}里面有很多噪音", "the {D} contains a lot of noise", "there is a lot of noise in the {D}"),
    ("这个{M}用了{A}", "this {M} used {A}", "this {M} was built with {A}"),
    ("{N}明天要交", "the {N} is due tomorrow", "the {N} must be handed in tomorrow"),
    ("大家有没有问题", "does anyone have questions", "are there any questions"),
    ("我们休息十分钟", "let us take a ten minute break", "we take a break for ten minutes"),
    ("今天就讲到这里", "that is all for today", "we stop here for today"),
]

_SLOT = re.compile(r"\{([A-Z])(\d?)\}")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def slots_of(template: str) -> List[str]:
    """Slot names in order of first appearance: ``['A', 'M']``."""
    seen: List[str] = []
    for m in _SLOT.finditer(template):
        name = m.group(1) + m.group(2)
        if name not in seen:
            seen.append(name)
    return seen


@dataclass(frozen=True)
class Sentence:
    template: int
    fills: Tuple[Tuple[str, int], ...]  # (slot name, lexicon index)

    @property
    def key(self) -> str:
        return f"t{self.template}:" + ",".join(f"{s}={i}" for s, i in self.fills)

    def _terms(self) -> Dict[str, Tuple[str, str]]:
        return {s: LEXICON[s[0]][i] for s, i in self.fills}

    @property
    def source(self) -> str:
        terms = self._terms()
        return _SLOT.sub(lambda m: terms[m.group(1) + m.group(2)][0], TEMPLATES[self.template][0])

    @property
    def target(self) -> str:
        terms = self._terms()
        return _SLOT.sub(lambda m: terms[m.group(1) + m.group(2)][1], TEMPLATES[self.template][1])

    @property
    def target_alt(self) -> str:
        terms = self._terms()
        return _SLOT.sub(lambda m: terms[m.group(1) + m.group(2)][1], TEMPLATES[self.template][2])

    @property
    def can_switch(self) -> bool:
        return len(self.fills) > 0

    def cs_segments(self, rng: random.Random, p_switch: float = 0.6) -> List[Tuple[str, str]]:
        """Code-switched rendition as language runs ``[(text, 'zh'|'en'), ...]``.

        Each term slot is said in English with probability ``p_switch``; at least
        one is. Mandarin runs carry no spaces, English runs are space-separated
        words.
        """
        if not self.can_switch:
            raise ValueError(f"template {self.template} has no term to switch")
        names = [s for s, _ in self.fills]
        switched = {s for s in names if rng.random() < p_switch}
        if not switched:
            switched = {rng.choice(names)}
        terms = self._terms()
        zh_tpl = TEMPLATES[self.template][0]
        runs: List[Tuple[str, str]] = []
        pos = 0
        for m in _SLOT.finditer(zh_tpl):
            name = m.group(1) + m.group(2)
            if m.start() > pos:
                runs.append((zh_tpl[pos : m.start()], "zh"))
            if name in switched:
                runs.append((terms[name][1], "en"))
            else:
                runs.append((terms[name][0], "zh"))
            pos = m.end()
        if pos < len(zh_tpl):
            runs.append((zh_tpl[pos:], "zh"))
        merged: List[Tuple[str, str]] = []
        for text, lang in runs:
            if merged and merged[-1][1] == lang:
                sep = " " if lang == "en" else ""
                merged[-1] = (merged[-1][0] + sep + text, lang)
            else:
                merged.append((text, lang))
        return merged


def join_segments(segments: Sequence[Tuple[str, str]]) -> str:
    """Written form of language runs: spaces around English runs only."""
    return " ".join(t.strip() for t, _ in segments if t.strip())


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def all_sentences() -> List[Sentence]:
    """Every sentence the grammar can make (two same-class slots get different terms)."""
    out: List[Sentence] = []
    for ti, (zh_tpl, _, _) in enumerate(TEMPLATES):
        names = slots_of(zh_tpl)
        ranges = [range(len(LEXICON[n[0]])) for n in names]
        for combo in itertools.product(*ranges):
            fills = tuple(zip(names, combo))
            by_class: Dict[str, List[int]] = {}
            for n, i in fills:
                by_class.setdefault(n[0], []).append(i)
            if any(len(v) != len(set(v)) for v in by_class.values()):
                continue
            out.append(Sentence(ti, fills))
    return out


def sentence_pool(
    seed: int, max_zh_chars: Optional[int] = None, max_en_words: Optional[int] = None
) -> List[Sentence]:
    """All sentences (optionally length-capped), with unique Mandarin and English
    strings, shuffled by ``seed``."""
    seen_zh, seen_en = set(), set()
    pool = []
    for s in all_sentences():
        zh, en = s.source, s.target
        if zh in seen_zh or en in seen_en:
            continue
        if max_zh_chars is not None and len(zh) > max_zh_chars:
            continue
        if max_en_words is not None and len(en.split()) > max_en_words:
            continue
        seen_zh.add(zh)
        seen_en.add(en)
        pool.append(s)
    rng = random.Random(f"pool:{seed}")
    rng.shuffle(pool)
    return pool


# sentence length caps that keep utterances at about 1.5-4 s
MAX_ZH_CHARS = 14
MAX_EN_WORDS = 9


def corpus_sentences(seed: int) -> List[Sentence]:
    """The sentence pool of the corpus: :func:`sentence_pool` with the length caps."""
    return sentence_pool(seed, MAX_ZH_CHARS, MAX_EN_WORDS)


PAIR = LanguagePair(
    name="zh-en",
    source=Language("zh", voices=("cmn",), rate=205),
    target=Language("en", voices=("en-us", "en", "en-us-nyc", "en-gb-x-rp"), rate=185,
                    unseen_voices=("en-gb-scotland", "en-029")),
    sentences=corpus_sentences,
    join_segments=join_segments,
)
