"""Errors a user causes and fixes with a setting, a file or a command (reported without a traceback)."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the valid choices."""


class PretrainedWeightsError(RuntimeError):
    """Published weights were asked for (``model.pretrained=true``) but cannot be had."""
