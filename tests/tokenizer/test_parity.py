"""Our ErnieMTokenizer against transformers' (4.57.6) on the same files: tokens, ids, decode, layout.

Every expected value comes from transformers. The one deliberate difference, a lone "▁" piece that ends a
text (transformers raises IndexError), is checked against transformers run on the same pieces minus that
final "▁" (`oracle_tokenize`).
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
import torch

from offset_property import check_offsets_property
from spm_fixtures import EDGE_TEXTS, corpus_lines

TEXTS = corpus_lines() + EDGE_TEXTS


class _DropFinalUnderline:
    """Wraps a SentencePieceProcessor so EncodeAsPieces drops a final lone "▁" (our documented fix)."""

    def __init__(self, sp):
        self._sp = sp

    def EncodeAsPieces(self, text):
        pieces = self._sp.EncodeAsPieces(text)
        while pieces and pieces[-1] == "▁":  # earlier lone "▁"s before a final one are dropped anyway
            pieces = pieces[:-1]
        return pieces

    def __getattr__(self, name):
        return getattr(self._sp, name)


@contextlib.contextmanager
def _fixed_oracle(theirs):
    real = theirs.sp_model
    theirs.sp_model = _DropFinalUnderline(real)
    try:
        yield theirs
    finally:
        theirs.sp_model = real


def oracle(theirs, method: str, *args, **kwargs):
    """transformers' answer, with our two documented fixes applied to it.

    - where it hits its lone-"▁" IndexError: its answer on the same pieces without that final "▁";
    - ids of unknown pieces: None in transformers when [UNK] is not in vocab.txt, [UNK]'s id in ours.
    """
    try:
        result = getattr(theirs, method)(*args, **kwargs)
    except IndexError:
        with _fixed_oracle(theirs):
            result = getattr(theirs, method)(*args, **kwargs)
    return unk_for_none(theirs, result)


def unk_for_none(theirs, ids):
    if isinstance(ids, list) and None in ids:
        return [theirs.unk_token_id if i is None else i for i in ids]
    return ids


def test_tokens_ids_and_decode_match(variant_pair):
    name, theirs, ours = variant_pair
    unknown_seen = 0
    for text in TEXTS:
        expected_tokens = oracle(theirs, "tokenize", text)
        assert ours.tokenize(text) == expected_tokens, (name, text)
        expected_ids = oracle(theirs, "encode", text)
        assert ours.encode(text) == expected_ids, (name, text)
        unknown_seen += expected_ids.count(theirs.unk_token_id)
        assert ours.convert_tokens_to_ids(expected_tokens) == oracle(theirs, "convert_tokens_to_ids", expected_tokens)
        for skip in (False, True):
            assert ours.decode(expected_ids, skip_special_tokens=skip) == theirs.decode(expected_ids, skip_special_tokens=skip)
        assert ours.convert_ids_to_tokens(expected_ids) == theirs.convert_ids_to_tokens(expected_ids)
    assert unknown_seen > 0  # EDGE_TEXTS hold characters no tiny model knows: the [UNK] path ran


def test_batch_call_matches_one_by_one(variant_pair):
    name, theirs, ours = variant_pair
    expected = [oracle(theirs, "encode", t) for t in TEXTS]
    assert ours(TEXTS)["input_ids"] == expected
    assert ours(TEXTS)["attention_mask"] == [[1] * len(e) for e in expected]


def test_batches_below_and_above_the_threaded_sentencepiece_size_match(base_pair):
    from ernie_m_fast.tokenization import SP_THREADED_BATCH

    theirs, ours = base_pair
    for count in (1, SP_THREADED_BATCH - 1, SP_THREADED_BATCH):  # looped, looped, sentencepiece's pool
        texts = (TEXTS * 2)[:count]
        assert ours(texts)["input_ids"] == [oracle(theirs, "encode", t) for t in texts]


def test_lone_underline_at_end_is_dropped_not_an_error(tmp_path):
    from spm_fixtures import build_tiny_tokenizer_dir
    from transformers import ErnieMTokenizer as Theirs

    from ernie_m_fast import ErnieMTokenizer as Ours

    path = build_tiny_tokenizer_dir(tmp_path, vocab_size=800, remove_extra_whitespaces=False)
    theirs, ours = Theirs.from_pretrained(path), Ours.from_pretrained(path)
    text = "hello world "
    assert ours.sp_model.EncodeAsPieces(text)[-1] == "▁"  # the case exists for this model
    with pytest.raises(IndexError):
        theirs.tokenize(text)
    assert ours.tokenize(text) == theirs.tokenize("hello world")
    assert ours.tokenize(" ") == []  # a text that is one lone "▁"


def test_vocabulary_and_special_tokens_match(variant_pair):
    _, theirs, ours = variant_pair
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.vocab_size == theirs.vocab_size
    assert len(ours) == len(theirs)
    for role in ("unk", "sep", "pad", "cls", "mask"):
        assert getattr(ours, f"{role}_token") == getattr(theirs, f"{role}_token")
        assert getattr(ours, f"{role}_token_id") == getattr(theirs, f"{role}_token_id")
    assert ours.all_special_ids == theirs.all_special_ids
    ids = list(range(-2, len(theirs) + 3))  # includes ids outside the vocabulary
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(5) == theirs.convert_ids_to_tokens(5)
    tokens = ["[MASK]", "nope-not-a-piece", "▁"]
    assert ours.convert_tokens_to_ids(tokens) == oracle(theirs, "convert_tokens_to_ids", tokens)


def test_ernie_m_vocab_layout_ids(base_pair):
    theirs, ours = base_pair
    assert (theirs.cls_token_id, theirs.pad_token_id, theirs.sep_token_id, theirs.unk_token_id) == (0, 1, 2, 3)
    assert (ours.cls_token_id, ours.pad_token_id, ours.sep_token_id, ours.unk_token_id) == (0, 1, 2, 3)
    assert ours.mask_token_id == theirs.mask_token_id == len(theirs) - 1


def test_special_token_layout_methods_match(base_pair):
    theirs, ours = base_pair
    a, b = theirs.encode("Hello 世界 123", add_special_tokens=False), theirs.encode("ok", add_special_tokens=False)
    for args in ((a,), (a, b), ([],), ([], [])):
        assert ours.build_inputs_with_special_tokens(*args) == theirs.build_inputs_with_special_tokens(*args)
        assert ours.get_special_tokens_mask(*args) == theirs.get_special_tokens_mask(*args)
        assert ours.create_token_type_ids_from_sequences(*args) == theirs.create_token_type_ids_from_sequences(*args)
    full = theirs.build_inputs_with_special_tokens(a, b)
    assert ours.get_special_tokens_mask(full, already_has_special_tokens=True) == theirs.get_special_tokens_mask(
        full, already_has_special_tokens=True)
    assert ours.num_special_tokens_to_add(pair=True) == theirs.num_special_tokens_to_add(pair=True)
    assert ours.num_special_tokens_to_add() == theirs.num_special_tokens_to_add()


PAIRS_FIRST = ["The quick brown fox jumps over the lazy dog.", "我们今天去公园散步，天气非常好。", "", "短",
               "abc123def456ghi 7eleven 4x4 mp3", "Ｆｕｌｌ－ｗｉｄｔｈ １２３！"]
PAIRS_SECOND = ["Hello, world!", "서울은 대한민국의 수도입니다.", "x", "एक दो तीन चार पांच छह सात आठ नौ दस", "", "Emoji 😀 🎉"]

PADDINGS = [False, True, "max_length"]
TRUNCATIONS = [None, True, "longest_first", "only_first", "only_second", "do_not_truncate"]
MAX_LENGTHS = [None, 7, 16]


def _compare_call(theirs, ours, args, kwargs):
    """Both tokenizers on the same call: same outputs (attention mask requested from transformers) or same error."""
    their_kwargs = dict(kwargs)
    their_kwargs.setdefault("return_attention_mask", True)  # ours returns it by default
    try:
        expected = theirs(*args, **their_kwargs)
    except Exception as exc:  # e.g. truncation + pad_to_multiple_of conflict: ours must refuse too
        with pytest.raises(type(exc)):
            ours(*args, **kwargs)
        return
    got = ours(*args, **kwargs)
    assert sorted(got.keys()) == sorted(expected.keys()), kwargs
    for key in expected:
        e, g = expected[key], got[key]
        if isinstance(e, (torch.Tensor, np.ndarray)):
            assert type(g) is type(e) and g.dtype == e.dtype and g.shape == e.shape, (key, kwargs)
            if e.dtype == object:  # ragged numpy rows: an object array of 1-D arrays
                assert [r.tolist() for r in g] == [r.tolist() for r in e], (key, kwargs)
            else:
                assert (g == e).all(), (key, kwargs)
        else:
            assert g == e, (key, kwargs)


@pytest.mark.filterwarnings("ignore:`max_length` is ignored")  # both libraries warn, as they should
@pytest.mark.parametrize("padding,truncation,max_length", list(itertools.product(PADDINGS, TRUNCATIONS, MAX_LENGTHS)))
def test_padding_truncation_grid(base_pair, padding, truncation, max_length):
    theirs, ours = base_pair
    common = dict(padding=padding, truncation=truncation, max_length=max_length, return_special_tokens_mask=True,
                  return_token_type_ids=True, return_length=True)
    _compare_call(theirs, ours, (PAIRS_FIRST,), common)                 # batch of texts
    _compare_call(theirs, ours, (PAIRS_FIRST, PAIRS_SECOND), common)    # batch of pairs
    _compare_call(theirs, ours, (PAIRS_FIRST[0],), common)              # one text
    _compare_call(theirs, ours, (PAIRS_FIRST[1], PAIRS_SECOND[3]), common)  # one pair


@pytest.mark.parametrize("side", ["left", "right"])
def test_sides_multiples_and_stride(tiny_dir, side):
    from transformers import ErnieMTokenizer as Theirs

    from ernie_m_fast import ErnieMTokenizer as Ours

    theirs = Theirs.from_pretrained(tiny_dir, padding_side=side, truncation_side=side)
    ours = Ours.from_pretrained(tiny_dir, padding_side=side, truncation_side=side)
    for kwargs in (
        dict(padding=True, pad_to_multiple_of=8),
        dict(padding="max_length", max_length=12, truncation=True, pad_to_multiple_of=4),
        dict(padding="max_length", max_length=13, truncation=True, pad_to_multiple_of=4),  # refused by both
        dict(truncation="only_first", max_length=9, stride=2, return_overflowing_tokens=True),
        dict(padding=True, padding_side="left" if side == "right" else "right"),
        dict(padding=True, add_special_tokens=False, return_special_tokens_mask=True),
        dict(padding=True, return_attention_mask=False),
    ):
        _compare_call(theirs, ours, (PAIRS_FIRST,), kwargs)
        _compare_call(theirs, ours, (PAIRS_FIRST[4],), kwargs)
    _compare_call(theirs, ours, (PAIRS_FIRST, PAIRS_SECOND),
                  dict(truncation="only_second", max_length=10, stride=1, return_overflowing_tokens=True))


@pytest.mark.parametrize("return_tensors", ["pt", "np"])
def test_tensor_outputs_match(base_pair, return_tensors):
    theirs, ours = base_pair
    _compare_call(theirs, ours, (PAIRS_FIRST,), dict(padding=True, return_tensors=return_tensors))
    _compare_call(theirs, ours, (PAIRS_FIRST, PAIRS_SECOND), dict(padding="max_length", max_length=20, truncation=True,
                                                                  return_tensors=return_tensors, return_token_type_ids=True))
    _compare_call(theirs, ours, (PAIRS_FIRST[0],), dict(return_tensors=return_tensors))  # [1, L]
    _compare_call(theirs, ours, (PAIRS_FIRST,), dict(return_tensors="np"))  # ragged: object array in both
    with pytest.raises(ValueError):
        ours(PAIRS_FIRST, return_tensors="pt")  # ragged rows cannot be one tensor


def test_pad_matches(base_pair):
    theirs, ours = base_pair
    rows = [theirs(t) for t in PAIRS_FIRST]
    for kwargs in (dict(), dict(padding="max_length", max_length=30), dict(pad_to_multiple_of=4),
                   dict(return_tensors="pt"), dict(padding_side="left")):
        expected = theirs.pad([dict(r) for r in rows], return_attention_mask=True, **kwargs)
        got = ours.pad([dict(r) for r in rows], **kwargs)
        for key in expected:
            e, g = expected[key], got[key]
            assert (g == e).all() if isinstance(e, torch.Tensor) else g == e, (key, kwargs)
    single = dict(theirs(PAIRS_FIRST[0]))
    assert ours.pad(single, padding="max_length", max_length=40)["input_ids"] == theirs.pad(
        single, padding="max_length", max_length=40)["input_ids"]


def test_encode_variants_match(base_pair):
    theirs, ours = base_pair
    a, b = PAIRS_FIRST[0], PAIRS_SECOND[1]
    assert ours.encode(a, b) == theirs.encode(a, b)
    assert ours.encode(a, add_special_tokens=False) == theirs.encode(a, add_special_tokens=False)
    assert ours.encode(a, max_length=6, truncation=True) == theirs.encode(a, max_length=6, truncation=True)
    ids = theirs.encode(a, add_special_tokens=False)
    assert ours.encode(ids) == theirs.encode(ids)  # already ids
    tokens = theirs.tokenize(a)
    assert ours.encode(tokens) == theirs.encode(tokens)  # already tokens
    assert torch.equal(ours.encode(a, return_tensors="pt"), theirs.encode(a, return_tensors="pt"))
    assert ours.encode_plus(a, b)["input_ids"] == theirs.encode_plus(a, b)["input_ids"]
    assert ours.batch_encode_plus([a, (a, b)])["input_ids"] == theirs.batch_encode_plus([a, (a, b)])["input_ids"]


def test_split_into_words_and_split_special_tokens_match(base_pair):
    theirs, ours = base_pair
    words = ["Hello", "世界", "x2y", "[MASK]"]
    _compare_call(theirs, ours, (words,), dict(is_split_into_words=True))
    _compare_call(theirs, ours, ([words, words[:2]],), dict(is_split_into_words=True, padding=True))
    text = "a [MASK] b [CLS]"
    assert ours.tokenize(text, split_special_tokens=True) == theirs.tokenize(text, split_special_tokens=True)
    assert ours(text, split_special_tokens=True)["input_ids"] == theirs(text, split_special_tokens=True)["input_ids"]


def test_batch_decode_and_cleanup_match(base_pair):
    theirs, ours = base_pair
    batch = theirs(["Hello , world !", "I don 't know .", "中文，测试。"], padding=True)["input_ids"]
    for skip in (False, True):
        for clean in (None, True, False):
            assert ours.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == \
                theirs.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
    assert ours.decode(torch.tensor(batch[0])) == theirs.decode(torch.tensor(batch[0]))
    assert ours.decode(np.array(batch[1])) == theirs.decode(np.array(batch[1]))
    assert ours.decode(batch[0][1]) == theirs.decode(batch[0][1])
    assert ours.convert_tokens_to_string(["▁a", "b", "▁c"]) == theirs.convert_tokens_to_string(["▁a", "b", "▁c"])


# Characters drawn for random texts: every class ErnieM's splitting treats differently, plus whitespace
# kinds, NFKC-changed characters, special tokens and characters no tiny model knows.
FUZZ_ALPHABET = (
    list("abcXYZéßñ") + list("0123456789²³①") + list(",;:.?!~，；：。？！《》【】-'\"()") + list("中文字乂の日本한국어")
    + list("абвЖ") + list("عربي") + list("हिंदी") + list("ไทย") + list("ＡＢｃ１２！") + ["ﬁ", "…", "㎏", "☃", "😀", "İ", "Σ"]
    + [" ", " ", " ", "  ", "\t", "\n", "\u3000", "\u00a0", "\u200b"] + ["[MASK]", "[SEP]", "[UNK]"]
)


def _random_texts(seed: int, count: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 24))) for _ in range(count)]


def test_random_texts_match(variant_pair):
    name, theirs, ours = variant_pair
    texts = _random_texts(seed=len(name), count=150)
    for text in texts:
        assert ours.tokenize(text) == oracle(theirs, "tokenize", text), (name, text)
    assert ours(texts)["input_ids"] == [oracle(theirs, "encode", t) for t in texts]
    for text in texts[:60]:  # offsets hold on random text too
        check_offsets_property(ours, text, *ours.tokenize_with_offsets(text))


def test_special_token_strip_flags_match(tiny_dir, tmp_path):
    """lstrip/rstrip/single_word on special tokens change how text around them is split (AddedToken flags)."""
    from transformers import AddedToken
    from transformers import ErnieMTokenizer as Theirs

    from ernie_m_fast import ErnieMTokenizer as Ours

    flags = dict(mask_token=AddedToken("[MASK]", lstrip=True, rstrip=True), sep_token=AddedToken("[SEP]", single_word=True))
    theirs, ours = Theirs.from_pretrained(tiny_dir, **flags), Ours.from_pretrained(tiny_dir, **flags)
    texts = ["a [MASK] b", "x[MASK]y", "  [MASK]  ", "word[SEP] next", "[SEP]tail", "go [SEP] on", "a [MASK][SEP]b"]
    for text in texts:
        assert ours.tokenize(text) == theirs.tokenize(text), text
        assert ours.encode(text) == theirs.encode(text), text
    ours.save_pretrained(tmp_path)  # the flags travel through tokenizer_config.json, both ways
    assert [Theirs.from_pretrained(tmp_path).encode(t) for t in texts] == [theirs.encode(t) for t in texts]
    assert [Ours.from_pretrained(tmp_path).encode(t) for t in texts] == [theirs.encode(t) for t in texts]
    for text in texts:
        tokens, spans = Ours.from_pretrained(tmp_path).tokenize_with_offsets(text)
        assert all(0 <= s < e <= len(text) for s, e in spans), text


def test_subword_sampling_keeps_the_text(tiny_dir):
    """sp_model_kwargs enable_sampling (random segmentations, as transformers): tokens still spell the text."""
    from ernie_m_fast import ErnieMTokenizer as Ours

    sampled = Ours.from_pretrained(tiny_dir, sp_model_kwargs=dict(enable_sampling=True, alpha=0.5, nbest_size=-1))
    plain = Ours.from_pretrained(tiny_dir)
    segmentations = set()
    for text in corpus_lines()[:30]:
        tokens = sampled.tokenize(text)
        segmentations.add(tuple(tokens))
        assert "".join(tokens).replace("▁", "") == "".join(plain.tokenize(text)).replace("▁", ""), text
        assert sampled(text)["input_ids"][0] == sampled.cls_token_id
    sample_runs = {tuple(sampled.tokenize(corpus_lines()[0])) for _ in range(20)}
    assert len(sample_runs) > 1  # sampling is on


def test_input_ids_only_mode_is_exactly_transformers(tiny_dir, tmp_path):
    """model_input_names=["input_ids"] turns off the default attention_mask: byte-for-byte transformers."""
    from transformers import ErnieMTokenizer as Theirs

    from ernie_m_fast import ErnieMTokenizer as Ours

    theirs = Theirs.from_pretrained(tiny_dir)
    ours = Ours.from_pretrained(tiny_dir, model_input_names=["input_ids"])
    for kwargs in (dict(), dict(padding=True), dict(padding="max_length", max_length=12, truncation=True)):
        assert dict(ours(PAIRS_FIRST, **kwargs)) == dict(theirs(PAIRS_FIRST, **kwargs))
        assert dict(ours(PAIRS_FIRST[0], **kwargs)) == dict(theirs(PAIRS_FIRST[0], **kwargs))
    ours.save_pretrained(tmp_path)
    assert Ours.from_pretrained(tmp_path).model_input_names == ["input_ids"]
    assert Theirs.from_pretrained(tmp_path)(PAIRS_FIRST[0]).keys() == {"input_ids"}
