"""madengine v1's import path for CustomModel, kept for old get_models_json.py scripts."""

from ansible_collections.rocm.madengine.plugins.module_utils.custom_model import CustomModel

__all__ = ["CustomModel"]
