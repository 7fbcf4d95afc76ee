"""The import path MAD packages' get_models_json.py scripts use for CustomModel."""

from ansible_collections.rocm.madengine.plugins.module_utils.custom_model import CustomModel

__all__ = ["CustomModel"]
