"""One lazily created Docker engine client; the docker SDK is imported only when an engine is needed."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Type

from .errors import DockerUnavailableError

_CLIENT: Optional[Any] = None


def client() -> Any:
    global _CLIENT
    if _CLIENT is None:
        try:
            import docker
            from docker.errors import DockerException
        except ImportError:  # pragma: no cover - the package declares the dependency
            raise DockerUnavailableError(
                "the Python 'docker' package is not installed", hint="pip install docker"
            ) from None
        try:
            _CLIENT = docker.from_env(timeout=300)
        except DockerException as exc:
            raise DockerUnavailableError(
                f"cannot reach the Docker engine: {short_error(exc)}",
                hint="start dockerd (or set DOCKER_HOST) and check that this user may use it",
            ) from None
    return _CLIENT


def short_error(exc: BaseException) -> str:
    """The useful last part of a docker/requests error, on one line."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc)
    return " ".join(text.split())[:400]


def not_found_error() -> Type[BaseException]:
    from docker.errors import NotFound

    return NotFound


def api_error() -> Type[BaseException]:
    from docker.errors import APIError

    return APIError


def engine_errors() -> Tuple[Type[BaseException], ...]:
    """What the SDK raises when the engine fails or goes away mid-call (API errors, refused or broken
    connections, read timeouts)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    return (DockerException, RequestException)


def inspect_image(name: str) -> Optional[dict]:
    """The engine's image record, or None when there is no such image."""
    from docker.errors import ImageNotFound, NotFound

    try:
        return client().api.inspect_image(name)
    except (ImageNotFound, NotFound):
        return None
