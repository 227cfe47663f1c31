"""The German-English sentence grammar (pair ``de-en``): the lecture sentences of
:mod:`csst_espnet.synth.lecture_en` in German, monolingual only (no code-switched renditions: its
templates mark no phrases, verb-final clauses do not split where the English ones do). Nouns are
capitalised as German writes them; the determiners follow the case the template's verb or
preposition governs (``{M:acc}``: ``den Klassifikator``). Spoken with the voice ``de``, the only German
one eSpeak NG has.
"""

from csst_espnet.synth.grammar import Determiners, join_segments
from csst_espnet.synth.lecture_en import corpus_sentences, make_grammar
from csst_espnet.synth.pairs import ENGLISH, Language, LanguagePair

# English term -> (German, gender); compounds rather than adjective + noun, whose endings would follow the case
TERMS = {
    "model": ("Modell", "n"), "language model": ("Sprachmodell", "n"),
    "decision tree": ("Entscheidungsbaum", "m"), "classifier": ("Klassifikator", "m"),
    "encoder": ("Encoder", "m"), "decoder": ("Decoder", "m"), "transformer": ("Transformer", "m"),
    "perceptron": ("Perzeptron", "n"), "autoencoder": ("Autoencoder", "m"),
    "regression model": ("Regressionsmodell", "n"), "convolutional network": ("Faltungsnetz", "n"),
    "network": ("Netzwerk", "n"),
    "gradient descent": ("Gradientenabstieg", "m"), "backpropagation": ("Rückpropagierung", "f"),
    "regularization": ("Regularisierung", "f"), "cross validation": ("Kreuzvalidierung", "f"),
    "data augmentation": ("Datenaugmentierung", "f"), "batch normalization": ("Batchnormalisierung", "f"),
    "transfer learning": ("Transferlernen", "n"), "reinforcement learning": ("Verstärkungslernen", "n"),
    "clustering": ("Clustering", "n"), "knowledge distillation": ("Wissensdestillation", "f"),
    "pretraining": ("Vortraining", "n"), "fine tuning": ("Feinabstimmung", "f"),
    "loss function": ("Verlustfunktion", "f"), "learning rate": ("Lernrate", "f"),
    "accuracy": ("Genauigkeit", "f"), "activation function": ("Aktivierungsfunktion", "f"),
    "batch size": ("Batchgröße", "f"), "hidden layer": ("Zwischenschicht", "f"),
    "output layer": ("Ausgabeschicht", "f"), "word embedding": ("Worteinbettung", "f"),
    "error": ("Fehler", "m"), "probability distribution": ("Wahrscheinlichkeitsverteilung", "f"),
    "objective function": ("Zielfunktion", "f"), "weight matrix": ("Gewichtsmatrix", "f"),
    "feature vector": ("Merkmalsvektor", "m"), "decision boundary": ("Entscheidungsgrenze", "f"),
    "validation loss": ("Validierungsverlust", "m"),
    "training set": ("Trainingsdatensatz", "m"), "test set": ("Testdatensatz", "m"),
    "validation set": ("Validierungsdatensatz", "m"), "dataset": ("Datensatz", "m"),
    "benchmark": ("Benchmark", "m"),
    "homework": ("Hausaufgabe", "f"), "example": ("Beispiel", "n"), "exam": ("Prüfung", "f"),
    "formula": ("Formel", "f"), "concept": ("Konzept", "n"), "experiment": ("Experiment", "n"),
    "code": ("Code", "m"), "result": ("Ergebnis", "n"), "problem": ("Problem", "n"), "slide": ("Folie", "f"),
    "project": ("Projekt", "n"), "paper": ("Paper", "n"),
}

DETERMINERS = Determiners({
    "nom": {"m": "der ", "f": "die ", "n": "das "},
    "acc": {"m": "den ", "f": "die ", "n": "das "},
    "dat": {"m": "dem ", "f": "der ", "n": "dem "},
    "this_nom": {"m": "dieser ", "f": "diese ", "n": "dieses "},
    "this_acc": {"m": "diesen ", "f": "diese ", "n": "dieses "},
    "von": {"m": "vom ", "f": "von der ", "n": "vom "},  # von + dem
})

TEMPLATES = {
    "we use {A} | to train this {M}": "wir verwenden {A:acc} um {M:this_acc} zu trainieren",
    "today | we will talk about {A}": "heute sprechen wir über {A:acc}",
    "next | we compute the {Q}": "als Nächstes berechnen wir {Q:acc}",
    "please | remember this {Q}": "bitte merken Sie sich {Q:this_acc}",
    "i think | the {Q} is a problem": "ich glaube {Q:nom} ist ein Problem",
    "{A} can make the {M} better": "{A:nom} kann {M:acc} verbessern",
    "why is {A} useful": "warum ist {A:nom} nützlich",
    "we need to update the {Q}": "wir müssen {Q:acc} aktualisieren",
    "you can think of the {M} | as a function": "man kann sich {M:acc} als Funktion vorstellen",
    "this is the basic idea | behind {A}": "das ist die Grundidee hinter {A:dat}",
    "the {Q} will slowly decrease": "{Q:nom} wird langsam sinken",
    "first | we initialize the {Q}": "zuerst initialisieren wir {Q:acc}",
    "this {M} is better | than that {M2}": "{M:this_nom} ist besser als {M2:this_nom}",
    "the {N} uses {A}": "{N:nom} verwendet {A:acc}",
    "in class | we discussed the {Q}": "im Kurs haben wir {Q:acc} besprochen",
    "we evaluate the {M} | on the {D}": "wir evaluieren {M:acc} auf {D:dat}",
    "{A} is not the same as {A2}": "{A:nom} ist nicht dasselbe wie {A2:nom}",
    "next week | the exam will cover {A}": "nächste Woche kommt {A:nom} in der Prüfung dran",
    "how much is the {Q} here": "wie viel beträgt {Q:nom} hier",
    "what happens | if the {Q} is huge": "was passiert wenn {Q:nom} riesig ist",
    "the {M} needs a lot of data": "{M:nom} braucht viele Daten",
    "we use the {D} | to train the {M}": "wir verwenden {D:acc} um {M:acc} zu trainieren",
    "do you think | {A} is difficult": "glaubt ihr dass {A:nom} schwierig ist",
    "let us look at this {N}": "schauen wir uns {N:this_acc} an",
    "the {N} is on the course website": "{N:nom} ist auf der Kurswebseite",
    "this {N} has to do with {A}": "{N:this_nom} hat mit {A:dat} zu tun",
    "in the end | we get the {Q}": "am Ende erhalten wir {Q:acc}",
    "has anyone heard of {A}": "hat jemand schon {A:von} gehört",
    "this time | we do not use {A}": "diesmal verwenden wir {A:acc} nicht",
    "i still do not understand | the {Q}": "ich verstehe {Q:acc} immer noch nicht",
    "can you explain | the {N} again": "kannst du {N:acc} noch einmal erklären",
    "i finished the {N} | yesterday": "ich bin gestern mit {N:dat} fertig geworden",
    "the {N} is due tomorrow": "{N:nom} muss morgen abgegeben werden",
    "we trained the {M} | on the {D}": "wir haben {M:acc} auf {D:dat} trainiert",
    "we compute the {Q} | on the {D}": "wir berechnen {Q:acc} auf {D:dat}",
    "i saved the {M} | on my computer": "ich habe {M:acc} auf meinem Computer gespeichert",
    "i really like this {N}": "{N:this_nom} gefällt mir sehr",
    "does anyone have questions": "hat jemand Fragen",
    "let us take a ten minute break": "machen wir zehn Minuten Pause",
    "that is all for today": "das ist alles für heute",
}

GRAMMAR = make_grammar("de", TERMS, TEMPLATES, DETERMINERS, code_switch=False)

PAIR = LanguagePair(
    name="de-en",
    source=Language("de", voices=("de",), rate=175),
    target=ENGLISH,
    sentences=corpus_sentences(GRAMMAR),
    join_segments=join_segments,
    code_switch=GRAMMAR.code_switch,
)
