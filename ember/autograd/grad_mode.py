"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``."""

from __future__ import annotations

import functools
import inspect
import sys

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


class _State:
    # One flag read by every op: a class attribute is the cheapest global to look up. ``enabled``
    # (record graphs) is grad mode and not inference mode: as in PyTorch, enable_grad inside
    # inference_mode turns grad mode on but records nothing.
    enabled = True
    grad = True
    inference = False


state = _State


def _set(grad, inference):
    _State.grad, _State.inference = grad, inference
    _State.enabled = grad and not inference


def is_grad_enabled():
    return _State.grad


def is_inference_mode_enabled():
    return _State.inference


class _Mode:
    """Base of the grad-mode switches: a context manager that is also a decorator."""

    _target = True

    def __enter__(self):
        self._prev = (_State.grad, _State.inference)
        _set(self._target, _State.inference)

    def __exit__(self, *exc):
        _set(*self._prev)
        return False

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(self._clone, fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._clone():
                return fn(*args, **kwargs)

        return wrapper

    def _clone(self):
        return type(self)()


def _wrap_generator(mode, fn):
    """As PyTorch: a decorated generator function runs every resumption of its body (each
    ``next``/``send``/``throw``/``close``) inside the mode, and the caller's code between
    resumptions outside it."""

    @functools.wraps(fn)
    def generator_context(*args, **kwargs):
        gen = fn(*args, **kwargs)
        try:
            with mode():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with mode():
                        gen.close()
                    raise
                except BaseException:
                    with mode():
                        response = gen.throw(*sys.exc_info())
                else:
                    with mode():
                        response = gen.send(request)
        except StopIteration as e:
            return e.value

    return generator_context


class no_grad(_Mode):
    """Disable gradient recording inside the block or the decorated function."""

    _target = False

    def __init__(self, orig_func=None):
        # Allows the bare decorator form ``@no_grad`` as well as ``@no_grad()``.
        self._orig = orig_func

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if callable(orig_func):
            self.__init__()
            return self(orig_func)
        return self


class enable_grad(no_grad):
    """Re-enable gradient recording inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_Mode):
    """Set grad mode on or off: as a function call, a context manager or a decorator."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError("set_grad_enabled(): argument 'enabled' (position 1) must be bool, "
                            f"not {type(mode).__name__}")
        self._target = mode
        self._prev = (_State.grad, _State.inference)
        _set(mode, _State.inference)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _set(*self._prev)
        return False

    def __call__(self, fn):
        # As a decorator the mode applies only inside ``fn``: undo the switch made by __init__.
        _set(*self._prev)
        return super().__call__(fn)

    def _clone(self):
        return enable_grad() if self._target else no_grad()


class inference_mode(_Mode):
    """Like ``no_grad`` (ember has no separate inference tensors); ``inference_mode(False)`` turns
    grad mode on and inference mode off, as PyTorch's."""

    def __init__(self, mode=True):
        self._mode = bool(mode)

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if callable(mode):
            self.__init__(True)
            return self(mode)
        return self

    def __enter__(self):
        self._prev = (_State.grad, _State.inference)
        # As PyTorch's guard: inference_mode(False) turns grad mode on and inference mode off.
        _set(not self._mode, self._mode)

    def __exit__(self, *exc):
        _set(*self._prev)
        return False

    def _clone(self):
        return inference_mode(self._mode)
