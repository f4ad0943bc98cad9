"""The model's state-dict names, shapes and dtypes equal the official full-size checkpoints'.

Built on the meta device: no 2 GB allocation.
"""

from __future__ import annotations

import pytest
import torch

from helpers import FIXTURES
from xyrt.config import XYConfig, builtin_config_path
from xyrt.runtime.network.model import XYTokenizer


def _read_listing(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    out = {}
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d.strip())
        out[key] = (dims, dtype)
    return out


def _model_listing(config: str) -> dict[str, tuple[tuple[int, ...], str]]:
    cfg = XYConfig.from_yaml(builtin_config_path(config))
    with torch.device("meta"):
        model = XYTokenizer(cfg)
    return {
        k: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in model.state_dict().items()
    }


@pytest.mark.parametrize(
    "config, listing",
    [("xy_tokenizer_16k", "state_dict_16k.txt"), ("moss_ttsd_24k", "state_dict_moss_ttsd_24k.txt")],
)
def test_full_size_state_dict_matches_official(config: str, listing: str) -> None:
    want = _read_listing(listing)
    got = _model_listing(config)
    assert len(want) == 1079
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    assert {k: got[k] for k in want} == want


def test_moss_32k_differs_from_24k_only_in_the_head() -> None:
    want = _read_listing("state_dict_moss_ttsd_24k.txt")
    want["enhanced_vocos.head.out.weight"] = ((1282, 512), "float32")
    want["enhanced_vocos.head.out.bias"] = ((1282,), "float32")
    want["enhanced_vocos.head.istft.window"] = ((1280,), "float32")
    assert _model_listing("moss_ttsd_32k") == want


def test_parameter_count_is_full_size() -> None:
    cfg = XYConfig.from_yaml(builtin_config_path("xy_tokenizer_16k"))
    with torch.device("meta"):
        model = XYTokenizer(cfg)
    total = sum(v.numel() for v in model.state_dict().values())
    assert total == 534066522
