"""How the core tells a front-end what is happening; front-ends subclass Reporter to render it."""

from __future__ import annotations


class Reporter:
    """Default: silent. The CLI prints with Rich; the Ansible modules collect warnings."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def live(self, text: str) -> None:
        """Raw build/run output, only forwarded when live output was asked for."""

    def model_done(self, model: str, phase: str, status: str, detail: str = "") -> None:
        pass
