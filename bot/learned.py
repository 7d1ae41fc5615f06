"""The learned signal beside the lexical matcher: a linear text model over TF-IDF features.

scikit-learn does the learning (the maintained library for exactly this): word 1-2-grams
and character 3-4-grams (``char_wb``, which carry typos, morphology and other languages)
of every topic's questions, title and keywords, and a linear SVM, one weight vector per
topic. Only the weights that matter are kept, as a sparse matrix, so memory grows with
what was learned rather than with topics x features.

Bounded at any size: a question is scored against every topic only while the knowledge
base is small enough for that to cost well under a millisecond; above
:data:`FULL_SCORING_TOPICS` only the lexical shortlist is re-scored. Above
:data:`SVM_MAX_TOPICS` (where training one weight vector per topic would take minutes)
each topic's weights are the normalised centroid of its phrasings instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

logger = logging.getLogger(__name__)

#: Above this many topics, centroids replace the SVM (training stays in seconds).
SVM_MAX_TOPICS = 600
#: Up to this many topics a question is scored against all of them.
FULL_SCORING_TOPICS = 5000
#: Weights smaller than this are dropped after training (they change no ranking).
PRUNE_BELOW = 0.02
#: Character n-gram vocabulary cap (the most frequent are kept).
MAX_CHAR_FEATURES = 300_000


class LearnedScorer:
    """An immutable linear model: one sparse weight row and a bias per topic."""

    def __init__(
        self,
        word: Any,
        char: Any,
        weights: sparse.csr_matrix,
        bias: np.ndarray,
        method: str,
    ) -> None:
        self._word = word
        self._char = char
        self._weights = weights
        # Column-major copy for scoring every topic at once (only where that is done).
        self._columns = weights.tocsc() if weights.shape[0] <= FULL_SCORING_TOPICS else None
        self._bias = bias
        self.method = method
        self.n_topics = weights.shape[0]

    @classmethod
    def build(cls, texts: Sequence[str], labels: Sequence[int], n_topics: int) -> LearnedScorer:
        """Learn from ``texts`` (normalised phrasings) labelled with topic indices."""
        # Imported here: scikit-learn takes a second to import, and the bot starts
        # answering with the lexical matcher before the learned model is trained.
        from scipy import sparse
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize as l2_normalize
        from sklearn.svm import LinearSVC

        word = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32,
            token_pattern=r"(?u)\b\w+\b",
        )
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, dtype=np.float32,
            min_df=2 if len(texts) > 1000 else 1, max_features=MAX_CHAR_FEATURES,
        )
        features = sparse.hstack(
            [word.fit_transform(texts), char.fit_transform(texts)], format="csr"
        )
        y = np.asarray(labels)
        classes = np.unique(y)
        bias = np.zeros(n_topics, dtype=np.float32)
        if len(classes) >= 3 and n_topics <= SVM_MAX_TOPICS:
            model = LinearSVC(C=0.5, tol=1e-2, max_iter=300)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(features, y)
            dense = np.asarray(model.coef_, dtype=np.float32)
            dense[np.abs(dense) < PRUNE_BELOW] = 0.0
            rows = sparse.csr_matrix(dense)
            placed = sparse.lil_matrix((n_topics, features.shape[1]), dtype=np.float32)
            placed[model.classes_] = rows
            weights = placed.tocsr()
            bias[model.classes_] = model.intercept_
            bias[np.setdiff1d(np.arange(n_topics), model.classes_)] = -1.0
            method = "svm"
        else:
            # Centroids: the mean of each topic's normalised phrasings, normalised; the
            # score is a cosine in [0, 1], spread to the SVM's rough [-1, 1] range.
            member = sparse.csr_matrix(
                (np.ones(len(y), dtype=np.float32), (y, np.arange(len(y)))),
                shape=(n_topics, len(y)),
            )
            weights = l2_normalize(member @ features).astype(np.float32) * 2.0
            bias[:] = -1.0
            method = "centroid"
        weights.eliminate_zeros()
        logger.info(
            "learned scorer built: %s, %s topics, %s features, %s weights",
            method, n_topics, features.shape[1], weights.nnz,
        )
        return cls(word, char, weights, bias, method)

    def _vector(self, text: str) -> sparse.csr_matrix:
        from scipy import sparse  # already imported by build()

        return sparse.hstack(
            [self._word.transform([text]), self._char.transform([text])], format="csr"
        )

    def score_all(self, text: str) -> np.ndarray | None:
        """Return every topic's decision value, or None when the base is too large for that."""
        if self._columns is None:
            return None
        x = self._vector(text)
        if x.nnz == 0:
            return self._bias.copy()
        columns = self._columns[:, x.indices]
        values: np.ndarray = np.asarray(columns @ x.data, dtype=np.float32).ravel()
        out: np.ndarray = values + self._bias
        return out

    def score(self, text: str, topics: Sequence[int]) -> np.ndarray:
        """Return the decision values of the given topics only."""
        if not topics:
            return np.zeros(0, dtype=np.float32)
        x = self._vector(text)
        rows = self._weights[list(topics)]
        values: np.ndarray = np.asarray((rows @ x.T).toarray(), dtype=np.float32).ravel()
        out: np.ndarray = values + self._bias[list(topics)]
        return out

    @property
    def memory_bytes(self) -> int:
        """Approximate memory held by the weights (the vocabularies come on top)."""
        w = self._weights
        copies = 1 if self._columns is None else 2
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes) * copies
