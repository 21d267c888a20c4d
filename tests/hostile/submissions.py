"""Turn catalogue attacks into submission notebooks, and write a class of them.

Every hostile submission has the same shape, so that its score can be compared
with one number, the honest baseline (the same notebook with no attack)::

    cell 1  imports, _loot = [], _at_load = lambda function: function()
    cell 2  def _attack_<name>(inputs): <snippet>   (one per attack)
            def _attack(inputs): ...                (runs them all)
    cell 3  @_at_load def _module_attack(): ...     (module placement only)
    cell 4  class TanhLayer(Layer): ...             (class-body / method placement)
    cell 5  class ReluLayer(Layer): ...

``ReluLayer`` is correct: its points are the honest baseline, and an attack
that costs them (a crash, a hang) shows as a score below the baseline.
``TanhLayer`` returns zeros (wrong, but honestly so) unless ``_loot`` is
non-empty, i.e. an attack obtained something it should not have: then it
returns the correct answers. A leak therefore shows up as points above the
baseline.
"""

from __future__ import annotations

import string
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import v4

from .catalogue import CLASS_BODY, METHOD, MODULE, Attack

PRELUDE = '''import numpy as np
from mlp.layers import Layer

_loot = []
_at_load = lambda function: function()
'''

_COMBINED = '''def _attack(inputs):
    found = False
    for attack in ({names},):
        try:
            if attack(inputs) is True:
                found = True
        except Exception:
            pass
    return found
'''

_MODULE_HOOK = '''@_at_load
def _module_attack():
    if _attack(None) is True:
        _loot.append('module')
'''

_TANH = '''class TanhLayer(Layer):
{class_body}
    def fprop(self, inputs):
{method}
        if _loot:
            return np.tanh(inputs)
        return np.zeros_like(inputs)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        if _loot:
            return grads_wrt_outputs * (1. - outputs ** 2)
        return np.zeros_like(inputs)
'''

_CLASS_BODY_HOOK = '''    if _attack(None) is True:
        _loot.append('class body')
'''

_METHOD_HOOK = '''        answer = _attack(inputs)
        if answer is not None and answer is not True and answer is not False:
            return answer
        if answer is True:
            _loot.append('method')'''

_RELU = '''class ReluLayer(Layer):
    def fprop(self, inputs):
        return np.maximum(inputs, 0.)

    def bprop(self, inputs, outputs, grads_wrt_outputs):
        return grads_wrt_outputs * (outputs > 0)
'''


@dataclass(frozen=True)
class Targets:
    """The concrete values of the snippets' placeholders for one run.

    Attributes:
        repo: The repository root.
        submissions_dir: Where the batch's submissions are.
        out_dir: The batch's grade directory.
        victim: An honest student's id (target of forged reports).
        site_dirs: The grading interpreter's site-packages folders.
        tcp_port: Port of the test's TCP listener on 127.0.0.1.
        unix_socket: Path of the test's Unix-socket listener.
        abstract_socket: Name of the test's abstract Unix-socket listener.
        tag: Unique marker for planted file names.
        sleep_marker: Unique ``sleep`` argument of escaped processes.
        grader_pidns: ``readlink /proc/self/ns/pid`` of the grading process.
    """

    repo: str
    submissions_dir: str
    out_dir: str
    victim: str
    site_dirs: tuple[str, ...]
    tcp_port: int
    unix_socket: str
    abstract_socket: str
    tag: str
    sleep_marker: str
    grader_pidns: str

    def fill(self, text: str) -> str:
        """Substitute the placeholders of a snippet (every one must be known)."""
        values = {key: str(value) for key, value in vars(self).items()}
        values['site_dirs'] = repr(list(self.site_dirs))
        return string.Template(text).substitute(values)


def attack_function(attack: Attack, targets: Targets) -> str:
    """``def _attack_<name>(inputs): ...`` for one attack."""
    body = textwrap.indent(targets.fill(attack.body()), '    ')
    return 'def _attack_{0}(inputs):\n{1}\n'.format(attack.name, body)


def attack_functions(attacks: list[Attack], targets: Targets) -> str:
    """All attack functions plus ``_attack``, which runs them (one: it IS that attack)."""
    parts = [attack_function(attack, targets) for attack in attacks]
    if len(attacks) == 1:
        parts.append('_attack = _attack_{0}\n'.format(attacks[0].name))
    else:
        names = ', '.join('_attack_{0}'.format(attack.name) for attack in attacks)
        parts.append(_COMBINED.format(names=names))
    return '\n\n'.join(parts)


def layer_classes(placement: str) -> list[str]:
    """The two layer classes, with the attack hook at ``placement``."""
    tanh = _TANH.format(class_body=_CLASS_BODY_HOOK if placement == CLASS_BODY else '',
                        method=_METHOD_HOOK if placement == METHOD else '')
    return [tanh, _RELU]


def hostile_notebook(attacks: list[Attack], placement: str, targets: Targets) -> nbformat.NotebookNode:
    """A submission running ``attacks`` at ``placement`` (see the module docstring)."""
    for attack in attacks:
        if placement not in attack.placements:
            raise ValueError('{0} cannot be placed at {1}'.format(attack.name, placement))
    custom = [attack for attack in attacks if attack.layer_source]
    if custom and (len(attacks) > 1 or placement != METHOD):
        raise ValueError('an attack with its own layers runs alone, in method placement')
    cells = [PRELUDE, attack_functions(attacks, targets)]
    if placement == MODULE:
        cells += [targets.fill(attack.prelude) for attack in attacks if attack.prelude]
        cells.append(_MODULE_HOOK)
    cells += [targets.fill(custom[0].layer_source)] if custom else layer_classes(placement)
    return v4.new_notebook(cells=[v4.new_code_cell(source) for source in cells])


def baseline_notebook() -> nbformat.NotebookNode:
    """The honest baseline: the hostile template with no attack at all."""
    cells = [PRELUDE, 'def _attack(inputs):\n    return False\n'] + layer_classes(METHOD)
    return v4.new_notebook(cells=[v4.new_code_cell(source) for source in cells])


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """Save a notebook as Jupyter does (UTF-8 JSON); no validation, no cell-id churn."""
    path.write_text(v4.nbjson.writes(notebook) + '\n', encoding='utf-8')
    return path
