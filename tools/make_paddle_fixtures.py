"""Golden outputs from PaddleNLP itself, for the PaddleNLP-checkpoint and Taskflow tests (run outside CI).

Builds small random PaddleNLP ErnieM and UIE-M models, saves them exactly as PaddleNLP 2.8.1 saves
them, runs PaddleNLP's forward and Taskflow's UIE-M on fixed inputs, and writes checkpoints and
outputs to tests/fixtures/paddle/. The tests (tests/paddle/) read those files without paddle.

Needs paddle and paddlenlp, which conflict with transformers 4.57.6, so run it from a separate venv:

    python3 -m venv /work/venv-paddle
    /work/venv-paddle/bin/pip install paddlepaddle==3.3.1 paddlenlp==2.8.1 'huggingface_hub<0.26' \
        aistudio-sdk==0.1.7 'datasets<3' 'pyarrow<16' sentencepiece
    /work/venv-paddle/bin/python tools/make_paddle_fixtures.py

It imports nothing from ernie_m_fast but `ernie_m_fast/tiny.py` (by file path: that module needs only
sentencepiece), so the outputs owe nothing to the code under test. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "paddle")

# The tokenizer's training text: the fixture texts, the schema words and a little more of each script.
CORPUS = [
    "张三出生于北京，是一名工程师。",
    "2020年他去了上海工作，李四是他的同事。",
    "王五在广州开了一家公司，他的妻子是一名医生。",
    "人物 地点 时间 组织 出生地 职业 情感倾向 正向 负向 的",
    "这个产品用起来真的很流畅，我非常喜欢。",
    "John Smith was born in London and works as a teacher in Paris.",
    "Mary Jones moved to Berlin in 2019 and became a doctor.",
    "Person Location Organization Birthplace Job of the and in was",
    "Der Lehrer wohnt in Berlin. El médico vive en Madrid.",
]
TEXTS = {
    "zh": "张三出生于北京，是一名工程师。2020年他去了上海工作，李四是他的同事。",
    "en": "John Smith was born in London and works as a teacher in Paris.",
    "zh_long": "张三出生于北京，是一名工程师。2020年他去了上海工作，李四是他的同事。王五在广州开了一家公司，"
               "他的妻子是一名医生。这个产品用起来真的很流畅，我非常喜欢。",
    # sentences for split_sentence, one ending in a newline (Taskflow drops it, and its offsets after it)
    "zh_lines": "张三出生于北京，是一名工程师。2020年他去了上海工作?\n李四是他的同事。王五在广州开了一家公司。",
}
# (name, schema, schema_lang, texts, max_seq_len, position_prob[, other Taskflow arguments]): windows
# happen where the text does not fit. relations_zh's threshold is higher: at 0.5 this random model's relation stages mix prompt and text
# spans in their first window, and Taskflow's result then depends on a Python set's order (order_invariant)
TASKFLOW_CASES = [
    ("entities_zh", ["人物", "地点", "时间"], "ch", ["zh", "zh_long"], 64, 0.5),
    ("relations_zh", [{"人物": ["出生地", "职业"]}], "ch", ["zh"], 64, 0.65),
    ("classification_zh", ["情感倾向[正向，负向]"], "ch", ["zh"], 64, 0.5),
    ("entities_en", ["Person", "Location"], "en", ["en"], 64, 0.5),
    ("relations_en", [{"Person": ["Birthplace", "Job"]}], "en", ["en"], 24, 0.5),
    ("windows_zh", ["人物", "地点"], "ch", ["zh_long"], 24, 0.5),
    ("sentences_zh", ["人物", "地点"], "ch", ["zh_lines"], 24, 0.5, {"split_sentence": True}),
]
# PaddleNLP's tokenizer on texts where it and transformers differ (a lone "▁" piece: a space before a
# character sentencepiece cannot join to it, e.g. CJK or a digit) or where offsets are tricky. Only the
# corpus's characters: the tiny model normalises those alone, and PaddleNLP's offsets need NFKC's result
TOKENIZER_TEXTS = [
    "John Smith was born in 北京 in 2020.",
    "张三 出生于 北京， 2020年 他去了 上海。",
    " Mary  Jones moved to  Berlin 。",
    "Person and 人物， 张三 和 2019",
    "El médico vive en Madrid 3 años.",
    "人物 的 出生地",
]
MODEL_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=66,
                   intermediate_size=37)  # PaddleNLP ignores intermediate_size (FFN = 4 x hidden): a decoy


def _load_tiny():
    spec = importlib.util.spec_from_file_location("ernie_m_fast_tiny", os.path.join(REPO, "ernie_m_fast", "tiny.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_tokenizer(out_dir: str) -> None:
    """A small sentencepiece BPE model in ErnieM's layout (ernie_m_fast/tiny.py).

    Real ErnieM models normalise with NFKC, which PaddleNLP's offset mapping relies on; its table is
    ~240 KB. A table with NFKC's rules for the corpus's own characters (e.g. the full-width comma)
    normalises these texts identically and keeps the model file a few KB."""
    import unicodedata

    rules = sorted({c for line in CORPUS for c in line if unicodedata.normalize("NFKC", c) != c})
    tsv = os.path.join(out_dir + ".rules.tsv")
    with open(tsv, "w", encoding="utf-8") as f:
        for c in rules:
            target = " ".join(f"{ord(t):X}" for t in unicodedata.normalize("NFKC", c))
            f.write(f"{ord(c):X}\t{target}\n")
    _load_tiny().train_tiny_tokenizer(out_dir, texts=CORPUS, vocab_size=420, normalization_rule_tsv=tsv)


def randomize(model, rng: np.random.Generator, head_scale: float = 1.0, head_bias: float = 0.0) -> None:
    """Random values in every parameter (biases and LayerNorm affine too, so each one matters), scaled
    so that attention is far from uniform in a 32-wide model. The IE head gets its own scale and bias,
    chosen so that a fair share of tokens, but not most, cross Taskflow's position_prob."""
    import paddle

    for name, param in model.named_parameters():
        shape = param.shape
        if "norm" in name:
            value = (1.0 if name.endswith("weight") else 0.0) + rng.normal(0.0, 0.1, shape)
        elif name.endswith("bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, 0.2, shape)
        if name.startswith(("linear_start", "linear_end")):
            value = value * head_scale if name.endswith("weight") else np.full(shape, head_bias)
        param.set_value(paddle.to_tensor(value.astype("float32")))


def write_legacy_config(model_dir: str, out_dir: str) -> None:
    """PaddleNLP < 2.5's model_config.json for a head model: the base model's fields nested in
    `init_args`, the head's class in `init_class` (PaddleNLP 2.8.1 still reads it)."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    architecture = config.pop("architectures")[0]
    for key in ("model_type", "paddlenlp_version", "dtype"):
        config.pop(key, None)
    legacy = {"init_args": [dict(config, init_class="ErnieMModel")], "init_class": architecture}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model_config.json"), "w", encoding="utf-8") as f:
        json.dump(legacy, f, indent=2, sort_keys=True)


def encode_batch(tokenizer, texts, pairs=None):
    """PaddleNLP's tokenizer, padded to the longest with [PAD] (id 1); returns int64 arrays."""
    enc = tokenizer(text=texts, text_pair=pairs, padding=True, return_attention_mask=True,
                    return_position_ids=True)
    return {k: np.array(enc[k], dtype="int64") for k in ("input_ids", "attention_mask", "position_ids")}


def forward_cases(tokenizer):
    """Inputs as PaddleNLP defines them: with a 2-D mask; without one (PaddleNLP then masks token id 0,
    [CLS], and attends to [PAD]); with explicit position ids; and Taskflow's UIE-M input (pads to a
    fixed length, pads at position 0, no mask)."""
    batch = encode_batch(tokenizer, ["张三出生于北京，是一名工程师。", "John Smith was born in London.",
                                     "李四是他的同事。"])
    pairs = encode_batch(tokenizer, ["人物", "Person"], [TEXTS["zh"], TEXTS["en"]])
    shifted = batch["position_ids"] + 3 * batch["attention_mask"]  # positions need not count from 0
    taskflow = tokenizer(text=["地点"], text_pair=["张三出生于北京，是一名工程师。"], max_seq_len=48,
                         pad_to_max_seq_len=True, return_position_ids=True, truncation=True)
    taskflow = {k: np.array(taskflow[k], dtype="int64") for k in ("input_ids", "position_ids")}
    return {
        "masked": dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]),
        "no_mask": dict(input_ids=batch["input_ids"]),
        "positions": dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=shifted),
        "pairs_masked": dict(input_ids=pairs["input_ids"], attention_mask=pairs["attention_mask"]),
        "taskflow_input": taskflow,
    }


def run_forward(model, inputs: dict) -> tuple:
    import paddle

    # copies: PaddleNLP's embeddings add 2 to position_ids in place
    args = {k: paddle.to_tensor(v.copy()) for k, v in inputs.items()}
    with paddle.no_grad():
        return tuple(np.asarray(t.numpy(), dtype="float32") for t in model(**args)[:2])


def save_outputs(path: str, model, cases: dict, names: tuple[str, str]) -> None:
    arrays = {}
    for case, inputs in cases.items():
        for key, value in inputs.items():
            arrays[f"{case}.{key}"] = value
        for name, value in zip(names, run_forward(model, inputs)):
            arrays[f"{case}.{name}"] = value
    np.savez_compressed(path, **arrays)


def _short_float32(x) -> float:
    """The shortest decimal that reads back as the same float32 (JSON stays half the size)."""
    return float(np.format_float_positional(np.float32(x), unique=True))


class RecordingTokenizer:
    """Wraps Taskflow's tokenizer to record every (prompt, text) window it encodes."""

    def __init__(self, tokenizer, windows: list):
        self._tokenizer = tokenizer
        self._windows = windows

    def __call__(self, *args, **kwargs):
        out = self._tokenizer(*args, **kwargs)
        self._windows.append({
            "prompt": kwargs["text"][0], "text": kwargs["text_pair"][0],
            "input_ids": list(out["input_ids"][0]), "position_ids": list(out["position_ids"][0]),
            "offset_mapping": [list(o) for o in out["offset_mapping"][0]],
        })
        return out

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def patch_static_export() -> None:
    """Paddle 3.3's paddle.jit.save writes the static graph as `inference.json` (the new IR, PIR), where
    paddlenlp 2.8.1 asks paddle.inference for `inference.pdmodel`: hand it the .json and run it on the
    new IR and executor. `enable_memory_optim` (buffer reuse, no effect on the numbers) is skipped: its
    pass is not registered for PIR programs. Taskflow's own logic is left as it is."""
    import paddle

    original = paddle.inference.Config

    class PirConfig(original):
        def __init__(self, model_file=None, params_file=None, *args):
            pir = isinstance(model_file, str) and model_file.endswith(".pdmodel") and not os.path.exists(model_file)
            if pir:
                model_file = model_file[: -len(".pdmodel")] + ".json"
            super().__init__(*(a for a in (model_file, params_file, *args) if a is not None))
            if pir:
                self.enable_new_ir(True)
                self.enable_new_executor(True)

        def enable_memory_optim(self, *args):
            pass

    paddle.inference.Config = PirConfig


def _canonical(results) -> str:
    """Taskflow's results with every span list sorted: equal for two runs that differ in span order only."""
    def spans(items):
        return sorted(json.dumps(dict(span, relations=_nodes(span.get("relations", {}))), sort_keys=True,
                                 ensure_ascii=False) for span in items)

    def _nodes(result):
        return {name: spans(items) for name, items in result.items()}

    return json.dumps([_nodes(result) for result in results], sort_keys=True, ensure_ascii=False)


def order_invariant(ie_module, ie_task, texts, results) -> bool:
    """Whether Taskflow's results hold the same spans when each window's spans come in position order, or
    in reverse: Taskflow iterates them from a Python set (hash order of float probabilities), and its
    window joiner reads the first one. Fixtures whose results depend on that order cannot be reproduced
    by anyone whose probabilities differ in the last bit."""
    original = ie_module.get_span
    try:
        for reverse in (False, True):
            ie_module.get_span = lambda s, e, with_prob=False, r=reverse: sorted(
                original(s, e, with_prob), key=lambda pair: (pair[0][0], pair[1][0]), reverse=r)
            if _canonical(ie_task(texts)) != _canonical(results):
                return False
    finally:
        ie_module.get_span = original
    return True


def run_taskflow(model_dir: str, work: str, name: str, schema, schema_lang: str, texts: list[str],
                 max_seq_len: int, position_prob: float = 0.5, options: dict | None = None) -> dict:
    from paddlenlp import Taskflow
    from paddlenlp.taskflow import information_extraction as ie

    task_path = os.path.join(work, name)
    shutil.copytree(model_dir, task_path)  # Taskflow rewrites model_state.pdparams and adds static/ here
    ie_task = Taskflow("information_extraction", model="uie-m-base", task_path=task_path, schema=schema,
                       schema_lang=schema_lang, max_seq_len=max_seq_len, position_prob=position_prob, batch_size=4,
                       **(options or {}))
    windows: list = []
    prob_arrays: list = []  # start, end, start, end, ...: Taskflow thresholds start then end per batch
    original = ie.get_bool_ids_greater_than

    def recording(p, limit=0.5, return_prob=False):
        prob_arrays.append(np.array(p, dtype="float32"))
        return original(p, limit, return_prob)

    ie.get_bool_ids_greater_than = recording
    task = ie_task.task_instance
    task._tokenizer = RecordingTokenizer(task._tokenizer, windows)
    try:
        results = ie_task(texts)
    finally:
        ie.get_bool_ids_greater_than = original
    task._tokenizer = task._tokenizer._tokenizer
    invariant = order_invariant(ie, ie_task, texts, results)
    empty = np.zeros((0, max_seq_len), "float32")
    start = np.concatenate(prob_arrays[0::2]) if prob_arrays else empty
    end = np.concatenate(prob_arrays[1::2]) if prob_arrays else empty
    assert len(windows) == start.shape[0] == end.shape[0], (len(windows), start.shape)
    for window, s, e in zip(windows, start, end):
        # real tokens: through the last [SEP]; after them Taskflow's [PAD]s, identical rows with one value
        real = len(window["input_ids"]) - window["input_ids"][::-1].index(2)
        for key, probs in (("start", s), ("end", e)):
            window[f"{key}_prob"] = [_short_float32(x) for x in probs[:real]]
            if real < len(probs):
                assert np.ptp(probs[real:]) < 1e-6, "Taskflow's pad rows differ"
                window[f"{key}_pad_prob"] = _short_float32(probs[real])
        for key in ("input_ids", "position_ids", "offset_mapping"):
            window[key] = window[key][:real]
    return {"name": name, "schema": schema, "schema_lang": schema_lang, "texts": texts, "max_seq_len": max_seq_len,
            "position_prob": position_prob, "options": options or {}, "results": results, "windows": windows,
            "order_invariant": invariant}


def tokenizer_cases(tokenizer) -> list[dict]:
    """PaddleNLP's tokens, ids and offsets for TOKENIZER_TEXTS and the fixture texts."""
    cases = []
    # not zh_lines: this tiny model keeps "\n" as a character, which PaddleNLP's offset mapping cannot
    # find (it drops whitespace); Taskflow never tokenizes it (split_sentence removes it)
    for text in TOKENIZER_TEXTS + [t for t in TEXTS.values() if "\n" not in t]:
        tokens = tokenizer.tokenize(text)
        cases.append({"text": text, "tokens": tokens, "input_ids": tokenizer.convert_tokens_to_ids(tokens),
                      "offset_mapping": [list(o) for o in tokenizer.get_offset_mapping(text)]})
    return cases


def fixture_problems(taskflow: list[dict]) -> list[str]:
    problems = []
    for case in taskflow:
        if count_spans(case["results"]) == 0:
            problems.append(f"{case['name']}: no spans")
        if case["name"].startswith("relations") and not any(
                span.get("relations") for result in case["results"] for spans in result.values() for span in spans):
            problems.append(f"{case['name']}: no relations")
        if not case["order_invariant"]:
            problems.append(f"{case['name']}: the result depends on the order of a Python set")
        for window in case["windows"]:
            pads = [window.get("start_pad_prob", 0.0), window.get("end_pad_prob", 0.0)]
            if max(pads) > case["position_prob"]:
                problems.append(f"{case['name']}: a [PAD] above position_prob")
                break
    return problems


def count_spans(results) -> int:
    total = 0
    for result in results:
        for spans in result.values():
            for span in spans:
                total += 1 + count_spans([span.get("relations", {})])
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--head-scale", type=float, default=2.0)
    parser.add_argument("--head-bias", type=float, default=-2.5)
    parser.add_argument("--tries", type=int, default=30, help="seeds to try for the UIE-M model")
    args = parser.parse_args(argv)

    import paddle
    from paddlenlp.transformers import UIEM, ErnieMConfig, ErnieMModel, ErnieMTokenizer

    paddle.set_device("cpu")
    patch_static_export()
    out = args.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with tempfile.TemporaryDirectory() as work:
        tok_dir = os.path.join(work, "tokenizer")
        train_tokenizer(tok_dir)
        tokenizer = ErnieMTokenizer.from_pretrained(tok_dir)
        config = ErnieMConfig(vocab_size=len(tokenizer.vocab), **MODEL_SHAPE)
        cases = forward_cases(tokenizer)

        base = ErnieMModel(config)
        randomize(base, np.random.default_rng(args.seed))
        base.eval()
        base_dir = os.path.join(out, "ernie_m")
        base.save_pretrained(base_dir)
        tokenizer.save_pretrained(base_dir)
        save_outputs(os.path.join(out, "ernie_m_outputs.npz"), base, cases, ("last_hidden_state", "pooler_output"))

        # UIE-M: a seed whose Taskflow results have spans in every case and whose pad rows stay below
        # position_prob (a trained model never scores [PAD]; Taskflow would turn such a pad into a
        # span at offset (0, 0), an artefact no user wants reproduced)
        for seed in range(args.seed, args.seed + args.tries):
            uie = UIEM(config)
            randomize(uie, np.random.default_rng(seed), head_scale=args.head_scale, head_bias=args.head_bias)
            uie.eval()
            uie_dir = os.path.join(work, f"uie_m_{seed}")
            uie.save_pretrained(uie_dir)
            tokenizer.save_pretrained(uie_dir)
            taskflow = [run_taskflow(uie_dir, work, f"{name}_{seed}", schema, lang, [TEXTS[t] for t in texts], *rest)
                        | {"name": name} for name, schema, lang, texts, *rest in TASKFLOW_CASES]
            problems = fixture_problems(taskflow)
            print(f"seed {seed}: " + ("; ".join(problems) if problems else "ok"))
            if not problems:
                break
        else:
            raise SystemExit(f"no seed in [{args.seed}, {args.seed + args.tries}) gives usable Taskflow fixtures")
        shutil.copytree(uie_dir, os.path.join(out, "uie_m"))
        uie_dir = os.path.join(out, "uie_m")
        save_outputs(os.path.join(out, "uie_m_outputs.npz"), uie, cases, ("start_prob", "end_prob"))

        # the legacy layout: PaddleNLP 2.8.1 must read it to the same model
        legacy_config_dir = os.path.join(out, "uie_m_legacy")
        write_legacy_config(uie_dir, legacy_config_dir)
        legacy_dir = os.path.join(work, "uie_m_legacy")
        shutil.copytree(uie_dir, legacy_dir)
        os.remove(os.path.join(legacy_dir, "config.json"))
        shutil.copy(os.path.join(legacy_config_dir, "model_config.json"), legacy_dir)
        reloaded = UIEM.from_pretrained(legacy_dir)
        reloaded.eval()
        for inputs in cases.values():
            for a, b in zip(run_forward(uie, inputs), run_forward(reloaded, inputs)):
                assert np.array_equal(a, b), "PaddleNLP read the legacy layout to a different model"
        # Taskflow through the legacy layout too (it reads `init_class` from model_config.json)
        legacy_run = run_taskflow(legacy_dir, work, "legacy", *TASKFLOW_CASES[0][1:3],
                                  [TEXTS[t] for t in TASKFLOW_CASES[0][3]], *TASKFLOW_CASES[0][4:])
        assert legacy_run["results"] == taskflow[0]["results"], "Taskflow differs between the two layouts"
    for case in taskflow:
        del case["order_invariant"]  # true for every case kept
    with open(os.path.join(out, "paddle_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"paddlenlp": _paddlenlp_version(), "cases": tokenizer_cases(tokenizer)}, f, ensure_ascii=False,
                  separators=(",", ":"))
    with open(os.path.join(out, "taskflow.json"), "w", encoding="utf-8") as f:
        json.dump({"paddle": paddle.__version__, "paddlenlp": _paddlenlp_version(), "cases": taskflow}, f,
                  ensure_ascii=False, separators=(",", ":"))
    for case in taskflow:
        print(f"{case['name']}: {len(case['windows'])} windows, {count_spans(case['results'])} spans")
    for root, _, files in sorted(os.walk(out)):
        for name in sorted(files):
            path = os.path.join(root, name)
            print(f"{os.path.relpath(path, out)}: {os.path.getsize(path)} bytes")
    return 0


def _paddlenlp_version() -> str:
    from importlib.metadata import version

    return version("paddlenlp")


if __name__ == "__main__":
    sys.exit(main())
