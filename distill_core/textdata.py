"""Text classification data: CSV loader, an offline tokenizer, a vocabulary and a frozen embedding table.

Spec strings: "fortunes" (default: four categories of Debian's `fortunes` package, read from
/usr/share/games/fortunes or `fortunes:<dir>`; BSD licence, installed by `apt-get install fortunes`)
and "csv:<dir>" (a folder with train.csv and test.csv, each with `text` and `label` columns).

Embedding table (frozen everywhere, as in Sucholutsky & Schonlau 2021, who use frozen GloVe):
  ppmi_svd  fitted on the *training* text only: positive PMI of word co-occurrence within a
            window, factorised by truncated SVD (Levy & Goldberg 2014, the count-based equivalent
            of word2vec/GloVe). No download is needed, and similar words get near vectors, so a
            synthetic position decoded to its nearest word means something. The default.
  random    fixed N(0, 1) vectors: every word equally far from every other; a control.
Rows are scaled so the entries have unit variance; row 0 is <pad> (zeros), row 1 <unk>.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import DatasetInfo

PAD, UNK = "<pad>", "<unk>"
EMBEDDINGS = ("ppmi_svd", "random")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_CLASSES = ("computers", "politics", "songs-poems", "startrek")
TEST_FRACTION, SPLIT_SEED = 0.2, 0
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_OVERSTRIKE = re.compile(r".\x08")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters/digits, with an inner apostrophe: "don't"); no internet needed."""
    return _TOKEN.findall(text.lower())


# ---------------------------------------------------------------------------------------------
# reading


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}, line {line}); re-save it as UTF-8") from exc


def read_text_csv(path: Path | str) -> tuple[list[str], list[str]]:
    """(texts, labels) of a UTF-8 CSV with a header naming `text` and `label` columns.

    A missing column, a non-UTF-8 byte, a blank line or an empty text/label raises ValueError
    naming the line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"text CSV not found: {path}")
    rows = list(csv.reader(io.StringIO(_decode(path.read_bytes(), path), newline="")))
    if not rows or not rows[0]:
        raise ValueError(f"{path} is empty or has an empty header; the first line must name `text,label`")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("text", "label") if c not in header]
    if missing:
        raise ValueError(f"{path} has no {' or '.join(missing)} column (found: {', '.join(header)}); "
                         "name the columns `text` and `label` in the first line")
    ti, li = header.index("text"), header.index("label")
    texts, labels = [], []
    for n, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            raise ValueError(f"{path} line {n} is empty; remove blank lines")
        if len(row) <= max(ti, li) or not row[ti].strip() or not row[li].strip():
            raise ValueError(f"{path} line {n} has an empty text or label; every row needs both")
        texts.append(row[ti])
        labels.append(row[li].strip())
    if not texts:
        raise ValueError(f"{path} has a header but no rows")
    return texts, labels


def read_fortunes(directory: Path | str | None = None,
                  classes: tuple[str, ...] = FORTUNES_CLASSES) -> tuple[list[str], list[str]]:
    """(texts, category) of the fortune files `classes` in `directory` (entries split by '%' lines)."""
    directory = Path(directory) if directory else FORTUNES_DIR
    missing = [c for c in classes if not (directory / c).is_file()]
    if missing:
        raise ValueError(f"fortune files {missing} not found in {directory}; install Debian's `fortunes` package "
                         "(apt-get install fortunes) or pass fortunes:<dir>, or use csv:<dir>")
    texts, labels = [], []
    for c in classes:
        body = _OVERSTRIKE.sub("", (directory / c).read_bytes().decode("utf-8", errors="replace"))
        for entry in re.split(r"^%$", body, flags=re.M):
            if entry.strip():
                texts.append(" ".join(entry.split()))
                labels.append(c)
    return texts, labels


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, test) with `fraction` of every class in test, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        test += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(test)


# ---------------------------------------------------------------------------------------------
# vocabulary and embeddings


def build_vocab(token_lists: list[list[str]], max_size: int, min_count: int = 2) -> list[str]:
    """[<pad>, <unk>, most frequent words (count >= min_count, ties alphabetical)][:max_size]."""
    counts = Counter(t for toks in token_lists for t in toks)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words[: max(0, max_size - 2)]]


def encode(token_lists: list[list[str]], vocab: list[str], max_len: int) -> torch.Tensor:
    """int64 [N, max_len] token ids, truncated or padded with 0 (<pad>); unknown words -> 1 (<unk>)."""
    index = {w: i for i, w in enumerate(vocab)}
    out = torch.zeros((len(token_lists), max_len), dtype=torch.long)
    for n, toks in enumerate(token_lists):
        ids = [index.get(t, 1) for t in toks[:max_len]]
        out[n, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def ppmi_svd_embeddings(ids: torch.Tensor, vocab_size: int, dim: int, window: int = 4, seed: int = 0) -> torch.Tensor:
    """[V, dim] vectors from the positive PMI of co-occurrence within `window` tokens in `ids` [N, L]
    (padding ignored), factorised by truncated SVD: E = U_k · sqrt(S_k)."""
    from sklearn.utils.extmath import randomized_svd

    counts = np.zeros((vocab_size, vocab_size), dtype=np.float64)
    arr = ids.numpy()
    for shift in range(1, window + 1):
        a, b = arr[:, :-shift].ravel(), arr[:, shift:].ravel()
        keep = (a > 0) & (b > 0)
        np.add.at(counts, (a[keep], b[keep]), 1.0)
    counts += counts.T
    total = counts.sum()
    if total == 0:
        raise ValueError("the training text has no word pairs to fit embeddings on; use embedding=random")
    row = counts.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * total / (row @ row.T))
    ppmi = np.nan_to_num(np.maximum(pmi, 0.0), posinf=0.0, neginf=0.0)
    k = min(dim, vocab_size - 1)
    u, s, _ = randomized_svd(ppmi, n_components=k, random_state=seed)
    emb = np.zeros((vocab_size, dim))
    emb[:, :k] = u * np.sqrt(s)
    return torch.from_numpy(emb).float()


def random_embeddings(vocab_size: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn((vocab_size, dim), generator=torch.Generator().manual_seed(seed))


def _standardise(emb: torch.Tensor) -> torch.Tensor:
    emb = emb.clone()
    emb[0] = 0.0  # <pad>
    std = emb[1:].std()
    return emb / std if float(std) > 0 else emb


# ---------------------------------------------------------------------------------------------
# the dataset


@dataclass
class TextDataset:
    """Token ids, labels, vocabulary and the frozen embedding table of one text dataset."""

    info: DatasetInfo  # channels = embedding dim D, image_size = sentence length L (tokens)
    vocab: list[str]
    embedding: torch.Tensor  # float32 [V, D]
    train_ids: torch.Tensor  # int64 [N, L]
    train_y: torch.Tensor  # int64 [N]
    test_ids: torch.Tensor
    test_y: torch.Tensor
    embedding_kind: str = "ppmi_svd"
    source: str = ""

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """[N, L] ids -> [N, L, D] vectors."""
        return self.embedding[ids]

    def decode(self, vectors: torch.Tensor) -> list[list[str]]:
        """Nearest vocabulary word (cosine; <unk> excluded) of each position of [M, L, D] -> M lists of L words."""
        table = torch.nn.functional.normalize(self.embedding, dim=1)
        table[1] = 0.0  # never decode to <unk>
        v = torch.nn.functional.normalize(vectors.detach().cpu().float(), dim=2)
        nearest = (v @ table.T).argmax(dim=2)
        return [[self.vocab[int(i)] for i in row] for row in nearest]


def _labels_to_ids(train: list[str], test: list[str]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    classes = sorted(set(train))
    unseen = sorted(set(test) - set(classes))
    if unseen:
        raise ValueError(f"test labels {unseen[:10]} never occur in the training data (classes: {classes[:20]}); "
                         "every test label needs training examples")
    if len(classes) < 2:
        raise ValueError(f"the training data has {len(classes)} class; classification needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    return classes, torch.tensor([index[c] for c in train]), torch.tensor([index[c] for c in test])


def build_text_dataset(name: str, train: tuple[list[str], list[str]], test: tuple[list[str], list[str]],
                       max_len: int, vocab_size: int, dim: int, embedding: str, seed: int = 0,
                       source: str = "") -> TextDataset:
    """Tokenise, build the vocabulary and the embedding table on the training text, encode both splits."""
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    classes, ytr, yte = _labels_to_ids(train[1], test[1])
    tok_tr, tok_te = [tokenize(t) for t in train[0]], [tokenize(t) for t in test[0]]
    vocab = build_vocab(tok_tr, vocab_size)
    ids_tr, ids_te = encode(tok_tr, vocab, max_len), encode(tok_te, vocab, max_len)
    if embedding == "ppmi_svd":
        emb = ppmi_svd_embeddings(ids_tr, len(vocab), dim, seed=seed)
    else:
        emb = random_embeddings(len(vocab), dim, seed)
    info = DatasetInfo(name, len(classes), dim, max_len, (0.0,), (1.0,), tuple(classes), flip=False)
    return TextDataset(info, vocab, _standardise(emb), ids_tr, ytr, ids_te, yte, embedding, source)


def load_text_dataset(spec: str = "fortunes", max_len: int = 32, vocab_size: int = 3000, dim: int = 50,
                      embedding: str = "ppmi_svd", seed: int = 0) -> TextDataset:
    """"fortunes[:dir]" or "csv:<dir>" (train.csv + test.csv) as a TextDataset."""
    name, _, path = spec.partition(":")
    name = name.strip().lower()
    if name == "fortunes":
        texts, labels = read_fortunes(path or None)
        tr, te = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
        train = ([texts[i] for i in tr], [labels[i] for i in tr])
        test = ([texts[i] for i in te], [labels[i] for i in te])
        source = str(Path(path) if path else FORTUNES_DIR)
    elif name == "csv":
        if not path:
            raise ValueError("csv needs a folder: csv:<dir> with train.csv and test.csv inside")
        train, test = read_text_csv(Path(path) / "train.csv"), read_text_csv(Path(path) / "test.csv")
        source = path
    else:
        raise ValueError(f"unknown text dataset {spec!r}; use fortunes[:dir] or csv:<dir>")
    return build_text_dataset(name, train, test, max_len, vocab_size, dim, embedding, seed, source)
