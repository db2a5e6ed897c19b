"""The parameter checks themselves (vecbench.core.params): what a Param accepts and rejects,
ints and floats, validate's unknown, required and default parameters. That every registered
component's declaration agrees with its code is tests/conformance/test_params.py."""

from __future__ import annotations

import pytest

from vecbench.core.errors import ConfigError
from vecbench.core.params import Param, validate


# --- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("param, good, bad", [
    (Param("M", "int", 16, low=2), [2, 64], [1, 2.0, True, "16", None]),
    (Param("eps", "number", 0.1, low=0, high=1, low_open=True, high_open=True),
     [0.5, 1e-9], [0, 1, 1.5, float("nan"), "0.1", False]),
    (Param("whiten", "bool", False), [True, False], [0, 1, "true", None]),
    (Param("kind", "choice", "a", choices=("a", "b")), ["a", "b"], ["c", None, 1]),
    (Param("n_components", "dims", 0.5, choices=("auto",)), [1, 64, 0.25, 1.0, "auto"],
     [0, -1, 1.5, 0.0, "all", True]),
    (Param("hidden", "ints", (8,), low=1), [[8, 4], (2,), []], [[0], ["8"], 8, [True]]),
    (Param("fields", "strs", ("a",)), [["title", "text"]], ["title", [], [""], [1]]),
    (Param("refine", "bool|str", False), [True, "SQ8"], [1, "", None]),
    (Param("train", "str", None, nullable=True), [None, "t.npy"], ["", 3]),
])
def test_param_accepts_and_rejects_what_its_expected_text_says(param, good, bad):
    for value in good:
        assert param.check(value) == value
    for value in bad:
        with pytest.raises(ConfigError) as info:
            param.check(value)
        if param.kind == "ints" and isinstance(value, list):  # the bad element is named
            assert info.value.path.startswith(f"{param.name}[")
            assert "expected an integer" in info.value.message
        else:
            assert info.value.path == param.name
            # a refused value is told what else it could be; null goes unnamed there
            assert f"expected {param.expected(null=False)}, got " in info.value.message


def test_ints_stay_ints_and_numbers_become_floats():
    assert type(Param("k", "number", 1, low=1).check(16)) is int
    assert type(Param("k", "number", 1, low=1).check(16.5)) is float


def test_validate_unknown_required_and_defaults():
    class Thing:
        params = (Param("path", "str", doc="where"), Param("n", "int", 3, low=1))

    assert validate(Thing, {"path": "p"}) == {"path": "p", "n": 3}
    assert validate(Thing, {"path": "p"}, defaults=False) == {"path": "p"}
    with pytest.raises(ConfigError, match=r"did you mean 'path'") as info:
        validate(Thing, {"paht": "p"})
    assert info.value.path == "paht"
    with pytest.raises(ConfigError, match="got nothing \\(required\\)") as info:
        validate(Thing, {"n": 2})
    assert info.value.path == "path"


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown kind"):
        Param("x", "integer")
