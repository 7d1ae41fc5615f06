"""Text folding shared by the loader and the matcher: normalisation, stems, function words.

Pure functions with no dependencies of their own, so that the knowledge loader (which
compares questions for duplicates) and the matcher fold text the same way without
importing each other.
"""

from __future__ import annotations

import re
import unicodedata

# Function words: they carry little meaning, so they weigh little whatever their IDF.
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing done down during each either else ever
few for from further get gets got had has have having he her here hers herself him himself his
how i if in into is it its itself just let lets me more most my myself no nor not now of off on
once only or other our ours ourselves out over own please pls plz same she should so some such
than that the their theirs them themselves then there these they this those through to too
under until up very via was we were what when where which while who whom why will with would
you your yours yourself yourselves s t d ll m re ve dont doesnt didnt cant cannot wont isnt
arent wasnt im ive id hi hello hey sir madam maam thanks thank ok okay also still want need
know tell like one us much many way anyone someone something anything thing things really
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_APOSTROPHES = re.compile(r"['’‘`´]")
_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Return text folded for matching: NFKC, casefold, no accents, punctuation or emoji."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFD", text)
        kept: list[str] = []
        base_is_latin = False
        for char in decomposed:
            if unicodedata.combining(char):
                if base_is_latin:
                    continue  # an accent on a Latin letter: fold it away
            else:
                base_is_latin = char < "\u0250"
            kept.append(char)
        text = unicodedata.normalize("NFC", "".join(kept))
    text = _APOSTROPHES.sub("", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def stem(word: str) -> str:
    """Return a light English stem, so that plurals and verb forms meet."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
        if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
        if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]
    elif word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word
