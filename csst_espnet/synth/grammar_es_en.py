"""The Spanish-English sentence grammar (pair ``es-en``): the lecture sentences of
:mod:`csst_espnet.synth.lecture_en` in Spanish, with code-switched renditions.

Code-switching as in Fisher Spanish-English conversations: Spanish matrix sentences with English
insertions, from a single term that keeps its Spanish determiner (``usamos el gradient descent para
entrenar este modelo``) to most of the sentence (``usamos el descenso de gradiente to train this
model``: the phrases after the first, marked ``|`` in both languages, may go on in English).
Spoken with the Latin American voice ``es-419`` in training; the speakers of held-out voice families
also have the Castilian ``es``.
"""

from csst_espnet.synth.grammar import Determiners, join_segments
from csst_espnet.synth.lecture_en import corpus_sentences, make_grammar
from csst_espnet.synth.pairs import ENGLISH, Language, LanguagePair

# English term -> (Spanish, gender)
TERMS = {
    "model": ("modelo", "m"), "language model": ("modelo de lenguaje", "m"),
    "decision tree": ("árbol de decisión", "m"), "classifier": ("clasificador", "m"),
    "encoder": ("codificador", "m"), "decoder": ("decodificador", "m"), "transformer": ("transformador", "m"),
    "perceptron": ("perceptrón", "m"), "autoencoder": ("autocodificador", "m"),
    "regression model": ("modelo de regresión", "m"), "convolutional network": ("red convolucional", "f"),
    "network": ("red", "f"),
    "gradient descent": ("descenso de gradiente", "m"), "backpropagation": ("retropropagación", "f"),
    "regularization": ("regularización", "f"), "cross validation": ("validación cruzada", "f"),
    "data augmentation": ("aumento de datos", "m"), "batch normalization": ("normalización por lotes", "f"),
    "transfer learning": ("aprendizaje por transferencia", "m"),
    "reinforcement learning": ("aprendizaje por refuerzo", "m"), "clustering": ("agrupamiento", "m"),
    "knowledge distillation": ("destilación de conocimiento", "f"), "pretraining": ("preentrenamiento", "m"),
    "fine tuning": ("ajuste fino", "m"),
    "loss function": ("función de pérdida", "f"), "learning rate": ("tasa de aprendizaje", "f"),
    "accuracy": ("precisión", "f"), "activation function": ("función de activación", "f"),
    "batch size": ("tamaño de lote", "m"), "hidden layer": ("capa oculta", "f"),
    "output layer": ("capa de salida", "f"), "word embedding": ("vector de palabras", "m"),
    "error": ("error", "m"), "probability distribution": ("distribución de probabilidad", "f"),
    "objective function": ("función objetivo", "f"), "weight matrix": ("matriz de pesos", "f"),
    "feature vector": ("vector de características", "m"), "decision boundary": ("frontera de decisión", "f"),
    "validation loss": ("pérdida de validación", "f"),
    "training set": ("conjunto de entrenamiento", "m"), "test set": ("conjunto de prueba", "m"),
    "validation set": ("conjunto de validación", "m"), "dataset": ("conjunto de datos", "m"),
    "benchmark": ("banco de pruebas", "m"),
    "homework": ("tarea", "f"), "example": ("ejemplo", "m"), "exam": ("examen", "m"), "formula": ("fórmula", "f"),
    "concept": ("concepto", "m"), "experiment": ("experimento", "m"), "code": ("código", "m"),
    "result": ("resultado", "m"), "problem": ("problema", "m"), "slide": ("diapositiva", "f"),
    "project": ("proyecto", "m"), "paper": ("artículo", "m"),
}

DETERMINERS = Determiners({
    "def": {"m": "el ", "f": "la "},
    "this": {"m": "este ", "f": "esta "},
    "that": {"m": "ese ", "f": "esa "},
    "de": {"m": "del ", "f": "de la "},  # de + el
})

TEMPLATES = {
    "we use {A} | to train this {M}": "usamos {A:def} | para entrenar {M:this}",
    "today | we will talk about {A}": "hoy | vamos a hablar {A:de}",
    "next | we compute the {Q}": "a continuación | calculamos {Q:def}",
    "please | remember this {Q}": "por favor | recuerden {Q:this}",
    "i think | the {Q} is a problem": "creo que | {Q:def} es un problema",
    "{A} can make the {M} better": "{A:def} puede mejorar {M:def}",
    "why is {A} useful": "por qué es útil {A:def}",
    "we need to update the {Q}": "tenemos que actualizar {Q:def}",
    "you can think of the {M} | as a function": "puedes pensar en {M:def} | como una función",
    "this is the basic idea | behind {A}": "esta es la idea básica | {A:de}",
    "the {Q} will slowly decrease": "{Q:def} va a disminuir poco a poco",
    "first | we initialize the {Q}": "primero | inicializamos {Q:def}",
    "this {M} is better | than that {M2}": "{M:this} es mejor | que {M2:that}",
    "the {N} uses {A}": "{N:def} usa {A:def}",
    "in class | we discussed the {Q}": "en clase | discutimos {Q:def}",
    "we evaluate the {M} | on the {D}": "evaluamos {M:def} | en {D:def}",
    "{A} is not the same as {A2}": "{A:def} no es lo mismo que {A2:def}",
    "next week | the exam will cover {A}": "la próxima semana | el examen va a incluir {A:def}",
    "how much is the {Q} here": "cuánto vale {Q:def} aquí",
    "what happens | if the {Q} is huge": "qué pasa | si {Q:def} es enorme",
    "the {M} needs a lot of data": "{M:def} necesita muchos datos",
    "we use the {D} | to train the {M}": "usamos {D:def} | para entrenar {M:def}",
    "do you think | {A} is difficult": "ustedes creen que | {A:def} es difícil",
    "let us look at this {N}": "veamos {N:this}",
    "the {N} is on the course website": "{N:def} está en la página del curso",
    "this {N} has to do with {A}": "{N:this} tiene que ver con {A:def}",
    "in the end | we get the {Q}": "al final | obtenemos {Q:def}",
    "has anyone heard of {A}": "alguien ha oído hablar {A:de}",
    "this time | we do not use {A}": "esta vez | no usamos {A:def}",
    "i still do not understand | the {Q}": "todavía no entiendo | {Q:def}",
    "can you explain | the {N} again": "puedes explicar | {N:def} otra vez",
    "i finished the {N} | yesterday": "terminé {N:def} | ayer",
    "the {N} is due tomorrow": "{N:def} es para mañana",
    "we trained the {M} | on the {D}": "entrenamos {M:def} | con {D:def}",
    "we compute the {Q} | on the {D}": "calculamos {Q:def} | en {D:def}",
    "i saved the {M} | on my computer": "guardé {M:def} | en mi computadora",
    "i really like this {N}": "me gusta mucho {N:this}",
    "does anyone have questions": "alguien tiene preguntas",
    "let us take a ten minute break": "tomemos un descanso de diez minutos",
    "that is all for today": "eso es todo por hoy",
}

GRAMMAR = make_grammar("es", TERMS, TEMPLATES, DETERMINERS, code_switch=True)

PAIR = LanguagePair(
    name="es-en",
    source=Language("es", voices=("es-419",), rate=180, unseen_voices=("es",)),
    target=ENGLISH,
    sentences=corpus_sentences(GRAMMAR),
    join_segments=join_segments,
    code_switch=GRAMMAR.code_switch,
)
