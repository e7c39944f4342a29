"""Max |ours - PaddleNLP| over every golden fixture (fp32, CPU): `python tools/paddle_max_diff.py`.

Reads tests/fixtures/paddle/ (written by tools/make_paddle_fixtures.py); needs no paddle.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "paddle"))
import ernie_m_fast as emf
from paddle_fixtures import BASE_DIR, UIE_DIR, case_inputs, outputs, taskflow_cases
NO_MASK = ("no_mask", "taskflow_input")
for backend in ("torch", "cpu"):
    worst = {}
    base = emf.ErnieMModel.from_pretrained(BASE_DIR, backend=backend)
    uie = emf.ErnieMForInformationExtraction.from_pretrained(UIE_DIR, backend=backend)
    for name, model, keys in (("ernie_m", base, ("last_hidden_state", "pooler_output")), ("uie_m", uie, ("start_prob", "end_prob"))):
        data = outputs(name)
        for case in ("masked", "positions", "pairs_masked", "no_mask", "taskflow_input"):
            inputs = case_inputs(data, case)
            kw = {"paddle_pad_to": inputs["input_ids"].shape[1]} if case in NO_MASK else {}
            with torch.no_grad(): out = model(**inputs, **kw)
            mask = inputs["attention_mask"].bool().numpy() if "attention_mask" in inputs else np.ones(inputs["input_ids"].shape, bool)
            vals = (out.last_hidden_state, out.pooler_output) if name == "ernie_m" else (torch.sigmoid(out.start_logits), torch.sigmoid(out.end_logits))
            for key, v in zip(keys, vals):
                v = v.numpy(); ref = data[f"{case}.{key}"]
                d = np.abs(v[mask] - ref[mask]).max() if v.ndim == mask.ndim + 1 or v.shape == mask.shape else np.abs(v - ref).max()
                worst[f"{name}.{key}"] = max(worst.get(f"{name}.{key}", 0), float(d))
    tf, windows = 0.0, 0
    for case in taskflow_cases():
        windows += len(case["windows"])
        for w in case["windows"]:
            ids = torch.tensor([w["input_ids"] + [1]]); mask = torch.ones_like(ids); mask[0, -1] = 0
            with torch.no_grad(): out = uie(input_ids=ids, attention_mask=mask, position_ids=torch.tensor([w["position_ids"] + [0]]), paddle_pad_to=case["max_seq_len"])
            for key, logits in (("start", out.start_logits), ("end", out.end_logits)):
                p = torch.sigmoid(logits)[0].numpy(); n = len(w["input_ids"])
                tf = max(tf, float(np.abs(p[:n] - np.array(w[f"{key}_prob"])).max()))
                if f"{key}_pad_prob" in w: tf = max(tf, abs(float(p[n]) - w[f"{key}_pad_prob"]))
    worst[f"taskflow window probabilities ({windows} windows)"] = tf
    print(backend, {k: f"{v:.1e}" for k, v in worst.items()})
