"""The French-English sentence grammar (pair ``fr-en``): the lecture sentences of
:mod:`csst_espnet.synth.lecture_en` in French, monolingual only (no code-switched renditions: its
templates mark no phrases, and English insertions with French elision — ``l'encoder`` — are not
modelled). Spoken with the voices ``fr`` (France) and ``fr-be`` in training; the speakers of held-out
voice families also have ``fr-ch``.
"""

from csst_espnet.synth.grammar import Determiners, join_segments
from csst_espnet.synth.lecture_en import corpus_sentences, make_grammar
from csst_espnet.synth.pairs import ENGLISH, Language, LanguagePair

# English term -> (French, gender)
TERMS = {
    "model": ("modèle", "m"), "language model": ("modèle de langue", "m"),
    "decision tree": ("arbre de décision", "m"), "classifier": ("classifieur", "m"),
    "encoder": ("encodeur", "m"), "decoder": ("décodeur", "m"), "transformer": ("transformeur", "m"),
    "perceptron": ("perceptron", "m"), "autoencoder": ("autoencodeur", "m"),
    "regression model": ("modèle de régression", "m"), "convolutional network": ("réseau convolutif", "m"),
    "network": ("réseau", "m"),
    "gradient descent": ("descente de gradient", "f"), "backpropagation": ("rétropropagation", "f"),
    "regularization": ("régularisation", "f"), "cross validation": ("validation croisée", "f"),
    "data augmentation": ("augmentation de données", "f"), "batch normalization": ("normalisation par lots", "f"),
    "transfer learning": ("apprentissage par transfert", "m"),
    "reinforcement learning": ("apprentissage par renforcement", "m"), "clustering": ("partitionnement", "m"),
    "knowledge distillation": ("distillation des connaissances", "f"), "pretraining": ("préentraînement", "m"),
    "fine tuning": ("réglage fin", "m"),
    "loss function": ("fonction de perte", "f"), "learning rate": ("taux d'apprentissage", "m"),
    "accuracy": ("précision", "f"), "activation function": ("fonction d'activation", "f"),
    "batch size": ("taille de lot", "f"), "hidden layer": ("couche cachée", "f"),
    "output layer": ("couche de sortie", "f"), "word embedding": ("plongement de mots", "m"),
    "error": ("erreur", "f"), "probability distribution": ("distribution de probabilité", "f"),
    "objective function": ("fonction objectif", "f"), "weight matrix": ("matrice de poids", "f"),
    "feature vector": ("vecteur de caractéristiques", "m"), "decision boundary": ("frontière de décision", "f"),
    "validation loss": ("perte de validation", "f"),
    "training set": ("ensemble d'entraînement", "m"), "test set": ("ensemble de test", "m"),
    "validation set": ("ensemble de validation", "m"), "dataset": ("jeu de données", "m"),
    "benchmark": ("banc d'essai", "m"),
    "homework": ("devoir", "m"), "example": ("exemple", "m"), "exam": ("examen", "m"), "formula": ("formule", "f"),
    "concept": ("concept", "m"), "experiment": ("expérience", "f"), "code": ("code", "m"),
    "result": ("résultat", "m"), "problem": ("problème", "m"), "slide": ("diapositive", "f"),
    "project": ("projet", "m"), "paper": ("article", "m"),
}

# elided before a vowel: l'erreur, cet exemple, de l'encodeur
DETERMINERS = Determiners({
    "def": {"m": "le ", "f": "la ", "m+v": "l'", "f+v": "l'"},
    "this": {"m": "ce ", "f": "cette ", "m+v": "cet "},
    "de": {"m": "du ", "f": "de la ", "m+v": "de l'", "f+v": "de l'"},  # de + le
}, vowels="aeiouyéèêàâh")

TEMPLATES = {
    "we use {A} | to train this {M}": "nous utilisons {A:def} pour entraîner {M:this}",
    "today | we will talk about {A}": "aujourd'hui nous allons parler {A:de}",
    "next | we compute the {Q}": "ensuite nous calculons {Q:def}",
    "please | remember this {Q}": "s'il vous plaît retenez {Q:this}",
    "i think | the {Q} is a problem": "je pense que {Q:def} pose problème",
    "{A} can make the {M} better": "{A:def} peut améliorer {M:def}",
    "why is {A} useful": "pourquoi {A:def} est utile",
    "we need to update the {Q}": "nous devons mettre à jour {Q:def}",
    "you can think of the {M} | as a function": "vous pouvez voir {M:def} comme une fonction",
    "this is the basic idea | behind {A}": "c'est l'idée de base {A:de}",
    "the {Q} will slowly decrease": "{Q:def} va diminuer lentement",
    "first | we initialize the {Q}": "d'abord nous initialisons {Q:def}",
    "this {M} is better | than that {M2}": "{M:this} est meilleur que {M2:this}",  # every model is masculine
    "the {N} uses {A}": "{N:def} utilise {A:def}",
    "in class | we discussed the {Q}": "en cours nous avons discuté {Q:de}",
    "we evaluate the {M} | on the {D}": "nous évaluons {M:def} sur {D:def}",
    "{A} is not the same as {A2}": "{A:def} n'est pas la même chose que {A2:def}",
    "next week | the exam will cover {A}": "la semaine prochaine l'examen portera sur {A:def}",
    "how much is the {Q} here": "combien vaut {Q:def} ici",
    "what happens | if the {Q} is huge": "que se passe-t-il si {Q:def} est énorme",
    "the {M} needs a lot of data": "{M:def} a besoin de beaucoup de données",
    "we use the {D} | to train the {M}": "nous utilisons {D:def} pour entraîner {M:def}",
    "do you think | {A} is difficult": "vous trouvez que {A:def} est difficile",
    "let us look at this {N}": "regardons {N:this}",
    "the {N} is on the course website": "{N:def} est sur le site du cours",
    "this {N} has to do with {A}": "{N:this} a un rapport avec {A:def}",
    "in the end | we get the {Q}": "à la fin nous obtenons {Q:def}",
    "has anyone heard of {A}": "quelqu'un a entendu parler {A:de}",
    "this time | we do not use {A}": "cette fois nous n'utilisons pas {A:def}",
    "i still do not understand | the {Q}": "je ne comprends toujours pas {Q:def}",
    "can you explain | the {N} again": "tu peux expliquer {N:def} encore une fois",
    "i finished the {N} | yesterday": "j'ai fini {N:def} hier",
    "the {N} is due tomorrow": "{N:def} est à rendre demain",
    "we trained the {M} | on the {D}": "nous avons entraîné {M:def} sur {D:def}",
    "we compute the {Q} | on the {D}": "nous calculons {Q:def} sur {D:def}",
    "i saved the {M} | on my computer": "j'ai enregistré {M:def} sur mon ordinateur",
    "i really like this {N}": "j'aime beaucoup {N:this}",
    "does anyone have questions": "est-ce que quelqu'un a des questions",
    "let us take a ten minute break": "faisons une pause de dix minutes",
    "that is all for today": "c'est tout pour aujourd'hui",
}

GRAMMAR = make_grammar("fr", TERMS, TEMPLATES, DETERMINERS, code_switch=False)

PAIR = LanguagePair(
    name="fr-en",
    source=Language("fr", voices=("fr", "fr-be"), rate=180, unseen_voices=("fr-ch",)),
    target=ENGLISH,
    sentences=corpus_sentences(GRAMMAR),
    join_segments=join_segments,
    code_switch=GRAMMAR.code_switch,
)
