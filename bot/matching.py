"""Match a free-text question to the knowledge base's topics, with scores and a decision.

Pure code: no I/O, no Telegram, no SQL. :meth:`Matcher.build` indexes a
:class:`~bot.knowledge.KnowledgeBase` once (the engine rebuilds it on reload and
swaps it atomically); afterwards the matcher is immutable and safe to share
between threads.

How a question is scored:

1. :func:`normalize` folds Unicode, case and accents and strips punctuation and
   emoji; the synonym table then rewrites variant phrases to their canonical
   phrase (``j1`` -> ``j 1 visa``), in the indexed texts and in the question alike.
2. Words are reduced to light stems; a word the index does not know is corrected
   to a known word at edit distance one (two for long words), and two words are
   joined when the joined form is known (``face book`` -> ``facebook``).
3. Each stem weighs its inverse document frequency (rare words count more,
   function words little); unknown words keep a weight, so a question about
   something the knowledge base does not cover scores low.
4. An inverted index over every question phrasing, title and keyword sums those
   weights per text and shortlists the best texts, so the cost per question does
   not grow with the size of the knowledge base.
5. Each shortlisted text is scored by how much of the question's weight it
   covers, how much of its own weight the question covers, a rapidfuzz
   similarity of the two stemmed strings (``token_sort_ratio``: order does not
   matter) and an IDF-weighted cosine of their character trigrams (which catches
   morphology and typos the word level misses); a topic takes its best text, plus
   a little for question words found anywhere in the topic. The answer text can
   be weighed in too (``ScoringParams.answer_coverage``) but is off by default: it
   did not help on the benchmarks.

:meth:`Matcher.match` turns the ranked candidates into a :class:`Decision` with
the :class:`Thresholds` from the configuration.
"""

from __future__ import annotations

import copy
import heapq
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from bot.knowledge import KnowledgeBase, SynonymGroup, Topic
from bot.learned import LearnedScorer
from bot.text import STOPWORDS, normalize, stem

__all__ = ["STOPWORDS", "normalize", "stem"]  # re-exported: the matcher's text functions

logger = logging.getLogger(__name__)

#: Characters of a question considered; a longer message is cut (at a word boundary).
MAX_QUERY_CHARS = 1000
#: Words of a question considered after normalisation.
MAX_QUERY_TOKENS = 64
#: Letters of one word considered: no term of the domain is longer, and typo correction
#: costs grow with the cube of a word's length.
MAX_WORD_CHARS = 30
#: Unknown long words per question that may be corrected at edit distance two (the costly
#: search); the rest are only corrected at distance one.
MAX_FAR_CORRECTIONS = 4
#: Blend of the two signals: the lexical score and the learned model's (both 0-100).
LEARNED_SHARE = 0.3
#: Lexical candidates re-scored by the learned model; learned candidates added to them.
BLEND_SHORTLIST = 20
#: The learned decision value becomes 0-100 through a logistic curve centred here.
LEARNED_SLOPE = 3.0
LEARNED_MIDDLE = -0.5
BLEND_LEARNED_EXTRA = 5
#: Indexed texts whose trigrams are computed once at build time (about 4 KB each).
GRAM_CACHE_TEXTS = 50_000

@dataclass(frozen=True)
class Candidate:
    """A topic the question may be about, with a score in [0, 100]."""

    topic_id: str
    title: str
    score: float


class Decision(StrEnum):
    """What to show the user: the answer, a choice, or the fallback."""

    ANSWER = "answer"
    AMBIGUOUS = "ambiguous"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Thresholds:
    """Score limits of the decision; the configuration's ``matching:`` section fills them."""

    answer: float = 60.0
    suggest: float = 45.0
    margin: float = 5.0
    max_suggestions: int = 3


@dataclass(frozen=True)
class MatchResult:
    """The decision and the ranked candidates behind it."""

    decision: Decision
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate | None:
        """Return the best candidate, or None when there is none."""
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class ScoringParams:
    """Weights of the scorer; the defaults were tuned on the benchmarks' dev halves."""

    coverage: float = 0.3
    precision: float = 0.3
    fuzzy: float = 0.35
    grams: float = 2.0
    topic_coverage: float = 0.1
    answer_coverage: float = 0.0
    stopword_weight: float = 0.15
    unknown_weight: float = 0.5
    stopwords_only: float = 0.6
    keyword_factor: float = 0.95
    scorer: str = "token_sort_ratio"
    shortlist_texts: int = 60
    shortlist_cap: int = 1000
    gram_sample: int = 20000
    gram_stopwords: bool = True


@dataclass(frozen=True, slots=True)
class _Text:
    """One indexed phrasing of a topic: its stems, their weight and its strings."""

    topic: int
    stems: frozenset[str]
    weight: float
    stemmed: str
    surface: str
    factor: float


class _Synonyms:
    """Rewrite variant phrases to canonical ones in normalised text, longest first."""

    def __init__(self, groups: Iterable[SynonymGroup]) -> None:
        mapping: dict[str, str] = {}
        for group in groups:
            canonical = normalize(group.canonical)
            if not canonical:
                continue
            mapping.setdefault(canonical, canonical)
            for variant in group.variants:
                phrase = normalize(variant)
                if phrase and phrase not in mapping:
                    mapping[phrase] = canonical
        self._mapping = mapping
        self._pattern: re.Pattern[str] | None = None
        if mapping:
            alternatives = "|".join(
                re.escape(p) for p in sorted(mapping, key=lambda p: (-len(p), p))
            )
            self._pattern = re.compile(rf"(?<!\S)(?:{alternatives})(?!\S)")

    def apply(self, normalized: str) -> str:
        """Return normalised text with every variant replaced by its canonical phrase."""
        if self._pattern is None or not normalized:
            return normalized
        return self._pattern.sub(lambda m: self._mapping[m.group(0)], normalized)


def _deletes(word: str) -> list[str]:
    """Return the word with each single character deleted."""
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


def _grams(words: Iterable[str]) -> set[str]:
    """Return the character trigrams of the words, each padded with spaces."""
    out: set[str] = set()
    for word in words:
        padded = f" {word} "
        out.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return out


def _truncate(query: str) -> str:
    """Return the question cut to MAX_QUERY_CHARS, at a space when there is one."""
    if len(query) <= MAX_QUERY_CHARS:
        return query
    cut = query[:MAX_QUERY_CHARS]
    space = cut.rfind(" ")
    return cut[:space] if space > MAX_QUERY_CHARS // 2 else cut


class Matcher:
    """An immutable index of a knowledge base that ranks topics for a question."""

    def __init__(
        self,
        topics: tuple[Topic, ...],
        texts: tuple[_Text, ...],
        postings: dict[str, tuple[int, ...]],
        idf: dict[str, float],
        gram_idf: dict[str, float],
        topic_stems: tuple[frozenset[str], ...],
        answer_stems: tuple[frozenset[str], ...],
        deletes: dict[str, tuple[str, ...]],
        synonyms: _Synonyms,
        params: ScoringParams,
    ) -> None:
        self._topics = topics
        self._texts = texts
        self._postings = postings
        self._idf = idf
        self._gram_idf = gram_idf
        self._topic_stems = topic_stems
        self._answer_stems = answer_stems
        self._deletes = deletes
        self._synonyms = synonyms
        self._params = params
        self._learned: LearnedScorer | None = None
        self._index_of = {t.id: i for i, t in enumerate(topics)}
        self._max_idf = max(idf.values(), default=1.0)
        self._max_gram_idf = max(gram_idf.values(), default=1.0)
        self._inverse_weight = tuple(1.0 / (t.weight + 1.0) for t in texts)
        # A text's trigrams and their weight do not depend on the question: they are
        # computed once, here, for up to GRAM_CACHE_TEXTS texts (all of them in a
        # knowledge base of ordinary size); a huge one computes the rest per question.
        shared: dict[str, str] = {}  # one string object per distinct trigram
        self._gram_cache = tuple(
            self._text_grams(position, shared)
            for position in range(min(len(texts), GRAM_CACHE_TEXTS))
        )

    # -- building -----------------------------------------------------------------

    @classmethod
    def build(
        cls,
        kb: KnowledgeBase,
        params: ScoringParams | None = None,
        *,
        learned: bool = True,
    ) -> Matcher:
        """Index every topic once; with ``learned``, train the learned model beside it."""
        matcher = cls._build_lexical(kb, params)
        return matcher.with_learned() if learned else matcher

    def with_learned(self) -> Matcher:
        """Return this matcher with the learned model added (trained now, in seconds)."""
        if self.learned:  # already there, or nothing to learn from
            return self
        twin = copy.copy(self)
        twin._learned = LearnedScorer.build(*self._learning_texts(), len(self._topics))
        return twin

    @property
    def learned(self) -> bool:
        """Tell whether the learned model is there (or there is nothing to learn from)."""
        return self._learned is not None or not self._texts

    @property
    def learned_bytes(self) -> int:
        """Approximate memory of the learned model's weights (0 without one)."""
        return self._learned.memory_bytes if self._learned is not None else 0

    def _learning_texts(self) -> tuple[list[str], list[int]]:
        """Return every indexed phrasing (normalised, synonyms applied) and its topic."""
        return [t.surface for t in self._texts], [t.topic for t in self._texts]

    @classmethod
    def _build_lexical(cls, kb: KnowledgeBase, params: ScoringParams | None = None) -> Matcher:
        """Index every topic of the knowledge base once (the lexical part)."""
        params = params or ScoringParams()
        synonyms = _Synonyms(kb.synonyms)
        stem_cache: dict[str, str] = {}

        def words_of(text: str) -> list[str]:
            return synonyms.apply(normalize(text)).split()

        def stems_of(words: list[str]) -> list[str]:
            out = []
            for word in words:
                s = stem_cache.get(word)
                if s is None:
                    s = stem_cache[word] = stem(word)
                out.append(s)
            return out

        raw: list[tuple[int, list[str], list[str], float]] = []
        topic_stems: list[frozenset[str]] = []
        answer_stems: list[frozenset[str]] = []
        df: dict[str, int] = defaultdict(int)
        gram_df: dict[str, int] = defaultdict(int)
        # Trigram frequencies are estimated on a regular sample of a large knowledge base.
        gram_step = max(1, len(kb.topics) // max(params.gram_sample, 1))
        for index, topic in enumerate(kb.topics):
            phrasings: list[tuple[str, float]] = [(q, 1.0) for q in topic.questions]
            if topic.title and topic.title not in topic.questions:
                phrasings.append((topic.title, 1.0))
            phrasings.extend((k, params.keyword_factor) for k in topic.keywords)
            seen: set[str] = set()
            topic_words: set[str] = set()
            for phrasing, factor in phrasings:
                words = words_of(phrasing)
                if words:
                    stems = stems_of(words)
                    raw.append((index, words, stems, factor))
                    seen.update(stems)
                    topic_words.update(words)
            topic_stems.append(frozenset(seen))
            answer_words = words_of(topic.answer) if params.answer_coverage else []
            answer_stems.append(frozenset(stems_of(answer_words)))
            for s in seen:
                df[s] += 1
            if index % gram_step == 0:
                for g in _grams(topic_words):
                    gram_df[g] += 1

        n_topics = max(len(kb.topics), 1)
        idf = {s: math.log(1.0 + n_topics / (count + 0.5)) for s, count in df.items()}
        n_sampled = max(1, (len(kb.topics) + gram_step - 1) // gram_step)
        gram_idf = {g: math.log(1.0 + n_sampled / (c + 0.5)) for g, c in gram_df.items()}

        def weight(s: str) -> float:
            w = idf[s]
            return w * params.stopword_weight if s in STOPWORDS else w

        texts: list[_Text] = []
        postings_lists: dict[str, list[int]] = defaultdict(list)
        for index, words, stems, factor in raw:
            unique = frozenset(stems)
            position = len(texts)
            texts.append(
                _Text(
                    topic=index,
                    stems=unique,
                    weight=sum(weight(s) for s in unique),
                    stemmed=" ".join(stems),
                    surface=" ".join(words),
                    factor=factor,
                )
            )
            for s in unique:
                postings_lists[s].append(position)

        deletes: dict[str, list[str]] = defaultdict(list)
        for s in idf:
            if len(s) >= 4 and s.isalpha():
                for d in set(_deletes(s)):
                    deletes[d].append(s)

        logger.info(
            "matcher built: %s topics, %s texts, %s stems", len(kb.topics), len(texts), len(idf)
        )
        return cls(
            tuple(kb.topics),
            tuple(texts),
            {s: tuple(p) for s, p in postings_lists.items()},
            idf,
            gram_idf,
            tuple(topic_stems),
            tuple(answer_stems),
            {d: tuple(words) for d, words in deletes.items()},
            synonyms,
            params,
        )

    # -- querying -----------------------------------------------------------------

    def _weight(self, s: str) -> float:
        """Return the weight of a stem in a question (unknown stems included)."""
        idf = self._idf.get(s)
        if idf is None:
            if s in STOPWORDS:
                return self._max_idf * self._params.stopword_weight
            return self._max_idf * self._params.unknown_weight
        return idf * self._params.stopword_weight if s in STOPWORDS else idf

    def _correct(self, word: str, budget: list[int]) -> str | None:
        """Return the known stem closest to an unknown word, or None.

        ``budget`` holds how many distance-two searches this question may still make.
        """
        if len(word) < 4 or not word.isalpha():
            return None
        found: dict[str, int] = {}
        for probe in (word, *_deletes(word)):
            for candidate in self._deletes.get(probe, ()):
                if candidate not in found:
                    found[candidate] = OSA.distance(word, candidate)
        if not found and len(word) >= 8 and budget[0] > 0:
            budget[0] -= 1
            for first in set(_deletes(word)):
                for probe in _deletes(first):
                    for candidate in self._deletes.get(probe, ()):
                        if candidate not in found:
                            found[candidate] = OSA.distance(word, candidate)
        if not found:
            return None
        limit = 1 if len(word) < 8 else 2
        best = min(found, key=lambda c: (found[c], -self._idf[c], c))
        return best if found[best] <= limit else None

    def analyse(self, query: str) -> tuple[list[str], list[str]]:
        """Return the question's words and stems, after synonyms, joining and correction.

        The work is bounded whatever the input: the text is cut before normalisation and
        again after it (one character can expand to eighteen), words are cut to
        MAX_WORD_CHARS, at most MAX_QUERY_TOKENS are kept, and only MAX_FAR_CORRECTIONS
        words get the costly correction.
        """
        folded = _truncate(normalize(_truncate(query)))
        words = [
            w[:MAX_WORD_CHARS] for w in self._synonyms.apply(folded).split()[:MAX_QUERY_TOKENS]
        ]
        budget = [MAX_FAR_CORRECTIONS]
        stems: list[str] = []
        known = self._idf
        i = 0
        while i < len(words):
            word = words[i]
            if i + 1 < len(words):
                joined = stem(word + words[i + 1])
                if len(joined) >= 5 and joined in known:
                    stems.append(joined)
                    i += 2
                    continue
            s = stem(word)
            if s not in known and s not in STOPWORDS:
                s = self._correct(s, budget) or self._correct(word, budget) or s
            stems.append(s)
            i += 1
        return words, stems

    def _content_words(self, words: list[str]) -> list[str]:
        """Return the words that are not function words (all of them if none is)."""
        if not self._params.gram_stopwords:
            return [w for w in words if w not in STOPWORDS] or words
        return words

    def _text_grams(
        self, position: int, shared: dict[str, str] | None = None
    ) -> tuple[frozenset[str], float]:
        """Return an indexed text's trigrams (with ``shared``: interned) and their weight."""
        found = _grams(self._content_words(self._texts[position].surface.split()))
        if shared is not None:
            found = {shared.setdefault(g, g) for g in found}
        grams = frozenset(found)
        return grams, sum(self._gram_idf.get(g, self._max_gram_idf) for g in grams)

    def rank(self, query: str, limit: int = 5) -> list[Candidate]:
        """Return up to ``limit`` topics for the question, best first, one entry per topic."""
        if limit <= 0:
            return []
        words, stems = self.analyse(query)
        return self._rank(words, stems, limit)

    def _rank(self, words: list[str], stems: list[str], limit: int) -> list[Candidate]:
        """Rank with the lexical index, given the question's analysis."""
        if not stems:
            return []
        p = self._params
        weights = {s: self._weight(s) for s in stems}
        total = sum(weights.values())
        postings = self._postings
        # Rare stems fill the accumulator; stems too common to be worth walking their
        # postings only add to texts already found (the rarest one is walked if need be).
        known = sorted(
            (s for s in weights if s in postings),
            key=lambda s: (s in STOPWORDS, len(postings[s])),
        )
        if not known or total <= 0:
            return []
        accumulated: dict[int, float] = defaultdict(float)
        texts = self._texts
        for s in known:
            w = weights[s]
            size = len(postings[s])
            if s in STOPWORDS and len(accumulated) >= p.shortlist_texts:
                # Content words found enough candidates: function words only add to
                # those, they do not bring in candidates of their own.
                if size > len(accumulated):
                    found = [t for t in accumulated if s in texts[t].stems]
                else:
                    found = [t for t in postings[s] if t in accumulated]
                for position in found:
                    accumulated[position] += w
                continue
            if size <= p.shortlist_cap or (not accumulated and size <= 20 * p.shortlist_cap):
                for position in postings[s]:
                    accumulated[position] += w
            elif accumulated and len(accumulated) <= 5 * p.shortlist_cap:
                for position in accumulated:
                    if s in texts[position].stems:
                        accumulated[position] += w
        if not accumulated:
            return []
        inverse = self._inverse_weight
        shortlist = [
            position
            for _, position in heapq.nlargest(
                p.shortlist_texts,
                [(a * (1.0 + a * inverse[t]), t) for t, a in accumulated.items()],
            )
        ]

        query_set = frozenset(weights)
        query_stemmed = " ".join(stems)
        scorer = getattr(fuzz, p.scorer)
        gram_idf = self._gram_idf
        max_gram = self._max_gram_idf
        # The question's trigrams with their weights: one lookup per shared trigram below.
        query_grams = {g: gram_idf.get(g, max_gram) for g in _grams(self._content_words(words))}
        query_gram_weight = sum(query_grams.values())
        query_gram_set = set(query_grams)  # set & set is faster than set & dict keys
        gram_of = query_grams.__getitem__
        weight_of = weights.__getitem__
        gram_cache = self._gram_cache
        cached = len(gram_cache)
        base = p.coverage + p.precision + p.fuzzy + p.grams
        best_text: dict[int, float] = {}
        for position in shortlist:
            text = texts[position]
            shared = sum(map(weight_of, text.stems & query_set))
            coverage = shared / total
            precision = shared / text.weight if text.weight > 0 else 0.0
            similarity = scorer(query_stemmed, text.stemmed) / 100.0
            score = p.coverage * coverage + p.precision * precision + p.fuzzy * similarity
            if p.grams:
                text_grams, text_gram_weight = (
                    gram_cache[position] if position < cached else self._text_grams(position)
                )
                common = sum(map(gram_of, text_grams & query_gram_set))
                denominator = math.sqrt(query_gram_weight * text_gram_weight)
                score += p.grams * (common / denominator if denominator else 0.0)
            score *= text.factor / base
            if score > best_text.get(text.topic, -1.0):
                best_text[text.topic] = score

        content = any(s not in STOPWORDS for s in stems)
        confidence = 1.0 if content else p.stopwords_only
        extra = p.topic_coverage + p.answer_coverage
        scored: list[tuple[float, int]] = []
        for topic_index, text_score in best_text.items():
            score = text_score
            if extra:
                topic_shared = sum(weights[s] for s in self._topic_stems[topic_index] & query_set)
                answer_shared = sum(
                    weights[s] for s in self._answer_stems[topic_index] & query_set
                )
                score = (
                    score
                    + p.topic_coverage * topic_shared / total
                    + p.answer_coverage * answer_shared / total
                ) / (1.0 + extra)
            scored.append((min(100.0, max(0.0, 100.0 * score * confidence)), topic_index))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [
            Candidate(self._topics[i].id, self._topics[i].title, round(score, 2))
            for score, i in scored[:limit]
        ]

    def _blended(self, words: list[str], stems: list[str], limit: int) -> list[Candidate]:
        """Rank with both signals: the lexical shortlist and the learned model's best.

        Each candidate's score is LEARNED_SHARE of the learned model's decision value
        (mapped to [0, 100] by a logistic curve) and the rest its lexical score.
        """
        learned = self._learned
        lexical = {
            self._index_of[c.topic_id]: c.score for c in self._rank(words, stems, BLEND_SHORTLIST)
        }
        if learned is None or not words:
            return []
        text = " ".join(words)
        every = learned.score_all(text)
        if every is not None:
            extra = np.argpartition(-every, min(BLEND_LEARNED_EXTRA, len(every) - 1))
            pool = list(dict.fromkeys([*lexical, *map(int, extra[:BLEND_LEARNED_EXTRA])]))
            values = every[pool]
        else:
            pool = list(lexical)
            values = learned.score(text, pool)
        curve = LEARNED_SHARE * 100.0
        scored = [
            (
                (1 - LEARNED_SHARE) * lexical.get(topic, 0.0)
                + curve / (1.0 + math.exp(-LEARNED_SLOPE * (v - LEARNED_MIDDLE))),
                topic,
            )
            for topic, v in zip(pool, values.tolist(), strict=True)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        topics = self._topics
        return [Candidate(topics[i].id, topics[i].title, round(v, 2)) for v, i in scored[:limit]]

    def match(self, query: str, thresholds: Thresholds, limit: int = 5) -> MatchResult:
        """Rank the topics for a question and decide: answer, offer a choice, or fall back."""
        words, stems = self.analyse(query)
        wanted = max(limit, 2)
        if self._learned is not None:
            candidates = self._blended(words, stems, wanted)
        else:
            candidates = self._rank(words, stems, wanted)
        return MatchResult(decide(candidates, thresholds), tuple(candidates[: max(limit, 0)]))


def decide(candidates: Sequence[Candidate], thresholds: Thresholds) -> Decision:
    """Return the decision for ranked candidates (best first) under the thresholds."""
    if not candidates:
        return Decision.FALLBACK
    best = candidates[0].score
    second = candidates[1].score if len(candidates) > 1 else 0.0
    if best >= thresholds.answer and (
        best - second >= thresholds.margin or second < thresholds.suggest
    ):
        return Decision.ANSWER
    if best >= thresholds.suggest:
        return Decision.AMBIGUOUS
    return Decision.FALLBACK
