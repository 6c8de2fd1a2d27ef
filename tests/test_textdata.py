"""Text data: the CSV loader's errors, the tokenizer, vocabulary, embeddings, nearest-word decoding,
the default fortunes set, and a text bilevel run end to end on the tiny fixture."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill_core.models import build_model
from distill_core.textdata import (
    FORTUNES_CLASSES,
    FORTUNES_DIR,
    build_vocab,
    encode,
    load_text_dataset,
    read_text_csv,
    tokenize,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "text_tiny"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_tokenizer_needs_nothing_but_the_text():
    assert tokenize("Don't PANIC: 42 towels, please!") == ["don't", "panic", "42", "towels", "please"]


def test_csv_reads_text_and_label_columns_in_any_order(tmp_path):
    texts, labels = read_text_csv(_write(tmp_path / "a.csv", b'label,text\nx,"hello, world"\ny,bye\n'))
    assert texts == ["hello, world", "bye"] and labels == ["x", "y"]


@pytest.mark.parametrize("content, match", [
    (b"text,category\nhello,x\n", "no label column"),
    (b"text,label\nhello,x\n\nbye,y\n", "line 3 is empty"),
    (b"text,label\nhello,x\n,y\n", "line 3 has an empty text"),
    (b"text,label\ncaf\xe9,x\n", "not UTF-8.*line 2"),
    (b"", "empty"),
])
def test_bad_csv_is_a_clear_error(tmp_path, content, match):
    with pytest.raises(ValueError, match=match):
        read_text_csv(_write(tmp_path / "bad.csv", content))


def test_test_labels_never_seen_in_training_are_refused(tmp_path):
    (tmp_path / "train.csv").write_bytes((FIXTURE / "train.csv").read_bytes())
    (tmp_path / "test.csv").write_text("text,label\nthe team won,sport\na quiet night,astronomy\n")
    with pytest.raises(ValueError, match="astronomy"):
        load_text_dataset(f"csv:{tmp_path}", max_len=8, vocab_size=50, dim=4)


def test_vocabulary_and_encoding():
    vocab = build_vocab([["a", "b", "a"], ["b", "c", "a"]], max_size=10)
    assert vocab == ["<pad>", "<unk>", "a", "b"]  # c occurs once: below min_count 2
    assert encode([["a", "c", "b"]], vocab, 5).tolist() == [[2, 1, 3, 0, 0]]


@pytest.mark.parametrize("kind", ["ppmi_svd", "random"])
def test_fixture_dataset_and_nearest_word_decoding(kind):
    data = load_text_dataset(f"csv:{FIXTURE}", max_len=10, vocab_size=80, dim=6, embedding=kind)
    assert data.info.class_names == ("cooking", "sport", "weather") and data.info.num_classes == 3
    assert data.embedding.shape == (len(data.vocab), 6) and float(data.embedding[0].abs().sum()) == 0.0
    assert data.train_ids.shape == (24, 10) and data.test_ids.shape == (9, 10)
    words = ["the", "team", "stir", "soup"]
    ids = torch.tensor([[data.vocab.index(w) for w in words]])
    assert data.decode(data.embed(ids)) == [words]  # each word's own vector decodes to it


def test_ppmi_embeddings_put_co_occurring_words_close():
    data = load_text_dataset(f"csv:{FIXTURE}", max_len=16, vocab_size=120, dim=8, embedding="ppmi_svd")
    e = torch.nn.functional.normalize(data.embedding, dim=1)
    v = {w: e[data.vocab.index(w)] for w in ("striker", "scored", "soup", "pot")}
    # "striker scored" appears together three times, "striker ... soup" never
    assert float(v["striker"] @ v["scored"]) > float(v["striker"] @ v["soup"])


def test_textcnn_reads_embedded_sentences():
    data = load_text_dataset(f"csv:{FIXTURE}", max_len=10, vocab_size=80, dim=6)
    model = build_model("textcnn", data.info, filters=4)
    assert model(data.embed(data.train_ids[:5])).shape == (5, 3)


@pytest.mark.skipif(not all((FORTUNES_DIR / c).is_file() for c in FORTUNES_CLASSES),
                    reason="Debian's fortunes package is not installed (apt-get install fortunes)")
def test_the_default_text_set_is_fortunes():
    data = load_text_dataset("fortunes", vocab_size=500, dim=8)
    assert data.info.class_names == FORTUNES_CLASSES
    assert len(data.train_y) > 1500 and len(data.test_y) > 400
    assert set(data.test_y.tolist()) == {0, 1, 2, 3}


def test_missing_fortunes_names_the_package(tmp_path):
    with pytest.raises(ValueError, match="apt-get install fortunes"):
        load_text_dataset(f"fortunes:{tmp_path}")


def test_text_run_writes_sentences_labels_and_step_sizes(tmp_path):
    from distill_core.synthesis.learned_labels import load_learned_labels
    from distill_core.synthesis.text import TextBilevelConfig, load_learned_text, run_bilevel_text

    cfg = TextBilevelConfig(dataset=f"csv:{FIXTURE}", num_samples=2, max_len=6, vocab_size=60, embed_dim=6,
                            outer_steps=3, outer_batch=16, eval_nets=1, eval_standard_steps=2, device="cpu")
    metrics = run_bilevel_text(cfg, tmp_path / "t")
    text = load_learned_text(tmp_path / "t")
    labels = load_learned_labels(tmp_path / "t")
    assert text["embeddings"].shape == (2, 6, 6) and len(text["words"]) == 2 and len(text["words"][0]) == 6
    assert labels.labels.shape == (2, 3) and labels.step_sizes.shape == (5,)
    assert len(metrics["sentences"]) == 2 and (tmp_path / "t" / "sentences.csv").is_file()
