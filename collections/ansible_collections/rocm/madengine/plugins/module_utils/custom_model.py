"""The CustomModel dataclass that MAD packages' get_models_json.py scripts build their models from.

Scripts import it as ``madengine.utils.discover_models.CustomModel`` (or the v1 path
``madengine.tools.discover_models``); both resolve to this one class.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass
class CustomModel:
    name: str
    dockerfile: str = ""
    dockercontext: str = ""
    scripts: str = ""
    url: str = ""
    cred: str = ""
    owner: str = ""
    data: str = ""
    n_gpus: str = "-1"
    timeout: int = 7200
    training_precision: str = ""
    tags: List[str] = field(default_factory=list)
    args: str = ""
    multiple_results: str = ""
    skip_gpu_arch: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def update_model(self) -> None:
        """Hook for subclasses that fill fields lazily, once the model is selected."""
