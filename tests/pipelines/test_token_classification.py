"""token-classification on a model whose weights make each token's label known (conftest.HandSet),
and on a random model for the invariants (offsets, batching, long inputs)."""

from __future__ import annotations

import pytest

import ernie_m_fast as emf

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
TEXT = "他们在北京和巴黎开会, the Paris capital of France."
PARIS, FRANCE = TEXT.index("Paris"), TEXT.index("France")
TAGGED = {"他": 1, "们": 2, "北": 3, "京": 4, "巴": 3, "黎": 4, "▁Paris": 3, "▁Fran": 3}  # "ce" of France: O


@pytest.fixture(scope="module")
def ner(hand_set, tokenizer):
    classes = {tokenizer.convert_tokens_to_ids(token): label for token, label in TAGGED.items()}
    assert 3 not in classes  # no [UNK]: every tagged token is in the tiny vocabulary
    model = hand_set.model(emf.ErnieMForTokenClassification, classes, head_classes=[0, 1, 2, 3, 4],
                           num_classes=5, num_labels=5, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    return emf.pipeline("token-classification", model=model, tokenizer=tokenizer)


def _spans(entities, key="entity_group"):
    return [(e[key], e["word"], e["start"], e["end"]) for e in entities]


def test_simple_groups_b_and_i_tags(ner):
    got = ner(TEXT, aggregation_strategy="simple")
    assert _spans(got) == [("PER", "他们", 0, 2), ("LOC", "北京", 3, 5), ("LOC", "巴黎", 6, 8),
                           ("LOC", "Paris", PARIS, PARIS + 5), ("LOC", "Fran", FRANCE, FRANCE + 4)]
    assert all(0.99 < e["score"] <= 1.0 for e in got)
    # a B- tag starts a new entity even right after an I- of the same type
    assert _spans(ner("北京巴黎", aggregation_strategy="simple")) == [("LOC", "北京", 0, 2), ("LOC", "巴黎", 2, 4)]


def test_word_strategies_label_whole_words(ner):
    # "France" is one word ("▁Fran" + "ce"): "first" labels it by its first token; CJK characters are words
    first = ner(TEXT, aggregation_strategy="first")
    assert _spans(first)[-1] == ("LOC", "France", FRANCE, FRANCE + 6)
    assert _spans(first)[:3] == [("PER", "他们", 0, 2), ("LOC", "北京", 3, 5), ("LOC", "巴黎", 6, 8)]
    for strategy in ("average", "max"):  # words whose tokens agree come out the same under every strategy
        assert _spans(ner(TEXT, aggregation_strategy=strategy))[:4] == _spans(first)[:4]


def test_none_gives_every_tagged_token_with_its_index(ner, tokenizer):
    got = ner(TEXT)
    tokens = tokenizer.tokenize(TEXT)
    assert [(e["entity"], e["index"]) for e in got] == [
        (LABELS[TAGGED[tokens[i - 1]]], i) for i in range(1, len(tokens) + 1) if tokens[i - 1] in TAGGED]
    assert all(TEXT[e["start"]:e["end"]] == e["word"] for e in got)
    everything = ner(TEXT, ignore_labels=[])
    assert len(everything) == len(tokens) and {e["entity"] for e in everything} >= {"O"}


def test_long_text_windows_find_every_entity(ner):
    # 20 copies: ~330 tokens against a window of 62; entities sit on window edges somewhere
    text = " ".join(["他们在北京。"] * 20)
    got = ner(text, aggregation_strategy="simple")
    expected = [(g, w) for _ in range(20) for g, w in (("PER", "他们"), ("LOC", "北京"))]
    assert [(e["entity_group"], e["word"]) for e in got] == expected
    assert all(text[e["start"]:e["end"]] == e["word"] for e in got)
    assert ner(text, aggregation_strategy="simple", stride=0) == got  # no overlap: same tags here
    assert [e["index"] for e in ner(text)] == sorted(e["index"] for e in ner(text))


def test_batches_equal_one_by_one(checkpoint, close):
    ner = emf.pipeline("ner", model=checkpoint("ErnieMForTokenClassification", num_labels=5, id2label=LABELS,
                                               label2id={v: k for k, v in LABELS.items()}))
    texts = [TEXT, "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ words", "", "x" * 300, "你好 world …"]
    for strategy in ("none", "simple", "first", "average", "max"):
        alone = [ner(t, aggregation_strategy=strategy) for t in texts]
        close(ner(texts, aggregation_strategy=strategy, max_tokens=40), alone)
        for text, entities in zip(texts, alone):
            for e in entities:
                assert text[e["start"]:e["end"]] == e["word"]
    assert ner("") == []


def test_bad_arguments(ner):
    with pytest.raises(ValueError, match="aggregation_strategy"):
        ner(TEXT, aggregation_strategy="mean")
    with pytest.raises(ValueError, match="stride"):
        ner(TEXT, stride=100)
    with pytest.raises(TypeError, match="needs an ernie_m_fast ErnieMForTokenClassification"):
        emf.pipeline("ner", model=emf.ErnieMModel(emf.ErnieMConfig(vocab_size=10)), tokenizer=ner.tokenizer)


def test_pre_split_words_as_transformers_reports_them(ner):
    """is_split_into_words=True: words joined by `delimiter` (default " ") make the text that start/end
    index, as transformers 4.57.6 reports them; one list of words is one input, returned wrapped in a
    list as transformers does; each given word is one word for the word strategies."""
    words = ["他们", "在", "北京", "和", "巴黎"]
    got = ner(words, is_split_into_words=True, aggregation_strategy="simple")
    assert len(got) == 1 and _spans(got[0]) == [("PER", "他们", 0, 2), ("LOC", "北京", 5, 7), ("LOC", "巴黎", 10, 12)]
    joined = ner(words, is_split_into_words=True, delimiter="", aggregation_strategy="simple")
    assert joined == [ner("他们在北京和巴黎", aggregation_strategy="simple")]
    batch = ner([words, ["the", "Paris", "capital"]], is_split_into_words=True, aggregation_strategy="first")
    assert _spans(batch[1]) == [("LOC", "Paris", 4, 9)]
    assert batch[0] == ner(words, is_split_into_words=True, aggregation_strategy="first")[0]
    # the given words are the words, even where they touch in the joined text: "Fran" + "ce" stay two
    # ("first" labels "Fran" by its own token; read from offsets they would be one word, "France")
    assert ner(["Fran", "ce"], is_split_into_words=True, delimiter="", aggregation_strategy="first") == \
        [[{"entity_group": "LOC", "score": pytest.approx(1.0, abs=0.01), "word": "Fran", "start": 0, "end": 4}]]
    # "none": one entry per token, its index in the model's input and its span in the joined text
    (tokens,) = ner(["x", "北京"], is_split_into_words=True, delimiter=" | ")
    assert [(e["entity"], e["word"], e["start"], e["end"]) for e in tokens] == [("B-LOC", "北", 4, 5), ("I-LOC", "京", 5, 6)]


def test_pre_split_arguments_are_checked(ner):
    with pytest.raises(TypeError, match="must be a list of words"):
        ner(TEXT, is_split_into_words=True)
    with pytest.raises(TypeError, match="only with is_split_into_words=True"):
        ner([["北京", "巴黎"]])
    with pytest.raises(TypeError, match="is_split_into_words must be True or False"):
        ner(TEXT, is_split_into_words="yes")
    with pytest.raises(TypeError, match="delimiter must be a str"):
        ner(["北京"], is_split_into_words=True, delimiter=1)
