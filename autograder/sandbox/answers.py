"""What the grader accepts from a sandboxed child as the answer to one request.

Runs TRUSTED (in the grading parent). :mod:`autograder.sandbox.isolation` reads the
child's reply frames through :func:`autograder.sandbox.wire.read_frame` with the
acceptor made here for the request in flight, so every frame is judged on its
header and declared shapes BEFORE a byte of its arrays is read. A frame that is
refused is skipped without being held in memory, and is "malformed data" for that
request only (when it was the child's reply to that request, the child stays up for
the next one; a refused frame that answers anything else was forged, and the child
is replaced as for any malformed frame).

A reply is accepted only if

* its header holds known keys only (``RESULT_KEYS``; ``SETUP_KEYS`` for setup),
  answers the request in flight (type and id), and a failure carries no arrays;
* its array counts agree with the header (``num_returned`` + ``num_inputs``), the
  inputs sent back have exactly the shapes that were sent, a training run's
  outputs have exactly the rows asked for and one error per epoch;
* its returned arrays are no larger than the request's bound
  (:func:`answer_bound_bytes`: the request's own ``answer_bytes`` when the planner
  gives one, else ``ANSWER_FACTOR`` times the request's input bytes plus
  ``ANSWER_SLACK_BYTES``), and
* the submission's total of accepted array bytes stays within its
  :class:`ResponseBudget` (``Limits.total_response_bytes``).

So the grader's memory for one submission's replies is bounded by the budget,
plus one header and one discard chunk, whatever the child sends.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autograder.sandbox.wire import ITEM_BYTES

#: Header keys a result reply may hold (see ``child_runner.py``).
RESULT_KEYS = frozenset({
    "type", "id", "ok", "returned", "num_returned", "num_inputs",
    "error", "error_kind", "traceback", "records", "failed_step",
})

#: Header keys a setup reply may hold.
SETUP_KEYS = frozenset({"type", "ok", "errors", "names", "message", "error", "error_kind", "traceback"})

#: Default bound on a call's returned arrays, as a multiple of its input bytes
#: (inputs, parameters and gradients sent): a layer's outputs and gradients are
#: the size of what it was given, a convolution's output a few times that.
ANSWER_FACTOR = 256

#: Added to every answer bound (small inputs, scalar answers).
ANSWER_SLACK_BYTES = 1024 * 1024

#: Most columns of a training run's evaluation outputs (the model has 10).
MAX_TRAINING_COLUMNS = 1024

Acceptor = Callable[[dict, list[tuple[int, ...]]], "str | None"]


class ResponseBudget:
    """The array bytes still accepted from one submission's children (thread-safe).

    Args:
        total_bytes: The whole budget (``Limits.total_response_bytes``).
    """

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        with self._lock:
            return self.total_bytes - self._spent

    def spend(self, size: int) -> bool:
        """Take ``size`` bytes from the budget; False (and nothing taken) if they do not fit."""
        with self._lock:
            if self._spent + size > self.total_bytes:
                return False
            self._spent += size
            return True


@dataclass(frozen=True)
class Rejected:
    """A reply frame that was refused before its arrays were read.

    Attributes:
        reason: Why, for the request's message.
        header: The refused frame's header.
    """

    reason: str
    header: dict

    def answers(self, request_id: str) -> bool:
        """Whether the frame was the child's reply to ``request_id`` (so no other frame of it follows).

        Only then is the stream still in step with the requests; a refused frame
        that answers something else was forged, and the child must be replaced.
        """
        return self.header.get("type") == "result" and self.header.get("id") == request_id


def _nbytes(shape: tuple[int, ...]) -> int:
    return math.prod(shape) * ITEM_BYTES


def _shape_of(array: Any) -> tuple[int, ...]:
    shape = getattr(array, "shape", None)
    if shape is None:
        import numpy as np  # noqa: PLC0415 - only for a caller's non-array input

        shape = np.shape(array)
    return tuple(int(size) for size in shape)


def answer_bound_bytes(request: Any) -> int:
    """The most array bytes a request's returned arrays may hold.

    Args:
        request: An :class:`autograder.sandbox.isolation.Request`; its optional
            ``answer_bytes`` attribute overrides the default bound.
    """
    given = getattr(request, "answer_bytes", None)
    if given is not None:
        return int(given)
    sent = sum(_nbytes(_shape_of(array)) for array in request.arrays)
    return ANSWER_FACTOR * sent + ANSWER_SLACK_BYTES


def ready_acceptor() -> Acceptor:
    """The acceptor of the runner's first frame, ``{"type": "ready"}``, sent before any student code runs."""

    def accept(header: dict, shapes: list[tuple[int, ...]]) -> str | None:
        if header != {"type": "ready"} or shapes:
            return "a first frame that is not the runner's ready signal"
        return None

    return accept


def setup_acceptor() -> Acceptor:
    """The acceptor of the reply to a setup request (no arrays, known keys)."""

    def accept(header: dict, shapes: list[tuple[int, ...]]) -> str | None:
        if header.get("type") != "setup":
            return "a reply that is not the answer to loading the code"
        unknown = set(header) - SETUP_KEYS
        if unknown:
            return f"unknown header keys {sorted(unknown)[:5]}"
        if shapes:
            return "arrays in the reply to loading the code"
        return None

    return accept


def acceptor(request: Any, budget: ResponseBudget) -> Acceptor:
    """The acceptor of the reply to ``request``, spending from ``budget`` when it accepts.

    Args:
        request: The request in flight (header, arrays).
        budget: The submission's :class:`ResponseBudget`.

    Returns:
        A function of (header, declared shapes) giving None (accepted, budget
        spent) or the reason for refusing the frame.
    """
    header_sent = request.header
    sent_shapes = [_shape_of(array) for array in request.arrays]
    bound = answer_bound_bytes(request)

    def accept(header: dict, shapes: list[tuple[int, ...]]) -> str | None:
        reason = _refusal(header, shapes)
        if reason is None and not budget.spend(sum(_nbytes(shape) for shape in shapes)):
            reason = (f"the answers of this submission exceed the {budget.total_bytes // 2**20} MiB "
                      "the grader accepts from one submission")
        return reason

    def _refusal(header: dict, shapes: list[tuple[int, ...]]) -> str | None:
        if header.get("type") != "result" or header.get("id") != header_sent.get("id"):
            return "a reply that does not answer the request"
        unknown = set(header) - RESULT_KEYS
        if unknown:
            return f"unknown header keys {sorted(map(str, unknown))[:5]}"
        if header.get("ok") is not True:
            return "arrays in a failure reply" if shapes else None
        num_returned, num_inputs = header.get("num_returned"), header.get("num_inputs")
        if type(num_returned) is not int or type(num_inputs) is not int or num_returned < 0 or num_inputs < 0:
            return "array counts that are not counts"
        if num_returned + num_inputs != len(shapes):
            return f"{len(shapes)} arrays where the header announces {num_returned} + {num_inputs}"
        if num_inputs and (not header_sent.get("return_inputs") or shapes[num_returned:] != sent_shapes):
            return "inputs sent back in shapes other than those sent"
        returned = shapes[:num_returned]
        if header_sent.get("type") == "train":
            return _training_refusal(returned)
        size = sum(_nbytes(shape) for shape in returned)
        if size > bound:
            return f"{size} bytes of answer where at most {bound} are accepted for this request"
        return None

    def _training_refusal(returned: list[tuple[int, ...]]) -> str | None:
        rows = sent_shapes[2][0] if len(sent_shapes) == 3 and sent_shapes[2] else None
        epochs = header_sent.get("num_epochs")
        if (len(returned) != 2 or len(returned[0]) != 2 or returned[0][0] != rows
                or not 0 < returned[0][1] <= MAX_TRAINING_COLUMNS or returned[1] != (epochs,)):
            return (f"training outputs of shapes {[list(shape) for shape in returned][:3]}, where "
                    f"({rows}, 10) and ({epochs},) were asked for")
        return None

    return accept
