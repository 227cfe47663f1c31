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

import re
from typing import Dict, List

from csst_espnet.synth.grammar import Grammar, Sentence, Template, Term, join_segments
from csst_espnet.synth.pairs import ENGLISH, Language, LanguagePair

# ------------------------------------------------------------------ lexicon
# slot class -> terms (Mandarin, English); English in the form used after "the"/"this".
LEXICON: Dict[str, List[Term]] = {
    # models
    "M": [
        Term("模型", "model"),
        Term("神经网络", "neural network"),
        Term("决策树", "decision tree"),
        Term("分类器", "classifier"),
        Term("编码器", "encoder"),
        Term("解码器", "decoder"),
        Term("语言模型", "language model"),
        Term("线性模型", "linear model"),
        Term("随机森林", "random forest"),
        Term("自编码器", "autoencoder"),
        Term("生成模型", "generative model"),
        Term("感知机", "perceptron"),
        Term("卷积网络", "convolutional network"),
        Term("循环网络", "recurrent network"),
        Term("变换器", "transformer"),
        Term("回归模型", "regression model"),
    ],
    # methods (no article in English)
    "A": [
        Term("梯度下降", "gradient descent"),
        Term("反向传播", "backpropagation"),
        Term("正则化", "regularization"),
        Term("交叉验证", "cross validation"),
        Term("数据增强", "data augmentation"),
        Term("批量归一化", "batch normalization"),
        Term("迁移学习", "transfer learning"),
        Term("强化学习", "reinforcement learning"),
        Term("监督学习", "supervised learning"),
        Term("无监督学习", "unsupervised learning"),
        Term("知识蒸馏", "knowledge distillation"),
        Term("预训练", "pretraining"),
        Term("微调", "fine tuning"),
        Term("提前停止", "early stopping"),
        Term("聚类", "clustering"),
        Term("主成分分析", "principal component analysis"),
    ],
    # quantities and parts (singular, after "the")
    "Q": [
        Term("损失函数", "loss function"),
        Term("学习率", "learning rate"),
        Term("梯度", "gradient"),
        Term("准确率", "accuracy"),
        Term("激活函数", "activation function"),
        Term("批次大小", "batch size"),
        Term("隐藏层", "hidden layer"),
        Term("输出层", "output layer"),
        Term("词向量", "word embedding"),
        Term("误差", "error"),
        Term("概率分布", "probability distribution"),
        Term("目标函数", "objective function"),
        Term("权重矩阵", "weight matrix"),
        Term("特征向量", "feature vector"),
        Term("决策边界", "decision boundary"),
        Term("验证损失", "validation loss"),
    ],
    # data
    "D": [
        Term("训练集", "training set"),
        Term("测试集", "test set"),
        Term("验证集", "validation set"),
        Term("数据集", "dataset"),
        Term("训练数据", "training data"),
        Term("基准数据", "benchmark"),
    ],
    # lecture nouns (often code-switched in lectures too)
    "N": [
        Term("作业", "homework"),
        Term("例子", "example"),
        Term("投影片", "slides"),
        Term("考试", "exam"),
        Term("公式", "formula"),
        Term("概念", "concept"),
        Term("实验", "experiment"),
        Term("程序", "code"),
        Term("结果", "result"),
        Term("问题", "problem"),
    ],
}

# (Mandarin, English, paraphrased English). Placeholders: {M} {M2} {A} {A2} {Q} {D} {N}.
TEMPLATES: List[Template] = [
    Template("我们用{A}来训练这个{M}", "we use {A} to train this {M}", "we train this {M} with {A}"),
    Template("今天我们要讲{A}", "today we will talk about {A}", "today we are going to discuss {A}"),
    Template("接下来我们计算{Q}", "next we compute the {Q}", "next we calculate the {Q}"),
    Template("大家先看一下{Q}", "everyone first look at the {Q}", "let us first look at the {Q}"),
    Template("我们把{Q}调小一点", "we make the {Q} a little smaller", "we reduce the {Q} a little"),
    Template("这个{M}的{Q}太大了", "the {Q} of this {M} is too large", "the {Q} of this {M} is too big"),
    Template("{A}可以让{M}更好", "{A} can make the {M} better", "{A} makes the {M} better"),
    Template("请大家记住这个{Q}", "please remember this {Q}", "everyone please remember this {Q}"),
    Template("为什么{A}有用呢", "why is {A} useful", "why does {A} help"),
    Template("我们要更新{Q}", "we need to update the {Q}", "we have to update the {Q}"),
    Template("你可以把{M}想成一个函数", "you can think of the {M} as a function", "you can view the {M} as a function"),
    Template("这就是{A}的基本想法", "this is the basic idea of {A}", "that is the basic idea behind {A}"),
    Template("{Q}会慢慢变小", "the {Q} will slowly become smaller", "the {Q} slowly decreases"),
    Template("我们先初始化{Q}", "we first initialize the {Q}", "first we initialize the {Q}"),
    Template("这个{M}比那个{M2}好", "this {M} is better than that {M2}", "this {M} works better than that {M2}"),
    Template("{N}要用到{A}", "the {N} uses {A}", "the {N} requires {A}"),
    Template("上课的时候我们讨论过{Q}", "in class we discussed the {Q}", "we talked about the {Q} in class"),
    Template("我们在{D}上评估{M}", "we evaluate the {M} on the {D}", "we test the {M} on the {D}"),
    Template("{A}跟{A2}不一样", "{A} is different from {A2}", "{A} and {A2} are different"),
    Template("下周考试会考{A}", "next week the exam will cover {A}", "the exam next week covers {A}"),
    Template("这里的{Q}是多少", "what is the {Q} here", "how large is the {Q} here"),
    Template("我们画出{Q}的曲线", "we plot the curve of the {Q}", "we draw the curve of the {Q}"),
    Template("如果{Q}太小会怎么样", "what happens if the {Q} is too small", "what if the {Q} is too small"),
    Template("{M}需要很多数据", "the {M} needs a lot of data", "the {M} needs much data"),
    Template("我们用{D}来训练{M}", "we use the {D} to train the {M}", "we train the {M} on the {D}"),
    Template("你们觉得{A}难不难", "do you think {A} is difficult", "is {A} difficult for you"),
    Template("这门课会介绍{M}", "this course will introduce the {M}", "this class introduces the {M}"),
    Template("我们来看这个{N}", "let us look at this {N}", "we look at this {N}"),
    Template("{N}在课程网站上", "the {N} is on the course website", "the {N} is on the class website"),
    Template("我们检查一下{Q}", "let us check the {Q}", "we check the {Q}"),
    Template("{M}的{Q}很重要", "the {Q} of the {M} is important", "the {Q} of the {M} matters"),
    Template("这个{N}跟{A}有关", "this {N} is related to {A}", "this {N} has to do with {A}"),
    Template("我们在{D}上算{Q}", "we compute the {Q} on the {D}", "we calculate the {Q} on the {D}"),
    Template("最后我们得到{Q}", "finally we get the {Q}", "in the end we obtain the {Q}"),
    Template("有没有人听过{A}", "has anyone heard of {A}", "did anyone hear about {A}"),
    Template("我们这次不用{A}", "this time we do not use {A}", "we are not using {A} this time"),
    Template("{A}是一种常见的方法", "{A} is a common method", "{A} is a popular method"),
    Template("我们先把{M}存起来", "we first save the {M}", "first we store the {M}"),
    Template("老师会解释{A}", "the teacher will explain {A}", "the instructor will explain {A}"),
    Template("我们先读一下{N}", "let us first read the {N}", "first we read the {N}"),
    Template("{D}里面有很多噪音", "the {D} contains a lot of noise", "there is a lot of noise in the {D}"),
    Template("这个{M}用了{A}", "this {M} used {A}", "this {M} was built with {A}"),
    Template("{N}明天要交", "the {N} is due tomorrow", "the {N} must be handed in tomorrow"),
    Template("大家有没有问题", "does anyone have questions", "are there any questions"),
    Template("我们休息十分钟", "let us take a ten minute break", "we take a break for ten minutes"),
    Template("今天就讲到这里", "that is all for today", "we stop here for today"),
]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


GRAMMAR = Grammar("zh", "en", LEXICON, TEMPLATES, source_length=len)


# sentence length caps that keep utterances at about 1.5-4 s
MAX_ZH_CHARS = 14
MAX_EN_WORDS = 9


def corpus_sentences(seed: int) -> List[Sentence]:
    """The sentence pool of the corpus: the grammar's pool with the length caps."""
    return GRAMMAR.sentence_pool(seed, MAX_ZH_CHARS, MAX_EN_WORDS)


PAIR = LanguagePair(
    name="zh-en",
    source=Language("zh", voices=("cmn",), rate=205),
    target=ENGLISH,
    sentences=corpus_sentences,
    join_segments=join_segments,
)
